"""Receive machine (802.1AX-2014 §6.4.12).

Takes the partner's information from received LACPDUs, times it out (EXPIRED asks the
partner for fast LACPDUs), and falls back to the administrative default (DEFAULTED).
"""
from __future__ import annotations

from .states import RxState  # noqa: F401 (defined there: cheap for status)

from . import pdu as P
from .machine import Machine
from .port import LONG_TIMEOUT_TIME, SHORT_TIMEOUT_TIME, UNSELECTED, Port


S = RxState

# The actor state bits whose stale copy in a partner's LACPDU calls for an answer (6.4.9).
NTT_STATE_BITS = P.ACTIVITY | P.TIMEOUT | P.SYNC | P.AGGREGATION


def actor_timeout(port: Port) -> float:
    # current_while follows the actor's own LACP_Timeout (Short/Long_Timeout_Time).
    return SHORT_TIMEOUT_TIME if port.system.fast_timeout else LONG_TIMEOUT_TIME


def _ids(info: P.LacpInfo) -> tuple:
    return (info.port, info.port_priority, info.system, info.system_priority, info.key)


def partner_matches_us(port: Port, pdu: P.Lacpdu) -> bool:
    """The PDU's view of us equals what we are (recordPDU's 'matching' check)."""
    me, seen = port.actor_info(), pdu.partner
    return _ids(seen) == _ids(me) and bool(seen.state & P.AGGREGATION) == bool(me.state & P.AGGREGATION)


def update_ntt(port: Port, pdu: P.Lacpdu) -> None:
    """update_NTT (6.4.9): answer at once when the PDU's partner fields differ from our
    operational values, its copy of our Activity, Timeout, Synchronization and Aggregation
    bits included (as Linux bonding's __update_ntt); else a partner holding a stale Sync bit
    waits for our next periodic LACPDU, up to 30 s."""
    me, seen = port.actor_info(), pdu.partner
    if _ids(seen) != _ids(me) or (seen.state ^ me.state) & NTT_STATE_BITS:
        port.ntt = True


def record_pdu(port: Port, pdu: P.Lacpdu) -> None:
    """recordPDU: take the partner from the PDU's actor; decide partner Synchronization.

    Partner Synchronization holds only if one end is active: "((Partner_Oper_Port_State.
    LACP_Activity == ACTIVE) || ((Actor_Oper_Port_State.LACP_Activity == ACTIVE) &&
    (PDU's Partner_State.LACP_Activity == ACTIVE)))", as OpenBSD's aggr_recordpdu."""
    partner = pdu.actor
    individual = not partner.state & P.AGGREGATION
    active = bool(partner.state & P.ACTIVITY) or (port.system.active and bool(pdu.partner.state & P.ACTIVITY))
    in_sync = (bool(partner.state & P.SYNC) and (partner_matches_us(port, pdu) or individual)
               and active)
    state = partner.state | P.SYNC if in_sync else partner.state & ~P.SYNC
    port.partner = P.LacpInfo(partner.system_priority, partner.system, partner.key,
                              partner.port_priority, partner.port, state & 0xFF)
    port.defaulted = False


def update_selected(port: Port, pdu: P.Lacpdu) -> None:
    """update_Selected: a different partner means the port must be selected again."""
    old, new = port.partner, pdu.actor
    if _ids(old) != _ids(new) or bool(old.state & P.AGGREGATION) != bool(new.state & P.AGGREGATION):
        port.selected = UNSELECTED


def record_default(port: Port, core) -> None:
    """recordDefault + update_Default_Selected."""
    admin = port.system.partner_admin()
    if (port.partner.system, port.partner.key) != (admin.system, admin.key):
        port.selected = UNSELECTED
        port.partner = admin
        core.partner_changed(port)
    port.partner = admin
    port.defaulted = True


class Rx(Machine):
    NAME = "rx"
    ATTR = "rx_state"
    State = RxState
    TRANSITIONS = {
        (S.INITIALIZE, S.PORT_DISABLED): "begin",
        (S.PORT_DISABLED, S.EXPIRED): "port enabled, LACP enabled",
        (S.PORT_DISABLED, S.LACP_DISABLED): "port enabled, LACP disabled",
        (S.LACP_DISABLED, S.PORT_DISABLED): "port disabled",
        (S.EXPIRED, S.PORT_DISABLED): "port disabled",
        (S.DEFAULTED, S.PORT_DISABLED): "port disabled",
        (S.CURRENT, S.PORT_DISABLED): "port disabled",
        (S.EXPIRED, S.CURRENT): "LACPDU received",
        (S.DEFAULTED, S.CURRENT): "LACPDU received",
        (S.CURRENT, S.CURRENT): "LACPDU received",
        (S.EXPIRED, S.DEFAULTED): "current_while expired",
        (S.CURRENT, S.EXPIRED): "current_while expired",
        (S.PORT_DISABLED, S.CURRENT): "resumed after a worker restart",
        (S.PORT_DISABLED, S.DEFAULTED): "resumed defaulted after a worker restart",
    }

    @classmethod
    def step(cls, port, core, now, log):
        state = port.rx_state
        cw = port.timers["current_while"]
        if state != S.PORT_DISABLED and not port.enabled:
            cls.port_disabled(port, log)
        elif state == S.PORT_DISABLED:
            if port.enabled:
                cls.expired(port, now, log)
        elif port.rx_pdu is not None:
            cls.current(port, core, now, log)
        elif cw.expired and state == S.CURRENT:
            cls.expired(port, now, log)
        elif cw.expired and state == S.EXPIRED:
            cls.defaulted(port, core, log)

    @classmethod
    def port_disabled(cls, port, log):
        # Partner_Oper_Port_State.Synchronization = FALSE
        cls.enter(port, S.PORT_DISABLED, log)
        port.set_partner_state(clear_bits=P.SYNC)
        port.timers["current_while"].stop()
        port.rx_pdu = None

    @classmethod
    def expired(cls, port, now, log):
        # Partner_Oper_Port_State.Synchronization = FALSE; .LACP_Timeout = Short Timeout;
        # start current_while_timer(Short Timeout); Actor_Oper_Port_State.Expired = TRUE.
        # The partner may still be there: ask it for fast LACPDUs.
        cls.enter(port, S.EXPIRED, log)
        port.set_partner_state(set_bits=P.TIMEOUT, clear_bits=P.SYNC)
        port.timers["current_while"].start(now, SHORT_TIMEOUT_TIME)
        port.expired = True

    @classmethod
    def defaulted(cls, port, core, log):
        # update_Default_Selected; recordDefault; Actor_Oper_Port_State.Expired = FALSE
        cls.enter(port, S.DEFAULTED, log)
        record_default(port, core)
        port.expired = False

    @classmethod
    def current(cls, port, core, now, log):
        # update_Selected; update_NTT; recordPDU; start current_while_timer(Actor_Oper_Port_
        # State.LACP_Timeout); Actor_Oper_Port_State.Expired = FALSE
        pdu, port.rx_pdu = port.rx_pdu, None
        cls.enter(port, S.CURRENT, log)
        update_selected(port, pdu)
        update_ntt(port, pdu)
        old = (port.partner.system, port.partner.key)
        record_pdu(port, pdu)
        if old != (port.partner.system, port.partner.key):
            core.partner_changed(port)
        port.timers["current_while"].start(now, actor_timeout(port))
        port.expired = False
