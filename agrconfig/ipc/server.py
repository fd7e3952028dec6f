"""The worker's end of the control socket: non-blocking, driven by the worker's event loop.

The socket lives in the abstract namespace, which Linux scopes per network namespace. Any
local user may connect and look (status, ping); each request that changes something is
refused with EPERM unless its peer is root (SO_PEERCRED, read once per connection: the
credentials of the process that connected). protocol.refusal() decides.
"""
import errno
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB
import struct
import time

from .. import jsontext, paths
from ..errors import AgrError
from .protocol import MAX_REQUEST, VERSION, answer, error_reply, parse_request, refusal
from ..logger import log

READ, WRITE = 1, 2         # what the loop's selector watches for (selectors.EVENT_READ, EVENT_WRITE)
REQUEST_TIMEOUT = 2.0      # a client has this long to send its request (and to read the reply)
MAX_CONNECTIONS = 32       # pending at once; beyond that the oldest is dropped
LOOK_REUSE = 0.1           # a user's look is answered with a reply at most this old (seconds):
#                            users asking in a loop cannot make the worker build status after status



def listen(name):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.bind(paths.control_address(name))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def peer_uid(conn):
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class _Conn:
    __slots__ = ("sock", "uid", "buf", "deadline", "out", "eof", "refused", "events")

    def __init__(self, sock, deadline, uid=0):
        self.sock, self.uid, self.buf, self.deadline = sock, uid, bytearray(), deadline
        self.out = None          # the reply, once there is one (a memoryview of what is left)
        self.eof = False         # the client has half-closed: its request is complete
        self.refused = None      # an error to answer whatever the request (EMSGSIZE)
        self.events = 0


class Server:
    """Serve the control socket from the worker's loop without ever blocking it.

    One of the loop's components (worker/component.py): the loop registers what fds() lists
    and calls on_readable(now, key) when one is ready, deadline() and on_timer(now) as it does
    with the LACP core. `handler(request, now)` answers a typed request (protocol.Request).

    Each accepted connection is watched; its bytes are collected until EOF (the client's
    SHUT_WR), the size limit or its deadline; then the request is handled and the reply
    written as the socket takes it. A refused or oversized request is still read (and
    thrown away) to its end, so that the client gets its error reply rather than a reset.
    A slow or silent client costs one file descriptor until its deadline, never the loop's
    time: LACP and other clients go on meanwhile. `clock` is the worker's (monotonic
    seconds): a reply's deadline starts when it is ready, after the request was handled.
    """

    def __init__(self, listener, handler, timeout=REQUEST_TIMEOUT, max_conns=MAX_CONNECTIONS, clock=time.monotonic):
        self.listener, self.handler, self.clock = listener, handler, clock
        self.timeout, self.max_conns = timeout, max_conns
        self.conns = {}
        self.looks = {}   # op -> (when, reply): the last answer to a user's look (LOOK_REUSE)

    def close(self):
        for conn in list(self.conns.values()):
            self._close(conn)

    # -- the loop's interface ---------------------------------------------------------
    def fds(self):
        """(file, key, events) to watch: the listener, and each connection for what it waits for."""
        yield self.listener, None, READ
        for conn in self.conns.values():
            yield conn.sock, conn, conn.events

    def on_readable(self, now, conn):
        """The listener (conn None) or a connection is ready."""
        if conn is None:
            self._on_accept(now)
        else:
            self._on_event(now, conn)

    def deadline(self):
        """When the earliest connection runs out of time (monotonic seconds), or None."""
        return min((c.deadline for c in self.conns.values()), default=None)

    def on_timer(self, now):
        """Close the connections whose deadline has passed."""
        for conn in [c for c in self.conns.values() if c.deadline <= now]:
            if conn.out is None:
                log.warning("control: request not received within %.1f s; connection closed", self.timeout)
            self._close(conn)

    # -- events ----------------------------------------------------------------------
    def _on_accept(self, now):
        self.on_timer(now)
        while True:
            try:
                fd, _ = self.listener._accept()   # a bare _socket's accept
                sock = socket.socket(fileno=fd)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # EMFILE and friends: try again on the next wakeup
                log.warning("control: accept: %s", exc)
                break
            sock.setblocking(False)
            try:
                uid = peer_uid(sock)
            except OSError:
                sock.close()
                continue
            conn = _Conn(sock, now + self.timeout, uid)
            if len(self.conns) >= self.max_conns:
                # Too many pending: the oldest one gives way (it has waited longest).
                self._close(min(self.conns.values(), key=lambda c: c.deadline))
            self.conns[sock.fileno()] = conn
            conn.events = READ
            self._on_event(now, conn)

    def _on_event(self, now, conn):
        if conn.out is not None and not self._write(conn):
            return
        if not conn.eof and not self._read(conn):
            return
        if conn.out is None and conn.eof:
            if conn.refused is not None:
                reply = conn.refused
            else:
                try:
                    reply = self._serve(parse_request(bytes(conn.buf)), conn.uid, now)
                except AgrError as exc:
                    reply = {"error": exc.to_dict(), **VERSION}
            self._reply(conn, reply)
        elif conn.out is None and conn.refused is not None and conn.buf is None:
            self._reply(conn, conn.refused)   # too large: answer now, drain the rest
        if conn.out is not None and not conn.out and conn.eof:
            self._close(conn)
        elif conn.sock.fileno() >= 0:
            conn.events = (WRITE if conn.out else 0) | (0 if conn.eof else READ)

    def _serve(self, req, uid, now):
        """The reply to a parsed request from peer `uid`: refused, or handled."""
        refused = refusal(req, uid)
        if refused is not None:
            log.debug("control: %s from uid %d refused: only root may change", req.OP, uid)
            return {"error": refused.to_dict(), **VERSION}
        if req.CHANGES:
            self.looks.clear()   # what users are shown next is built afresh
        elif uid != 0:
            when, reply = self.looks.get(req.OP, (None, None))
            if when is not None and 0 <= now - when < LOOK_REUSE:
                return reply
            reply = answer(req, lambda req: self.handler(req, now))
            if "result" in reply:
                self.looks[req.OP] = (now, reply)
            return reply
        return answer(req, lambda req: self.handler(req, now))

    def _read(self, conn):
        """Take what the client sent; False if the connection was closed."""
        while True:
            try:
                chunk = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                self._close(conn)
                return False
            if not chunk:
                conn.eof = True
                return True
            if conn.buf is None:
                continue  # draining a refused request
            conn.buf += chunk
            if len(conn.buf) > MAX_REQUEST:
                conn.buf = None
                if conn.refused is None:
                    conn.refused = error_reply(errno.EMSGSIZE, f"request larger than {MAX_REQUEST} bytes")

    def _write(self, conn):
        """Send what the socket takes of the reply; False if the connection was closed."""
        try:
            while conn.out:
                sent = conn.sock.send(conn.out)
                conn.out = conn.out[sent:]
            conn.sock.shutdown(socket.SHUT_WR)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(conn)
            return False
        return True

    def _reply(self, conn, reply):
        conn.out = memoryview(jsontext.dumps(reply).encode())
        conn.deadline = self.clock() + self.timeout  # the client gets as long to read it
        self._write(conn)

    def _close(self, conn):
        if conn.sock.fileno() < 0:
            return
        self.conns.pop(conn.sock.fileno(), None)
        conn.events = 0
        conn.sock.close()   # the loop stops watching what fds() no longer lists
