"""Carry out parsed operations: agr words through the interface's worker, plain ifconfig words
through rtnetlink, serialized per network namespace."""
import errno
import fcntl
import os

from .. import paths
from ..errors import AgrError
from . import ifconfig, workers

AGR_ONLY = "valid only with agr(4) interfaces"
AGR_WORDS = ("create", "destroy", "agrport", "-agrport", "flag", "portflag")


class Namespace:
    """Serializes mutating commands within this network namespace."""

    def __enter__(self):
        self.fd = os.open(paths.lock_file(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


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
        for op in ops:
            if workers.manages(name, op):
                apply_agr(name, op)
            else:
                apply_plain(name, op)


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
