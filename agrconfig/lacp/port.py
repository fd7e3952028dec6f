"""Per-port LACP state: actor and partner information, machine states, timers.

This module holds data and small helpers only; the state machines that act on it
are the modules rx, periodic, mux, tx, actor_churn and partner_churn.
"""
from __future__ import annotations

import math
from collections import deque
from .states import Selected  # noqa: F401 (defined there: cheap for status)

from . import pdu as P

# Timer constants, seconds (802.1AX-2014 §6.4.4).
FAST_PERIODIC_TIME = 1.0
SLOW_PERIODIC_TIME = 30.0
SHORT_TIMEOUT_TIME = 3.0     # 3 x fast periodic
LONG_TIMEOUT_TIME = 90.0     # 3 x slow periodic
CHURN_DETECTION_TIME = 60.0
AGGREGATE_WAIT_TIME = 2.0
MAX_TX_PER_PERIOD = 3        # "no more than three LACPDUs in any Fast_Periodic_Time"

DEFAULT_SYSTEM_PRIORITY = 0x8000
DEFAULT_PORT_PRIORITY = 0x8000
COLLECTOR_MAX_DELAY = 0

SELECTED, UNSELECTED, STANDBY = Selected.SELECTED, Selected.UNSELECTED, Selected.STANDBY

# Operational key from link speed: like links aggregate, unlike links do not.
# Bit 15 marks a half-duplex (individual) port, as FreeBSD/NetBSD do.
UNKNOWN_SPEED_KEY = 0x0100
HALF_DUPLEX_KEY_BIT = 0x8000
_SPEED_CLASS = {10: 1, 100: 2, 1000: 3, 2500: 4, 5000: 5, 10000: 6, 20000: 7, 25000: 8,
                40000: 9, 50000: 10, 56000: 11, 100000: 12, 200000: 13, 400000: 14, 800000: 15}


def known_speed(speed_mbps: int | None) -> int | None:
    """The speed in Mbit/s, or None when unknown (None, 0, negative, SPEED_UNKNOWN)."""
    if speed_mbps is None or not isinstance(speed_mbps, int) or speed_mbps <= 0 or speed_mbps >= 0xFFFFFFFF:
        return None
    return speed_mbps


def port_key(speed_mbps: int | None, duplex_full: bool | None) -> int:
    """Actor operational key for a link of this speed and duplex.

    Unknown speed (veth) gets one fixed key so such ports aggregate with each
    other.  Unknown duplex counts as full.  Half duplex sets bit 15; such ports
    are also not aggregatable (see :attr:`Port.aggregatable`).
    """
    speed = known_speed(speed_mbps)
    if speed is None:
        key = UNKNOWN_SPEED_KEY
    elif speed in _SPEED_CLASS:
        key = UNKNOWN_SPEED_KEY | _SPEED_CLASS[speed]
    else:  # an unusual speed: keep it apart from the table and from unknown
        key = 0x4000 | (speed % 0x3FFF) | 0x0200
    if duplex_full is False:
        key |= HALF_DUPLEX_KEY_BIT
    return key & 0xFFFF


class _Fields:
    """Mutable records compared and shown by their FIELDS (as the dataclasses they were;
    dataclasses pulls inspect and ast into every worker)."""
    __slots__ = ()
    FIELDS = ()

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    __hash__ = None   # mutable

    def __repr__(self):
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.FIELDS)
        return f"{type(self).__name__}({inner})"


class ActorSystem(_Fields):
    """Settings shared by every port of one aggregator."""
    FIELDS = __slots__ = ("mac", "priority", "fast_timeout", "strict", "active", "wtr_time")

    def __init__(self, mac: bytes, priority: int = DEFAULT_SYSTEM_PRIORITY, fast_timeout: bool = False,
                 strict: bool = True, active: bool = True, wtr_time: float = 0.0):
        self.mac = mac
        self.priority = priority
        self.fast_timeout = fast_timeout
        self.strict = strict
        self.active = active          # LACP_Activity: active (speak first) or passive (lacpmode)
        self.wtr_time = wtr_time      # agrwtr: wait-to-restore, seconds (0: none)

    def partner_admin(self) -> P.LacpInfo:
        """Default partner (Partner_Admin_*) used by recordDefault.

        Strict: nobody is there, not in sync, so a defaulted port never
        distributes.  Optimistic (NetBSD's -lacpstrict): a default partner in
        sync and collecting, so a port whose partner never speaks still
        distributes.  Both ask for short timeout so a defaulted port keeps
        polling at the fast rate and a partner that appears later hears us
        within a second (Open vSwitch waits 30 s before it speaks first).
        """
        state = P.TIMEOUT | P.AGGREGATION
        if not self.strict:
            state |= P.SYNC | P.COLLECTING | P.DISTRIBUTING
        return P.LacpInfo(0, bytes(6), 0, 0, 0, state)


class Timer(_Fields):
    """One of the standard's timers: running until ``deadline``, then expired."""
    FIELDS = __slots__ = ("deadline", "expired")

    def __init__(self, deadline: float | None = None, expired: bool = False):
        self.deadline, self.expired = deadline, expired

    def start(self, now: float, duration: float) -> None:
        deadline = now + duration
        if not deadline > now:  # huge clocks: never hand out a deadline that is already due
            deadline = math.nextafter(now, math.inf)
        self.deadline, self.expired = deadline, False

    def stop(self) -> None:
        self.deadline, self.expired = None, False

    @property
    def running(self) -> bool:
        return self.deadline is not None

    @property
    def idle(self) -> bool:
        return self.deadline is None and not self.expired

    def advance(self, now: float) -> bool:
        """Expire when due; True when this call expired it."""
        if self.deadline is not None and self.deadline <= now:
            self.deadline, self.expired = None, True
            return True
        return False


