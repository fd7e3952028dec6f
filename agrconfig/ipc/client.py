"""The client end of the control socket: one JSON request, one JSON reply per connection."""
import errno
import _socket as socket   # socket.py would cost every command ~3 ms (its IntEnum conversions)
import struct
import time

from .. import jsontext, paths
from ..errors import AgrError
from . import protocol
from .protocol import Peer


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


SO_PEERCRED = 17
_worker_uid = []


def _trusted(uid):
    """May a server of `uid` answer for a worker: root (the workers of 0.4.0 and before) or the
    workers' user? Anyone else may bind a dead worker's abstract name and lie."""
    if uid == 0:
        return True
    if not _worker_uid:
        import os
        import pwd
        try:
            _worker_uid.append(pwd.getpwnam(os.environ.get("AGRCONFIG_TEST_USER", paths.WORKER_USER)).pw_uid)
        except KeyError:
            _worker_uid.append(None)
    return uid == _worker_uid[0] and uid is not None


def _check_peer(sock, name):
    pid, uid, _gid = struct.unpack("=iII", sock.getsockopt(socket.SOL_SOCKET, SO_PEERCRED, 12))
    if not _trusted(uid):
        raise AgrError(errno.EPERM, "control",
                       f"{name}: its control socket is held by pid {pid} of uid {uid}, not by an "
                       f"agrconfig worker (root or {paths.WORKER_USER}); refused")


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
    _exchange(name, protocol.Ping(), timeout)
    return _peers[name]


def request(name, op, timeout=30.0, **args):
    """Send one request to the worker of `name`: a protocol.Request, or its op and arguments
    (`request(name, "addport", port="re0")`); return its reply or raise AgrError. Who
    answered is kept for peer_of()."""
    req = op if isinstance(op, protocol.Request) else protocol.build(op, **args)
    return _exchange(name, req, timeout).get("result")


def _exchange(name, req, timeout):
    """One request, one reply (the whole reply object; an error raised as AgrError)."""
    return _receive(name, _send(name, req, timeout))


def exchange_many(names, req, timeout):
    """The same request to several workers at once: every request is sent before any reply is
    read, so the workers answer concurrently, without threads. {name: reply object, or the
    WorkerGone or AgrError that asking raised}. `timeout` bounds the whole exchange."""
    return receive_many(send_many(names, req, timeout))


def send_many(names, req, timeout):
    """exchange_many's first half: the requests sent, for receive_many() to read the replies
    of (the caller may do its own work meanwhile, while the workers do theirs)."""
    deadline = time.monotonic() + timeout
    sent, out = {}, {}
    for name in names:
        try:
            sent[name] = _send(name, req, timeout)
        except (WorkerGone, AgrError) as exc:
            out[name] = exc
    return list(names), deadline, sent, out


def receive_many(asked):
    """exchange_many's second half: {name: reply object, or the exception} for send_many's answer."""
    names, deadline, sent, out = asked
    for name, sock in sent.items():
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            out[name] = _receive(name, sock)
        except (WorkerGone, AgrError) as exc:
            out[name] = exc
    return {name: out[name] for name in names}


def _send(name, req, timeout):
    """A connected socket with the request sent (its writing end shut), for _receive."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        _connect(sock, paths.control_address(name), name, timeout)
        _check_peer(sock, name)
        try:
            sock.sendall(jsontext.dumps(req.to_json()).encode())
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker answered early (an error) and closed: read what it said
    except socket.timeout as exc:
        sock.close()
        raise AgrError(errno.ETIMEDOUT, "control", f"worker for {name} did not answer") from exc
    except BaseException:
        sock.close()
        raise
    return sock


def _receive(name, sock):
    try:
        data = _recv_all(sock, 16 * 1024 * 1024)
    except socket.timeout as exc:
        raise AgrError(errno.ETIMEDOUT, "control", f"worker for {name} did not answer") from exc
    except ConnectionResetError as exc:
        raise WorkerGone(name, sent=True) from exc  # it exited with our request unread
    except ValueError as exc:
        raise AgrError(errno.EIO, "control", f"worker for {name}: {exc}") from exc
    finally:
        sock.close()
    return reply_of(name, data)


def reply_of(name, data):
    """The reply object in the bytes read from the control socket (an error raised as
    AgrError, nothing at all as WorkerGone). Whatever holds the socket's name wrote them."""
    if not data:
        raise WorkerGone(name, sent=True)
    try:
        reply = jsontext.loads(data)
        if not isinstance(reply, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise AgrError(errno.EIO, "control", f"worker for {name} sent a malformed reply: {exc}") from None
    _note_peer(name, reply)
    if "error" in reply:
        err = reply["error"]
        raise AgrError.from_dict(err if isinstance(err, dict) else {"detail": str(err)})
    return reply
