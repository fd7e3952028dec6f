"""The data path: how frames other than Slow Protocols move between agrN and its ports.

Two implementations of one interface: the relay (dataplane.py's thread copies every frame)
and eBPF (fastpath.py's tc programs move frames in the kernel while the relay thread still
carries the Slow Protocols frames of the ports' sockets). The worker chooses with `choose`.
"""
import abc
import errno
import os

from ..errors import AgrError
from . import join
from ..logger import log



def took(eventfd):
    """Read (reset) an eventfd; False if nothing was signalled."""
    try:
        os.eventfd_read(eventfd)
        return True
    except BlockingIOError:
        return False


def probe_ebpf():
    """(True, "") if the kernel fast path can be used here, else (False, why not)."""
    try:
        from . import bpf
        return bpf.fastpath_supported()
    except Exception as exc:  # no module, no bpf(2), no permission: the relay it is
        return False, str(exc)


def choose(want, probe=probe_ebpf):
    """(use eBPF, note) for the datapath flag (auto, relay or ebpf). The note says why the
    relay is used where eBPF was allowed; None leaves the last note as it was."""
    if want == "relay":
        return False, None
    ok, reason = probe()
    if not ok and want == "ebpf":
        raise AgrError(errno.EOPNOTSUPP, "SIOCSETAGR", f"eBPF fast path unavailable: {reason}")
    return ok, "" if ok else reason


def remove_leftovers(name, ifindices):
    """A dead worker's fast path programs on links we will not replace them on."""
    try:
        from .fastpath import FastPath
        FastPath.cleanup(ifindices)
    except Exception as exc:  # no fast path here at all: nothing can be left
        log.debug("%s: fast path cleanup: %s", name, exc)


class DataPath(abc.ABC):
    """What the worker's loop asks of a data path. `relay` is the worker's Relay, which
    outlives any one data path (the worker starts and stops it)."""
    name = ""           # as status shows it
    slow_only = False   # the port sockets take only Slow Protocols frames (the kernel moves the rest)

    def __init__(self, agr_name, relay):
        self.agr_name = agr_name
        self.relay = relay

    @property
    def mode(self):
        """The fast path's mode for status (normal, pass, drain, drop), None for the relay."""
        return None

    @abc.abstractmethod
    def set_policy(self, policy, round_robin):
        """Flow hash fields (link0 off) or round robin (link0 on)."""

    @abc.abstractmethod
    def set_ports(self, ports, distributing, collecting):
        """The ports (in order of addition) and the index sets that distribute and collect."""

    def set_slb(self, plan):
        """agrproto slb's Plan (slb.py), or None: taken up by the next set_ports."""
        self.relay.slb_plan = plan

    def slb_learned(self, now):
        """agrproto slb: the (MAC, VLAN) pairs agrN sent from lately, sorted."""
        return self.relay.slb_learned.entries(now)

    @abc.abstractmethod
    def attach_port(self, index):
        """A port joined agrN (its socket is open)."""

    @abc.abstractmethod
    def detach_port(self, index):
        """A port left agrN."""

    @abc.abstractmethod
    def on_drained(self):
        """The relay answered a drain request (its eventfd already read)."""

    @abc.abstractmethod
    def get_timer(self):
        """The next deadline of the data path (one already past: at once), or None."""

    @abc.abstractmethod
    def handle_timer(self, now):
        """Called after each turn of the loop, with its time."""

    @abc.abstractmethod
    def counters(self, indexes):
        """(totals, {port index: counters}) for status."""

    @abc.abstractmethod
    def close(self):
        """Take down what this data path installed (not the relay)."""


class RelayPath(DataPath):
    """Every frame through the relay thread."""
    name = "relay"

    def set_policy(self, policy, round_robin):
        self.relay.round_robin = round_robin
        self.relay.policy = policy

    def set_ports(self, ports, distributing, collecting):
        self.relay.set_ports(ports, distributing, collecting)

    def attach_port(self, index):
        pass

    def detach_port(self, index):
        pass

    def on_drained(self):
        pass

    def get_timer(self):
        return None

    def handle_timer(self, now):
        pass

    def counters(self, indexes):
        totals = dict(self.relay.counters)
        ports = {}
        for index in indexes:
            c = self.relay.port_counters.get(index, [0, 0, 0, 0])
            ports[index] = {"tx_packets": c[0], "tx_bytes": c[1], "rx_packets": c[2], "rx_bytes": c[3],
                            "rx_dropped": self.relay.rx_discarded.get(index, 0),
                            "rx_slow_limited": self.relay.slow_limited.get(index, 0)}
            dropped = self.relay.slb_dropped.get(index)
            if dropped is not None:   # agrproto slb: off the designated port, reflections
                ports[index]["rx_slb_not_designated"], ports[index]["rx_slb_reflected"] = dropped
        return totals, ports

    def close(self):
        pass


