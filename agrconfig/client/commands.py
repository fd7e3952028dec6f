"""Carry out parsed operations: agr words through the interface's worker, plain ifconfig words
through rtnetlink, serialized per network namespace. One command is all or nothing: when a word
fails, what the words before it changed is undone."""
import errno
from dataclasses import dataclass, field

from ..net import rtnl

from .. import paths
from ..errors import AgrError
from . import ifconfig, workers

AGR_ONLY = "valid only with agr(4) interfaces"
AGR_WORDS = ("create", "destroy", "agrport", "-agrport", "flag", "portflag")


class Namespace:
    """Serializes mutating commands within this network namespace."""

    def __enter__(self):
        self.fd = paths.lock_namespace()
        return self

    def __exit__(self, *exc):
        paths.unlock_namespace(self.fd)   # removes the runtime directory if no agr is left


def apply(name, ops):
    """Carry out the operations on interface `name`, left to right."""
    agr_words = [op for op in ops if op.word in AGR_WORDS]
    if not paths.is_agr_name(name):
        if any(op.word == "create" for op in ops):
            raise AgrError(errno.EINVAL, "SIOCIFCREATE",
                           f"{name!r}: only agr<N> interfaces can be created (at most 15 characters)")
        if agr_words:
            raise AgrError(errno.EINVAL, "SIOCSETAGR", f"{agr_words[0].word_text}: {AGR_ONLY}")
    with Namespace():
        # Only a later word's failure has anything to undo: a single word costs no snapshot.
        before = Snapshot.of(name) if len(ops) > 1 else None
        for done, op in enumerate(ops):
            try:
                if workers.manages(name, op):
                    apply_agr(name, op)
                else:
                    apply_plain(name, op)
            except AgrError as exc:
                if done:
                    failed = roll_back(name, before, ops[:done])
                    if failed:
                        exc.detail += f"; the words before it could not all be undone: {failed}"
                raise


@dataclass
class Snapshot:
    """What words can change on an interface, as it is now: what a failed command puts back,
    and what provisioning (cli/provision.py) plans against."""
    exists: bool = False
    mtu: int = 0
    up: bool = False
    addrs: set = field(default_factory=set)
    agr: bool = False
    flags: dict = field(default_factory=dict)
    ports: list = field(default_factory=list)
    port_options: dict = field(default_factory=dict)

    @classmethod
    def of(cls, name):
        link = rtnl.link(name)
        if link is None:
            return cls()
        snap = cls(True, link.mtu, link.up, {a.interface for a in rtnl.addresses(link.index)})
        if workers.exists(name):
            ws = workers.worker_status(name) or {}
            snap.agr = True
            snap.flags = dict(ws.get("flags", {}))
            snap.ports = [p["name"] for p in ws.get("ports", [])]
            snap.port_options = {p["name"]: dict(p.get("options", {})) for p in ws.get("ports", [])}
        return snap


def roll_back(name, before, done_ops):
    """Undo what `done_ops` changed on `name` since `before`; returns what could not be undone."""
    failures = []

    def attempt(what, action, *args, **kwargs):
        try:
            action(*args, **kwargs)
        except (AgrError, OSError) as exc:
            failures.append(f"{what}: {exc.detail if isinstance(exc, AgrError) else exc}")

    now = Snapshot.of(name)
    if not before.exists:
        if now.exists and now.agr:
            attempt("destroy", workers.destroy, name)
        return "; ".join(failures)
    if now.agr and before.agr:
        for port in now.ports:
            if port not in before.ports:
                attempt(f"-agrport {port}", workers.request, name, "delport", port=port)
        for port in before.ports:
            if port not in now.ports:
                attempt(f"agrport {port}", workers.request, name, "addport", port=port)
        changed = {k: v for k, v in before.flags.items() if now.flags.get(k) != v}
        if changed:
            attempt("flags", workers.request, name, "setflags", flags=changed)
        for port, opts in before.port_options.items():
            for key, value in opts.items():
                if now.port_options.get(port, {}).get(key) != value:
                    attempt(f"{key} of {port}", workers.request, name, "setport", port=port, flags={key: value})
    if now.exists and now.mtu != before.mtu:
        if now.agr:
            attempt("mtu", workers.request, name, "setmtu", mtu=before.mtu)
        else:
            attempt("mtu", ifconfig.set_mtu, name, before.mtu)
    # Only the addresses the words named (or an inet replaced): the kernel's own, such as a
    # link-local address that came with `up`, are not ours to take away.
    named = {op.arg[1].ip for op in done_ops if op.word == "address"}
    replaced_v4 = any(op.word == "address" and op.arg[0] == "set" and op.arg[1].version == 4 for op in done_ops)
    for iface in sorted(now.addrs - before.addrs, key=str):
        if iface.ip in named:
            attempt(f"delete {iface}", ifconfig.delete_address, name, iface, True)
    for iface in sorted(before.addrs - now.addrs, key=str):
        if iface.ip in named or (replaced_v4 and iface.version == 4):
            attempt(f"add {iface}", ifconfig.add_address, name, iface, True)
    if now.exists and now.up != before.up:
        attempt("up" if before.up else "down", ifconfig.set_up, name, before.up)
    return "; ".join(failures)


def _address_on_agr(name, arg):
    if not workers.request(name, "status")["ports"]:
        raise AgrError(errno.EINVAL, "SIOCAIFADDR",
                       "no way to configure agr interfaces without attaching physical interfaces")
    ifconfig.apply_address(name, arg)


def _up_down_on_agr(name, up):
    workers.ensure_worker(name)
    ifconfig.set_up(name, up)


# word -> what it does on an agr interface of ours
AGR_OPS = {
    "create": lambda name, arg: workers.create(name),
    "destroy": lambda name, arg: workers.destroy(name),
    "agrport": lambda name, arg: workers.request(name, "addport", port=arg),
    "-agrport": lambda name, arg: workers.request(name, "delport", port=arg),
    "flag": lambda name, arg: workers.request(name, "setflags", flags={arg[0]: arg[1]}),
    "portflag": lambda name, arg: workers.request(name, "setport", port=arg[0], flags={arg[1]: arg[2]}),
    "mtu": lambda name, arg: workers.request(name, "setmtu", mtu=arg),
    "up": lambda name, arg: _up_down_on_agr(name, True),
    "down": lambda name, arg: _up_down_on_agr(name, False),
    "address": _address_on_agr,
}


def apply_agr(name, op):
    action = AGR_OPS.get(op.word)
    if action is None:
        raise AgrError(errno.EINVAL, "SIOCSETAGR", f"{op.word}: not supported")
    action(name, op.arg)


# word -> what it does on any other interface (a port, or one that is not ours)
PLAIN_OPS = {
    "up": lambda name, arg: ifconfig.set_up(name, True),
    "down": lambda name, arg: ifconfig.set_up(name, False),
    "mtu": ifconfig.set_mtu,
    "address": ifconfig.apply_address,
}


def apply_plain(name, op):
    """An ifconfig word on an interface that is not ours (a port, or any other)."""
    member_of = workers.owner_of(name)
    if member_of and op.word in ("mtu", "address"):
        raise AgrError(errno.EBUSY, "SIOCSIFMTU" if op.word == "mtu" else "SIOCAIFADDR",
                       f"{name} is a port of {member_of}; configure {member_of} instead")
    action = PLAIN_OPS.get(op.word)
    if action is None:
        raise AgrError(errno.ENXIO, "SIOCSETAGR", f"{name}: no such agr interface")
    action(name, op.arg)
