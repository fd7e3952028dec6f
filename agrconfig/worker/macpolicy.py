"""agrmacpolicy and lladdr: which MAC address agrN and each of its ports carry (sans-IO: MACs
in, MACs out; the worker changes the links).

The policies are Linux bonding's fail_over_mac, which bonding honours in active-backup only;
so are ours, under agrproto failover only (lacp, loadbalance and slb: every port takes agrN's
MAC, whatever the setting says):

- same (bonding's none, NetBSD agr's only way): every port takes agrN's MAC;
- active: the ports keep their own MACs and agrN takes the active port's own;
- follow: the active port takes agrN's MAC, the others keep their own.

`lladdr MAC` fixes agrN's MAC (and so excludes active, where the active port chooses it).
"""
from ..enumerated import Enumerated
from ..record import Record


class MacPolicy(Enumerated):
    SAME = "same"
    ACTIVE = "active"
    FOLLOW = "follow"


def effective(policy, proto):
    """The policy in force: the setting under failover, SAME under any other agrproto."""
    return MacPolicy(policy) if proto == "failover" else MacPolicy.SAME


class MacPlan(Record):
    """agrN's MAC and each port's, ((index, mac), ...) in the ports' order."""
    __slots__ = ("agr", "ports")

    def port(self, index):
        return dict(self.ports).get(index)


def plan(policy, current, lladdr, active, own):
    """The MACs `policy` (a MacPolicy) wants. `current` is agrN's MAC now, `lladdr` the fixed
    one or None, `active` failover's active port (or None), `own` ((index, the port's own MAC),
    ...) in order of addition. MACs are lower-case 'aa:bb:..' strings."""
    own = tuple(own)
    owns = dict(own)
    if lladdr is not None:
        agr = lladdr
    elif policy is MacPolicy.ACTIVE and active in owns:
        agr = owns[active]
    else:
        agr = current   # agrN keeps what it has (the first port's, when it came)
    if policy is MacPolicy.SAME:
        ports = tuple((index, agr) for index, _mac in own)
    elif policy is MacPolicy.FOLLOW:
        ports = tuple((index, agr if index == active else mac) for index, mac in own)
    else:
        ports = own
    return MacPlan(agr, ports)


def unfixed(current, own):
    """agrN's MAC once `-lladdr` lets go of a fixed one: the first port's own, or (with no
    port) the one it has, until a first port comes."""
    own = tuple(own)
    return own[0][1] if own else current


def fixed(policy, lladdr, active):
    """Does agrN's MAC have to be this one (lladdr, or the active port's under active), so
    that another tool's change of it is set back rather than followed?"""
    return lladdr is not None or (policy is MacPolicy.ACTIVE and active is not None)
