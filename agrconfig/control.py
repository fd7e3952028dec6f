"""Control socket framing: one JSON request and one JSON reply per connection.

The socket lives in the abstract namespace, which Linux scopes per network
namespace; only root peers (SO_PEERCRED) are served.
"""
import errno
import json
import logging
import os
import selectors
import socket
import struct
import time
from dataclasses import dataclass

from . import __version__, options, paths
from .errors import AgrError
from .words import valid_ifname

MAX_REQUEST = 64 * 1024
REQUEST_TIMEOUT = 2.0      # a client has this long to send its request (and to read the reply)
MAX_CONNECTIONS = 32       # pending at once; beyond that the oldest is dropped

log = logging.getLogger("agrconfig")


class WorkerGone(Exception):
    """No worker answers on the control socket.

    `sent` tells whether the request had left: then the worker may have carried it out
    before it went away, and only a request that changes nothing may be sent again.
    """

    def __init__(self, name, sent=False):
        super().__init__(name)
        self.sent = sent


def _recv_all(sock, limit):
    chunks, size = [], 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ValueError("message too large")
    return b"".join(chunks)


def _connect(sock, address, name, timeout):
    """Connect, waiting while the worker's backlog is full: with a timeout set, a Unix
    socket fails at once with EAGAIN then, where a TCP one would wait."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            sock.connect(address)
            return
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise WorkerGone(name) from exc
        except (BlockingIOError, InterruptedError) as exc:
            if time.monotonic() >= deadline:
                raise AgrError(errno.ETIMEDOUT, "control", f"worker for {name} is too busy") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


# Every reply says which protocol and release answered. Requests carry no version: the
# workers of releases before 0.2.0 refuse unknown request keys, and are known by replies
# without one (protocol 0).
PROTOCOL_VERSION = 1
VERSION = {"version": PROTOCOL_VERSION, "release": __version__}


def release_key(release):
    """'0.2.0' -> (0, 2, 0), for comparing releases; anything odd sorts first."""
    try:
        return tuple(int(part) for part in str(release).split("."))
    except ValueError:
        return ()


@dataclass(frozen=True)
class Peer:
    """Who answered a ping: a worker's protocol version, release and pid."""
    version: int
    release: str | None
    pid: int | None

    def _key(self):
        return (self.version, release_key(self.release))

    @property
    def older(self):
        return self._key() < (PROTOCOL_VERSION, release_key(__version__))

    @property
    def newer(self):
        return self._key() > (PROTOCOL_VERSION, release_key(__version__))


_peers = {}


def peer_of(name):
    """The Peer that last answered for `name` in this process, or None."""
    return _peers.get(name)


def _note_peer(name, reply):
    result = reply.get("result")
    pid = result.get("pid") if isinstance(result, dict) else None
    version = reply.get("version", 0)
    _peers[name] = Peer(version if type(version) is int else 0, reply.get("release"),
                        pid if type(pid) is int else None)


def ping(name, timeout=5.0):
    """Ask the worker of `name` who it is (a Peer); raises WorkerGone when none answers."""
    _exchange(name, "ping", timeout)
    return _peers[name]


def request(name, op, timeout=30.0, **args):
    """Send one request to the worker of `name`; return its reply or raise AgrError. Who
    answered is kept for peer_of()."""
    return _exchange(name, op, timeout, **args).get("result")


