"""LacpCore: the LACP and Marker protocol for one agr interface, sans I/O.

The driver (the worker) feeds it frames, carrier changes and the clock, and
carries out the actions it returns. Selection (§6.4.14) lives here: ports are
grouped by Link Aggregation Group identifier; one aggregation distributes — the
one with a live partner and the most bandwidth, ties keeping the current one —
and ports of any other aggregation wait in STANDBY.
"""
from __future__ import annotations

from . import machines, marker
from . import pdu as P
from .events import DistributingChanged, PartnerChanged, SelectionChanged, Transition, Transmit
from .port import (DEFAULT_PORT_PRIORITY, DEFAULT_SYSTEM_PRIORITY, FAST_PERIODIC_TIME, SELECTED,
                   SHORT_TIMEOUT_TIME, STANDBY, UNSELECTED, ActorSystem, Port, port_key)

__all__ = ["LacpCore", "port_key"]

LOOP_HOLD = SHORT_TIMEOUT_TIME + FAST_PERIODIC_TIME / 2  # a looped port stays out this long after the last echo
MAX_ROUNDS = 64


class LacpCore:
    def __init__(self, system_mac: bytes, *, system_priority: int = DEFAULT_SYSTEM_PRIORITY,
                 fast_timeout: bool = False, strict: bool = True, now: float = 0.0):
        self.system = ActorSystem(bytes(system_mac), system_priority, fast_timeout, strict)
        self.ports: dict[int, Port] = {}
        self.now = now
        self.selected_lag = None
        self._last_sets = ((), ())
        self._pending: list = []

    # -- entry points ----------------------------------------------------------------------
    def add_port(self, now, port_id, mac, *, speed=None, duplex_full=None, carrier=False,
                 port_priority=DEFAULT_PORT_PRIORITY, resume=None):
        """Add a port; `resume` is its entry in snapshot() from a previous core (a restarted
        worker), which puts it straight back in the state it had."""
        now = self._clock(now)
        if port_id in self.ports:
            raise KeyError(f"port {port_id} already added")
        port = Port(port_id, bytes(mac), self.system, speed, duplex_full, carrier, port_priority)
        transitions = []
        machines.begin(port, transitions)
        self.ports[port_id] = port
        port.ntt = carrier  # speak first: Open vSwitch waits 30 s before it does
        if resume and carrier:
            machines.resume(port, resume, now, transitions)
            port.selected_lag = self._lag_id(port)
            self.selected_lag = port.selected_lag
        return self._log(transitions) + self._run(now)

    def snapshot(self):
        """Per port, what a restarted worker needs to carry on without renegotiating."""
        out = {}
        for pid, p in self.ports.items():
            if p.rx_state == "CURRENT" and p.mux_state in ("ATTACHED", "COLLECTING_DISTRIBUTING"):
                q = p.partner
                out[str(pid)] = {"partner": [q.system_priority, q.system.hex(), q.key, q.port_priority, q.port,
                                             q.state], "mux": p.mux_state}
        return out

    def remove_port(self, now, port_id):
        now = self._clock(now)
        self.ports.pop(port_id, None)
        return self._run(now)

    def set_carrier(self, now, port_id, up):
        now = self._clock(now)
        port = self.ports.get(port_id)
        if port is not None and port.enabled != bool(up):
            port.enabled = bool(up)
            if up:
                port.ntt = True
        return self._run(now)

    def set_system_mac(self, now, mac):
        now = self._clock(now)
        self.system.mac = bytes(mac)
        return self._reselect_all(now)

    def set_fast_timeout(self, now, fast):
        now = self._clock(now)
        if self.system.fast_timeout != bool(fast):
            self.system.fast_timeout = bool(fast)
            for port in self.ports.values():
                port.ntt = True  # tell the partner at once: its periodic rate follows our bit
        return self._run(now)

    def set_strict(self, now, strict):
        now = self._clock(now)
        if self.system.strict != bool(strict):
            self.system.strict = bool(strict)
            for port in self.ports.values():
                if port.defaulted:
                    port.partner = self.system.partner_admin()
        return self._run(now)

    def receive(self, now, port_id, frame):
        """A Slow Protocols frame arrived on a port. Never raises on bad input."""
        now = self._clock(now)
        port = self.ports.get(port_id)
        if port is None:
            return []
        try:
            _src, payload = P.parse_frame(frame)
            pdu = P.decode(payload)
        except P.PduError:
            port.counters["lacpdu_err"] += 1
            return []
        if isinstance(pdu, P.MarkerPdu):
            return marker.receive(port, pdu) + self._run(now)
        port.counters["lacpdu_rx"] += 1
        if pdu.actor.system == self.system.mac:
            # Our own LACPDU came back: a port cabled to another port of ours. Ignore it,
            # and keep the port out of selection while the echoes go on.
            port.counters["loop"] += 1
            port.looped_until = now + LOOP_HOLD
            return self._run(now)
        port.rx_pdu = pdu
        return self._run(now)

    def start_marker(self, now, port_id):
        now = self._clock(now)
        port = self.ports.get(port_id)
        return marker.generate(port, now) if port is not None else []

    def get_timer(self):
        deadlines = [d for port in self.ports.values() for d in port.deadlines(self.now)]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now):
        return self._run(self._clock(now))

    # -- views -------------------------------------------------------------------------------
    def distributing(self):
        return tuple(pid for pid, p in self.ports.items() if self._is_distributing(p))

    def collecting(self):
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
            "partner_port_priority": p.partner.port_priority, "selected": p.selected,
            "mux_state": p.mux_state, "rx_state": p.rx_state, "periodic_state": p.periodic_state,
            "actor_churn_state": p.actor_churn_state, "partner_churn_state": p.partner_churn_state,
            "carrier": p.enabled, "collecting": p.collecting, "distributing": self._is_distributing(p),
            "standby": p.selected == STANDBY, "aggregatable": p.aggregatable, "looped": p.looped(self.now),
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
            "aggregator": {
                "actor_key": lag[0] if lag else None,
                "partner_system": P.format_mac(lag[2]) if lag else None,
                "partner_key": lag[3] if lag else None,
                "ports": [pid for pid, p in self.ports.items() if p.selected == SELECTED],
            },
            "ports": [self.port_status(pid) for pid in self.ports],
        }

    # -- internals ---------------------------------------------------------------------------------
    def _clock(self, now):
        # A clock that steps back is treated as standing still: timers never run backwards.
        if now > self.now:
            self.now = now
        return self.now

    def _is_distributing(self, p):
        # Both ends in sync and collecting: only then may frames leave on the port.
        return p.distributing and p.partner_sync and p.partner_collecting

    def partner_changed(self, port):
        self._pending.append(PartnerChanged(port.port_id, port.partner.system, port.partner.key))

    def ready(self, port):
        """Ready: every port selected for this aggregation has waited out aggregate_wait."""
        return all(p.ready_n or p.mux_state not in ("WAITING",) for p in self.ports.values()
                   if p.selected == SELECTED and p.selected_lag == port.selected_lag)

    def _lag_id(self, p):
        partner = p.partner
        if not p.aggregatable or not partner.state & P.AGGREGATION:
            return ("individual", p.port_id)
        return (p.key, partner.system_priority, partner.system, partner.key)

    def _select(self):
        """Selection Logic: choose one aggregation; the others wait in STANDBY."""
        groups = {}
        for p in self.ports.values():
            if p.enabled and not p.looped(self.now):
                groups.setdefault(self._lag_id(p), []).append(p)

        def rank(item):
            lag, ports = item
            live = any(not p.defaulted for p in ports)
            bandwidth = sum(p.known_speed or 1 for p in ports)
            return (live, bandwidth, lag == self.selected_lag)

        best = max(groups.items(), key=rank)[0] if groups else None
        if best != self.selected_lag:
            self.selected_lag = best
            ids = tuple(p.port_id for p in groups.get(best, []))
            if best is None or best[0] == "individual":
                self._pending.append(SelectionChanged(None, None, None, ids))
            else:
                self._pending.append(SelectionChanged(best[0], best[2], best[3], ids))
        changed = False
        for p in self.ports.values():
            lag = self._lag_id(p) if p.enabled and not p.looped(self.now) else None
            want = SELECTED if lag is not None and lag == best else (STANDBY if lag is not None else UNSELECTED)
            # A port whose partner changed was unselected by the receive machine; it must
            # detach before it can be selected again (the standard's Selected = UNSELECTED).
            if p.selected == UNSELECTED and p.mux_state != "DETACHED" and want != UNSELECTED:
                continue
            if p.selected != want or p.selected_lag != lag:
                p.selected, p.selected_lag = want, lag
                changed = True
        return changed

    def _reselect_all(self, now):
        for p in self.ports.values():
            p.selected = UNSELECTED
            p.ntt = True
        return self._run(now)

    def _run(self, now):
        transitions = []
        for _ in range(MAX_ROUNDS):
            moved = False
            for port in self.ports.values():
                for timer in port.timers.values():
                    timer.advance(now)
                if port.looped_until is not None and port.looped_until <= now:
                    port.looped_until = None
                    moved = True
                for step in machines.MACHINES:
                    while step(port, self, now, transitions):
                        moved = True
            if self._select():
                moved = True
            if not moved:
                break
        out = self._log(transitions)
        out += self._pending
        self._pending = []
        for port in self.ports.values():
            if port.ntt and port.may_transmit() and port.take_tx_slot(now):
                port.ntt = False
                port.counters["lacpdu_tx"] += 1
                out.append(Transmit(port.port_id, port.build_lacpdu()))
        sets = (self.distributing(), self.collecting())
        if sets != self._last_sets:
            self._last_sets = sets
            out.append(DistributingChanged(*sets))
        return out

    def _log(self, transitions):
        return [Transition(*t) for t in transitions]
