"""Control socket framing: one JSON request and one JSON reply per connection.

The socket lives in the abstract namespace, which Linux scopes per network
namespace; only root peers (SO_PEERCRED) are served.
"""
import errno
import json
import socket
import struct

from .errors import AgrError
from . import paths

MAX_REQUEST = 64 * 1024
REQUEST_TIMEOUT = 2.0


class WorkerGone(Exception):
    """No worker answers on the control socket."""


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


def request(name, op, timeout=30.0, **args):
    """Send one request to the worker of `name`; return its reply or raise AgrError."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(paths.control_address(name))
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise WorkerGone(name) from exc
        sock.sendall(json.dumps({"op": op, **args}).encode())
        sock.shutdown(socket.SHUT_WR)
        data = _recv_all(sock, 16 * 1024 * 1024)
    except socket.timeout as exc:
        raise AgrError(errno.ETIMEDOUT, "control", f"worker for {name} did not answer") from exc
    finally:
        sock.close()
    if not data:
        raise WorkerGone(name)
    reply = json.loads(data)
    if "error" in reply:
        raise AgrError.from_dict(reply["error"])
    return reply.get("result")


def listen(name):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.bind(paths.control_address(name))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def peer_uid(conn):
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def serve_one(conn, handler):
    """Read one request from an accepted connection, answer it, close it.

    Errors of any kind become an error reply: the worker keeps serving.
    """
    try:
        conn.settimeout(REQUEST_TIMEOUT)
        if peer_uid(conn) != 0:
            raise AgrError(errno.EPERM, "control", "only root may control agr interfaces")
        try:
            raw = _recv_all(conn, MAX_REQUEST)
            req = json.loads(raw)
            if not isinstance(req, dict) or not isinstance(req.get("op"), str):
                raise ValueError("request must be a JSON object with an op")
        except socket.timeout:
            raise AgrError(errno.ETIMEDOUT, "control", "request not received in time")
        except (ValueError, UnicodeDecodeError) as exc:
            raise AgrError(errno.EINVAL, "control", f"malformed request: {exc}")
        reply = {"result": handler(req)}
    except AgrError as exc:
        reply = {"error": exc.to_dict()}
    except Exception as exc:  # a bug must not kill the worker; report it
        import logging
        logging.getLogger("agrconfig").exception("error serving %r", req if "req" in locals() else None)
        reply = {"error": AgrError(errno.EIO, "control", f"internal error: {exc!r}").to_dict()}
    try:
        conn.sendall(json.dumps(reply).encode())
    except OSError:
        pass
    finally:
        conn.close()
    return reply