def _exchange(name, op, timeout, **args):
    """One request, one reply (the whole reply object; an error raised as AgrError)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        _connect(sock, paths.control_address(name), name, timeout)
        try:
            sock.sendall(json.dumps({"op": op, **args}).encode())
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker answered early (an error) and closed: read what it said
        data = _recv_all(sock, 16 * 1024 * 1024)
    except socket.timeout as exc:
        raise AgrError(errno.ETIMEDOUT, "control", f"worker for {name} did not answer") from exc
    except ConnectionResetError as exc:
        raise WorkerGone(name, sent=True) from exc  # it exited with our request unread
    except ValueError as exc:
        raise AgrError(errno.EIO, "control", f"worker for {name}: {exc}") from exc
    finally:
        sock.close()
    if not data:
        raise WorkerGone(name, sent=True)
    try:
        reply = json.loads(data)
        if not isinstance(reply, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise AgrError(errno.EIO, "control", f"worker for {name} sent a malformed reply: {exc}") from None
    _note_peer(name, reply)
    if "error" in reply:
        err = reply["error"]
        raise AgrError.from_dict(err if isinstance(err, dict) else {"detail": str(err)})
    return reply


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


# -- requests: what may be asked, with which arguments -----------------------------------------

def _ifname(value):
    """An interface name as Linux accepts one (dev_valid_name): never a path. Nor a
    '%d' template, which the kernel would expand."""
    if not valid_ifname(value) or "%" in value:
        raise ValueError(f"bad interface name {value!r}")
    return value


def _mtu(value):
    if type(value) is not int or not options.MTU_MIN <= value <= options.MTU_MAX:
        raise ValueError(f"bad MTU {value!r} (an integer {options.MTU_MIN}-{options.MTU_MAX})")
    return value


def _flags(value):
    if not isinstance(value, dict) or not value:
        raise ValueError("flags must be a non-empty object")
    for key, v in value.items():
        if key not in options.BY_KEY:
            raise ValueError(f"unknown flag {key!r}")
        if not options.check(key, v):
            raise ValueError(f"bad value {v!r} for flag {key!r}")
    return value


# op -> {argument: checker}. Nothing here names a file or a command: ports are interface names.
REQUESTS = {
    "status": {}, "ping": {}, "shutdown": {}, "save": {},
    "addport": {"port": _ifname}, "delport": {"port": _ifname},
    "setflags": {"flags": _flags}, "setmtu": {"mtu": _mtu},
}


def parse_request(raw):
    """Bytes -> a checked request dict. Raises AgrError(EINVAL) saying what is wrong."""
    try:
        req = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AgrError(errno.EINVAL, "control", f"malformed request: {exc}") from None
    if not isinstance(req, dict) or not isinstance(req.get("op"), str):
        raise AgrError(errno.EINVAL, "control", "malformed request: not a JSON object with an op")
    op = req["op"]
    if op not in REQUESTS:
        raise AgrError(errno.EINVAL, "control", f"unknown request {op[:40]!r}")
    wanted = REQUESTS[op]
    extra = sorted(set(req) - set(wanted) - {"op"})
    if extra:
        raise AgrError(errno.EINVAL, "control", f"{op}: unexpected argument {extra[0][:40]!r}")
    for key, check in wanted.items():
        if key not in req:
            raise AgrError(errno.EINVAL, "control", f"{op}: missing argument {key!r}")
        try:
            check(req[key])
        except ValueError as exc:
            raise AgrError(errno.EINVAL, "control", f"{op}: {exc}") from None
    return req


def _answer(req, handler):
    try:
        return {"result": handler(req), **VERSION}
    except AgrError as exc:
        return {"error": exc.to_dict(), **VERSION}
    except Exception as exc:  # a bug must not kill the worker; report it
        log.exception("error serving %r", req)
        return {"error": AgrError(errno.EIO, "control", f"internal error: {exc!r}").to_dict(), **VERSION}


def _error(code, detail):
    return {"error": AgrError(code, "control", detail).to_dict(), **VERSION}


# -- the server: non-blocking, driven by the worker's event loop -------------------------------

class _Conn:
    __slots__ = ("sock", "buf", "deadline", "out", "eof", "refused", "events")

    def __init__(self, sock, deadline):
        self.sock, self.buf, self.deadline = sock, bytearray(), deadline
        self.out = None          # the reply, once there is one (a memoryview of what is left)
        self.eof = False         # the client has half-closed: its request is complete
        self.refused = None      # an error to answer whatever the request (EPERM, EMSGSIZE)
        self.events = 0


class Server:
    """Serve the control socket from a selector without ever blocking the loop.

    Each accepted connection is registered in the selector; its bytes are
    collected until EOF (the client's SHUT_WR), the size limit or its deadline;
    then the request is handled and the reply written as the socket takes it.
    A refused or oversized request is still read (and thrown away) to its end,
    so that the client gets its error reply rather than a reset.
    A slow or silent client costs one file descriptor until its deadline, never
    the loop's time: LACP and other clients go on meanwhile. A timerfd wakes the
    loop at the earliest deadline.
    """

    def __init__(self, listener, sel, handler, timeout=REQUEST_TIMEOUT, max_conns=MAX_CONNECTIONS):
        self.listener, self.sel, self.handler = listener, sel, handler
        self.timeout, self.max_conns = timeout, max_conns
        self.conns = {}
        self.timer = _Timer()
        sel.register(listener, selectors.EVENT_READ, self._on_accept)
        if self.timer.fd is not None:
            sel.register(self.timer.fd, selectors.EVENT_READ, self._on_timer)

    def close(self):
        for conn in list(self.conns.values()):
            self._close(conn)
        for obj in (self.listener, self.timer.fd):
            if obj is not None:
                try:
                    self.sel.unregister(obj)
                except (KeyError, ValueError):
                    pass
        self.timer.close()

    # -- events ----------------------------------------------------------------------
    def _on_accept(self):
        now = time.monotonic()
        self._expire(now)
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # EMFILE and friends: try again on the next wakeup
                log.warning("control: accept: %s", exc)
                break
            sock.setblocking(False)
            conn = _Conn(sock, now + self.timeout)
            try:
                uid = peer_uid(sock)
            except OSError:
                sock.close()
                continue
            if uid != 0:
                conn.refused = _error(errno.EPERM, "only root may control agr interfaces")
            if len(self.conns) >= self.max_conns:
                # Too many pending: the oldest one gives way (it has waited longest).
                self._close(min(self.conns.values(), key=lambda c: c.deadline))
            self.conns[sock.fileno()] = conn
            self._watch(conn, selectors.EVENT_READ)
            self._on_event(conn)
        self._arm()

    def _on_event(self, conn):
        if conn.out is not None and not self._write(conn):
            return
        if not conn.eof and not self._read(conn):
            return
        if conn.out is None and conn.eof:
            if conn.refused is not None:
                reply = conn.refused
            else:
                try:
                    reply = _answer(parse_request(bytes(conn.buf)), self.handler)
                except AgrError as exc:
                    reply = {"error": exc.to_dict()}
            self._reply(conn, reply)
        elif conn.out is None and conn.refused is not None and conn.buf is None:
            self._reply(conn, conn.refused)   # too large: answer now, drain the rest
        if conn.out is not None and not conn.out and conn.eof:
            self._close(conn)
        elif conn.sock.fileno() >= 0:
            self._watch(conn, (selectors.EVENT_WRITE if conn.out else 0) |
                        (0 if conn.eof else selectors.EVENT_READ))

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
                    conn.refused = _error(errno.EMSGSIZE, f"request larger than {MAX_REQUEST} bytes")

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

    def _on_timer(self):
        self.timer.clear()
        self._expire(time.monotonic())
        self._arm()

    # -- helpers -----------------------------------------------------------------------
    def _reply(self, conn, reply):
        conn.out = memoryview(json.dumps(reply).encode())
        conn.deadline = time.monotonic() + self.timeout  # the client gets as long to read it
        self._write(conn)

    def _watch(self, conn, events):
        if events == conn.events:
            return
        try:
            if conn.events and events:
                self.sel.modify(conn.sock, events, lambda c=conn: self._on_event(c))
            elif events:
                self.sel.register(conn.sock, events, lambda c=conn: self._on_event(c))
            else:
                self.sel.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            self._close(conn)
            return
        conn.events = events

    def _expire(self, now):
        for conn in [c for c in self.conns.values() if c.deadline <= now]:
            if conn.out is None:
                log.warning("control: request not received within %.1f s; connection closed", self.timeout)
            self._close(conn)

    def _arm(self):
        self.timer.set(min((c.deadline for c in self.conns.values()), default=None))

    def _close(self, conn):
        if conn.sock.fileno() < 0:
            return
        self.conns.pop(conn.sock.fileno(), None)
        if conn.events:
            try:
                self.sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.events = 0
        conn.sock.close()


class _Timer:
    """A CLOCK_MONOTONIC timerfd (time.monotonic()'s clock), through libc; fd None if unavailable."""

    CLOCK_MONOTONIC, TFD_NONBLOCK, TFD_CLOEXEC, TFD_TIMER_ABSTIME = 1, 0o4000, 0o2000000, 1

    def __init__(self):
        self.fd = None
        try:
            import ctypes
            self._libc = ctypes.CDLL(None, use_errno=True)
            fd = self._libc.timerfd_create(self.CLOCK_MONOTONIC, self.TFD_NONBLOCK | self.TFD_CLOEXEC)
            if fd >= 0:
                self.fd = fd
                self._spec = ctypes.c_long * 4
        except (OSError, AttributeError):
            self.fd = None

    def set(self, deadline):
        """Fire at `deadline` (monotonic seconds), or never when None."""
        if self.fd is None:
            return
        if deadline is None:
            spec = self._spec(0, 0, 0, 0)
        else:
            sec = int(deadline)
            spec = self._spec(0, 0, sec, max(1, int((deadline - sec) * 1e9)))
        self._libc.timerfd_settime(self.fd, self.TFD_TIMER_ABSTIME, spec, None)

    def clear(self):
        try:
            os.read(self.fd, 8)
        except (BlockingIOError, OSError):
            pass

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
