"""The front end's one model of an interface: what words can change on it (link, addresses,
and for an agr interface of ours its worker's flags and ports). Provisioning plans against it
(operations update it as planned words are applied: cli/ops.py), and a command that fails
halfway compares it before and after to put back what its words changed (commands.py)."""
from .. import paths
from ..net import rtnl
from ..status import plain
from . import workers


class Interface:
    """One interface as words see it. Planning updates it in place (it follows the plan along);
    read() gives a fresh one."""
    __slots__ = ("exists", "agr", "ports", "flags", "port_flags", "mtu", "up", "addrs")

    def __init__(self, exists, agr=False, ports=None, flags=None, port_flags=None, mtu=None,
                 up=False, addrs=None):
        self.exists = exists
        self.agr = agr                  # an agr interface of ours (or, while absent, one would be)
        self.ports = list(ports or [])
        self.flags = dict(flags or {})
        self.port_flags = dict(port_flags or {})   # port -> its settings (agrportpri)
        self.mtu = mtu
        self.up = up
        self.addrs = set(addrs or ())   # ipaddress interfaces

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other):
        return type(other) is type(self) and self.as_dict() == other.as_dict()

    def __repr__(self):
        return "Interface(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"

    @classmethod
    def read(cls, name):
        """`name` as it is now: its link and addresses, and, for an agr interface of ours, what
        its worker says (reviving the worker if needed). Settings its ports do not report are
        their defaults."""
        link = rtnl.link(name)
        if link is None:
            return cls(exists=False, agr=paths.is_agr_name(name))
        iface = cls(exists=True, mtu=link.mtu, up=link.up,
                    addrs={a.interface for a in rtnl.addresses(link.index)})
        if paths.is_agr_name(name) and workers.exists(name):
            iface.agr = True
            # PortStatus already fills each port's settings with the defaults it did not report.
            iface.flags, iface.ports, iface.port_flags = _from_worker_status(workers.worker_status(name))
        return iface


def attached_ports(name):
    """The ports of agr interface `name`, as its worker says (reviving it if needed)."""
    return _from_worker_status(workers.read_status(name, workers.request(name, "status")))[1]


def _from_worker_status(status):
    """(flags, port names, each port's settings) from a worker's status (an AggregateStatus,
    None when there is none): the one place the front end's model reads it."""
    if status is None:
        return {}, [], {}
    return (plain(status.flags), [p.name for p in status.ports],
            {p.name: plain(p.options) for p in status.ports})
