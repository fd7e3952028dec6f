"""The worker of one agr interface: its parts, wired together, and its control requests.

The loop (component.py) drives the components: the control server (ipc/server.py), the link
watch (linkwatch.py), the aggregation and the Slow Protocols frames the relay thread hands
over, the data path (parts.py around aggregation.py and datapath.py), the link check
(linkcheck.py), the carrier poll (carrierpoll.py) and the multicast resync. An absent part is
a null object. Port changes are transactions.py's; the ports are members.py's; the process
around the worker is process.py's.
"""
import errno
import os
import _signal   # not signal.py: its IntEnum conversions import enum into every worker
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB
import time

from .. import options
from ..errors import AgrError
from ..ipc import server as control
from ..lacp import DistributingChanged, SelectionChanged, Transition
from ..net import rtnl
from . import aggregation, datapath, history, linkwatch, macpolicy, report, requests, statefile
from .announcer import AggregatorWatch, Announcer, KernelFacts
from .carrierpoll import CarrierPoll, NoCarrierPoll
from .component import Loop
from .dataplane import Relay
from .linkstate import LinkState
from .members import Members
from .parts import (AggregationPart, DataPathPart, MulticastResync, NoLinkCheck, SignalWake, TapCarrier, TapSpeed,
                    take_tap)
from .tap import unpersist
from .transactions import PortTransactions
from .vlanfilter import VlanFilter
from ..logger import log



def default_flags():
    return options.defaults()


