"""LacpCore: the LACP and Marker protocol for one agr interface, sans I/O.

The driver (the worker) feeds it frames, carrier changes and the clock, and carries out
the Output each entry point returns. Each state machine is a module of its own (rx,
periodic, mux, actor_churn, partner_churn; tx and selection have no states); this module
runs them to a fixed point and holds the views.
"""
from __future__ import annotations

from . import marker, selection, tx
from . import pdu as P
from .actor_churn import ActorChurn
from .events import DistributingChanged, Output, PartnerChanged, Transition, Transmit
from .machine import Machine
from .mux import Mux
from .partner_churn import PartnerChurn
from .periodic import Periodic
from .port import (DEFAULT_PORT_PRIORITY, DEFAULT_SYSTEM_PRIORITY, FAST_PERIODIC_TIME, SELECTED,
                   SHORT_TIMEOUT_TIME, STANDBY, UNSELECTED, ActorSystem, Port)
from .rx import Rx
from .wtr import WaitToRestore, Wtr, WtrState
from .wtr import up as wtr_up
from .actor_churn import ActorChurnState
from .mux import MuxState
from .partner_churn import PartnerChurnState
from .periodic import PeriodicState
from .rx import RxState
from .snapshot import PortSnapshot
from .snapshot import resume as resume_port

__all__ = ["LacpCore", "NotSettled", "MACHINES", "TABLES"]

LOOP_HOLD = SHORT_TIMEOUT_TIME + FAST_PERIODIC_TIME / 2  # a looped port stays out this long after the last echo
MAX_ROUNDS = 64    # rounds of every machine and Selection Logic before the core gives up
MAX_STEPS = 16     # transitions of one machine in a row (the longest chain the standard draws is 3)

# The order in which the core steps them, each until it stops moving, then Selection Logic.
MACHINES: tuple[type[Machine], ...] = (Rx, Periodic, Wtr, Mux, ActorChurn, PartnerChurn)
TABLES = {m.NAME: m.TRANSITIONS for m in MACHINES}   # machine name -> (old, new) -> why


def _begin(port: Port, log: list) -> None:
    """BEGIN: every machine in its initial state, then the receive machine's PORT_DISABLED."""
    port.rx_state, port.periodic_state, port.mux_state = RxState.INITIALIZE, PeriodicState.NO_PERIODIC, MuxState.DETACHED
    port.actor_churn_state, port.partner_churn_state = ActorChurnState.NO_ACTOR_CHURN, PartnerChurnState.NO_PARTNER_CHURN
    port.wtr_state = WtrState.DOWN
    Rx.port_disabled(port, log)


class NotSettled(RuntimeError):
    """The machines kept moving for MAX_ROUNDS rounds: a bug in the core, never a state."""


