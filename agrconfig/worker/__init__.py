"""The worker of an agr interface: a supervised daemon that owns agrN's TAP, its ports' sockets,
LACP and the data path.

This module is the worker's entry point, and the only part of it the client imports: starting
a worker, reading the state file it keeps, and giving back the ports of a dead one.
"""
# Imported on first use (PEP 562): the supervisor, a module of this package, must not pay for
# what the client uses here (the flow hash pulls in the option schema and the LACP core).
_LAZY = {"flow_hash": ("flowhash", "flow_hash"),              # whichport: the data paths' own hash
         "slb_bucket": ("slb", "bucket_of"), "slb_placement": ("slb", "placement"),   # whichport under slb
         "all_names": ("statefile", "all_names"), "load_state": ("statefile", "load"),
         "members": ("statefile", "members"), "owner_of": ("statefile", "owner_of"),
         "remove_state": ("statefile", "remove")}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    # __import__, not importlib.import_module: the importlib package imports warnings (1 ms)
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[attr]), attr)
    globals()[name] = value
    return value


def spawn(name, resume):
    """Fork a daemonized, supervised worker for `name`; wait until it serves or fails."""
    from .process import spawn as _spawn   # the worker's imports are for the worker, not every command
    from .tap import ensure_device
    ensure_device()   # here, as root: the worker cannot load the tun module
    return _spawn(name, resume)


def restore_port(orig):
    """Give a port back the original state saved in a state file (MAC, MTU, flags, sysctls),
    if it still looks like ours: returns False, changing nothing, when it does not."""
    from ..net import rtnl
    from .port import PORT_SYSCTLS, Member
    ours = all(rtnl.sysctl_get(fam, orig["name"], key) == value for fam, key, value in PORT_SYSCTLS)
    if ours:
        Member(orig).restore()
    return ours
