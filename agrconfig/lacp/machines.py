"""The per-port state machines of IEEE 802.1AX-2014 §6.4, as functions over a Port.

Each machine is a function ``step_<machine>(port, core, now)`` that makes at most
one transition per call and returns True when it did; the core calls them until
nothing moves. Allowed transitions are data (``TRANSITIONS``): every transition
taken is checked against it, and tests walk the table.
"""
from __future__ import annotations

from . import pdu as P
from .port import (AGGREGATE_WAIT_TIME, CHURN_DETECTION_TIME, FAST_PERIODIC_TIME, LONG_TIMEOUT_TIME,
                   SELECTED, SHORT_TIMEOUT_TIME, SLOW_PERIODIC_TIME, STANDBY, UNSELECTED, Port)

# machine -> {(old, new): why}
TRANSITIONS = {
    "rx": {
        ("INITIALIZE", "PORT_DISABLED"): "begin",
        ("PORT_DISABLED", "EXPIRED"): "port enabled, LACP enabled",
        ("PORT_DISABLED", "LACP_DISABLED"): "port enabled, LACP disabled",
        ("LACP_DISABLED", "PORT_DISABLED"): "port disabled",
        ("EXPIRED", "PORT_DISABLED"): "port disabled",
        ("DEFAULTED", "PORT_DISABLED"): "port disabled",
        ("CURRENT", "PORT_DISABLED"): "port disabled",
        ("EXPIRED", "CURRENT"): "LACPDU received",
        ("DEFAULTED", "CURRENT"): "LACPDU received",
        ("CURRENT", "CURRENT"): "LACPDU received",
        ("EXPIRED", "DEFAULTED"): "current_while expired",
        ("CURRENT", "EXPIRED"): "current_while expired",
        ("PORT_DISABLED", "CURRENT"): "resumed after a worker restart",
    },
    "periodic": {
        ("NO_PERIODIC", "FAST_PERIODIC"): "port enabled",
        ("FAST_PERIODIC", "PERIODIC_TX"): "periodic timer expired",
        ("SLOW_PERIODIC", "PERIODIC_TX"): "periodic timer expired or partner asks for short timeout",
        ("PERIODIC_TX", "FAST_PERIODIC"): "partner uses short timeout",
        ("PERIODIC_TX", "SLOW_PERIODIC"): "partner uses long timeout",
        ("FAST_PERIODIC", "SLOW_PERIODIC"): "partner uses long timeout",
        ("FAST_PERIODIC", "NO_PERIODIC"): "port disabled",
        ("SLOW_PERIODIC", "NO_PERIODIC"): "port disabled",
    },
    "mux": {
        ("DETACHED", "WAITING"): "selected or standby",
        ("WAITING", "DETACHED"): "unselected",
        ("WAITING", "ATTACHED"): "selected and ready (aggregate wait over)",
        ("ATTACHED", "DETACHED"): "unselected or standby",
        ("ATTACHED", "COLLECTING_DISTRIBUTING"): "selected and partner in sync",
        ("COLLECTING_DISTRIBUTING", "ATTACHED"): "unselected, standby or partner out of sync",
        ("DETACHED", "ATTACHED"): "resumed after a worker restart",
        ("DETACHED", "COLLECTING_DISTRIBUTING"): "resumed after a worker restart",
    },
    "actor_churn": {
        ("NO_ACTOR_CHURN", "ACTOR_CHURN_MONITOR"): "actor out of sync",
        ("ACTOR_CHURN_MONITOR", "NO_ACTOR_CHURN"): "actor in sync",
        ("ACTOR_CHURN_MONITOR", "ACTOR_CHURN"): "actor_churn timer expired",
        ("ACTOR_CHURN", "NO_ACTOR_CHURN"): "actor in sync",
    },
    "partner_churn": {
        ("NO_PARTNER_CHURN", "PARTNER_CHURN_MONITOR"): "partner out of sync",
        ("PARTNER_CHURN_MONITOR", "NO_PARTNER_CHURN"): "partner in sync",
        ("PARTNER_CHURN_MONITOR", "PARTNER_CHURN"): "partner_churn timer expired",
        ("PARTNER_CHURN", "NO_PARTNER_CHURN"): "partner in sync",
    },
}
STATE_ATTR = {"rx": "rx_state", "periodic": "periodic_state", "mux": "mux_state",
              "actor_churn": "actor_churn_state", "partner_churn": "partner_churn_state"}


def enter(port: Port, machine: str, new: str, transitions: list) -> bool:
    """Move `machine` of `port` to `new`, checked against TRANSITIONS; records the Transition."""
    attr = STATE_ATTR[machine]
    old = getattr(port, attr)
    reason = TRANSITIONS[machine].get((old, new))
    if reason is None:
        raise AssertionError(f"illegal {machine} transition {old} -> {new}")
    setattr(port, attr, new)
    transitions.append((port.port_id, machine, old, new, reason))
    return True


