"""Actor Churn Detection machine (802.1AX-2014 §6.4.17).

Flags a port whose own Synchronization stays off for Churn_Detection_Time: its
aggregation is not forming (for example, no aggregator is free for it).
"""
from __future__ import annotations

from .states import ActorChurnState  # noqa: F401 (defined there: cheap for status)

from .machine import Machine
from .port import CHURN_DETECTION_TIME


S = ActorChurnState


class ActorChurn(Machine):
    NAME = "actor_churn"
    ATTR = "actor_churn_state"
    State = ActorChurnState
    TRANSITIONS = {
        (S.NO_ACTOR_CHURN, S.ACTOR_CHURN_MONITOR): "actor out of sync",
        (S.ACTOR_CHURN_MONITOR, S.NO_ACTOR_CHURN): "actor in sync",
        (S.ACTOR_CHURN_MONITOR, S.ACTOR_CHURN): "actor_churn timer expired",
        (S.ACTOR_CHURN, S.NO_ACTOR_CHURN): "actor in sync",
    }

    @classmethod
    def step(cls, port, core, now, log):
        state, timer, in_sync = port.actor_churn_state, port.timers["actor_churn"], port.sync
        if state == S.NO_ACTOR_CHURN:
            if not in_sync and port.enabled:
                # ACTOR_CHURN_MONITOR: actor_churn = FALSE; start actor_churn_timer
                cls.enter(port, S.ACTOR_CHURN_MONITOR, log)
                timer.start(now, CHURN_DETECTION_TIME)
        elif in_sync or not port.enabled:
            # NO_ACTOR_CHURN: actor_churn = FALSE
            cls.enter(port, S.NO_ACTOR_CHURN, log)
            timer.stop()
        elif state == S.ACTOR_CHURN_MONITOR and timer.expired:
            # ACTOR_CHURN: actor_churn = TRUE (the state says it: Port.actor_churn)
            cls.enter(port, S.ACTOR_CHURN, log)
