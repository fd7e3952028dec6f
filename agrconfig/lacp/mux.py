"""Mux machine, coupled control (802.1AX-2014 §6.4.15).

Attaches a selected port to the aggregator once the aggregate wait is over, and lets it
collect and distribute while the partner is in sync.
"""
from __future__ import annotations

from .states import MuxState  # noqa: F401 (defined there: cheap for status)

from .machine import Machine
from .port import AGGREGATE_WAIT_TIME, SELECTED, STANDBY, UNSELECTED


S = MuxState


class Mux(Machine):
    NAME = "mux"
    ATTR = "mux_state"
    State = MuxState
    TRANSITIONS = {
        (S.DETACHED, S.WAITING): "selected or standby",
        (S.WAITING, S.DETACHED): "unselected",
        (S.WAITING, S.ATTACHED): "selected and ready (aggregate wait over)",
        (S.ATTACHED, S.DETACHED): "unselected or standby",
        (S.ATTACHED, S.COLLECTING_DISTRIBUTING): "selected and partner in sync",
        (S.COLLECTING_DISTRIBUTING, S.ATTACHED): "unselected, standby or partner out of sync",
        (S.DETACHED, S.ATTACHED): "resumed after a worker restart",
        (S.DETACHED, S.COLLECTING_DISTRIBUTING): "resumed after a worker restart",
    }

    @classmethod
    def step(cls, port, core, now, log):
        state = port.mux_state
        if state == S.DETACHED:
            if port.selected in (SELECTED, STANDBY):
                # WAITING: start wait_while_timer
                cls.enter(port, S.WAITING, log)
                port.timers["wait_while"].start(now, AGGREGATE_WAIT_TIME)
        elif state == S.WAITING:
            if port.selected == UNSELECTED:
                port.timers["wait_while"].stop()
                cls.detached(port, log)
            elif port.selected == SELECTED and core.ready(port):
                cls.attached(port, log)
        elif state == S.ATTACHED:
            if port.selected != SELECTED:
                cls.detached(port, log)
            elif port.partner_sync and not port.wtr_hold:
                cls.collecting_distributing(port, log)
        elif state == S.COLLECTING_DISTRIBUTING:
            if port.selected != SELECTED or not port.partner_sync or port.wtr_hold:
                cls.attached(port, log)

    @classmethod
    def detached(cls, port, log):
        # Detach_Mux_From_Aggregator; Actor.Sync = FALSE; Disable_Distributing;
        # Actor.Distributing = FALSE; Actor.Collecting = FALSE; Disable_Collecting; NTT = TRUE
        cls.enter(port, S.DETACHED, log)
        port.sync = port.collecting = port.distributing = False
        port.ntt = True

    @classmethod
    def attached(cls, port, log):
        # Attach_Mux_To_Aggregator; Actor.Sync = TRUE; Actor.Collecting = FALSE;
        # Disable_Collecting_Distributing; Actor.Distributing = FALSE; NTT = TRUE
        cls.enter(port, S.ATTACHED, log)
        port.sync = True
        port.collecting = port.distributing = False
        port.ntt = True

    @classmethod
    def collecting_distributing(cls, port, log):
        # Actor.Distributing = TRUE; Enable_Collecting_Distributing; Actor.Collecting = TRUE;
        # NTT = TRUE
        cls.enter(port, S.COLLECTING_DISTRIBUTING, log)
        port.collecting = port.distributing = True
        port.ntt = True
