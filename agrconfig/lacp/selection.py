"""Selection Logic (802.1AX-2014 §6.4.14), for one aggregator.

Ports are grouped by Link Aggregation Group identifier. One group is chosen: one with a live
partner first, then as the policy (agrselect, bonding's ad_select) says: `bandwidth` (the
default, and the only policy before agrselect) the most bandwidth, ties keeping the current
one; `count` the most ports, then bandwidth, then the current one; `stable` the current one
while any of its ports is up (and it has a live partner, or no group has), else as
`bandwidth`. The bandwidth is the sum of the ports' speeds (1 for a port of unknown speed,
so that ports of unknown speed count as ports). Its ports are
SELECTED; ports of any other group wait in STANDBY; disabled or looped ports are
UNSELECTED. With a port limit (agrmaxports, 802.1AX-2014 §6.7.1), only the best ranked ports
of the chosen group are SELECTED and the rest of it waits in STANDBY.
"""
from __future__ import annotations

from ..enumerated import Enumerated

from . import pdu as P
from .events import SelectionChanged
from .mux import MuxState
from .port import SELECTED, STANDBY, UNSELECTED, Port


class SelectPolicy(Enumerated):
    """agrselect: which group carries traffic when the ports hear different partners."""
    STABLE = "stable"
    BANDWIDTH = "bandwidth"
    COUNT = "count"


def bandwidth(ports) -> int:
    return sum(p.known_speed or 1 for p in ports)


def rank_key(policy: SelectPolicy, ports, live: bool, current: bool) -> tuple:
    """The key a group is chosen by (the highest wins), under `policy`."""
    if policy == SelectPolicy.STABLE:
        return (live, current, bandwidth(ports))
    if policy == SelectPolicy.COUNT:
        return (live, len(ports), bandwidth(ports), current)
    return (live, bandwidth(ports), current)


def lag_id(port: Port) -> tuple:
    """The port's LAG identifier (6.3.6): actor key, partner System ID (priority, MAC) and
    key, then our own System ID (priority, MAC), the same for every port of ours; an
    individual port's also carries its Port Identifier (its number and priority)."""
    partner, system = port.partner, port.system
    if not port.aggregatable or not partner.state & P.AGGREGATION:
        return ("individual", port.port_id, port.port_priority, system.priority, system.mac)
    return (port.key, partner.system_priority, partner.system, partner.key, system.priority, system.mac)


def ready(core, port: Port) -> bool:
    """Ready: every port selected for this aggregation has waited out aggregate_wait."""
    return all(p.ready_n or p.mux_state != MuxState.WAITING for p in core.ports.values()
               if p.selected == SELECTED and p.selected_lag == port.selected_lag)


def select(core) -> bool:
    """Choose one aggregation and set every port's Selected; True when any changed."""
    groups = {}
    for p in core.ports.values():
        if p.enabled and not p.looped(core.now):
            groups.setdefault(lag_id(p), []).append(p)

    def rank(item):
        lag, ports = item
        return rank_key(core.select_policy, ports, any(not p.defaulted for p in ports), lag == core.selected_lag)

    best = max(groups.items(), key=rank)[0] if groups else None
    limited = over_limit(core, groups.get(best, []))
    if best != core.selected_lag:
        core.selected_lag = best
        ids = tuple(p.port_id for p in groups.get(best, []))
        if best is None or best[0] == "individual":
            core.notify(SelectionChanged(None, None, None, ids))
        else:
            core.notify(SelectionChanged(best[0], best[2], best[3], ids))
    changed = False
    for p in core.ports.values():
        lag = lag_id(p) if p.enabled and not p.looped(core.now) else None
        want = SELECTED if lag is not None and lag == best else (STANDBY if lag is not None else UNSELECTED)
        if p in limited:
            want = STANDBY
        p.limited = p in limited
        # A port whose partner changed was unselected by the receive machine; it must
        # detach before it can be selected again (the standard's Selected = UNSELECTED).
        if p.selected == UNSELECTED and p.mux_state != MuxState.DETACHED and want != UNSELECTED:
            continue
        if p.selected != want or p.selected_lag != lag:
            p.selected, p.selected_lag = want, lag
            changed = True
    return changed


def port_rank(core, port: Port) -> tuple:
    """Lower ranks first. The System with the better (lower) System ID ranks by its port
    priorities and numbers (6.7.1), so two ends that both limit their ports pick the same
    links; our own priority and number break the ties."""
    partner, system = port.partner, port.system
    ours = (port.port_priority, port.port_id)
    if (partner.system_priority, partner.system) < (system.priority, system.mac):
        return (partner.port_priority, partner.port, *ours)
    return ours


def over_limit(core, ports) -> set:
    """The ports of the chosen group beyond agrmaxports (0: no limit)."""
    limit = core.max_ports
    if not limit or len(ports) <= limit:
        return set()
    # A port still waiting to restore (agrwtr) ranks after those ready: it must not push a
    # distributing port out before its wait is over.
    return set(sorted(ports, key=lambda p: (p.wtr_hold, port_rank(core, p)))[limit:])