def begin(port: Port, transitions: list) -> None:
    port.rx_state, port.periodic_state, port.mux_state = "INITIALIZE", "NO_PERIODIC", "DETACHED"
    port.actor_churn_state, port.partner_churn_state = "NO_ACTOR_CHURN", "NO_PARTNER_CHURN"
    enter(port, "rx", "PORT_DISABLED", transitions)
    _port_disabled(port)


def resume(port: Port, saved: dict, now: float, transitions: list) -> None:
    """Put an enabled port back where a dead worker left it: partner known, mux attached
    or distributing, so the partner sees no change and nothing is renegotiated."""
    prio, system, key, pprio, pnum, state = saved["partner"]
    port.partner = P.LacpInfo(prio, bytes.fromhex(system), key, pprio, pnum, state)
    port.defaulted = port.expired = False
    enter(port, "rx", "CURRENT", transitions)
    port.timers["current_while"].start(now, _actor_timeout(port))
    enter(port, "mux", saved["mux"], transitions)
    port.sync = True
    port.collecting = port.distributing = saved["mux"] == "COLLECTING_DISTRIBUTING"
    port.selected = SELECTED
    port.ntt = True


# -- Receive machine (§6.4.12) -------------------------------------------------------------

def _port_disabled(port: Port) -> None:
    port.set_partner_state(clear_bits=P.SYNC)
    port.timers["current_while"].stop()
    port.rx_pdu = None


def _actor_timeout(port: Port) -> float:
    # current_while follows the actor's own LACP_Timeout (§6.4.12: Short/Long_Timeout_Time).
    return SHORT_TIMEOUT_TIME if port.system.fast_timeout else LONG_TIMEOUT_TIME


def _partner_matches_us(port: Port, pdu: P.Lacpdu) -> bool:
    """The PDU's view of us equals what we are (the standard's 'matching' check)."""
    me, seen = port.actor_info(), pdu.partner
    return (seen.port == me.port and seen.port_priority == me.port_priority and seen.system == me.system
            and seen.system_priority == me.system_priority and seen.key == me.key
            and bool(seen.state & P.AGGREGATION) == bool(me.state & P.AGGREGATION))


# The actor state bits whose stale copy in a partner's LACPDU calls for an answer (6.4.9).
NTT_STATE_BITS = P.ACTIVITY | P.TIMEOUT | P.SYNC | P.AGGREGATION


def update_ntt(port: Port, pdu: P.Lacpdu) -> None:
    """update_NTT (802.1AX-2014 6.4.9): answer at once when the PDU's partner fields differ
    from our operational values, the partner's copy of our Activity, Timeout, Synchronization
    and Aggregation bits included (as Linux bonding's __update_ntt); else a partner holding a
    stale Sync bit waits for our next periodic LACPDU, up to 30 s."""
    me, seen = port.actor_info(), pdu.partner
    if ((seen.port, seen.port_priority, seen.system, seen.system_priority, seen.key)
            != (me.port, me.port_priority, me.system, me.system_priority, me.key)
            or (seen.state ^ me.state) & NTT_STATE_BITS):
        port.ntt = True


def record_pdu(port: Port, pdu: P.Lacpdu) -> None:
    """recordPDU: take the partner from the PDU's actor; decide partner Synchronization."""
    partner = pdu.actor
    individual = not partner.state & P.AGGREGATION
    in_sync = bool(partner.state & P.SYNC) and (_partner_matches_us(port, pdu) or individual)
    state = partner.state | P.SYNC if in_sync else partner.state & ~P.SYNC
    port.partner = P.LacpInfo(partner.system_priority, partner.system, partner.key,
                              partner.port_priority, partner.port, state & 0xFF)
    port.defaulted = False


def update_selected(port: Port, pdu: P.Lacpdu) -> None:
    """update_Selected: a different partner means the port must be selected again."""
    old, new = port.partner, pdu.actor
    if (old.port, old.port_priority, old.system, old.system_priority, old.key) != \
            (new.port, new.port_priority, new.system, new.system_priority, new.key) or \
            bool(old.state & P.AGGREGATION) != bool(new.state & P.AGGREGATION):
        port.selected = UNSELECTED


def step_rx(port: Port, core, now: float, transitions: list) -> bool:
    state = port.rx_state
    cw = port.timers["current_while"]
    if state != "PORT_DISABLED" and not port.enabled:
        enter(port, "rx", "PORT_DISABLED", transitions)
        _port_disabled(port)
        return True
    if state == "PORT_DISABLED":
        if port.enabled:
            enter(port, "rx", "EXPIRED", transitions)
            _expired(port, now)
            return True
        return False
    if port.rx_pdu is not None:
        pdu, port.rx_pdu = port.rx_pdu, None
        enter(port, "rx", "CURRENT", transitions)
        update_selected(port, pdu)
        update_ntt(port, pdu)
        old = (port.partner.system, port.partner.key)
        record_pdu(port, pdu)
        if old != (port.partner.system, port.partner.key):
            core.partner_changed(port)
        cw.start(now, _actor_timeout(port))
        port.expired = False
        return True
    if cw.expired:
        cw.expired = False
        if state == "CURRENT":
            enter(port, "rx", "EXPIRED", transitions)
            _expired(port, now)
            return True
        if state == "EXPIRED":
            enter(port, "rx", "DEFAULTED", transitions)
            _defaulted(port, core)
            return True
    return False


