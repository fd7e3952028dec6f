"""The worker's event loop and its wiring: one per agr interface.

A single thread serves the control socket, link events (linkwatch.py), Slow Protocols frames
from the relay thread, and the timers of the aggregation (aggregation.py), the data path
(datapath.py) and the control server. Ports are members.py's; the process around the loop is
process.py's.
"""
import collections
import errno
import logging
import os
import selectors
import signal
import socket
import time

from .. import options
from ..errors import AgrError
from ..ipc import server as control
from ..lacp import DistributingChanged, Transition
from ..net import rtnl
from . import (aggregation, announce, carrierpoll, datapath, failover, history, linkcheck, linkwatch, report,
               statefile)
from .dataplane import Relay
from .members import Members
from .port import Port, snapshot
from .tap import VNET_HDR_LEN, attached_name, open_tap, set_carrier, unpersist

MCAST_RESYNC = 5.0
ZERO_VNET = bytes(VNET_HDR_LEN)

log = logging.getLogger("agrconfig")


def default_flags():
    return options.defaults()


class Worker:
    def __init__(self, name, saved=None, held_tap=None, keeper=None):
        self.name = name
        self.saved = saved
        self.held_tap = held_tap   # the TAP fd our supervisor kept from the previous worker
        self.keeper = keeper       # where we hand our TAP fd to the supervisor
        self.flags = default_flags()
        self.members = None        # the ports, once agrN is there
        self.tap_fd = None
        self.tap_index = None
        self.mac = None
        self.protocol = aggregation.Static(self._act)  # until the flags are applied
        self.relay = None
        self.path = None           # the data path: relay or eBPF
        self.sel = None
        self.stopping = False
        self.slow_queue = collections.deque(maxlen=1024)  # bounded: the rate limit keeps it short
        self.slow_event = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.next_mcast = 0.0
        self.distributing = frozenset()
        self.collecting = frozenset()
        self.lacp_saved = {}       # the LACP snapshot last written to the state file
        self.resume_lacp = (saved or {}).get("lacp") or {}
        self.datapath_note = ""    # why the relay is used when eBPF was allowed
        self.history = history.History()  # per port: transitions, counts, last LACPDU
        self.carrier = None        # agrN's carrier as we last set it (agrminports)
        self.checker = None        # agrlinkcheck's probes and sockets, while it applies
        self.checker_fds = set()   # its sockets registered with the selector
        self.carrier_poll = None   # without LACP: distributing ports' carrier, polled

    # -- start ----------------------------------------------------------------
    def start(self):
        """Create (or re-attach to) the TAP and restore saved membership."""
        if self.saved is None:
            if rtnl.link(self.name) is not None:
                raise AgrError(errno.EEXIST, "SIOCIFCREATE", f"{self.name} already exists")
        if self.saved is not None and self.held_tap is not None and attached_name(self.held_tap) == self.name:
            self.tap_fd = self.held_tap  # the queue the dead worker read, with what waits in it
        else:
            if self.held_tap is not None:
                os.close(self.held_tap)
            try:
                self.tap_fd = open_tap(self.name)
            except OSError as exc:
                raise AgrError.from_oserror(exc, "SIOCIFCREATE", f"TAP {self.name}") from exc
        if self.keeper is not None:
            try:
                socket.send_fds(self.keeper, [b"tap"], [self.tap_fd])
            except OSError as exc:
                log.warning("%s: cannot hand the TAP to the supervisor: %s", self.name, exc)
        self._restore_carrier()
        try:
            link = rtnl.link(self.name)
            self.tap_index = link.index
            self.mac = link.mac
            try:
                self.listener = control.listen(self.name)
            except OSError as exc:
                raise AgrError(errno.EEXIST, "SIOCIFCREATE", f"a worker for {self.name} is running") from exc
        except Exception:
            if self.saved is None:
                unpersist(self.tap_fd)  # we made it: take it away again
            os.close(self.tap_fd)
            raise
        self.members = Members(self.name, self.tap_index)
        self.relay = Relay(self.tap_fd, self._slow_frame_from_relay)
        self.path = datapath.RelayPath(self.name, self.relay)
        if self.saved:
            self.flags.update(self.saved.get("flags", {}))
            for orig in self.saved["ports"]:
                self.members.resume(orig, self.mac)
        self._apply_flags()
        try:
            self._setup_datapath()
        except AgrError as exc:  # asked for eBPF, which is gone: keep the interface up anyway
            log.error("%s: %s; using the relay", self.name, exc)
            self.flags["datapath"] = "auto"
        self._save()
        self.relay.start()
        self._recompute()
        log.info("%s: worker started (%s, %d ports)", self.name,
                 "resumed" if self.saved else "created", len(self.members))

    # -- state ------------------------------------------------------------------
    def _save(self):
        self.lacp_saved = self.protocol.snapshot()
        statefile.save({"name": self.name, "ifindex": self.tap_index, "pid": os.getpid(),
                        "flags": self.flags, "ports": [p.to_state() for p in self.members],
                        "lacp": self.lacp_saved, "carrier": self.carrier})

    # -- aggregation --------------------------------------------------------------
    def _apply_flags(self):
        """Bring the aggregation and the data path in line with the flags."""
        self.path.set_policy(self.flags["hash"], self.flags["link0"])
        now = time.monotonic()
        if self.protocol.fits(self.flags):
            self.protocol.configure(now, self.flags)
        else:
            if self.flags["proto"] == "failover":
                self.protocol = failover.Failover(self._act, self._announcements,
                                                  self.flags["wtr_time"])
            else:
                self.protocol = aggregation.create(self.flags, self._system_mac(), now, self._act)
            self.resume_lacp = self.protocol.start(now, self.members, self.resume_lacp)
        self.protocol.set_system_mac(now, self._system_mac())  # lacpsysid set or cleared
        self._setup_linkcheck()
        if self.flags["proto"] != "lacp" and self.carrier_poll is None:
            self.carrier_poll = carrierpoll.CarrierPoll()
        elif self.flags["proto"] == "lacp" and self.carrier_poll is not None:
            self.carrier_poll.close()
            self.carrier_poll = None

    def _poll_carrier(self, now):
        """A distributing port whose carrier is gone leaves now, not when netlink says so."""
        if self.carrier_poll is None or not self.carrier_poll.due(now):
            return
        for port in self.members:
            if port.index in self.distributing and port.carrier and self.carrier_poll.link_ok(port.name) is False:
                port.carrier = False
                log.info("%s: port %s carrier down (polled)", self.name, port.name)
                self.protocol.set_carrier(now, port.index, port.up)
                self._recompute()

    # -- agrlinkcheck ---------------------------------------------------------------------------
    def _setup_linkcheck(self):
        """Run the link check the flags ask for: only without LACP, which has its own."""
        want = self.flags["linkcheck"] if self.flags["proto"] != "lacp" else None
        if self.checker is not None and self.checker.setting == want:
            return
        now = time.monotonic()
        if self.checker is not None:
            self._unwatch_checker()
            self.checker.close()
            self.checker = None
        if want:
            self.checker = linkcheck.Checker(want, now)
            for p in self.members:
                self.checker.add(now, p, assume_up=True)   # turning it on interrupts nothing
            self._watch_checker()
        for p in self.members:
            self._set_alive(p, True, now)

    def _watch_checker(self):
        if self.sel is None or self.checker is None:
            return   # run() registers them
        for index, sock in self.checker.socks.items():
            if sock.fileno() not in self.checker_fds:
                self.sel.register(sock, selectors.EVENT_READ, lambda i=index: self._on_linkcheck(i))
                self.checker_fds.add(sock.fileno())

    def _unwatch_checker(self, index=None):
        for i, sock in list(self.checker.socks.items()):
            if (index is None or i == index) and sock.fileno() in self.checker_fds:
                self.sel.unregister(sock)
                self.checker_fds.discard(sock.fileno())

    def _on_linkcheck(self, index):
        now = time.monotonic()
        self.checker.read(now, index)
        self._linkcheck_changes(self.checker.monitor.changes(now), now)

    def _linkcheck_changes(self, changes, now):
        for index, up in changes:
            port = self.members.find(index)
            if port is not None:
                log.info("%s: port %s linkcheck %s", self.name, port.name, "up" if up else "down: no answer")
                self._set_alive(port, up, now)

    def _set_alive(self, port, alive, now):
        if port.alive != alive:
            port.alive = alive
            self.protocol.set_carrier(now, port.index, port.up)
            self._recompute()

    def _system_mac(self):
        """The LACP System ID's MAC: lacpsysid when set, else agrN's own address (which
        follows the first port: lacpsysid keeps the LAG's identity when that port goes)."""
        return rtnl.mac_bytes(self.flags["lacp_sysid"] or self.mac)

    def _announcements(self):
        """Gratuitous ARP and unsolicited NA frames for agrN's addresses (failover's move)."""
        try:
            addrs = rtnl.addresses(self.tap_index)
        except (AgrError, OSError) as exc:
            log.warning("%s: no addresses to announce: %s", self.name, exc)
            return []
        return announce.frames(rtnl.mac_bytes(self.mac), [a.address for a in addrs])

    def _act(self, out):
        """Carry out the LACP core's Output: its events first, so the data path follows the
        mux before the frames (LACPDUs announcing it) leave."""
        changed = False
        for event in out.events:
            if isinstance(event, DistributingChanged):
                changed = True
            elif isinstance(event, Transition):
                self.history.record(event)
                if self.flags["debug"]:
                    log.info("%s: %s %s: %s -> %s (%s)", self.name, self.members.name_of(event.port_id),
                             event.machine, event.old, event.new, event.reason)
            else:
                log.info("%s: %s", self.name, event)
        if changed:
            self._recompute()
        for frame in out.frames:
            self._transmit(frame)
        if self.protocol.snapshot() != self.lacp_saved:
            self._save()  # a restarted worker resumes from this

    def _transmit(self, action):
        port = self.members.find(action.port_id)
        if port and port.sock:
            try:
                port.sock.send(ZERO_VNET + action.frame)
            except OSError as exc:
                log.debug("%s: send on %s: %s", self.name, port.name, exc)

    def _slow_frame_from_relay(self, index, frame):
        # Called from the relay thread: hand over to the main loop.
        self.slow_queue.append((index, frame))
        os.eventfd_write(self.slow_event, 1)

    def _on_slow_event(self):
        datapath.took(self.slow_event)  # the queue is read whatever the count
        now = time.monotonic()
        while self.slow_queue:
            index, frame = self.slow_queue.popleft()
            if self.members.find(index):
                self.protocol.receive(now, index, frame)

    # -- data path ----------------------------------------------------------------
    def _setup_datapath(self):
        """Use the kernel fast path or the relay, as the datapath flag allows."""
        use_ebpf, note = datapath.choose(self.flags["datapath"])
        if note is not None:
            self.datapath_note = note
        if use_ebpf == (self.path.name == "ebpf"):
            return
        if use_ebpf:
            distributing, collecting = self.protocol.sets(self.members)
            self.path = datapath.EbpfPath.open(self.name, self.relay, self.tap_index, self.flags["hash"],
                                               self.flags["link0"], list(self.members), distributing, collecting)
        else:
            self.path.close()
            self.path = datapath.RelayPath(self.name, self.relay)
        # The port sockets take only Slow Protocols frames while the kernel moves the rest.
        self.relay.set_ports([], set(), set())  # the relay lets go of the sockets closed below
        for p in self.members:
            p.open_socket(slow_only=self.path.slow_only)
            self.members.sync_memberships(p)
        self.distributing = self.collecting = None  # force the new path to get the sets
        self._recompute()
        log.info("%s: datapath %s", self.name, self.path.name)

    def _recompute(self):
        """Derive the distributing and collecting sets and hand them to the data path."""
        distributing, collecting = self.protocol.sets(self.members)
        if (distributing, collecting) != (self.distributing, self.collecting):
            log.info("%s: distributing on %s", self.name,
                     ", ".join(self.members.name_of(i) for i in sorted(distributing)) or "no port")
        self.distributing, self.collecting = distributing, collecting
        self.path.set_ports(list(self.members), distributing, collecting)
        self._update_carrier()

    def _restore_carrier(self):
        """A restarted worker's attach turned agrN's carrier on: put back what the dead one
        had set, before anything else can see it."""
        saved = (self.saved or {}).get("carrier")
        if isinstance(saved, bool):
            self._set_carrier(saved)

    def _update_carrier(self):
        """agrminports: agrN has carrier while at least min_ports ports distribute (0: always)."""
        wanted = len(self.distributing) >= self.flags["min_ports"]
        if wanted != self.carrier:
            log.info("%s: carrier %s (%d of agrminports %d distributing)", self.name,
                     "on" if wanted else "off", len(self.distributing), self.flags["min_ports"])
            self._set_carrier(wanted)
            self._save()

    def _set_carrier(self, on):
        try:
            set_carrier(self.tap_fd, on)
            self.carrier = on
        except OSError as exc:   # a kernel without TUNSETCARRIER (before 5.0): carrier stays on
            log.warning("%s: cannot set the carrier: %s", self.name, exc)
            self.carrier = True

    def _on_drained(self):
        if datapath.took(self.relay.drained):
            self.path.on_drained()

    def _on_tap_gone(self):
        if datapath.took(self.relay.tap_gone):
            self._link_event(self.tap_index, gone=True)

    # -- ports --------------------------------------------------------------------
    def add_port(self, name):
        link = self.members.check_new(name)
        port = Port(snapshot(link))
        first = not len(self.members)
        old_mac = self.mac
        # Saved before any change: a crash from here on still restores the port.
        self.members.add(port)
        self._save()
        try:
            if first and link.mac != self.mac:
                rtnl.set_mac(self.tap_index, link.mac)
                self.mac = link.mac
                self.protocol.set_system_mac(time.monotonic(), self._system_mac())
            self.members.attach(port, self.mac, slow_only=self.path.slow_only)
            self.path.attach_port(port.index)
        except Exception:
            self.members.remove(port)
            self.path.detach_port(port.index)
            port.restore()
            if self.mac != old_mac:
                try:
                    rtnl.set_mac(self.tap_index, old_mac)
                    self.mac = old_mac
                except AgrError:
                    pass
            self._save()
            raise
        if self.checker is not None:   # down until a target answers on it
            self.checker.add(time.monotonic(), port)
            port.alive = False
            self._watch_checker()
        self.protocol.add_port(time.monotonic(), port)
        self._recompute()
        log.info("%s: port %s attached", self.name, name)

    def set_port(self, name, flags):
        """A port's own settings (agrportpri): only of a port attached to us."""
        port = self.members.by_name(name)
        if port is None:
            raise AgrError(errno.ENOENT, "SIOCSETAGR", f"{name} is not a port of {self.name}")
        port.options.update(flags)
        self.protocol.configure_port(time.monotonic(), port)
        log.info("%s: port %s: %s", self.name, name,
                 ", ".join(f"{k} {v}" for k, v in sorted(flags.items())))

    def del_port(self, name):
        self._drop_port(self.members.check_leaving(name), restore=True)

    def _drop_port(self, port, restore):
        if self.checker is not None:
            self._unwatch_checker(port.index)
            self.checker.remove(port.index)
        self.members.remove(port)
        self.protocol.remove_port(time.monotonic(), port.index)
        self.history.forget(port.index)
        self._recompute()
        self.path.detach_port(port.index)
        self.members.release(port, restore)
        self._save()
        log.info("%s: port %s detached", self.name, port.name)

    # -- link events ------------------------------------------------------------------------
    def _on_netlink(self):
        for event in self.linkwatch.read():
            self._link_event(event.index, gone=isinstance(event, linkwatch.LinkGone))

    def _link_event(self, index, gone=False):
        """Something changed on link `index` (None: anything, events were lost)."""
        ours = index in (None, self.tap_index)  # agrN itself, or everything (events were lost)
        ports = [p for p in self.members if ours or p.index == index]
        if not ours and not ports:
            return
        deleted = ours and gone and index is not None
        tap = None if deleted else rtnl.link(index=self.tap_index)
        if ours and tap is None:  # deleted: seen, or found after lost events
            log.warning("%s: deleted by someone else; giving the ports back", self.name)
            self.stopping = True
            return
        if ours:
            self.members.sync_memberships()
            if tap is not None and tap.mac != self.mac:
                # `ip link set agrN address ...`: the ports and the LACP system follow.
                log.info("%s: link address changed to %s", self.name, tap.mac)
                self.mac = tap.mac
                self.protocol.set_system_mac(time.monotonic(), self._system_mac())
        addrs = rtnl.all_addresses() if ports else {}
        for port in ports:
            link = rtnl.link(index=port.index)
            if link is None:
                log.warning("%s: port %s went away", self.name, port.name)
                self._drop_port(port, restore=False)
                continue
            if link.name != port.name:
                log.warning("%s: port %s was renamed %s; it stays a port", self.name, port.name, link.name)
                port.rename(link.name)
                self._save()
            self.members.revert_changes(port, link, tap, addrs.get(port.index, []), self.mac)
            carrier = link.carrier and link.up
            if carrier != port.carrier:
                port.carrier = carrier
                log.info("%s: port %s carrier %s", self.name, port.name, "up" if carrier else "down")
                if self.checker is not None and carrier:   # back: it proves itself again
                    self.checker.monitor.reset(time.monotonic(), port.index)
                    port.alive = False
                self.protocol.set_carrier(time.monotonic(), port.index, port.up)
                self._recompute()

    # -- control ----------------------------------------------------------------------------
    def handle(self, req):
        op = req["op"]
        if op == "status":
            return self.status().to_json()
        if op == "addport":
            self.add_port(str(req["port"]))
        elif op == "delport":
            self.del_port(str(req["port"]))
        elif op == "setflags":
            changes = {k: v for k, v in req.get("flags", {}).items() if k in self.flags}
            before = dict(self.flags)
            self.flags.update(changes)
            try:
                self._apply_flags()
                self._setup_datapath()
            except AgrError:
                self.flags = before
                self._apply_flags()
                raise
            self._recompute()
        elif op == "setport":
            self.set_port(str(req["port"]), req["flags"])
        elif op == "setmtu":
            self.members.set_mtu(int(req["mtu"]))
        elif op == "shutdown":
            self.stopping = True
        elif op in ("ping", "save"):
            pass  # save: the state file is written below (the front end found it unusable)
        else:
            raise AgrError(errno.EINVAL, "control", f"unknown request {op!r}")
        if op not in ("shutdown", "ping"):
            self._save()
        return self.status().to_json()

    def status(self):
        """agrN's AggregateStatus (agrconfig.status), built by report.py."""
        return report.aggregate_status(
            name=self.name, pid=os.getpid(), mac=self.mac, flags=self.flags, aggregation=self.protocol,
            path=self.path, datapath_note=self.datapath_note, ports=list(self.members),
            collecting=self.collecting, distributing=self.distributing, history=self.history,
            checker=self.checker, now=time.monotonic())

    # -- loop ---------------------------------------------------------------------------------
    def run(self):
        self.sel = selectors.DefaultSelector()
        self.linkwatch = linkwatch.LinkWatch()
        # Signals wake the loop: PEP 475 would otherwise resume select() and ignore them.
        sig_r, sig_w = socket.socketpair()
        sig_r.setblocking(False)
        sig_w.setblocking(False)
        signal.set_wakeup_fd(sig_w.fileno(), warn_on_full_buffer=False)
        self.sel.register(sig_r, selectors.EVENT_READ, lambda: sig_r.recv(4096))
        # Requests are read, handled and answered from this loop without blocking it.
        self.control = control.Server(self.listener, self.sel, self.handle)
        self.sel.register(self.linkwatch, selectors.EVENT_READ, self._on_netlink)
        self.sel.register(self.slow_event, selectors.EVENT_READ, self._on_slow_event)
        self.sel.register(self.relay.drained, selectors.EVENT_READ, self._on_drained)
        self.sel.register(self.relay.tap_gone, selectors.EVENT_READ, self._on_tap_gone)
        self._watch_checker()
        self._link_event(None)  # catch up with anything missed while starting
        while not self.stopping:
            now = time.monotonic()
            timers = (self.protocol.get_timer(), self.path.get_timer(), self.control.next_deadline(),
                      self.checker and self.checker.get_timer(), self.carrier_poll and self.carrier_poll.next)
            deadline = min([self.next_mcast] + [t for t in timers if t is not None])
            for key, _ in self.sel.select(max(0.0, deadline - now)):
                try:
                    key.data()
                except Exception:  # one bad event must not take the interface down
                    log.exception("%s: error handling an event", self.name)
                if self.stopping:
                    break
            now = time.monotonic()
            self.control.handle_timer(now)
            self.protocol.handle_timer(now)
            self.path.handle_timer(now)
            if self.checker is not None:
                self._linkcheck_changes(self.checker.handle_timer(now), now)
            self._poll_carrier(now)
            if now >= self.next_mcast:
                self.members.sync_memberships()
                self.next_mcast = now + MCAST_RESYNC
        self.shutdown()

    def shutdown(self):
        """Give every port back, remove agrN and every file, and exit."""
        log.info("%s: shutting down", self.name)
        self.relay.stop()
        if self.checker is not None:
            self.checker.close()
        self.path.close()
        self.members.restore_all()
        statefile.remove(self.name)
        try:
            unpersist(self.tap_fd)
        except OSError:
            pass
        self.listener.close()
