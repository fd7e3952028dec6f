"""Partner Churn Detection machine (802.1AX-2014 §6.4.17).

Flags a port whose partner's Synchronization stays off for Churn_Detection_Time: the
partner does not put the link in its aggregation.
"""
from __future__ import annotations

from .states import PartnerChurnState  # noqa: F401 (defined there: cheap for status)

from .machine import Machine
from .port import CHURN_DETECTION_TIME


S = PartnerChurnState


class PartnerChurn(Machine):
    NAME = "partner_churn"
    ATTR = "partner_churn_state"
    State = PartnerChurnState
    TRANSITIONS = {
        (S.NO_PARTNER_CHURN, S.PARTNER_CHURN_MONITOR): "partner out of sync",
        (S.PARTNER_CHURN_MONITOR, S.NO_PARTNER_CHURN): "partner in sync",
        (S.PARTNER_CHURN_MONITOR, S.PARTNER_CHURN): "partner_churn timer expired",
        (S.PARTNER_CHURN, S.NO_PARTNER_CHURN): "partner in sync",
    }

    @classmethod
    def step(cls, port, core, now, log):
        state, timer, in_sync = port.partner_churn_state, port.timers["partner_churn"], port.partner_sync
        if state == S.NO_PARTNER_CHURN:
            if not in_sync and port.enabled:
                # PARTNER_CHURN_MONITOR: partner_churn = FALSE; start partner_churn_timer
                cls.enter(port, S.PARTNER_CHURN_MONITOR, log)
                timer.start(now, CHURN_DETECTION_TIME)
        elif in_sync or not port.enabled:
            # NO_PARTNER_CHURN: partner_churn = FALSE
            cls.enter(port, S.NO_PARTNER_CHURN, log)
            timer.stop()
        elif state == S.PARTNER_CHURN_MONITOR and timer.expired:
            # PARTNER_CHURN: partner_churn = TRUE (the state says it: Port.partner_churn)
            cls.enter(port, S.PARTNER_CHURN, log)
