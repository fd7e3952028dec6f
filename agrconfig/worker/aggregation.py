"""How ports are chosen to carry agrN's frames: LACP (agrproto lacp, -link1), static
(agrproto loadbalance, link1) or failover (failover.py).

Implementations of one interface. Lacp drives the sans-IO core (agrconfig.lacp) and hands
its actions to the worker's `act`; Static speaks no protocol at all (no LACPDU, no Marker):
every port with carrier collects and distributes. Not to be confused with ipc/protocol.py,
the control socket's protocol.
"""
import abc

from ..lacp import DistributingChanged, LacpCore, Output, PortSnapshot
from ..lacp.wtr import WaitToRestore
from ..status import LacpPortStatus, LacpStatus, SlbStatus
from . import slb


def create(flags, mac, now, act, learned=None):
    """The aggregation the flags ask for (failover: failover.py's); `mac` is agrN's as bytes."""
    if flags["proto"] == "loadbalance":
        return Static(act, flags["wtr_time"])
    if flags["proto"] == "slb":
        return Slb(act, flags["wtr_time"], learned)
    return Lacp(LacpCore(mac, system_priority=flags["lacp_sysprio"], fast_timeout=flags["lacp_fast"],
                         strict=flags["lacp_strict"], active=flags["lacp_active"],
                         max_ports=flags["max_ports"], fallback=flags["lacp_fallback"],
                         wtr_time=flags["wtr_time"], now=now, select_policy=flags["select"]), act)


class Aggregation(abc.ABC):
    kind = ""  # as status shows it
    active = None   # failover's active port (agrmacpolicy follows it); no other kind has one

    @abc.abstractmethod
    def fits(self, flags):
        """True if these flags keep this kind of aggregation (only its settings may change)."""

    @abc.abstractmethod
    def start(self, now, ports, resume):
        """Take over agrN's ports when this aggregation replaces another; `resume` is the LACP
        snapshot a dead worker saved. Returns what is left of it for a later start."""

    @abc.abstractmethod
    def configure(self, now, flags):
        """New settings (timeout, strict, mode, system priority) for the same kind of aggregation."""

    @abc.abstractmethod
    def configure_port(self, now, port):
        """New settings of one port (port.options: its priority)."""

    @abc.abstractmethod
    def add_port(self, now, port):
        """A new port (worker/port.py's Member)."""

    @abc.abstractmethod
    def remove_port(self, now, index):
        pass

    @abc.abstractmethod
    def set_carrier(self, now, index, up):
        pass

    @abc.abstractmethod
    def set_system_mac(self, now, mac):
        pass

    def set_port_speed(self, now, index, speed, duplex_full):
        """A port's speed and duplex changed (read again at carrier up). Only LACP's key and
        selection depend on them."""

    @abc.abstractmethod
    def receive(self, now, index, frame):
        """A Slow Protocols frame that arrived on port `index`."""

    @abc.abstractmethod
    def get_timer(self):
        """The next deadline, or None."""

    @abc.abstractmethod
    def handle_timer(self, now):
        """Called after each turn of the loop: acts if the deadline has come."""

    @abc.abstractmethod
    def sets(self, ports):
        """(distributing, collecting): frozensets of port indexes."""

    @abc.abstractmethod
    def port_status(self, index):
        """What this kind adds to a port's status: PortStatus fields by name (lacp, failover,
        static_wtr_left)."""

    @abc.abstractmethod
    def status(self):
        """The aggregate's LACP status (a LacpStatus; None without LACP)."""

    def status_extra(self):
        """What the kind adds to the aggregate's status: AggregateStatus fields by name."""
        return {}

    def slb_plan(self, now, ports, distributing):
        """agrproto slb's (Plan, [Move]) for the ports (indexes in order) and the distributing
        set; (None, []) for every other kind."""
        return None, []

    def slb_preview(self, ports, distributing):
        """The Plan slb_plan would give, changing nothing; None for every other kind."""
        return None

    @abc.abstractmethod
    def snapshot(self):
        """What a restarted worker resumes from (kept in the state file)."""


def resume_entry(saved, index):
    """A port's saved LACP state if it is well formed (the file may be damaged), else None."""
    entry = saved.get(str(index)) if isinstance(saved, dict) else None
    return PortSnapshot.from_json(entry)


