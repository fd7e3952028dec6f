"""The data path: how frames other than Slow Protocols move between agrN and its ports.

Two implementations of one interface: the relay (dataplane.py's thread copies every frame)
and eBPF (fastpath.py's tc programs move frames in the kernel while the relay thread still
carries the Slow Protocols frames of the ports' sockets). The worker chooses with `choose`.
"""
import abc
import errno
import logging
import os
import time

from ..errors import AgrError

log = logging.getLogger("agrconfig")


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
        """The next deadline of the data path, or None."""

    @abc.abstractmethod
    def handle_timer(self, now):
        """Called after each turn of the loop."""

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
        return totals, ports

    def close(self):
        pass


class EbpfPath(RelayPath):
    """Frames through tc eBPF programs; the relay keeps the ports' Slow Protocols frames."""
    name = "ebpf"
    slow_only = True

    # A port joining the fast path moves flows to it while their earlier frames may still
    # wait in another port's queue. So, as the relay does, hold them for a moment: the
    # egress program hands frames on to agrN's own queue ("pass"), where the relay thread
    # holds them (dataplane.HOLD) and then sends them on the new ports. When the hold is
    # over the program drains ("drain"): a frame goes on to the relay while the relay has
    # not sent all it was handed (the join map's counters differ), else the kernel
    # redirects it, as it is then behind every earlier frame of its flow. Once agrN's queue
    # has been quiet for JOIN_QUIET with the counters equal, the program redirects again
    # without looking ("normal"). Nothing is dropped and no frame overtakes an older one.
    # Where the kernel has no join map, or the relay never catches up (a stream faster than
    # it, or frames lost on their way into agrN's queue, so the counters stay apart) within
    # DRAIN_TIMEOUT, the program drops instead for the instant it takes to empty that queue
    # ("drop"), then redirects.
    JOIN_QUIET = 0.001
    DRAIN_TIMEOUT = 0.25
    JOIN_TIMEOUT = 1.0

    def __init__(self, agr_name, relay, fast):
        super().__init__(agr_name, relay)
        self.fast = fast
        self.join_deadline = None  # a port joining: when to stop holding at the latest
        self.join_request = None   # the relay's drain request that the join waits for
        self.stage_deadline = None  # the pass stage's end (the hold), or the drain stage's limit
        self.last_counts = None    # the join counters at the last quiet moment that found them apart
        if fast.drains:
            relay.tap_sink = fast.relayed
        else:
            log.info("%s: this kernel has no mmap-able BPF maps or atomic fetch: a joining port "
                     "costs the frames of a moment (%s)", agr_name, fast.no_drain)

    @classmethod
    def open(cls, agr_name, relay, tap_index, policy, round_robin, ports, distributing, collecting):
        from .fastpath import FastPath
        fast = FastPath(tap_index, policy, round_robin)
        try:
            # The maps are right before any program goes in: a dead worker's programs,
            # still moving frames, are then replaced atomically (no gap, no reordering).
            fast.set_ports([p.index for p in ports if p.index in distributing])
            fast.set_collecting([p.index for p in ports if p.index in collecting])
            for p in ports:
                fast.attach_port(p.index)
            fast.attach_tap()
        except Exception:
            fast.close()
            raise
        return cls(agr_name, relay, fast)

    @property
    def mode(self):
        return self.fast.mode

    def set_policy(self, policy, round_robin):
        super().set_policy(policy, round_robin)
        self.fast.set_policy(policy, round_robin)

    def set_ports(self, ports, distributing, collecting):
        super().set_ports(ports, distributing, collecting)
        indexes = [p.index for p in ports if p.index in distributing]
        old = set(self.fast.distributing)
        # A hand-over only while a port that distributed may still hold older frames: after
        # a carrier loss (failover's move) their queues are gone, so nothing can be overtaken.
        if old and set(indexes) - old and any(p.carrier for p in ports if p.index in old):
            self._begin_join()
        self.fast.set_ports(indexes)
        self.fast.set_collecting([p.index for p in ports if p.index in collecting])

    def attach_port(self, index):
        self.fast.attach_port(index)

    def detach_port(self, index):
        self.fast.detach_port(index)

    def _begin_join(self):
        now = time.monotonic()
        if self.fast.drains and self.fast.mode == "normal":
            self.fast.rebase_join()
        self.fast.set_mode("pass")
        self.join_deadline = now + self.JOIN_TIMEOUT
        if self.fast.drains:
            # The relay holds from its set_ports (just now) for HOLD: drain after that.
            from .dataplane import HOLD
            self.join_request = None
            self.stage_deadline = max(self.relay.hold_until, now + HOLD)
        else:
            self.join_request = self.relay.request_drain()
            self.stage_deadline = None

    def _begin_drain(self):
        self.fast.set_mode("drain")
        self.last_counts = None
        self.join_request = self.relay.request_drain(self.JOIN_QUIET)
        self.stage_deadline = time.monotonic() + self.DRAIN_TIMEOUT

    def _begin_drop(self):
        self.fast.set_mode("drop")
        self.join_request = self.relay.request_drain(self.JOIN_QUIET)
        self.stage_deadline = None

    def on_drained(self):
        if self.fast.mode == "normal":
            return
        if self.join_request is None or self.relay.drained_gen != self.join_request:
            return  # the answer to an earlier request (a join that began again meanwhile)
        if self.fast.mode == "pass":
            self._begin_drop()  # no join map: the relay has caught up, drop while the queue empties
        elif self.fast.mode == "drain":
            counts = self.fast.join_counts()
            # Equal: everything handed to the relay has gone. Apart but unchanged over two
            # quiet periods: the difference was lost on the way into agrN's queue.
            if counts[0] == counts[1] or counts == self.last_counts:
                self._end_join()
            else:  # a frame on its way into agrN's queue: look again after a quiet period
                self.last_counts = counts
                self.join_request = self.relay.request_drain(self.JOIN_QUIET)
        else:
            self._end_join()

    def _end_join(self):
        self.fast.set_mode("normal")
        self.join_deadline = self.stage_deadline = self.join_request = None

    def get_timer(self):
        timers = [t for t in (self.join_deadline, self.stage_deadline) if t is not None]
        return min(timers) if timers else None

    def handle_timer(self, now):
        if self.join_deadline is not None and now >= self.join_deadline:
            log.warning("%s: agrN's queue did not empty while a port joined; redirecting anyway", self.agr_name)
            self._end_join()
        elif self.stage_deadline is not None and now >= self.stage_deadline:
            if self.fast.mode == "pass":
                self._begin_drain()
            elif self.fast.mode == "drain":
                passed, relayed = self.fast.join_counts()
                log.info("%s: the relay did not catch up while a port joined (%d frames handed to it, %d sent); "
                         "dropping until agrN's queue is empty", self.agr_name, passed, relayed)
                self._begin_drop()

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
