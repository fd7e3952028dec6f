"""The resume snapshot: what a restarted worker needs to carry a port on without
renegotiating. Written and validated here only; the worker keeps its JSON form in the
state file (the same form as release 0.1.0's, so an upgrade reads an old file).

A port whose partner is heard (CURRENT) resumes with that partner; a port that heard none
for a long timeout (DEFAULTED: lacpfallback's plain link, or -lacpstrict's optimistic port)
resumes defaulted, so that a restart does not make it wait out the timeouts again (3 s or
more without traffic). Its entry says "rx": "DEFAULTED"; a CURRENT port's entry is as before."""
from __future__ import annotations

from ..record import Record

from . import pdu as P
from .mux import Mux, MuxState
from .port import SELECTED, Port
from .rx import Rx, RxState, actor_timeout

_RESUMABLE = (MuxState.ATTACHED, MuxState.COLLECTING_DISTRIBUTING)
_RX = (RxState.CURRENT, RxState.DEFAULTED)


class PortSnapshot(Record):
    __slots__ = ("partner", "mux", "rx")
    DEFAULTS = {"rx": RxState.CURRENT}

    @classmethod
    def of(cls, port: Port) -> PortSnapshot | None:
        """The port's snapshot, or None when it has nothing worth resuming."""
        if port.rx_state in _RX and port.mux_state in _RESUMABLE:
            return cls(port.partner, MuxState(port.mux_state), RxState(port.rx_state))
        return None

    def to_json(self) -> dict:
        q = self.partner
        out = {"partner": [q.system_priority, q.system.hex(), q.key, q.port_priority, q.port, q.state],
               "mux": str(self.mux)}
        if self.rx != RxState.CURRENT:
            out["rx"] = str(self.rx)
        return out

    @classmethod
    def from_json(cls, entry) -> PortSnapshot | None:
        """A snapshot from the state file if well formed (the file may be damaged), else None."""
        try:
            prio, system, key, pprio, pnum, state = entry["partner"]
            mux = MuxState(entry["mux"])
            rx = RxState(entry.get("rx", RxState.CURRENT))
            mac = bytes.fromhex(system)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if (mux not in _RESUMABLE or rx not in _RX or len(mac) != 6
                or not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in (prio, key, pprio, pnum))
                or not (isinstance(state, int) and 0 <= state <= 0xFF)):
            return None
        return cls(P.LacpInfo(prio, mac, key, pprio, pnum, state), mux, rx)


def resume(port: Port, snap: PortSnapshot, now: float, log: list) -> None:
    """Put an enabled port back where a dead worker left it: partner known (or defaulted), mux
    attached or distributing, so the partner sees no change and nothing is renegotiated."""
    port.expired = False
    if snap.rx == RxState.DEFAULTED:
        # recordDefault: the administrative partner of today's settings (lacpstrict), not
        # the saved copy; no current_while: a defaulted port waits for a LACPDU unhurried.
        port.partner = port.system.partner_admin()
        port.defaulted = True
        Rx.enter(port, RxState.DEFAULTED, log)
    else:
        port.partner = snap.partner
        port.defaulted = False
        Rx.enter(port, RxState.CURRENT, log)
        port.timers["current_while"].start(now, actor_timeout(port))
    Mux.enter(port, snap.mux, log)
    port.sync = True
    port.collecting = port.distributing = snap.mux == MuxState.COLLECTING_DISTRIBUTING
    port.selected = SELECTED
    port.ntt = True
