"""What is there: interfaces, their addresses, and what their workers say, for status."""
import errno
from _operator import itemgetter   # operator.py is its C half plus ~0.3 ms of Python at every start

from .. import paths
from ..errors import AgrError
from ..net import rtnl
from ..status import AggregateStatus
from . import workers


class Facts(tuple):
    """One interface as found: its link, its addresses, the agr it is a port of (or None), its
    worker's AggregateStatus (or None). A tuple with names, as namedtuple makes, but without
    namedtuple's exec of generated source (1.5 ms of every status's start; typing's NamedTuple
    costs its import)."""
    __slots__ = ()

    def __new__(cls, link, addrs, member_of, ws):
        return tuple.__new__(cls, (link, addrs, member_of, ws))

    link = property(itemgetter(0))
    addrs = property(itemgetter(1))
    member_of = property(itemgetter(2))
    ws = property(itemgetter(3))


def names():
    return [l.name for l in rtnl.links()]


# Links that are no cable of their own (or none at all: ifb, dummy): never offered as ports.
VIRTUAL_KINDS = frozenset({"bridge", "bond", "team", "vlan", "macvlan", "macvtap", "ipvlan", "ipvtap", "vxlan",
                           "geneve", "gretap", "ip6gretap", "erspan", "ip6erspan", "openvswitch", "macsec",
                           "hsr", "vrf", "dsa", "ifb", "dummy"})


def could_be_port(link, members):
    """An Ethernet link that is neither an agr interface nor a port of one, nor a port of a
    bridge, bond or team, nor a virtual link (`members`: workers.members())."""
    return (link.type == rtnl.ARPHRD_ETHER and link.addrlen == 6 and not link.flags & rtnl.IFF_LOOPBACK
            and link.kind not in VIRTUAL_KINDS and not link.master and link.name not in members
            and not (paths.is_agr_name(link.name) and workers.exists(link.name)))


def free_ports():
    """The names of the links that could become ports (`-l --free`, pre-flight's ports)."""
    members = workers.members()
    return [l.name for l in rtnl.links() if could_be_port(l, members)]


def describe(name):
    """Everything we know of one interface (Facts). A user (not root) whose agrN no worker
    serves gets the kernel's view, and is told what root must do."""
    try:
        ws = workers.worker_status(name) if paths.is_agr_name(name) else None
    except workers.Unserved as exc:
        _kernel_view_only(exc)
        ws = None
    link = rtnl.link(name)
    if link is None:
        raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no such interface")
    return Facts(link, rtnl.addresses(link.index), workers.owner_of(name), ws)


def _kernel_view_only(exc):
    workers.log.warning("agrconfig: %s; shown: what the kernel knows", exc.detail)


def describe_all():
    """describe() for every interface, from one dump of links and one of addresses, with the
    workers asked at the same time (cost grows little with the number of agr interfaces)."""
    names = set(workers.names())
    asked = workers.ask_statuses(sorted(names))   # the workers answer while we read the kernel
    links = rtnl.links()
    addrs = rtnl.all_addresses()
    members = workers.members() if workers.privileged() else None
    statuses = workers.worker_statuses([l.name for l in links if l.name in names], asked=asked)
    if members is None:
        members = workers.members(statuses)
    found = []
    for l in links:
        ws = statuses.get(l.name)
        if isinstance(ws, workers.Unserved):
            _kernel_view_only(ws)
            ws = None
        elif isinstance(ws, AgrError):
            continue  # its worker cannot say (as describe() would have raised: skip it)
        found.append(Facts(l, addrs.get(l.index, []), members.get(l.name), ws))
    return found


def agr_statuses():
    """{name: AggregateStatus} of every agr interface of this namespace whose worker answers."""
    statuses = workers.worker_statuses(sorted(workers.names()))
    for ws in statuses.values():
        if isinstance(ws, workers.Unserved):
            workers.log.warning("agrconfig: %s", ws.detail)
    return {n: ws for n, ws in statuses.items() if isinstance(ws, AggregateStatus)}
