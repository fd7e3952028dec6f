"""Periodic Transmission machine (802.1AX-2014 §6.4.13).

Fast LACPDUs (every second) while the partner asks for the short timeout, slow ones
(every 30 s) otherwise; PERIODIC_TX only sets NTT for the Transmit machine. Nothing is
sent periodically while both ends are passive (lacpmode passive and a passive or defaulted
partner), so a passive port speaks only once an active partner has spoken.
"""
from __future__ import annotations

from .states import PeriodicState  # noqa: F401 (defined there: cheap for status)

from .machine import Machine
from .port import FAST_PERIODIC_TIME, SLOW_PERIODIC_TIME


S = PeriodicState


class Periodic(Machine):
    NAME = "periodic"
    ATTR = "periodic_state"
    State = PeriodicState
    TRANSITIONS = {
        (S.NO_PERIODIC, S.FAST_PERIODIC): "port enabled, actor or partner active",
        (S.FAST_PERIODIC, S.PERIODIC_TX): "periodic timer expired",
        (S.SLOW_PERIODIC, S.PERIODIC_TX): "periodic timer expired or partner asks for short timeout",
        (S.PERIODIC_TX, S.FAST_PERIODIC): "partner uses short timeout",
        (S.PERIODIC_TX, S.SLOW_PERIODIC): "partner uses long timeout",
        (S.FAST_PERIODIC, S.SLOW_PERIODIC): "partner uses long timeout",
        (S.FAST_PERIODIC, S.NO_PERIODIC): "port disabled, or actor and partner both passive",
        (S.SLOW_PERIODIC, S.NO_PERIODIC): "port disabled, or actor and partner both passive",
    }

    @classmethod
    def step(cls, port, core, now, log):
        state = port.periodic_state
        timer = port.timers["periodic"]
        # (BEGIN ||) !LACP_Enabled || !port_enabled ||
        # ((Actor_Oper_Port_State.LACP_Activity == PASSIVE) &&
        #  (Partner_Oper_Port_State.LACP_Activity == PASSIVE))  ->  NO_PERIODIC
        no_periodic = not port.enabled or port.both_passive  # LACP_Enabled: always
        short = port.partner_short_timeout
        if state != S.NO_PERIODIC and no_periodic:
            # NO_PERIODIC: stop periodic_timer
            cls.enter(port, S.NO_PERIODIC, log)
            timer.stop()
        elif state == S.NO_PERIODIC:
            # NO_PERIODIC -> FAST_PERIODIC: UCT, once the global condition no longer holds
            if not no_periodic:
                cls.fast(port, now, log)
        elif state == S.FAST_PERIODIC:
            if timer.expired:
                cls.enter(port, S.PERIODIC_TX, log)
            elif not short:
                cls.slow(port, now, log)
        elif state == S.SLOW_PERIODIC:
            if timer.expired or short:
                cls.enter(port, S.PERIODIC_TX, log)
        elif state == S.PERIODIC_TX:
            # PERIODIC_TX: NTT = TRUE, then straight back to a periodic state (whose
            # start of periodic_timer clears its expiry)
            port.ntt = True
            if short:
                cls.fast(port, now, log)
            else:
                cls.slow(port, now, log)

    @classmethod
    def fast(cls, port, now, log):
        # FAST_PERIODIC: start periodic_timer(fast_periodic_time)
        cls.enter(port, S.FAST_PERIODIC, log)
        port.timers["periodic"].start(now, FAST_PERIODIC_TIME)

    @classmethod
    def slow(cls, port, now, log):
        # SLOW_PERIODIC: start periodic_timer(slow_periodic_time)
        cls.enter(port, S.SLOW_PERIODIC, log)
        port.timers["periodic"].start(now, SLOW_PERIODIC_TIME)