class Lacp(Aggregation):
    """IEEE 802.1AX LACP and Marker through agrconfig.lacp.LacpCore."""
    kind = "lacp"

    def __init__(self, core, act):
        self.core = core
        self.act = act  # the worker's handler of the core's actions

    def fits(self, flags):
        return flags["proto"] == "lacp"

    def start(self, now, ports, resume):
        # After a crash, each port carries on with the partner and mux state the dead
        # worker saved, so the partner sees no change; its next LACPDU corrects any drift.
        for p in ports:
            self._add(now, p, resume_entry(resume, p.index))
        return {}

    def configure(self, now, flags):
        self.act(self.core.set_fast_timeout(now, flags["lacp_fast"]))
        self.act(self.core.set_strict(now, flags["lacp_strict"]))
        self.act(self.core.set_active(now, flags["lacp_active"]))
        self.act(self.core.set_system_priority(now, flags["lacp_sysprio"]))
        if self.core.max_ports != flags["max_ports"]:
            self.act(self.core.set_max_ports(now, flags["max_ports"]))
        if self.core.fallback != flags["lacp_fallback"]:
            self.act(self.core.set_fallback(now, flags["lacp_fallback"]))
        if self.core.system.wtr_time != flags["wtr_time"]:
            self.act(self.core.set_wtr_time(now, flags["wtr_time"]))
        if self.core.select_policy != flags["select"]:
            self.act(self.core.set_select_policy(now, flags["select"]))

    def configure_port(self, now, port):
        self.act(self.core.set_port_priority(now, port.index, port.options["port_priority"]))

    def add_port(self, now, port):
        self._add(now, port, None)

    def _add(self, now, port, resume):
        self.act(self.core.add_port(now, port.index, port.mac, speed=port.speed, duplex_full=port.duplex_full,
                                    carrier=port.carrier, port_priority=port.options["port_priority"],
                                    resume=resume))

    def remove_port(self, now, index):
        self.act(self.core.remove_port(now, index))

    def set_carrier(self, now, index, up):
        self.act(self.core.set_carrier(now, index, up))

    def set_port_speed(self, now, index, speed, duplex_full):
        self.act(self.core.set_port_speed(now, index, speed, duplex_full))

    def set_system_mac(self, now, mac):
        if bytes(mac) != self.core.system.mac:   # the same id: nothing to select afresh
            self.act(self.core.set_system_mac(now, mac))

    def receive(self, now, index, frame):
        self.act(self.core.receive(now, index, frame))

    def get_timer(self):
        return self.core.get_timer()

    def handle_timer(self, now):
        timer = self.core.get_timer()
        if timer is not None and timer <= now:
            self.act(self.core.handle_timer(now))

    def sets(self, ports):
        return frozenset(self.core.distributing()), frozenset(self.core.collecting())

    def port_status(self, index):
        return {"lacp": LacpPortStatus.from_json(self.core.port_status(index))}

    def status(self):
        return LacpStatus.from_json(self.core.status())

    def snapshot(self):
        return {str(pid): snap.to_json() for pid, snap in self.core.snapshot().items()}


class Static(Aggregation):
    """agrproto loadbalance (link1): no LACP and no Marker frames at all; every port that is up
    (carrier, and agrlinkcheck's targets heard) distributes, once its wait-to-restore (agrwtr)
    is over: a port whose carrier comes back waits."""
    kind = "static"

    def __init__(self, act=None, wtr_time=0):
        self.act = act                # the worker's handler: told when a wait ends
        self.wtr = WaitToRestore(wtr_time)
        self.now = 0.0                # the latest time we were told: status's time left

    def fits(self, flags):
        return flags["proto"] == "loadbalance"

    def start(self, now, ports, resume):
        return resume  # kept for a later switch to LACP, as a dead worker saved it

    def configure(self, now, flags):
        self.wtr.set_time(flags["wtr_time"])
        self._restore_due(now)

    def configure_port(self, now, port):
        pass  # kept for LACP; loadbalance ranks no port

    def add_port(self, now, port):
        self.set_carrier(now, port.index, port.carrier)

    def remove_port(self, now, index):
        self.wtr.forget(index)

    def set_carrier(self, now, index, up):
        self.now = max(self.now, now)
        self.wtr.update(now, index, up)

    def set_system_mac(self, now, mac):
        pass

    def receive(self, now, index, frame):
        pass  # a partner's LACPDUs and Markers go unanswered

    def get_timer(self):
        return self.wtr.deadline()

    def handle_timer(self, now):
        self._restore_due(now)

    def _restore_due(self, now):
        self.now = max(self.now, now)
        done = self.wtr.restore_due(now)
        if done and self.act is not None:
            self.act(Output([DistributingChanged(done)]))   # the worker reads the sets again

    def sets(self, ports):
        up = frozenset(p.index for p in ports if p.up and not self.wtr.waiting(p.index))   # carrier, agrlinkcheck, agrwtr
        return up, up

    def port_status(self, index):
        left = self.wtr.wtr_left(self.now, index)
        return {"static_wtr_left": left} if left is not None else {}

    def status(self):
        return None

    def snapshot(self):
        return {}


class Slb(Static):
    """agrproto slb: no protocol, every port that is up distributes (as loadbalance); which port
    a frame leaves by, and which frames are accepted, is slb.py's (the data path applies it).
    `learned(now)` gives the (MAC, VLAN) pairs agrN sends from (the relay's table)."""
    kind = "slb"

    def __init__(self, act=None, wtr_time=0, learned=None):
        super().__init__(act, wtr_time)
        self.learned = learned or (lambda now: [])
        self.balance = slb.Balance()
        self.moved = 0      # learned MACs moved to another port, since this aggregation began
        self.next_sweep = 0.0   # reading the learned table ages it (the eBPF map: nothing else does)

    def fits(self, flags):
        return flags["proto"] == "slb"

    def slb_plan(self, now, ports, distributing):
        self.now = max(self.now, now)
        plan, moves = self.balance.update(ports, distributing, lambda: self.learned(now))
        self.moved += len(moves)
        return plan, moves

    def get_timer(self):
        wtr = super().get_timer()
        return self.next_sweep if wtr is None else min(wtr, self.next_sweep)

    def handle_timer(self, now):
        super().handle_timer(now)
        if now >= self.next_sweep:
            self.learned(now)
            self.next_sweep = now + slb.SWEEP

    def slb_preview(self, ports, distributing):
        return self.balance.preview(ports, distributing)

    def status_extra(self):
        return {"slb": SlbStatus(self.balance.designated, len(self.learned(self.now)), self.moved)}
