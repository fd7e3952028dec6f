"""The worker's components around its two swappable parts, the aggregation and the data path,
and the small ones: the multicast resync, the signal wakeup and agrN's carrier (agrminports).

Each is a component.Component: the loop registers its fds and calls it back with the turn's
`now`. The aggregation (aggregation.py, failover.py) and the data path (datapath.py) keep
their own interfaces (get_timer / handle_timer(now)); the parts here hold the current one.
"""
import array
import collections
import os
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB

from ..errors import AgrError
from ..net import ethtool
from . import datapath
from .component import READ, Component
from .tap import attached_name, open_tap, set_carrier
from ..logger import log

MCAST_RESYNC = 5.0



class AggregationPart(Component):
    """The aggregation (LACP, static or failover) as the loop drives it: its timer, and the
    Slow Protocols frames the relay thread hands over through an eventfd. `current` is
    replaced when the flags ask for another kind; `is_port(index)` says a port is ours."""

    def __init__(self, aggregation, is_port):
        self.current = aggregation
        self.is_port = is_port
        self.queue = collections.deque(maxlen=1024)  # bounded: the rate limit keeps it short
        self.event = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def from_relay(self, index, frame):
        """Called from the relay thread: hand over to the loop."""
        self.queue.append((index, frame))
        os.eventfd_write(self.event, 1)

    def fds(self):
        return ((self.event, None, READ),)

    def on_readable(self, now, _key):
        datapath.took(self.event)  # the queue is read whatever the count
        while self.queue:
            index, frame = self.queue.popleft()
            if self.is_port(index):
                self.current.receive(now, index, frame)

    def deadline(self):
        return self.current.get_timer()

    def on_timer(self, now):
        self.current.handle_timer(now)


class DataPathPart(Component):
    """The data path (relay or eBPF) as the loop drives it: its timer, the relay's answers to
    drain requests, and the relay's word that the TAP is gone (`on_tap_gone(now)`)."""

    def __init__(self, path, relay, on_tap_gone):
        self.path = path
        self.relay = relay
        self.on_tap_gone = on_tap_gone

    def fds(self):
        return ((self.relay.drained, "drained", READ), (self.relay.tap_gone, "tap_gone", READ))

    def on_readable(self, now, key):
        if key == "drained" and datapath.took(self.relay.drained):
            self.path.on_drained()
        elif key == "tap_gone" and datapath.took(self.relay.tap_gone):
            self.on_tap_gone(now)

    def deadline(self):
        return self.path.get_timer()

    def on_timer(self, now):
        self.path.handle_timer(now)

    def switch(self, name, use_ebpf, tap_index, flags, ports, distributing, collecting, slb_plan=None):
        """Move to the eBPF fast path or back to the relay; False if already there. slb_plan:
        agrproto slb's current Plan (slb.py), in the maps before the programs go in."""
        if use_ebpf == (self.path.name == "ebpf"):
            return False
        if use_ebpf:
            self.path = datapath.EbpfPath.open(name, self.relay, tap_index, flags["hash"], flags["link0"],
                                               ports, distributing, collecting, slb_plan)
        else:
            self.path.close()
            self.path = datapath.RelayPath(name, self.relay)
        return True


class MulticastResync(Component):
    """Push agrN's multicast list and modes to the ports every MCAST_RESYNC seconds, in case an
    event was missed (`sync()` does it)."""

    def __init__(self, sync):
        self.sync = sync
        self.next = 0.0

    def deadline(self):
        return self.next

    def on_timer(self, now):
        if now >= self.next:
            self.sync()
            self.next = now + MCAST_RESYNC


class SignalWake(Component):
    """The read end of signal.set_wakeup_fd: a signal wakes the loop (PEP 475 would otherwise
    resume select() and ignore it), which then sees the flag the handler set."""

    def __init__(self, sock):
        self.sock = sock

    def fds(self):
        return ((self.sock, None, READ),)

    def on_readable(self, now, _key):
        self.sock.recv(4096)


class TapCarrier:
    """agrN's carrier (agrminports): on while at least min_ports ports distribute (0: always).
    `on` is what we last set (None: not yet), which the state file keeps."""

    def __init__(self, name, tap_fd, saved=None):
        self.name, self.tap_fd = name, tap_fd
        self.on = None
        # A restarted worker's attach turned the carrier on: put back what the dead one had
        # set (`saved`: True, False, or anything else for nothing known).
        if isinstance(saved, bool):
            self._set(saved)

    def update(self, distributing, min_ports):
        """True if the carrier changed (to be saved) for `distributing` ports."""
        wanted = distributing >= min_ports
        if wanted == self.on:
            return False
        log.info("%s: carrier %s (%d of agrminports %d distributing)", self.name,
                 "on" if wanted else "off", distributing, min_ports)
        self._set(wanted)
        return True

    def _set(self, on):
        try:
            set_carrier(self.tap_fd, on)
            self.on = on
        except OSError as exc:   # a kernel without TUNSETCARRIER (before 5.0): carrier stays on
            log.warning("%s: cannot set the carrier: %s", self.name, exc)
            self.on = True


class TapSpeed:
    """agrN's speed and duplex as ethtool reports them (ETHTOOL_SLINKSETTINGS on the TAP,
    which tun stores): the sum of the distributing ports' speeds, full duplex; unknown when
    none distributes. `mode` is what we last set (None: not yet)."""

    def __init__(self, name):
        self.name = name
        self.mode = None
        self.warned = False

    def update(self, speeds):
        """Set the speed for distributing ports of these `speeds`; True if it changed."""
        mode = ethtool.aggregate_mode(speeds)
        if mode == self.mode:
            return False
        try:
            ethtool.set_link_mode(self.name, mode.speed, mode.duplex_full)
        except OSError as exc:   # reported once: the speed is a courtesy to readers
            if not self.warned:
                log.warning("%s: cannot set the link speed: %s", self.name, exc)
                self.warned = True
            return False
        log.info("%s: speed %s", self.name, f"{mode.speed} Mb/s" if mode.speed else "unknown")
        self.mode = mode
        return True


def take_tap(name, resuming, held_tap, keeper):
    """agrN's TAP fd: the one the supervisor kept from the dead worker (`held_tap`) when we
    resume and it is still agrN's, else a new attach. Handed to the supervisor (`keeper`)."""
    if resuming and held_tap is not None and attached_name(held_tap) == name:
        fd = held_tap  # the queue the dead worker read, with what waits in it
    else:
        if held_tap is not None:
            os.close(held_tap)
        try:
            fd = open_tap(name)
        except OSError as exc:
            raise AgrError.from_oserror(exc, "SIOCIFCREATE", f"TAP {name}") from exc
    if keeper is not None:
        try:
            keeper.sendmsg([b"tap"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        except OSError as exc:
            log.warning("%s: cannot hand the TAP to the supervisor: %s", name, exc)
    return fd


class NoLinkCheck(Component):
    """No agrlinkcheck (off, or LACP, which has its own): every port is up as far as it goes."""
    running = False
    setting = None

    def start(self, now, ports):
        pass

    def add_port(self, now, port):
        pass

    def remove_port(self, index):
        pass

    def carrier_back(self, now, port):
        pass

    def status(self, now, index):
        return None
