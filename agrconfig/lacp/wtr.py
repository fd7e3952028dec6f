"""Wait-to-restore (802.1AX-2014's wtr-time; agrwtr): a port that comes back waits this long
before it distributes, and a drop meanwhile starts the wait over, so a flapping link never
takes traffic.

"Up" is carrier and a partner heard (the Receive machine CURRENT): a port comes back with its
carrier, or when its partner speaks again after it timed out. (Not the partner's Synchronization
bit: a partner that limits its ports keeps it off on its standby ports, which must still take
over at once.) While a port is not RESTORED (and the time is not 0), our Synchronization bit
stays off in its LACPDUs and the Mux machine keeps it out of COLLECTING_DISTRIBUTING, so the
partner does not send into a port that is not collecting.
"""
from __future__ import annotations

from enum import StrEnum

from .machine import Machine
from .rx import RxState


class WtrState(StrEnum):
    DOWN = "DOWN"
    WAITING = "WAITING"
    RESTORED = "RESTORED"


S = WtrState


def up(port) -> bool:
    return port.enabled and port.rx_state == RxState.CURRENT


class Wtr(Machine):
    NAME = "wtr"
    ATTR = "wtr_state"
    State = WtrState
    TRANSITIONS = {
        (S.DOWN, S.WAITING): "up: carrier and a partner heard",
        (S.DOWN, S.RESTORED): "up, no wait-to-restore time (or resumed after a worker restart)",
        (S.WAITING, S.DOWN): "down again: the wait starts over",
        (S.WAITING, S.RESTORED): "wtr timer expired (or the time set to 0)",
        (S.RESTORED, S.DOWN): "carrier lost or partner timed out",
    }

    @classmethod
    def step(cls, port, core, now, log):
        state, timer, wtr_time = port.wtr_state, port.timers["wtr"], port.system.wtr_time
        if state == S.DOWN:
            if up(port):
                if wtr_time > 0:
                    cls.enter(port, S.WAITING, log)
                    timer.start(now, wtr_time)
                else:
                    cls.enter(port, S.RESTORED, log)
        elif not up(port):
            cls.enter(port, S.DOWN, log)
            timer.stop()
        elif state == S.WAITING and (timer.expired or wtr_time <= 0):
            cls.enter(port, S.RESTORED, log)
            timer.stop()
            port.ntt = True   # our Synchronization bit comes on: tell the partner at once
