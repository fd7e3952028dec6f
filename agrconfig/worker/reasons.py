"""Why a port is not distributing, in one line, from the state machines' view of it.

`reason(port, agg)` tries RULES in order; the first that has something to say wins. A rule
takes the port's status entry (flags, carrier, "lacp": the core's port_status, "history":
history.py's view) and the aggregation's status (None for link1) and returns a string or None.
New causes (standby by agrmaxports, wait-to-restore) are one more rule in RULES.
"""
from ..lacp import pdu as P

DISTRIBUTING = 0x2


def no_carrier(port, agg):
    return None if port.get("carrier") else "no carrier"


def linkcheck_down(port, agg):
    """agrlinkcheck (loadbalance, failover): carrier, but no frame from a target lately."""
    check = port.get("linkcheck")
    if not check or check.get("up"):
        return None
    ago = check.get("heard_ago")
    return ("link check: no target heard yet" if ago is None
            else f"link check: no target heard for {ago:.1f} s")


def failover_standby(port, agg):
    fo = port.get("failover") or {}
    if fo.get("role") != "standby":
        return None
    return waiting_to_restore(fo, agg) or "standby (agrproto failover): another port is active"


def looped(port, agg):
    lacp = port.get("lacp") or {}
    return "loop: our own LACPDU came back" if lacp.get("looped") else None


def _silence(port):
    age = (port.get("history") or {}).get("lacpdu_age")
    return f"partner silent for {age:.1f} s" if age is not None else "partner silent"


def _never_heard(port, lacp):
    return not (lacp.get("counters") or {}).get("lacpdu_rx") and (port.get("history") or {}).get("lacpdu_age") is None


def expired(port, agg):
    # A new port starts in EXPIRED (802.1AX 6.4.12): it has not heard a partner fall silent.
    lacp = port.get("lacp") or {}
    if lacp.get("rx_state") != "EXPIRED":
        return None
    return "no LACPDU received yet (expired)" if _never_heard(port, lacp) else f"{_silence(port)} (expired)"


def defaulted(port, agg):
    lacp = port.get("lacp") or {}
    if lacp.get("rx_state") != "DEFAULTED":
        return None
    if _never_heard(port, lacp):
        return "no LACPDU ever received (defaulted)"
    return f"{_silence(port)} (defaulted)"


def fallback_idle(port, agg):
    """lacpfallback: every port is defaulted, and another one carries the traffic."""
    lacp = port.get("lacp") or {}
    if lacp and (agg or {}).get("fallback_port") is not None and not lacp.get("fallback"):
        return "idle: lacpfallback carries the traffic on another port"
    return None


def standby_maxports(port, agg):
    lacp = port.get("lacp") or {}
    return "standby (agrmaxports)" if lacp.get("limited") else None


def waiting_to_restore(port, agg):
    """agrwtr: back (carrier, partner heard), and waiting before it distributes."""
    left = (port.get("lacp") or port).get("wtr_left")
    return f"waiting to restore, {left:.1f} s left" if left else None


def individual(port, agg):
    """An individual link is an aggregation of its own: it says so only when another won."""
    lacp = port.get("lacp") or {}
    if not lacp or lacp.get("selected") == "SELECTED":
        return None
    if not lacp.get("aggregatable", True):
        return "individual: half duplex"
    if not lacp.get("partner_state", 0) & P.AGGREGATION:
        return "partner individual"
    return None


def other_aggregation(port, agg):
    """Attached, but another aggregation (other partner, key or speed) was selected."""
    lacp = port.get("lacp") or {}
    chosen = (agg or {}).get("aggregator") or {}
    if not lacp or lacp.get("selected") == "SELECTED" or chosen.get("partner_key") is None:
        return None
    if lacp.get("partner_system") != chosen.get("partner_system"):
        return f"partner system {lacp.get('partner_system')} differs from the aggregation's {chosen['partner_system']}"
    if lacp.get("partner_key") != chosen.get("partner_key"):
        return f"partner key {lacp['partner_key']:#x} differs from the aggregation's {chosen['partner_key']:#x}"
    if lacp.get("actor_key") != chosen.get("actor_key"):
        return f"our key {lacp['actor_key']:#x} (link speed) differs from the aggregation's {chosen['actor_key']:#x}"
    return None


def mux_waiting(port, agg):
    lacp = port.get("lacp") or {}
    if lacp.get("mux_state") == "WAITING":
        return "waiting for the other ports (aggregate wait)"
    if lacp.get("mux_state") == "DETACHED":
        return "not selected"
    return None


def partner_not_ready(port, agg):
    lacp = port.get("lacp") or {}
    if not lacp:
        return None
    state = lacp.get("partner_state", 0)
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
    if port.get("flags", 0) & DISTRIBUTING:
        return None, None
    for rule in RULES if rules is None else rules:
        said = rule(port, agg)
        if said:
            return rule.__name__, said
    lacp = port.get("lacp") or {}
    return "other", f"mux {lacp['mux_state']}" if lacp.get("mux_state") else "not distributing"


def reason(port, agg=None, rules=None):
    """None for a distributing port, else one line saying why it is not."""
    return explain(port, agg, rules)[1]