def _expired(port: Port, now: float) -> None:
    # The partner may still be there: ask it for fast PDUs and wait a short timeout.
    port.set_partner_state(set_bits=P.TIMEOUT, clear_bits=P.SYNC)
    port.timers["current_while"].start(now, SHORT_TIMEOUT_TIME)
    port.expired = True


def _defaulted(port: Port, core) -> None:
    # recordDefault + update_Default_Selected.
    admin = port.system.partner_admin()
    if (port.partner.system, port.partner.key) != (admin.system, admin.key):
        port.selected = UNSELECTED
        port.partner = admin
        core.partner_changed(port)
    port.partner = admin
    port.defaulted = True
    port.expired = False


# -- Periodic Transmission machine (§6.4.13) ---------------------------------------------------

def step_periodic(port: Port, core, now: float, transitions: list) -> bool:
    state = port.periodic_state
    timer = port.timers["periodic"]
    if state != "NO_PERIODIC" and not port.enabled:
        enter(port, "periodic", "NO_PERIODIC", transitions)
        timer.stop()
        return True
    if state == "NO_PERIODIC":
        if port.enabled:
            enter(port, "periodic", "FAST_PERIODIC", transitions)
            timer.start(now, FAST_PERIODIC_TIME)
            return True
        return False
    short = port.partner_short_timeout
    if state == "FAST_PERIODIC":
        if timer.expired:
            enter(port, "periodic", "PERIODIC_TX", transitions)
            return True
        if not short:
            enter(port, "periodic", "SLOW_PERIODIC", transitions)
            timer.start(now, SLOW_PERIODIC_TIME)
            return True
        return False
    if state == "SLOW_PERIODIC":
        if timer.expired or short:
            enter(port, "periodic", "PERIODIC_TX", transitions)
            return True
        return False
    if state == "PERIODIC_TX":  # transient: NTT, then straight back to a periodic state
        port.ntt = True
        timer.expired = False
        if short:
            enter(port, "periodic", "FAST_PERIODIC", transitions)
            timer.start(now, FAST_PERIODIC_TIME)
        else:
            enter(port, "periodic", "SLOW_PERIODIC", transitions)
            timer.start(now, SLOW_PERIODIC_TIME)
        return True
    return False


# -- Mux machine, coupled control (§6.4.15) -------------------------------------------------------

def step_mux(port: Port, core, now: float, transitions: list) -> bool:
    state = port.mux_state
    ww = port.timers["wait_while"]
    if state == "DETACHED":
        if port.selected in (SELECTED, STANDBY):
            enter(port, "mux", "WAITING", transitions)
            ww.start(now, AGGREGATE_WAIT_TIME)
            return True
        return False
    if state == "WAITING":
        if port.selected == UNSELECTED:
            enter(port, "mux", "DETACHED", transitions)
            ww.stop()
            _detach(port)
            return True
        if port.selected == SELECTED and core.ready(port):
            enter(port, "mux", "ATTACHED", transitions)
            port.sync = True          # Attach_Mux_To_Aggregator
            port.collecting = port.distributing = False
            port.ntt = True
            return True
        return False
    if state == "ATTACHED":
        if port.selected != SELECTED:
            enter(port, "mux", "DETACHED", transitions)
            _detach(port)
            return True
        if port.partner_sync:
            enter(port, "mux", "COLLECTING_DISTRIBUTING", transitions)
            port.collecting = port.distributing = True
            port.ntt = True
            return True
        return False
    if state == "COLLECTING_DISTRIBUTING":
        if port.selected != SELECTED or not port.partner_sync:
            enter(port, "mux", "ATTACHED", transitions)
            port.collecting = port.distributing = False
            port.ntt = True
            return True
    return False


def _detach(port: Port) -> None:
    port.sync = port.collecting = port.distributing = False
    port.ntt = True


# -- Churn Detection machines (§6.4.17) -------------------------------------------------------------

def step_churn(port: Port, core, now: float, transitions: list) -> bool:
    moved = False
    for who, in_sync in (("actor", port.sync), ("partner", port.partner_sync)):
        machine, big = f"{who}_churn", who.upper()
        state = getattr(port, STATE_ATTR[machine])
        timer = port.timers[f"{who}_churn"]
        if state == f"NO_{big}_CHURN" and not in_sync and port.enabled:
            enter(port, machine, f"{big}_CHURN_MONITOR", transitions)
            timer.start(now, CHURN_DETECTION_TIME)
            moved = True
        elif state in (f"{big}_CHURN_MONITOR", f"{big}_CHURN") and (in_sync or not port.enabled):
            enter(port, machine, f"NO_{big}_CHURN", transitions)
            timer.stop()
            setattr(port, f"{who}_churn", False)
            moved = True
        elif state == f"{big}_CHURN_MONITOR" and timer.expired:
            timer.expired = False
            enter(port, machine, f"{big}_CHURN", transitions)
            setattr(port, f"{who}_churn", True)
            moved = True
    return moved


MACHINES = (step_rx, step_periodic, step_mux, step_churn)
