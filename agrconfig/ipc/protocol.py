"""The control protocol: what may be asked of a worker (one typed Request per op, with the
checks of its arguments), and the version every reply carries. Shared by the client and the
worker; it imports only the bottom layer.
"""
import errno

from .. import __version__, jsontext, options
from ..checks import valid_ifname
from ..errors import AgrError
from ..record import Record

MAX_REQUEST = 64 * 1024


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


class Peer(Record):
    """Who answered a ping: a worker's protocol version, release (or None) and pid (or None)."""
    __slots__ = ("version", "release", "pid")

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


# -- typed requests: one class per op, its arguments and their checks ----------------------------
# Nothing here names a file or a command: ports are interface names. The JSON on the wire is
# {"op": OP, argument: value, ...}, as in every release before typed requests.

class Request(Record):
    """A control request. A subclass names its op (OP) and its arguments: its __slots__, each
    checked by CHECKS[argument] when parsed from the wire. The worker dispatches by type."""
    __slots__ = ()
    OP = ""
    CHECKS = {}          # argument -> checker (ValueError saying what is wrong)
    CHANGES = True       # whether it may change the aggregate (False: a look, safe to send again,
    #                      and anyone may send it; a change is root's: see refusal())
    IOCTL = "SIOCSETAGR"  # what NetBSD's ifconfig names when it refuses the change

    def ioctl(self):
        return self.IOCTL

    def to_json(self):
        """The request as it goes over the socket."""
        return {"op": self.OP, **self.as_dict()}

    @classmethod
    def from_json(cls, req):
        """A checked request from its JSON object (its op already found to be OP); raises
        AgrError(EINVAL) saying what is wrong."""
        extra = sorted(set(req) - set(cls.FIELDS) - {"op"})
        if extra:
            raise AgrError(errno.EINVAL, "control", f"{cls.OP}: unexpected argument {extra[0][:40]!r}")
        for key in cls.FIELDS:
            if key not in req:
                raise AgrError(errno.EINVAL, "control", f"{cls.OP}: missing argument {key!r}")
            try:
                cls.CHECKS[key](req[key])
            except ValueError as exc:
                raise AgrError(errno.EINVAL, "control", f"{cls.OP}: {exc}") from None
        return cls(**{key: req[key] for key in cls.FIELDS})


class Status(Request):
    __slots__ = ()
    OP = "status"
    CHANGES = False


class Ping(Request):
    __slots__ = ()
    OP = "ping"
    CHANGES = False


class Shutdown(Request):
    __slots__ = ()
    OP = "shutdown"
    IOCTL = "SIOCIFDESTROY"


class Save(Request):
    """Write the state file again (the front end found it unusable)."""
    __slots__ = ()
    OP = "save"


class AddPort(Request):
    __slots__ = ("port",)
    OP = "addport"
    CHECKS = {"port": check_ifname}


class DelPort(Request):
    __slots__ = ("port",)
    OP = "delport"
    CHECKS = {"port": check_ifname}


class SetFlags(Request):
    __slots__ = ("flags",)
    OP = "setflags"
    CHECKS = {"flags": check_flags}

    def ioctl(self):
        return flags_ioctl(self.flags)


class SetMtu(Request):
    __slots__ = ("mtu",)
    OP = "setmtu"
    CHECKS = {"mtu": check_mtu}
    IOCTL = "SIOCSIFMTU"


class SetPort(Request):
    """A port's own settings (agrportpri)."""
    __slots__ = ("port", "flags")
    OP = "setport"
    CHECKS = {"port": check_ifname, "flags": check_port_flags}


def flags_ioctl(flags):
    """The ioctl NetBSD's ifconfig would name for setting these options: the if_flags bits
    (link0, link1, link2, debug) SIOCSIFFLAGS, the link address SIOCALIFADDR, agr's own
    settings SIOCSETAGR."""
    found = [options.BY_KEY[key] for key in flags if key in options.BY_KEY]
    if any(o.ifflag for o in found):
        return "SIOCSIFFLAGS"
    if any(o.key == "lladdr" for o in found):
        return "SIOCALIFADDR"
    return "SIOCSETAGR"


def refusal(req, uid):
    """Who may ask what, decided per request by the peer's uid (SO_PEERCRED): anyone may look
    (a request that CHANGES nothing), only root may change. None when `uid` may send `req`,
    else the error to answer: EPERM, named as ifconfig names it."""
    if uid == 0 or not req.CHANGES:
        return None
    return AgrError(errno.EPERM, req.ioctl(), f"{req.OP}: only root may change agr interfaces")


REQUESTS = {cls.OP: cls for cls in (Status, Ping, Shutdown, Save, AddPort, DelPort, SetFlags, SetMtu, SetPort)}


def unknown(op):
    return AgrError(errno.EINVAL, "control", f"unknown request {op[:40]!r}")


def build(op, **args):
    """The typed request for `op` with these arguments, as a client makes one (the worker
    checks the values); raises AgrError(EINVAL) for an unknown op or wrong arguments."""
    cls = REQUESTS.get(op)
    if cls is None:
        raise unknown(str(op))
    try:
        return cls(**args)
    except TypeError as exc:
        raise AgrError(errno.EINVAL, "control", f"{op}: {exc}") from None


def parse_request(raw):
    """Bytes -> a checked, typed Request. Raises AgrError(EINVAL) saying what is wrong."""
    try:
        req = jsontext.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:   # "[[[[..." nests too deep
        raise AgrError(errno.EINVAL, "control", f"malformed request: {exc}") from None
    if not isinstance(req, dict) or not isinstance(req.get("op"), str):
        raise AgrError(errno.EINVAL, "control", "malformed request: not a JSON object with an op")
    cls = REQUESTS.get(req["op"])
    if cls is None:
        raise unknown(req["op"])
    return cls.from_json(req)


def answer(req, handler):
    try:
        return {"result": handler(req), **VERSION}
    except AgrError as exc:
        return {"error": exc.to_dict(), **VERSION}
    except Exception as exc:  # a bug must not kill the worker; report it
        from ..logger import log
        log.exception("error serving %r", req)
        return {"error": AgrError(errno.EIO, "control", f"internal error: {exc!r}").to_dict(), **VERSION}


def error_reply(code, detail):
    return {"error": AgrError(code, "control", detail).to_dict(), **VERSION}