class EbpfPath(RelayPath):
    """Frames through tc eBPF programs; the relay keeps the ports' Slow Protocols frames.

    The edge of the join hand-over (join.py): it feeds the machine the distributing set's
    changes, the relay's answers with the join map's counters, and the loop's `now`, and
    carries out what the machine returns."""
    name = "ebpf"
    slow_only = True
    JOIN_QUIET, DRAIN_TIMEOUT, JOIN_TIMEOUT = join.JOIN_QUIET, join.DRAIN_TIMEOUT, join.JOIN_TIMEOUT

    def __init__(self, agr_name, relay, fast):
        from .dataplane import HOLD
        super().__init__(agr_name, relay)
        self.fast = fast
        self.handover = join.JoinHandOver(fast.drains, HOLD)
        if fast.drains:
            relay.tap_sink = fast.relayed
        else:
            log.info("%s: this kernel has no mmap-able BPF maps or atomic fetch: a joining port "
                     "costs the frames of a moment (%s)", agr_name, fast.no_drain)

    @classmethod
    def open(cls, agr_name, relay, tap_index, policy, round_robin, ports, distributing, collecting,
             slb_plan=None):
        from .fastpath import FastPath
        fast = FastPath(tap_index, policy, round_robin)
        try:
            # The maps are right before any program goes in: a dead worker's programs,
            # still moving frames, are then replaced atomically (no gap, no reordering).
            fast.set_ports([p.index for p in ports if p.index in distributing])
            fast.set_collecting([p.index for p in ports if p.index in collecting])
            fast.set_slb(slb_plan)   # agrproto slb: its rules from the first frame
            for p in ports:
                fast.attach_port(p.index)
            fast.attach_tap()
        except Exception:
            fast.close()
            raise
        return cls(agr_name, relay, fast)

    @property
    def mode(self):
        return str(self.fast.mode)

    def set_policy(self, policy, round_robin):
        super().set_policy(policy, round_robin)
        self.fast.set_policy(policy, round_robin)

    def set_ports(self, ports, distributing, collecting):
        super().set_ports(ports, distributing, collecting)  # the relay's hold begins here
        indexes = [p.index for p in ports if p.index in distributing]
        # The mode changes before the new ports are written: no frame reaches a joining
        # port by the kernel before the hand-over holds the others.
        carrier = {p.index for p in ports if p.carrier}
        self._carry_out(self.handover.ports_changed(self.fast.distributing, indexes, carrier, self.relay.hold_until))
        self.fast.set_ports(indexes)
        self.fast.set_collecting([p.index for p in ports if p.index in collecting])

    def set_slb(self, plan):
        """Both: the relay carries frames while a port joins (join.py)."""
        super().set_slb(plan)
        if plan != self.fast.slb_plan:
            self.fast.set_slb(plan)

    def slb_learned(self, now):
        """The kernel's learned table and the relay's (frames it sent while a port joined)."""
        return sorted(set(super().slb_learned(now)) | set(self.fast.slb_entries(now)))

    def attach_port(self, index):
        # tcx after the reply (handle_timer, in the same turn of the loop): its RCU grace
        # period is not the command's to wait for; the clsact filter moves the frames meanwhile.
        self.fast.attach_port(index, defer_tcx=True)

    def detach_port(self, index):
        # Our program is off the port's tcx hook at once (PASS in its place, no grace period);
        # PASS leaves after the reply. Closing the port's socket, before the reply, waits for
        # a grace period: no CPU still runs our program by the time the command returns.
        self.fast.detach_port(index, defer_tcx=True)

    def on_drained(self):
        counts = self.fast.join_counts() if self.fast.drains else None
        self._carry_out(self.handover.drained(self.relay.drained_gen, counts))

    def get_timer(self):
        if self.fast.unsettled:        # at once: a deadline already past
            return 0.0
        return self.handover.deadline()

    def handle_timer(self, now):
        self.fast.settle()
        self._carry_out(self.handover.tick(now))

    def _carry_out(self, actions):
        for action in actions:
            if isinstance(action, join.SetMode):
                self.fast.set_mode(action.mode)
            elif isinstance(action, join.RequestDrain):
                self.handover.requested(self.relay.request_drain(action.quiet))
            elif isinstance(action, join.Rebase):
                self.fast.rebase_join()
            elif isinstance(action, join.DrainTimedOut):
                passed, relayed = self.fast.join_counts()
                log.info("%s: the relay did not catch up while a port joined (%d frames handed to it, %d sent); "
                         "dropping until agrN's queue is empty", self.agr_name, passed, relayed)
            elif isinstance(action, join.JoinTimedOut):
                log.warning("%s: agrN's queue did not empty while a port joined; redirecting anyway", self.agr_name)
            else:
                raise TypeError(f"unknown join action {action!r}")

    def counters(self, indexes):
        totals, ports = super().counters(indexes)
        fast = self.fast.counters()
        for key, value in fast.items():  # both count while a port joins (frames held by the relay)
            if key != "ports":
                totals[key] = totals.get(key, 0) + value
        for index in indexes:
            for key, value in fast.get("ports", {}).get(index, {}).items():
                ports[index][key] = ports[index].get(key, 0) + value
        return totals, ports

    def close(self):
        if self.relay.tap_sink is self.fast.relayed:
            self.relay.tap_sink = None
        self.fast.close()