TIMER_NAMES = ("current_while", "periodic", "wait_while", "actor_churn", "partner_churn")   # wtr: wtr.py
COUNTER_NAMES = ("lacpdu_rx", "lacpdu_tx", "lacpdu_err", "marker_rx", "marker_tx", "marker_resp_rx",
                 "loop")


class Port:
    """One aggregation port: the standard's per-port variables (§6.4.7)."""

    def __init__(self, port_id: int, mac: bytes, system: ActorSystem, speed: int | None = None,
                 duplex_full: bool | None = None, enabled: bool = False,
                 port_priority: int = DEFAULT_PORT_PRIORITY, lacp_enabled: bool = True):
        self.port_id = port_id
        self.mac = mac
        self.system = system
        self.speed = speed
        self.duplex_full = duplex_full
        self.enabled = enabled                # Port_Enabled: carrier (and admin up)
        self.port_priority = port_priority
        self.lacp_enabled = lacp_enabled      # agr always runs LACP; LACP_DISABLED is modelled only

        # Actor_Oper_Port_State bits that the machines own.
        self.sync = False
        self.collecting = False
        self.distributing = False
        self.defaulted = True
        self.expired = False

        self.partner = P.LacpInfo(0, bytes(6), 0, 0, 0, 0)

        # Machine states (each module's Enumerated), set by the core when the port is added.
        self.rx_state = ""
        self.periodic_state = ""
        self.mux_state = ""
        self.actor_churn_state = ""
        self.partner_churn_state = ""
        self.wtr_state = ""

        self.selected = UNSELECTED
        self.selected_lag = None           # the aggregation the port was selected for
        self.limited = False               # STANDBY because of agrmaxports (not another group)
        self.ready = False                 # Ready, computed by the selection logic
        self.port_moved = False
        self.ntt = False
        self.rx_pdu = None                 # the "LACPDU received" event, consumed by CURRENT
        self.looped_until = None           # our own LACPDUs seen: keep out of selection until then

        self.timers = {name: Timer() for name in TIMER_NAMES}
        self.tx_times = deque()
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)
        self.marker_tid = 0
        self.marker_pending = {}           # transaction id -> time sent

    def __repr__(self):
        return f"Port(port_id={self.port_id!r}, mac={self.mac!r}, selected={self.selected!r}, mux={self.mux_state!r})"

    # -- derived values -------------------------------------------------------------
    @property
    def key(self) -> int:
        return port_key(self.speed, self.duplex_full)

    @property
    def aggregatable(self) -> bool:
        # Half duplex is not point-to-point: the link can only be individual.
        return self.duplex_full is not False

    @property
    def known_speed(self) -> int | None:
        return known_speed(self.speed)

    @property
    def actor_state(self) -> int:
        bits = P.ACTIVITY if self.system.active else 0      # lacpmode active | passive
        bits |= P.TIMEOUT if self.system.fast_timeout else 0
        bits |= P.AGGREGATION if self.aggregatable else 0
        bits |= P.SYNC if self.sync and not self.wtr_hold else 0
        bits |= P.COLLECTING if self.collecting else 0
        bits |= P.DISTRIBUTING if self.distributing else 0
        bits |= P.DEFAULTED if self.defaulted else 0
        bits |= P.EXPIRED if self.expired else 0
        return bits

    def actor_info(self) -> P.LacpInfo:
        return P.LacpInfo(self.system.priority, self.system.mac, self.key, self.port_priority,
                          self.port_id & 0xFFFF, self.actor_state)

    @property
    def actor_churn(self) -> bool:
        return self.actor_churn_state == "ACTOR_CHURN"

    @property
    def partner_churn(self) -> bool:
        return self.partner_churn_state == "PARTNER_CHURN"

    @property
    def partner_sync(self) -> bool:
        return bool(self.partner.state & P.SYNC)

    @property
    def partner_collecting(self) -> bool:
        return bool(self.partner.state & P.COLLECTING)

    @property
    def partner_short_timeout(self) -> bool:
        return bool(self.partner.state & P.TIMEOUT)

    @property
    def ready_n(self) -> bool:
        """Ready_N: this port's wait_while timer has expired."""
        return self.timers["wait_while"].expired

    def set_partner_state(self, set_bits: int = 0, clear_bits: int = 0) -> None:
        self.partner = self.partner.replace(state=(self.partner.state | set_bits) & ~clear_bits & 0xFF)

    @property
    def both_passive(self) -> bool:
        """(Actor_Oper_Port_State.LACP_Activity == PASSIVE) and
        (Partner_Oper_Port_State.LACP_Activity == PASSIVE): the periodic machine's
        NO_PERIODIC condition. A defaulted partner is passive (Partner_Admin_Port_State),
        so a passive port speaks only while it hears an active partner."""
        return not self.system.active and not self.partner.state & P.ACTIVITY

    @property
    def wtr_hold(self) -> bool:
        """agrwtr: not restored yet, so our Synchronization stays off and the port does not
        collect or distribute."""
        return self.system.wtr_time > 0 and self.wtr_state != "RESTORED"

    def looped(self, now: float) -> bool:
        return self.looped_until is not None and now < self.looped_until

    # -- timers ---------------------------------------------------------------------------
    def deadlines(self):
        """Every absolute time at which this port's timers need handle_timer() (the
        Transmit machine's rate limit adds its own: tx.deadline)."""
        for timer in self.timers.values():
            if timer.deadline is not None:
                yield timer.deadline
        if self.looped_until is not None:
            yield self.looped_until
