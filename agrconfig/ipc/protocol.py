"""The control protocol: what may be asked of a worker, with which arguments, and the version
every reply carries. Shared by the client and the worker; it imports only the bottom layer.
"""
import errno
import json
import logging
from dataclasses import dataclass

from .. import __version__, options
from ..checks import valid_ifname
from ..errors import AgrError

MAX_REQUEST = 64 * 1024
log = logging.getLogger("agrconfig")


# Every reply says which protocol and release answered. Requests carry no version: the
# workers of releases before 0.2.0 refuse unknown request keys, and are known by replies
# without one (protocol 0).
PROTOCOL_VERSION = 3   # 2: setport, flags lacp_active, lacp_sysprio, lacp_sysid; 3: proto (link1 gone),
#                        max_ports, min_ports, lacp_fallback, wtr_time, linkcheck
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


# -- requests: what may be asked, with which arguments -----------------------------------------

def check_ifname(value):
    """An interface name as Linux accepts one (dev_valid_name): never a path. Nor a
    '%d' template, which the kernel would expand."""
    if not valid_ifname(value) or "%" in value:
        raise ValueError(f"bad interface name {value!r}")
    return value


def check_mtu(value):
    if type(value) is not int or not options.MTU_MIN <= value <= options.MTU_MAX:
        raise ValueError(f"bad MTU {value!r} (an integer {options.MTU_MIN}-{options.MTU_MAX})")
    return value


def check_flags(value, scope="agr"):
    """Settings of the agr interface (scope "agr") or of one port ("port"), by option key."""
    if not isinstance(value, dict) or not value:
        raise ValueError("flags must be a non-empty object")
    for key, v in value.items():
        if key not in options.BY_KEY or options.BY_KEY[key].scope != scope:
            raise ValueError(f"unknown flag {key!r}")
        if not options.check(key, v, scope):
            raise ValueError(f"bad value {v!r} for flag {key!r}")
    return value


def check_port_flags(value):
    return check_flags(value, scope="port")


# op -> {argument: checker}. Nothing here names a file or a command: ports are interface names.
REQUESTS = {
    "status": {}, "ping": {}, "shutdown": {}, "save": {},
    "addport": {"port": check_ifname}, "delport": {"port": check_ifname},
    "setflags": {"flags": check_flags}, "setmtu": {"mtu": check_mtu},
    "setport": {"port": check_ifname, "flags": check_port_flags},
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


def answer(req, handler):
    try:
        return {"result": handler(req), **VERSION}
    except AgrError as exc:
        return {"error": exc.to_dict(), **VERSION}
    except Exception as exc:  # a bug must not kill the worker; report it
        log.exception("error serving %r", req)
        return {"error": AgrError(errno.EIO, "control", f"internal error: {exc!r}").to_dict(), **VERSION}


def error_reply(code, detail):
    return {"error": AgrError(code, "control", detail).to_dict(), **VERSION}