class Worker:
    """agrN's worker: its parts (the components the loop drives), the flags applied to them,
    and what they tell one another."""

    def __init__(self, name, saved=None, held_tap=None, keeper=None, clock=time.monotonic):
        self.name = name
        self.saved = saved
        self.held_tap = held_tap   # the TAP fd our supervisor kept from the previous worker
        self.keeper = keeper       # where we hand our TAP fd to the supervisor
        self.clock = clock         # monotonic seconds: the loop reads it once a turn
        self.flags = default_flags()
        self.members = Members(name, None)  # agrN's ports (its index is known in start())
        self.tap_fd = self.tap_index = self.mac = None
        self.agg = AggregationPart(aggregation.Static(self._act), self.members.find)  # Static until the flags apply
        self.stopping = False
        self.distributing = self.collecting = frozenset()
        self.lacp_saved = {}       # the LACP snapshot last written to the state file
        self.resume_lacp = (saved or {}).get("lacp") or {}
        self.datapath_note = ""    # why the relay is used when eBPF was allowed
        self.history = history.History(clock)  # per port: transitions, counts, last LACPDU
        self.linkcheck = NoLinkCheck()      # agrlinkcheck's probes, while it applies (linkcheck.py, loaded then)
        self.carrier_poll = NoCarrierPoll()           # without LACP: distributing ports' carrier
        self.ports = PortTransactions(self)
        self.links = LinkState(self)
        self.vlans = VlanFilter(self)              # the ports' hardware VLAN filters
        # agrannounce: announcements after a failover move or a new LACP aggregation
        self.announcer = Announcer(self.members.send, KernelFacts(lambda: self.tap_index, lambda: self.mac),
                                   lambda: self.flags["announce"])
        self.aggregator = AggregatorWatch()

    @property
    def aggregation(self):
        """LACP, static or failover (aggregation.py, failover.py)."""
        return self.agg.current

    @property
    def path(self):
        """The data path: relay or eBPF (datapath.py)."""
        return self.datapath.path

    # -- start ----------------------------------------------------------------
    def start(self):
        """Create (or re-attach to) the TAP and restore saved membership."""
        if self.saved is None and rtnl.link(self.name) is not None:
            raise AgrError(errno.EEXIST, "SIOCIFCREATE", f"{self.name} already exists")
        self.tap_fd = take_tap(self.name, self.saved is not None, self.held_tap, self.keeper)
        self.tap_carrier = TapCarrier(self.name, self.tap_fd, (self.saved or {}).get("carrier"))
        self.tap_speed = TapSpeed(self.name)
        try:
            link = rtnl.link(self.name)
            self.tap_index, self.mac = link.index, link.mac
            try:
                self.listener = control.listen(self.name)
            except OSError as exc:
                raise AgrError(errno.EEXIST, "SIOCIFCREATE", f"a worker for {self.name} is running") from exc
        except Exception:
            if self.saved is None:
                unpersist(self.tap_fd)  # we made it: take it away again
            os.close(self.tap_fd)
            raise
        self.members.tap_index = self.tap_index
        self.relay = Relay(self.tap_fd, self.agg.from_relay, clock=self.clock)
        self.datapath = DataPathPart(datapath.RelayPath(self.name, self.relay), self.relay,
                                     lambda now: self.links.changed(now, self.tap_index, gone=True))
        now = self.clock()
        if self.saved:
            self.flags.update(self.saved.get("flags", {}))
            # Under agrmacpolicy active or follow a port's MAC is left alone here: the policy
            # (apply_macs, once the active port is known) sets each one live, with no bounce.
            same = self.mac_policy() is macpolicy.MacPolicy.SAME
            for orig in self.saved["ports"]:
                self.members.resume(orig, self.mac if same else None)
        self._apply_flags(now)
        try:
            self._setup_datapath()
        except AgrError as exc:  # asked for eBPF, which is gone: keep the interface up anyway
            log.error("%s: %s; using the relay", self.name, exc)
            self.flags["datapath"] = "auto"
        self.save()
        self.relay.start()
        self.recompute()
        log.info("%s: worker started (%s, %d ports)", self.name,
                 "resumed" if self.saved else "created", len(self.members))

    def save(self):
        self.lacp_saved = self.aggregation.snapshot()
        statefile.save({"name": self.name, "ifindex": self.tap_index, "pid": os.getpid(),
                        "flags": self.flags, "ports": [p.to_state() for p in self.members],
                        "lacp": self.lacp_saved, "carrier": self.tap_carrier.on})

    # -- the parts the flags choose ---------------------------------------------------------
    def _apply_flags(self, now):
        """Bring the aggregation, the link check and the carrier poll in line with the flags."""
        self.path.set_policy(self.flags["hash"], self.flags["link0"])
        proto = self.flags["proto"]
        if self.aggregation.fits(self.flags):
            self.aggregation.configure(now, self.flags)
        else:
            if proto == "failover":
                from .failover import Failover   # a worker imports only the protocol it runs
                self.agg.current = Failover(self._act, self.announcer.moved, self.flags["wtr_time"],
                                            moving=lambda active: self.apply_macs(self.clock()))
            else:
                self.agg.current = aggregation.create(self.flags, self.system_mac(), now, self._act,
                                                      lambda t: self.path.slb_learned(t))
            self.resume_lacp = self.aggregation.start(now, self.members, self.resume_lacp)
        self.aggregation.set_system_mac(now, self.system_mac())  # lacpsysid set or cleared
        self.apply_macs(now, strict=True)   # agrmacpolicy, lladdr, or agrproto changed
        # The link check only without LACP, which has its own.
        want = self.flags["linkcheck"] if proto != "lacp" else None
        if self.linkcheck.setting != want:
            self.linkcheck.close()
            if want:
                from .linkcheck import LinkCheck
                self.linkcheck = LinkCheck(want, now, self.links.verdict)
            else:
                self.linkcheck = NoLinkCheck()
            self.linkcheck.start(now, self.members)
            for p in self.members:
                self.links.set_alive(now, p, True)
        if (proto != "lacp") != self.carrier_poll.running:
            self.carrier_poll.close()
            self.carrier_poll = NoCarrierPoll() if proto == "lacp" else CarrierPoll(
                lambda: (p for p in self.members if p.index in self.distributing), self.links.carrier_lost)

    def _setup_datapath(self):
        """Use the kernel fast path or the relay, as the datapath flag allows."""
        use_ebpf, note = datapath.choose(self.flags["datapath"])
        if note is not None:
            self.datapath_note = note
        sets = self.aggregation.sets(self.members)
        plan = self.aggregation.slb_preview([p.index for p in self.members], sets[0])
        if not self.datapath.switch(self.name, use_ebpf, self.tap_index, self.flags, list(self.members),
                                    *sets, plan):
            return
        # The port sockets take only Slow Protocols frames while the kernel moves the rest.
        self.relay.set_ports([], set(), set())  # the relay lets go of the sockets closed below
        self.members.reopen_sockets(self.path.slow_only)
        self.distributing = self.collecting = None  # force the new path to get the sets
        self.recompute()
        log.info("%s: datapath %s", self.name, self.path.name)

    # -- what the aggregation tells us -------------------------------------------------------
    def system_mac(self):
        """The LACP System ID's MAC: lacpsysid when set, else agrN's own address (which
        follows the first port: lacpsysid keeps the LAG's identity when that port goes)."""
        return rtnl.mac_bytes(self.flags["lacp_sysid"] or self.mac)

    # -- agrmacpolicy and lladdr (macpolicy.py) ----------------------------------------------
    def mac_policy(self):
        return macpolicy.effective(self.flags["mac_policy"], self.flags["proto"])

    def mac_plan(self):
        return macpolicy.plan(self.mac_policy(), self.mac, self.flags["lladdr"], self.aggregation.active,
                              [(p.index, p.orig["mac"]) for p in self.members])

    def port_mac(self, port):
        """The MAC port `port` carries now (a new port: its own, except under same)."""
        want = self.mac_plan().port(port.index)
        if want is None:   # not a member yet
            return self.mac if self.mac_policy() is macpolicy.MacPolicy.SAME else port.orig["mac"]
        return want

    def apply_macs(self, now, strict=False):
        """Give agrN and each port the MAC the policy wants, live (a bounce would be a carrier
        loss and a failover of its own). `strict`: a refused change of agrN's MAC raises."""
        plan = self.mac_plan()
        if plan.agr != self.mac:
            try:
                self._set_mac(plan.agr)
            except AgrError as exc:
                if strict:
                    raise
                log.error("%s: cannot take address %s: %s", self.name, plan.agr, exc)
            else:
                self.aggregation.set_system_mac(now, self.system_mac())
        for index, mac in plan.ports:
            link = rtnl.link(index=index)
            if link is not None and link.mac != mac:
                try:
                    rtnl.set_mac(index, mac)
                except AgrError as exc:
                    log.error("%s: cannot give port %s address %s: %s", self.name, link.name, mac, exc)

    def _set_mac(self, mac):
        if mac != self.mac:
            rtnl.set_mac(self.tap_index, mac)
            log.info("%s: link address %s", self.name, mac)
            self.mac = mac

    def link_address_changed(self, now, mac):
        """Another tool changed agrN's MAC: set back while lladdr or the active port fixes it,
        else followed (the ports and the LACP system follow it)."""
        if macpolicy.fixed(self.mac_policy(), self.flags["lladdr"], self.aggregation.active):
            log.warning("%s: link address was changed to %s; set back to %s", self.name, mac, self.mac)
            try:
                rtnl.set_mac(self.tap_index, self.mac)
            except AgrError as exc:
                log.error("%s: cannot set the link address back: %s", self.name, exc)
            return
        log.info("%s: link address changed to %s", self.name, mac)
        self.mac = mac
        self.aggregation.set_system_mac(now, self.system_mac())
        self.apply_macs(now)

    def _announce_address(self):
        """agrN's MAC changed (lladdr): announced from one distributing port, as after a move
        (a failover's move announces by itself)."""
        port = min(self.distributing or (), default=None)
        if port is not None:
            self.announcer.moved(port)

    def _act(self, out):
        """Carry out the LACP core's Output: its events first, so the data path follows the
        mux before the frames (LACPDUs announcing it) leave."""
        changed = False
        for event in out.events:
            if isinstance(event, DistributingChanged):
                changed = True
            elif isinstance(event, SelectionChanged):
                self.aggregator.selection(event)
                log.info("%s: %s", self.name, event)
            elif isinstance(event, Transition):
                self.history.record(event)
                if self.flags["debug"]:
                    log.info("%s: %s %s: %s -> %s (%s)", self.name, self.members.name_of(event.port_id),
                             event.machine, event.old, event.new, event.reason)
            else:
                log.info("%s: %s", self.name, event)
        if changed:
            self.recompute()
        for frame in out.frames:
            self.members.send(frame.port_id, frame.frame)
        if self.aggregation.snapshot() != self.lacp_saved:
            self.save()  # a restarted worker resumes from this

    def recompute(self):
        """Derive the distributing and collecting sets and hand them to the data path; agrN's
        carrier follows (agrminports)."""
        distributing, collecting = self.aggregation.sets(self.members)
        if (distributing, collecting) != (self.distributing, self.collecting):
            log.info("%s: distributing on %s", self.name,
                     ", ".join(self.members.name_of(i) for i in sorted(distributing)) or "no port")
        self.distributing, self.collecting = distributing, collecting
        plan, moves = self.aggregation.slb_plan(self.clock(), [p.index for p in self.members], distributing)
        self.path.set_slb(plan)
        port = self.aggregator.distributing(distributing)
        if port is not None:   # another LACP aggregation carries the traffic now
            self.announcer.moved(port)
        self.path.set_ports(list(self.members), distributing, collecting)
        # agrproto slb: the switches learn where each moved MAC is now (a learning frame each,
        # from its new port; agrN's own announcements too when its MAC is among them)
        for port in dict.fromkeys(m.port for m in moves):
            self.announcer.moved(port, [(m.mac, m.vlan or None) for m in moves if m.port == port])
        # The speed first: readers that look at carrier-up (a bridge's STP cost, zebra) see it.
        self.tap_speed.update([p.speed for p in self.members if p.index in distributing])
        if self.tap_carrier.update(len(distributing), self.flags["min_ports"]):
            self.save()

    # -- control --------------------------------------------------------------------------------
    def set_flags(self, now, flags):
        """agrN's settings (setflags): applied whole, or not at all."""
        changes = {k: v for k, v in flags.items() if k in self.flags}
        merged = {**self.flags, **changes}
        if merged["lladdr"] is not None and merged["mac_policy"] == "active":
            raise AgrError(errno.EINVAL, "SIOCSETAGR", "lladdr and agrmacpolicy active exclude each other "
                           "(under active, agr takes the active port's own address)")
        before, mac_before = dict(self.flags), self.mac
        self.flags.update(changes)
        try:
            if before["lladdr"] is not None and self.flags["lladdr"] is None:
                # -lladdr: back to the first port's own address (ours: no BSD has the word)
                self._set_mac(macpolicy.unfixed(self.mac, [(p.index, p.orig["mac"]) for p in self.members]))
            self._apply_flags(now)
            self._setup_datapath()
        except AgrError:
            self.flags = before
            if self.mac != mac_before:
                try:
                    self._set_mac(mac_before)
                except AgrError:
                    pass
            self._apply_flags(now)
            raise
        self.recompute()
        if self.mac != mac_before:
            self._announce_address()   # lladdr, -lladdr: neighbours learn the new MAC now

    def handle(self, req, now):
        """Carry out a typed control request (requests.py's table); the reply is the status (for a ping: name and pid)."""
        return requests.handle(self, req, now)

    def status(self):
        """agrN's AggregateStatus (agrconfig.status), built by report.py."""
        now = self.clock()
        return report.aggregate_status(
            name=self.name, pid=os.getpid(), mac=self.mac, flags=self.flags, aggregation=self.aggregation,
            path=self.path, datapath_note=self.datapath_note, ports=list(self.members),
            collecting=self.collecting, distributing=self.distributing, history=self.history,
            checker=self.linkcheck if self.linkcheck.running else None, now=now,
            speed=self.tap_speed.mode.speed if self.tap_speed.mode else None,
            held=lambda index: self.links.held_left(now, index), announced=self.announcer.sent)

    # -- loop ---------------------------------------------------------------------------------
    def components(self):
        return [self.signals, self.control, self.linkwatch, self.agg, self.datapath, self.linkcheck,
                self.carrier_poll, self.mcast, self.links, self.announcer]

    def run(self):
        self.linkwatch = linkwatch.LinkWatch(self._on_link_events)
        # Signals wake the loop: PEP 475 would otherwise resume select() and ignore them.
        sig_r, sig_w = socket.socketpair()
        sig_r.setblocking(False)
        sig_w.setblocking(False)
        _signal.set_wakeup_fd(sig_w.fileno(), warn_on_full_buffer=False)
        self.signals = SignalWake(sig_r)
        # Requests are read, handled and answered from the loop without blocking it.
        self.control = control.Server(self.listener, self.handle, clock=self.clock)
        self.mcast = MulticastResync(self.members.sync_memberships)
        self.loop = Loop(self.components, self.clock, name=self.name)
        self.links.changed(self.loop.now, None)  # catch up with anything missed while starting
        self.vlans.sync()
        self.loop.run(lambda: self.stopping)
        self.shutdown()

    def _on_link_events(self, now, events):
        self.links.on_events(now, events)
        self.vlans.on_events(now, events)

    def shutdown(self):
        """Give every port back, remove agrN and every file, and exit."""
        log.info("%s: shutting down", self.name)
        self.relay.stop()
        self.linkcheck.close()
        self.path.close()
        self.members.restore_all()
        statefile.remove(self.name)
        try:
            unpersist(self.tap_fd)
        except OSError:
            pass
        self.listener.close()
