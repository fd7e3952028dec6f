"""Why a port is not distributing, in one line, from the state machines' view of it.

`reason(port, agg)` tries RULES in order; the first that has something to say wins. A rule
takes the port's PortStatus (flags, carrier, lacp: the core's LacpPortStatus, history,
failover, linkcheck) and the aggregate's LacpStatus (None without LACP), and returns a string
or None. New causes (standby by agrmaxports, wait-to-restore) are one more rule in RULES.
"""
from ..lacp import pdu as P
from ..status import MuxState, Role, RxState, Selected


def no_carrier(port, agg):
    return None if port.carrier else "no carrier"


def linkcheck_down(port, agg):
    """agrlinkcheck (loadbalance, failover): carrier, but no frame from a target lately."""
    check = port.linkcheck
    if check is None or check.up:
        return None
    ago = check.heard_ago
    return ("link check: no target heard yet" if ago is None
            else f"link check: no target heard for {ago:.1f} s")


def failover_standby(port, agg):
    if port.failover is None or port.failover.role != Role.STANDBY:
        return None
    return waiting_to_restore(port, agg) or "standby (agrproto failover): another port is active"


def looped(port, agg):
    return "loop: our own LACPDU came back" if port.lacp is not None and port.lacp.looped else None


def _silence(port):
    age = port.history.lacpdu_age
    return f"partner silent for {age:.1f} s" if age is not None else "partner silent"


def _never_heard(port):
    return not port.lacp.counter("lacpdu_rx") and port.history.lacpdu_age is None


def expired(port, agg):
    # A new port starts in EXPIRED (802.1AX 6.4.12): it has not heard a partner fall silent.
    if port.lacp is None or port.lacp.rx_state != RxState.EXPIRED:
        return None
    return "no LACPDU received yet (expired)" if _never_heard(port) else f"{_silence(port)} (expired)"


def defaulted(port, agg):
    if port.lacp is None or port.lacp.rx_state != RxState.DEFAULTED:
        return None
    if _never_heard(port):
        return "no LACPDU ever received (defaulted)"
    return f"{_silence(port)} (defaulted)"


def fallback_idle(port, agg):
    """lacpfallback: every port is defaulted, and another one carries the traffic."""
    if port.lacp is not None and agg is not None and agg.fallback_port is not None and not port.lacp.fallback:
        return "idle: lacpfallback carries the traffic on another port"
    return None


def standby_maxports(port, agg):
    return "standby (agrmaxports)" if port.lacp is not None and port.lacp.limited else None


def waiting_to_restore(port, agg):
    """agrwtr: back (carrier, partner heard), and waiting before it distributes."""
    left = port.wtr_left
    return f"waiting to restore, {left:.1f} s left" if left else None


def individual(port, agg):
    """An individual link is an aggregation of its own: it says so only when another won."""
    lacp = port.lacp
    if lacp is None or lacp.selected == Selected.SELECTED:
        return None
    if not lacp.aggregatable:
        return "individual: half duplex"
    if not lacp.partner_state & P.AGGREGATION:
        return "partner individual"
    return None


def other_aggregation(port, agg):
    """Attached, but another aggregation (other partner, key or speed) was selected."""
    lacp = port.lacp
    if lacp is None or lacp.selected == Selected.SELECTED or agg is None or agg.aggregator.partner_key is None:
        return None
    chosen = agg.aggregator
    if lacp.partner_system != chosen.partner_system:
        return f"partner system {lacp.partner_system} differs from the aggregation's {chosen.partner_system}"
    if lacp.partner_key != chosen.partner_key:
        return f"partner key {lacp.partner_key:#x} differs from the aggregation's {chosen.partner_key:#x}"
    if lacp.actor_key != chosen.actor_key:
        return f"our key {lacp.actor_key:#x} (link speed) differs from the aggregation's {chosen.actor_key:#x}"
    return None


def mux_waiting(port, agg):
    if port.lacp is None:
        return None
    if port.lacp.mux_state == MuxState.WAITING:
        return "waiting for the other ports (aggregate wait)"
    if port.lacp.mux_state == MuxState.DETACHED:
        return "not selected"
    return None


def partner_not_ready(port, agg):
    if port.lacp is None:
        return None
    state = port.lacp.partner_state
    if not state & P.SYNC:
        return "partner not in sync"
    if not state & P.COLLECTING:
        return "partner not collecting"
    return None


RULES = [no_carrier, linkcheck_down, failover_standby, looped, fallback_idle, expired, defaulted, standby_maxports, waiting_to_restore, individual,
         other_aggregation, mux_waiting, partner_not_ready]


def explain(port, agg=None, rules=None):
    """(kind, words): (None, None) for a distributing port, else the first rule that speaks:
    its name (stable while its words count seconds: what monitor compares) and its words."""
    if port.distributing:
        return None, None
    for rule in RULES if rules is None else rules:
        said = rule(port, agg)
        if said:
            return rule.__name__, said
    return "other", f"mux {port.lacp.mux_state}" if port.lacp is not None and port.lacp.mux_state else "not distributing"


def reason(port, agg=None, rules=None):
    """None for a distributing port, else one line saying why it is not."""
    return explain(port, agg, rules)[1]
