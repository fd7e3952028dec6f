"""The resume snapshot: what a restarted worker needs to carry a port on without
renegotiating. Written and validated here only; the worker keeps its JSON form in the
state file (the same form as release 0.1.0's, so an upgrade reads an old file)."""
from __future__ import annotations

from dataclasses import dataclass

from . import pdu as P
from .mux import Mux, MuxState
from .port import SELECTED, Port
from .rx import Rx, RxState, actor_timeout

_RESUMABLE = (MuxState.ATTACHED, MuxState.COLLECTING_DISTRIBUTING)


@dataclass(frozen=True)
class PortSnapshot:
    partner: P.LacpInfo
    mux: MuxState

    @classmethod
    def of(cls, port: Port) -> PortSnapshot | None:
        """The port's snapshot, or None when it has nothing worth resuming."""
        if port.rx_state == RxState.CURRENT and port.mux_state in _RESUMABLE:
            return cls(port.partner, MuxState(port.mux_state))
        return None

    def to_json(self) -> dict:
        q = self.partner
        return {"partner": [q.system_priority, q.system.hex(), q.key, q.port_priority, q.port, q.state],
                "mux": str(self.mux)}

    @classmethod
    def from_json(cls, entry) -> PortSnapshot | None:
        """A snapshot from the state file if well formed (the file may be damaged), else None."""
        try:
            prio, system, key, pprio, pnum, state = entry["partner"]
            mux = MuxState(entry["mux"])
            mac = bytes.fromhex(system)
        except (KeyError, TypeError, ValueError):
            return None
        if (mux not in _RESUMABLE or len(mac) != 6
                or not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in (prio, key, pprio, pnum))
                or not (isinstance(state, int) and 0 <= state <= 0xFF)):
            return None
        return cls(P.LacpInfo(prio, mac, key, pprio, pnum, state), mux)


def resume(port: Port, snap: PortSnapshot, now: float, log: list) -> None:
    """Put an enabled port back where a dead worker left it: partner known, mux attached or
    distributing, so the partner sees no change and nothing is renegotiated."""
    port.partner = snap.partner
    port.defaulted = port.expired = False
    Rx.enter(port, RxState.CURRENT, log)
    port.timers["current_while"].start(now, actor_timeout(port))
    Mux.enter(port, snap.mux, log)
    port.sync = True
    port.collecting = port.distributing = snap.mux == MuxState.COLLECTING_DISTRIBUTING
    port.selected = SELECTED
    port.ntt = True