class LacpCore:
    def __init__(self, system_mac: bytes, *, system_priority: int = DEFAULT_SYSTEM_PRIORITY,
                 fast_timeout: bool = False, strict: bool = True, active: bool = True, max_ports: int = 0,
                 fallback: bool = False, wtr_time: float = 0.0, now: float = 0.0,
                 select_policy: selection.SelectPolicy = selection.SelectPolicy.BANDWIDTH):
        self.system = ActorSystem(bytes(system_mac), system_priority, fast_timeout, strict, active, wtr_time)
        self.wtr = WaitToRestore(wtr_time)   # agrwtr, by port; the Wtr machine drives it
        self.max_ports = max_ports   # agrmaxports: at most this many ports SELECTED (0: no limit)
        self.fallback = fallback     # lacpfallback: one plain port while every port is defaulted
        self.select_policy = selection.SelectPolicy(select_policy)   # agrselect
        self.ports: dict[int, Port] = {}
        self.now = now
        self.selected_lag = None
        self._last_sets = ((), ())
        self._pending: list = []

    # -- entry points ----------------------------------------------------------------------
    def add_port(self, now, port_id, mac, *, speed=None, duplex_full=None, carrier=False,
                 port_priority=DEFAULT_PORT_PRIORITY, resume: PortSnapshot | None = None) -> Output:
        """Add a port; `resume` is its snapshot from a previous core (a restarted worker),
        which puts it straight back in the state it had."""
        now = self._clock(now)
        if port_id in self.ports:
            raise KeyError(f"port {port_id} already added")
        port = Port(port_id, bytes(mac), self.system, speed, duplex_full, carrier, port_priority)
        log = []
        _begin(port, log)
        self.ports[port_id] = port
        port.ntt = carrier  # speak first: Open vSwitch waits 30 s before it does
        if resume is not None and carrier:
            resume_port(port, resume, now, log)
            if port.mux_state == MuxState.COLLECTING_DISTRIBUTING and wtr_up(port, self.system.strict):
                Wtr.resumed(port, self, log)   # it distributed: no new wait
            port.selected_lag = selection.lag_id(port)
            self.selected_lag = port.selected_lag
        return self._run(now, log)

    def snapshot(self) -> dict[int, PortSnapshot]:
        """Per port, what a restarted worker needs to carry on without renegotiating."""
        snaps = {pid: PortSnapshot.of(p) for pid, p in self.ports.items()}
        return {pid: s for pid, s in snaps.items() if s is not None}

    def remove_port(self, now, port_id) -> Output:
        now = self._clock(now)
        self.ports.pop(port_id, None)
        self.wtr.forget(port_id)
        return self._run(now)

    def set_carrier(self, now, port_id, up) -> Output:
        now = self._clock(now)
        port = self.ports.get(port_id)
        if port is not None and port.enabled != bool(up):
            port.enabled = bool(up)
            if up:
                port.ntt = True
        return self._run(now)

    def set_system_mac(self, now, mac) -> Output:
        """A new actor System ID (agrN's MAC, or lacpsysid): the LAG ID changes, so every
        port is selected afresh, and the partner is told at once."""
        now = self._clock(now)
        self.system.mac = bytes(mac)
        self._reselect_all()
        return self._run(now)

    def set_system_priority(self, now, priority) -> Output:
        """lacpsysprio: the System ID's priority, part of the LAG ID like the MAC. No change,
        no effect."""
        now = self._clock(now)
        if self.system.priority != priority:
            self.system.priority = priority
            self._reselect_all()
        return self._run(now)

    def set_active(self, now, active) -> Output:
        """lacpmode: LACP_Activity. A passive port stops sending periodically once its
        partner is passive too (or defaulted); going active, it speaks at once."""
        now = self._clock(now)
        if self.system.active != bool(active):
            self.system.active = bool(active)
            for port in self.ports.values():
                port.ntt = True  # our Activity bit changed: tell a partner that listens
        return self._run(now)

    def set_port_priority(self, now, port_id, priority) -> Output:
        """agrportpri: the Port Identifier's priority. The partner sees it in our next
        LACPDU (sent at once). It is part of the LAG ID of an individual port only, which
        is then selected afresh."""
        now = self._clock(now)
        port = self.ports.get(port_id)
        if port is not None and port.port_priority != priority:
            port.port_priority = priority
            port.ntt = True
            if selection.lag_id(port)[0] == "individual":
                port.selected = UNSELECTED
        return self._run(now)

    def set_max_ports(self, now, max_ports) -> Output:
        """agrmaxports: Selection Logic puts the ports beyond the limit in STANDBY (the next
        round of the machines does it)."""
        now = self._clock(now)
        self.max_ports = max_ports
        return self._run(now)

    def set_wtr_time(self, now, seconds) -> Output:
        """agrwtr. A port waiting goes on with the new time from the start of its wait; 0
        ends every wait."""
        now = self._clock(now)
        old, self.system.wtr_time = self.system.wtr_time, seconds
        self.wtr.set_time(seconds)
        for port in self.ports.values():
            if (old > 0) != (seconds > 0):
                port.ntt = True   # whether our Synchronization is held may change
        return self._run(now)

    def set_select_policy(self, now, policy) -> Output:
        """agrselect: Selection Logic chooses by the new policy from now on (the next round
        of the machines may move traffic to another aggregation)."""
        now = self._clock(now)
        self.select_policy = selection.SelectPolicy(policy)
        return self._run(now)

    def set_port_speed(self, now, port_id, speed, duplex_full) -> Output:
        """A port's speed (Mbit/s, None: unknown) and duplex as the link now reports them
        (read again when its carrier comes back: renegotiation may change them). The
        operational key follows the speed (6.3.5: only like links aggregate): a port whose
        key or aggregatability changes is selected afresh (Selected = UNSELECTED: the Mux
        machine detaches it, which sets NTT, so the partner hears the new key at once; a
        disabled port tells it when its carrier comes back)."""
        now = self._clock(now)
        port = self.ports.get(port_id)
        if port is not None and (port.speed, port.duplex_full) != (speed, duplex_full):
            before = (port.key, port.aggregatable)
            port.speed, port.duplex_full = speed, duplex_full
            if (port.key, port.aggregatable) != before:
                port.selected = UNSELECTED
        return self._run(now)

    def set_fallback(self, now, on) -> Output:
        """lacpfallback (Open vSwitch's lacp-fallback-ab)."""
        now = self._clock(now)
        self.fallback = bool(on)
        return self._run(now)

    def fallback_port(self):
        """The one port that carries traffic as a plain link while lacpfallback is on and no
        port hears a partner (no LACPDU within the timeout on any): of the DEFAULTED ports,
        the best port priority, then the lowest port number. None when not in fallback.
        A port coming back is EXPIRED for a short timeout before it defaults: it does not
        end fallback meanwhile, nor take part in it."""
        if not self.fallback:
            return None
        live = [p for p in self.ports.values() if p.enabled]
        if any(p.rx_state == RxState.CURRENT for p in live):
            return None
        candidates = [p for p in live if p.rx_state == RxState.DEFAULTED and not p.looped(self.now)]
        if not candidates:
            return None
        return min(candidates, key=lambda p: (p.port_priority, p.port_id)).port_id

    def _reselect_all(self):
        for p in self.ports.values():
            p.selected = UNSELECTED
            p.ntt = True

    def set_fast_timeout(self, now, fast) -> Output:
        now = self._clock(now)
        if self.system.fast_timeout != bool(fast):
            self.system.fast_timeout = bool(fast)
            for port in self.ports.values():
                port.ntt = True  # tell the partner at once: its periodic rate follows our bit
        return self._run(now)

    def set_strict(self, now, strict) -> Output:
        now = self._clock(now)
        if self.system.strict != bool(strict):
            self.system.strict = bool(strict)
            for port in self.ports.values():
                if port.defaulted:
                    port.partner = self.system.partner_admin()
        return self._run(now)

    def receive(self, now, port_id, frame) -> Output:
        """A Slow Protocols frame arrived on a port. Never raises on bad input."""
        now = self._clock(now)
        port = self.ports.get(port_id)
        if port is None:
            return Output()
        try:
            _src, payload = P.parse_frame(frame)
            pdu = P.decode(payload)
        except P.PduError:
            port.counters["lacpdu_err"] += 1
            return Output()
        if isinstance(pdu, P.MarkerPdu):
            return self._run(now, frames=marker.receive(port, pdu))
        port.counters["lacpdu_rx"] += 1
        if pdu.actor.system == self.system.mac:
            # Our own LACPDU came back: a port cabled to another port of ours. Ignore it,
            # and keep the port out of selection while the echoes go on.
            port.counters["loop"] += 1
            port.looped_until = now + LOOP_HOLD
            return self._run(now)
        port.rx_pdu = pdu
        return self._run(now)

    def start_marker(self, now, port_id) -> Output:
        now = self._clock(now)
        port = self.ports.get(port_id)
        return Output(frames=marker.generate(port, now) if port is not None else ())

    def get_timer(self):
        deadlines = [d for port in self.ports.values() for d in port.deadlines()]
        deadlines += [d for d in (tx.deadline(p, self.now) for p in self.ports.values()) if d is not None]
        wtr = self.wtr.deadline()
        if wtr is not None:
            deadlines.append(wtr)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now) -> Output:
        return self._run(self._clock(now))

    # -- views -------------------------------------------------------------------------------
    def distributing(self):
        fallback = self.fallback_port()
        if fallback is not None:   # that port alone, whatever lacpstrict says of defaulted ones
            return (fallback,)
        return tuple(pid for pid, p in self.ports.items() if self._is_distributing(p))

    def collecting(self):
        fallback = self.fallback_port()
        if fallback is not None:   # the idle ports deliver nothing either
            return (fallback,)
        return tuple(pid for pid, p in self.ports.items() if p.collecting)

    def port_status(self, port_id):
        p = self.ports[port_id]
        actor = p.actor_info()
        return {
            "port_id": port_id, "actor_state": actor.state, "actor_state_str": P.state_names(actor.state),
            "partner_state": p.partner.state, "partner_state_str": P.state_names(p.partner.state),
            "actor_key": actor.key, "actor_port_priority": actor.port_priority,
            "partner_system": P.format_mac(p.partner.system), "partner_system_priority": p.partner.system_priority,
            "partner_key": p.partner.key, "partner_port": p.partner.port,
            "partner_port_priority": p.partner.port_priority, "selected": str(p.selected),
            "mux_state": str(p.mux_state), "rx_state": str(p.rx_state), "periodic_state": str(p.periodic_state),
            "actor_churn_state": str(p.actor_churn_state), "partner_churn_state": str(p.partner_churn_state),
            "carrier": p.enabled, "collecting": port_id in self.collecting(),
            "distributing": port_id in self.distributing(),
            "standby": p.selected == STANDBY, "limited": p.limited,
            "fallback": port_id == self.fallback_port(), "wtr_state": str(p.wtr_state),
            "wtr_left": self._wtr_left(p), "aggregatable": p.aggregatable, "looped": p.looped(self.now),
            "counters": dict(p.counters),
        }

    def status(self):
        lag = self.selected_lag
        if lag is not None and lag[0] == "individual":
            port = self.ports.get(lag[1])
            lag = (port.key, None, port.partner.system, port.partner.key) if port else None
        return {
            "system": P.format_mac(self.system.mac), "system_priority": self.system.priority,
            "fast_timeout": self.system.fast_timeout, "strict": self.system.strict,
            "active": self.system.active, "fallback_port": self.fallback_port(),
            "aggregator": {
                "actor_key": lag[0] if lag else None,
                "partner_system": P.format_mac(lag[2]) if lag else None,
                "partner_key": lag[3] if lag else None,
                "ports": [pid for pid, p in self.ports.items() if p.selected == SELECTED],
            },
            "ports": [self.port_status(pid) for pid in self.ports],
        }

    # -- what the machines call back --------------------------------------------------------------
    def partner_changed(self, port):
        self.notify(PartnerChanged(port.port_id, port.partner.system, port.partner.key))

    def notify(self, event):
        self._pending.append(event)

    def ready(self, port):
        return selection.ready(self, port)

    # -- internals ---------------------------------------------------------------------------------
    def _clock(self, now):
        # A clock that steps back is treated as standing still: timers never run backwards.
        if now > self.now:
            self.now = now
        return self.now

    def _wtr_left(self, p):
        return self.wtr.wtr_left(self.now, p.port_id) if p.wtr_hold else None

    def _is_distributing(self, p):
        # Both ends in sync and collecting: only then may frames leave on the port.
        return p.distributing and p.partner_sync and p.partner_collecting

    def _run(self, now, log=None, frames=()) -> Output:
        """Step every machine of every port, then Selection Logic, until nothing moves;
        then let the Transmit machine send what NTT asks for."""
        log = [] if log is None else log
        for _ in range(MAX_ROUNDS):
            moved = False
            for port in self.ports.values():
                for timer in port.timers.values():
                    timer.advance(now)
                if port.looped_until is not None and port.looped_until <= now:
                    port.looped_until = None
                    moved = True
                for machine in MACHINES:
                    for _ in range(MAX_STEPS):
                        before = len(log)
                        machine.step(port, self, now, log)
                        if len(log) == before:
                            break
                        moved = True
                    else:
                        raise NotSettled(f"the {machine.NAME} machine of port {port.port_id} "
                                         f"moved {MAX_STEPS} times in a row")
            if selection.select(self):
                moved = True
            if not moved:
                break
        else:
            raise NotSettled(f"the LACP machines did not settle in {MAX_ROUNDS} rounds")
        out = Output([Transition(*t) for t in log] + self._pending, frames)
        self._pending = []
        for port in self.ports.values():
            frame = tx.transmit(port, now)
            if frame is not None:
                out.frames.append(Transmit(port.port_id, frame))
        sets = (self.distributing(), self.collecting())
        if sets != self._last_sets:
            self._last_sets = sets
            out.events.append(DistributingChanged(*sets))
        return out
