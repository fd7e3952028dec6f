"""Wait-to-restore (802.1AX-2014's wtr-time; agrwtr): a port that comes back waits this long
before it distributes, and a drop meanwhile starts the wait over, so a flapping link never
takes traffic.

WaitToRestore is the one implementation, sans IO (`now` passed in, no clock): LACP (through the
Wtr machine below), agrproto loadbalance and agrproto failover each keep one for their ports and
say only what "up" means to them, and every one of them asks it how long a port still waits
(`wtr_left`).

For LACP, "up" is carrier and a partner heard (the Receive machine CURRENT): a port comes back
with its carrier, or when its partner speaks again after it timed out. With -lacpstrict a
DEFAULTED port is up as well: it distributes with its default partner. (Not the partner's
Synchronization bit: a partner that limits its ports keeps it off on its standby ports, which
must still take over at once.) While a port is not RESTORED (and the time is not 0), our
Synchronization bit stays off in its LACPDUs and the Mux machine keeps it out of
COLLECTING_DISTRIBUTING, so the partner does not send into a port that is not collecting.
"""
from __future__ import annotations

from .states import WtrState  # noqa: F401 (defined there: cheap for status)

from .machine import Machine
from .port import Timer
from .rx import RxState


S = WtrState


class WaitToRestore:
    """The wait-to-restore of the ports of one aggregation, by port number.

    A port that comes back (up after DOWN) is WAITING for `time` seconds, then RESTORED; one
    that goes down is DOWN, and a wait it was in starts over when it comes back. With 0 s a port
    is RESTORED as soon as it is up."""

    def __init__(self, time: float = 0.0):
        self.time = time
        self._states: dict = {}    # port -> WtrState; DOWN when absent
        self._timers: dict = {}    # port -> Timer, while WAITING

    def state(self, port) -> WtrState:
        return self._states.get(port, S.DOWN)

    def waiting(self, port) -> bool:
        return self.state(port) == S.WAITING

    def update(self, now: float, port, up: bool) -> tuple[WtrState, WtrState] | None:
        """The rule: `port` is up, or not, at `now`. Returns (old, new) when its state moves."""
        old = self.state(port)
        if not up:
            new = S.DOWN
        elif old == S.DOWN:
            new = S.WAITING if self.time > 0 else S.RESTORED
        elif old == S.WAITING and (self.time <= 0 or self._timers[port].deadline <= now):
            new = S.RESTORED
        else:
            new = old
        if new == old:
            return None
        self._enter(port, new, now)
        return old, new

    def restore(self, port) -> tuple[WtrState, WtrState] | None:
        """RESTORED without a wait: a port that distributed before a worker restart, failover's
        port taken at once because no port is ready. (old, new) when it moved."""
        old = self.state(port)
        if old == S.RESTORED:
            return None
        self._enter(port, S.RESTORED)
        return old, S.RESTORED

    def forget(self, port) -> None:
        self._states.pop(port, None)
        self._timers.pop(port, None)

    def set_time(self, seconds: float) -> None:
        """A new time: a port waiting goes on with it from the start of its wait; 0 ends every
        wait (at the next update, or due())."""
        old, self.time = self.time, seconds
        if seconds > 0:
            for timer in self._timers.values():
                timer.deadline += seconds - old

    def due(self, now: float) -> list:
        """The ports waiting whose wait is over at `now` (update() restores them)."""
        return [p for p, t in self._timers.items() if self.time <= 0 or t.deadline <= now]

    def restore_due(self, now: float) -> tuple:
        """Restore the ports whose wait is over (they are up: waiting ones are); returns them."""
        return tuple(p for p in self.due(now) if self.update(now, p, True))

    def deadline(self) -> float | None:
        """When the next wait ends, or None."""
        return min((t.deadline for t in self._timers.values()), default=None)

    def wtr_left(self, now: float, port) -> float | None:
        """Seconds `port` still waits, None when it is not waiting."""
        timer = self._timers.get(port)
        return max(0.0, timer.deadline - now) if timer is not None else None

    def _enter(self, port, new, now=None):
        self._states[port] = new
        if new == S.WAITING:
            timer = self._timers[port] = Timer()
            timer.start(now, self.time)
        else:
            self._timers.pop(port, None)


def up(port, strict=True) -> bool:
    """Carrier and a partner heard; with -lacpstrict a defaulted port counts too (its default
    partner is in sync, so it distributes without one, and must not wait for one for ever)."""
    return port.enabled and (port.rx_state == RxState.CURRENT
                             or (not strict and port.rx_state == RxState.DEFAULTED))


class Wtr(Machine):
    """LACP's use of WaitToRestore (the core's `wtr`): a machine so that its moves are checked
    against the table and logged as the other machines' are."""
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
        move = core.wtr.update(now, port.port_id, up(port, core.system.strict))
        if move is None:
            return
        old, new = move
        cls.enter(port, new, log)
        if old == S.WAITING and new == S.RESTORED:
            port.ntt = True   # our Synchronization bit comes on: tell the partner at once

    @classmethod
    def resumed(cls, port, core, log):
        """A port that distributed before a worker restart: no new wait."""
        if core.wtr.restore(port.port_id) is not None:
            cls.enter(port, S.RESTORED, log)
