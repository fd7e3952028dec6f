"""The worker's state file: what must survive a worker crash.

Nothing read back is trusted blindly: a file that is not exactly what `save`
writes (garbage, truncated, wrong types, missing keys, names that could be
paths) is set aside as NAME.state.bad with a log line and treated as absent.
"""
import os

from .. import jsontext, options, paths
from ..ipc import protocol
from ..logger import log

# What we change on a member, and the value that keeps the port's own IP stack
# out of the way: frames belong to agrN, not to the port.
PORT_SYSCTLS = (
    ("ipv6", "disable_ipv6", "1"),
    ("ipv6", "addr_gen_mode", "1"),
    ("ipv4", "arp_ignore", "8"),
    ("ipv4", "rp_filter", "1"),
)

SYSCTL_KEYS = {f"{fam}/{key}" for fam, key, _ in PORT_SYSCTLS}


class BadState(ValueError):
    pass


def _sysctl_number(text):
    """A sysctl's saved value: an optional minus and 1 to 10 ASCII digits (no re: a status
    reads state files, and re costs a command's start milliseconds)."""
    digits = text[1:] if text.startswith("-") else text
    return 1 <= len(digits) <= 10 and all("0" <= c <= "9" for c in digits)


def _checked(check, value):
    """The control socket's checks (never a path, only known flags), as BadState."""
    try:
        return check(value)
    except ValueError as exc:
        raise BadState(str(exc)) from None


def _int(value, what, low=0, high=2**31 - 1):
    if type(value) is not int or not low <= value <= high:
        raise BadState(f"{what}: {value!r} is not an integer {low}-{high}")
    return value


def _port(orig):
    if not isinstance(orig, dict):
        raise BadState("a port is not an object")
    _checked(protocol.check_ifname, orig.get("name"))
    _int(orig.get("index"), "port index", 1)
    if not isinstance(orig.get("mac"), str) or not options.MAC_RE.match(orig["mac"]):
        raise BadState(f"port {orig['name']}: bad MAC {orig.get('mac')!r}")
    _int(orig.get("mtu"), "port mtu", 68, 65535)
    for key in ("up", "promisc"):
        if type(orig.get(key)) is not bool:
            raise BadState(f"port {orig['name']}: {key} is not a boolean")
    if "options" in orig:   # a port's settings (agrportpri); absent in files before them
        if orig["options"]:
            _checked(protocol.check_port_flags, orig["options"])
        elif not isinstance(orig["options"], dict):
            raise BadState(f"port {orig['name']}: options is not an object")
    sysctl = orig.get("sysctl")
    if not isinstance(sysctl, dict) or not set(sysctl) <= SYSCTL_KEYS:
        raise BadState(f"port {orig['name']}: bad sysctl table")
    for key, value in sysctl.items():
        if value is not None and not (isinstance(value, str) and _sysctl_number(value)):
            raise BadState(f"port {orig['name']}: sysctl {key} = {value!r}")


def validate(state, name):
    """Raise BadState unless `state` is a well-formed state of `name`."""
    if not isinstance(state, dict):
        raise BadState("not a JSON object")
    if state.get("name") != name:
        raise BadState(f"names {state.get('name')!r}, not {name}")
    _int(state.get("ifindex"), "ifindex", 1)
    _int(state.get("pid"), "pid", 1)
    flags = state.get("flags")
    if not isinstance(flags, dict):
        raise BadState("flags is not an object")
    flags = state["flags"] = options.upgrade_flags(flags)   # link1 from before agrproto
    if flags:
        _checked(protocol.check_flags, flags)
    if type(state.get("carrier", False)) is not bool and state.get("carrier") is not None:
        raise BadState("carrier is not a boolean")
    ports = state.get("ports")
    if not isinstance(ports, list):
        raise BadState("ports is not a list")
    seen = set()
    for orig in ports:
        _port(orig)
        if orig["name"] in seen or orig["index"] in seen:
            raise BadState(f"port {orig['name']} listed twice")
        seen |= {orig["name"], orig["index"]}


def load(name):
    """The saved state of `name`, or None when there is none or it cannot be trusted."""
    for path in paths.places(paths.state_file(name)):   # ours, then an earlier release's
        try:
            raw = paths.read_regular(path)   # never through a link a worker planted
            break
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("agrconfig: %s: state file unreadable (%s); ignored", name, exc.strerror)
            return None
    else:
        return None
    try:
        state = jsontext.loads(raw.decode("utf-8"))
        validate(state, name)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        _set_aside(name, path, exc)
        return None
    return state


def _set_aside(name, path, why):
    bad = f"{path}.bad"
    try:
        os.replace(path, bad)
        if os.path.dirname(path) != paths.worker_dir():
            os.chmod(bad, 0o600)   # root's directory; in the workers' the file keeps its 0640
    except OSError:
        pass
    log.warning("agrconfig: %s: state file is corrupt (%s); set aside as %s and ignored",
                name, str(why)[:200], os.path.basename(bad))


def save(state):
    path = paths.state_file(state["name"])
    if not paths.in_worker():   # not under a supervisor (tests): made by path, as root
        paths.run_dir(create=True)
        os.makedirs(paths.worker_dir(), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp"
    try:
        os.unlink(tmp)  # whatever is there (even a link planted by someone) goes
    except FileNotFoundError:
        pass
    # 0640, group root (the directory is setgid): a root front end reads it without
    # CAP_DAC_OVERRIDE; no one else can reach the directory.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, paths.WORKER_FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(jsontext.dumps(state, indent=1))
    os.replace(tmp, path)  # atomic: a crash leaves the old or the new state, never half


def remove(name):
    for own in (paths.state_file(name), paths.pid_file(name), paths.log_file(name),
                paths.state_file(name) + ".bad"):
        for path in paths.places(own):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def all_names():
    """Names of every agr interface with a state file in this network namespace."""
    entries = set()
    for directory in paths.directories():
        try:
            entries.update(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            pass
    names = [e[:-len(".state")] for e in entries if e.endswith(".state")]
    return sorted((n for n in names if paths.is_agr_name(n)), key=lambda n: int(n[3:]))


def members():
    """{port name: agr name} for every port of every agr interface, from the state files."""
    out = {}
    for name in all_names():
        for p in (load(name) or {}).get("ports", []):
            out.setdefault(p.get("name"), name)
    return out


def owner_of(port_name):
    """The agr interface whose state lists `port_name` as a member, or None."""
    return members().get(port_name)
