"""The per-interface worker: owns the TAP agrN, the port sockets and LACP.

One process per agr interface, forked by the front end on `create` (or to
resume after a crash). A single-threaded event loop serves the control socket,
netlink events, Slow Protocols frames and the LACP timer; the relay thread in
dataplane.py moves the frames.
"""
import collections
import errno
import gc
import json
import logging
import logging.handlers
import os
import selectors
import signal
import socket
import time

from .. import options, paths
from ..ipc import server as control
from ..net import rtnl
from ..errors import AgrError
from ..paths import is_agr_name
from . import linkwatch, privs, statefile
from .dataplane import Relay
from ..lacp import LacpCore
from .port import Port, snapshot
from .tap import VNET_HDR_LEN, attached_name, open_tap, unpersist

MCAST_RESYNC = 5.0
ZERO_VNET = bytes(VNET_HDR_LEN)

PACKET_MR_MULTICAST, PACKET_MR_PROMISC, PACKET_MR_ALLMULTI = 0, 1, 2

log = logging.getLogger("agrconfig")


def default_flags():
    return options.defaults()


def _resume_entry(saved, index):
    """A port's saved LACP state if it is well formed (the file may be damaged), else None."""
    entry = saved.get(str(index)) if isinstance(saved, dict) else None
    try:
        prio, system, key, pprio, pnum, state = entry["partner"]
        ok = (entry["mux"] in ("ATTACHED", "COLLECTING_DISTRIBUTING") and len(bytes.fromhex(system)) == 6
              and all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in (prio, key, pprio, pnum, state)))
    except (KeyError, TypeError, ValueError):
        ok = False
    return entry if ok else None


class Worker:
    def __init__(self, name, saved=None, held_tap=None, keeper=None):
        self.name = name
        self.saved = saved
        self.held_tap = held_tap   # the TAP fd our supervisor kept from the previous worker
        self.keeper = keeper       # where we hand our TAP fd to the supervisor
        self.flags = default_flags()
        self.ports = []            # in order of addition
        self.tap_fd = None
        self.tap_index = None
        self.mac = None
        self.lacp = None
        self.relay = None
        self.sel = None
        self.stopping = False
        self.slow_queue = collections.deque(maxlen=1024)  # bounded: the rate limit keeps it short
        self.slow_event = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.next_mcast = 0.0
        self.distributing = frozenset()
        self.collecting = frozenset()
        self.fast = None           # the eBPF fast path, when in use
        self.join_deadline = None  # a port joining the fast path: when to stop holding at the latest
        self.join_request = None   # the relay's drain request that the join waits for
        self.lacp_saved = {}       # the LACP snapshot last written to the state file
        self.resume_lacp = (saved or {}).get("lacp") or {}
        self.datapath_note = ""    # why the relay is used when eBPF was allowed

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
        self.relay = Relay(self.tap_fd, self._slow_frame_from_relay)
        if self.saved:
            self.flags.update(self.saved.get("flags", {}))
            for orig in self.saved["ports"]:
                self._resume_port(orig)
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
                 "resumed" if self.saved else "created", len(self.ports))

    def _resume_port(self, orig):
        link = rtnl.link(index=orig["index"])
        if link is None or link.name != orig["name"]:
            log.warning("%s: port %s is gone; dropped", self.name, orig["name"])
            if link is not None:
                self._remove_leftover_programs([link.index])
            return
        port = Port(orig)
        try:
            port.configure(self.mac, rtnl.link(index=self.tap_index).mtu)
            port.open_socket()  # the relay's, until the data path is chosen
        except AgrError as exc:
            log.error("%s: cannot resume port %s: %s", self.name, port.name, exc)
            port.restore()
            self._remove_leftover_programs([port.index])
            return
        self.ports.append(port)

    # -- state ------------------------------------------------------------------
    def _save(self):
        self.lacp_saved = self.lacp.snapshot() if self.lacp is not None else {}
        statefile.save({"name": self.name, "ifindex": self.tap_index, "pid": os.getpid(),
                        "flags": self.flags, "ports": [p.to_state() for p in self.ports],
                        "lacp": self.lacp_saved})

    # -- LACP -------------------------------------------------------------------
    def _apply_flags(self):
        """Bring the protocol and the relay in line with the flags."""
        self.relay.round_robin = self.flags["link0"]
        self.relay.policy = self.flags["hash"]
        if self.fast is not None:
            self.fast.set_policy(self.flags["hash"], self.flags["link0"])
        if self.flags["link1"]:
            self.lacp = None  # static: no LACP and no Marker frames at all
        elif self.lacp is None:
            now = time.monotonic()
            self.lacp = LacpCore(rtnl.mac_bytes(self.mac), fast_timeout=self.flags["lacp_fast"],
                                 strict=self.flags["lacp_strict"], now=now)
            # After a crash, each port carries on with the partner and mux state the dead
            # worker saved, so the partner sees no change; its next LACPDU corrects any drift.
            resume, self.resume_lacp = self.resume_lacp, {}
            for p in self.ports:
                self._act(self.lacp.add_port(now, p.index, p.mac, speed=p.speed, duplex_full=p.duplex_full,
                                             carrier=p.carrier, resume=_resume_entry(resume, p.index)))
        else:
            now = time.monotonic()
            self._act(self.lacp.set_fast_timeout(now, self.flags["lacp_fast"]))
            self._act(self.lacp.set_strict(now, self.flags["lacp_strict"]))

    # -- data path ----------------------------------------------------------------
    def _probe_fast(self):
        try:
            from . import bpf
            return bpf.fastpath_supported()
        except Exception as exc:  # no module, no bpf(2), no permission: the relay it is
            return False, str(exc)

    def _setup_datapath(self):
        """Use the kernel fast path or the relay, as the datapath flag allows."""
        want = self.flags["datapath"]
        use_fast = False
        if want != "relay":
            ok, reason = self._probe_fast()
            if ok:
                use_fast = True
            elif want == "ebpf":
                raise AgrError(errno.EOPNOTSUPP, "SIOCSETAGR", f"eBPF fast path unavailable: {reason}")
            self.datapath_note = "" if ok else reason
        if use_fast == (self.fast is not None):
            return
        if use_fast:
            from .fastpath import FastPath
            fast = FastPath(self.tap_index, self.flags["hash"], self.flags["link0"])
            try:
                # The maps are right before any program goes in: a dead worker's programs,
                # still moving frames, are then replaced atomically (no gap, no reordering).
                distributing, collecting = self._sets()
                fast.set_ports([p.index for p in self.ports if p.index in distributing])
                fast.set_collecting([p.index for p in self.ports if p.index in collecting])
                for p in self.ports:
                    fast.attach_port(p.index)
                fast.attach_tap()
            except Exception:
                fast.close()
                raise
            self.fast = fast
        elif self.fast is not None:
            self.fast.close()
            self.fast = None
        else:
            self._remove_leftover_programs([self.tap_index] + [p.index for p in self.ports])
        # The port sockets take only Slow Protocols frames while the kernel moves the rest.
        self.relay.set_ports([], set(), set())  # the relay lets go of the sockets closed below
        for p in self.ports:
            p.open_socket(slow_only=self.fast is not None)
            self._sync_memberships(p)
        self.distributing = self.collecting = None  # force the new path to get the sets
        self._recompute()
        log.info("%s: datapath %s", self.name, "ebpf" if self.fast else "relay")

    def _act(self, actions):
        changed = False
        for action in actions:
            kind = type(action).__name__
            if kind == "Transmit":
                port = self._port_by_index(action.port_id)
                if port and port.sock:
                    try:
                        port.sock.send(ZERO_VNET + action.frame)
                    except OSError as exc:
                        log.debug("%s: send on %s: %s", self.name, port.name, exc)
            elif kind == "DistributingChanged":
                changed = True
            elif kind == "Transition":
                if self.flags["debug"]:
                    log.info("%s: %s %s: %s -> %s (%s)", self.name, self._port_name(action.port_id),
                             action.machine, action.old, action.new, action.reason)
            else:
                log.info("%s: %s", self.name, action)
        if changed:
            self._recompute()
        if self.lacp is not None and self.lacp.snapshot() != self.lacp_saved:
            self._save()  # a restarted worker resumes from this

    def _sets(self):
        """The distributing and collecting sets of port indexes."""
        if self.lacp is None:
            up = frozenset(p.index for p in self.ports if p.carrier)
            return up, up
        return frozenset(self.lacp.distributing()), frozenset(self.lacp.collecting())

    def _remove_leftover_programs(self, ifindices):
        """A dead worker's fast path programs on links we will not replace them on."""
        try:
            from .fastpath import FastPath
            FastPath.cleanup(ifindices)
        except Exception as exc:  # no fast path here at all: nothing can be left
            log.debug("%s: fast path cleanup: %s", self.name, exc)

    def _recompute(self):
        """Derive the distributing and collecting sets and hand them to the data path."""
        distributing, collecting = self._sets()
        if (distributing, collecting) != (self.distributing, self.collecting):
            log.info("%s: distributing on %s", self.name,
                     ", ".join(self._port_name(i) for i in sorted(distributing)) or "no port")
        self.distributing, self.collecting = distributing, collecting
        self.relay.set_ports(self.ports, distributing, collecting)
        if self.fast is not None:
            ports = [p.index for p in self.ports if p.index in distributing]
            if self.fast.distributing and set(ports) - set(self.fast.distributing):
                self._begin_join()
            self.fast.set_ports(ports)
            self.fast.set_collecting([p.index for p in self.ports if p.index in collecting])

    # A port joining the fast path moves flows to it while their earlier frames may still
    # wait in another port's queue. So, as the relay does, hold them for a moment: the
    # egress program hands frames on to agrN's own queue ("pass"), where the relay
    # thread holds them (dataplane.HOLD) and then sends them on the new ports. When it has
    # caught up, the program drops for the instant it takes to empty that queue ("drop"),
    # then redirects on the new ports again ("normal"): no frame can overtake an older one.
    JOIN_QUIET = 0.001
    JOIN_TIMEOUT = 1.0

    def _begin_join(self):
        self.fast.set_mode("pass")
        self.join_request = self.relay.request_drain()
        self.join_deadline = time.monotonic() + self.JOIN_TIMEOUT

    @staticmethod
    def _took(eventfd):
        """Read (reset) an eventfd; False if nothing was signalled."""
        try:
            os.eventfd_read(eventfd)
            return True
        except BlockingIOError:
            return False

    def _on_drained(self):
        if not self._took(self.relay.drained):
            return
        if self.fast is None or self.fast.mode == "normal":
            return
        if self.relay.drained_gen != self.join_request:
            return  # the answer to an earlier request (a join that began again meanwhile)
        if self.fast.mode == "pass":
            self.fast.set_mode("drop")
            self.join_request = self.relay.request_drain(self.JOIN_QUIET)
        else:
            self._end_join()

    def _on_tap_gone(self):
        if self._took(self.relay.tap_gone):
            self._link_event(self.tap_index, gone=True)

    def _end_join(self):
        if self.fast is not None:
            self.fast.set_mode("normal")
        self.join_deadline = None

    def _slow_frame_from_relay(self, index, frame):
        # Called from the relay thread: hand over to the main loop.
        self.slow_queue.append((index, frame))
        os.eventfd_write(self.slow_event, 1)

    def _on_slow_event(self):
        self._took(self.slow_event)  # the queue is read whatever the count
        now = time.monotonic()
        while self.slow_queue:
            index, frame = self.slow_queue.popleft()
            if self.lacp is not None and self._port_by_index(index):
                self._act(self.lacp.receive(now, index, frame))

    # -- ports --------------------------------------------------------------------
    def _port_by_index(self, index):
        for p in self.ports:
            if p.index == index:
                return p
        return None

    def _port_name(self, index):
        p = self._port_by_index(index)
        return p.name if p else str(index)

    def add_port(self, name):
        link = rtnl.link(name)
        if link is None:
            raise AgrError(errno.ENOENT, "SIOCSETAGR", f"no such interface: {name}")
        if link.index == self.tap_index or (is_agr_name(name) and statefile.load(name)):
            raise AgrError(errno.EINVAL, "SIOCSETAGR", f"{name} is an agr interface")
        if self._port_by_index(link.index):
            raise AgrError(errno.EBUSY, "SIOCSETAGR", f"{name} is already a port of {self.name}")
        owner = statefile.owner_of(name)
        if owner and owner != self.name:
            raise AgrError(errno.EBUSY, "SIOCSETAGR", f"{name} is already a port of {owner}")
        ether = link.type == rtnl.ARPHRD_ETHER and link.addrlen == 6
        if not ether:
            code = errno.EPROTONOSUPPORT if not self.ports else errno.EINVAL
            raise AgrError(code, "SIOCSETAGR", f"{name} is not an Ethernet interface")
        addrs = rtnl.addresses(link.index)
        if addrs:
            listed = ", ".join(f"{a.address}/{a.prefixlen}" for a in addrs)
            raise AgrError(errno.EBUSY, "SIOCSETAGR", f"{name} has addresses ({listed}); delete them first")
        port = Port(snapshot(link))
        first = not self.ports
        old_mac = self.mac
        # Saved before any change: a crash from here on still restores the port.
        self.ports.append(port)
        self._save()
        try:
            if first and link.mac != self.mac:
                rtnl.set_mac(self.tap_index, link.mac)
                self.mac = link.mac
                if self.lacp is not None:
                    self._act(self.lacp.set_system_mac(time.monotonic(), rtnl.mac_bytes(self.mac)))
            port.configure(self.mac, rtnl.link(index=self.tap_index).mtu)
            port.open_socket(slow_only=self.fast is not None)
            self._sync_memberships(port)
            if self.fast is not None:
                self.fast.attach_port(port.index)
        except Exception:
            self.ports.remove(port)
            if self.fast is not None:
                self.fast.detach_port(port.index)
            port.restore()
            if self.mac != old_mac:
                try:
                    rtnl.set_mac(self.tap_index, old_mac)
                    self.mac = old_mac
                except AgrError:
                    pass
            self._save()
            raise
        if self.lacp is not None:
            self._act(self.lacp.add_port(time.monotonic(), port.index, port.mac, speed=port.speed,
                                         duplex_full=port.duplex_full, carrier=port.carrier))
        self._recompute()
        log.info("%s: port %s attached", self.name, name)

    def del_port(self, name):
        port = next((p for p in self.ports if p.name == name), None)
        if port is None:
            owner = statefile.owner_of(name)
            if owner and owner != self.name:
                raise AgrError(errno.EINVAL, "SIOCSETAGR", f"{name} is a port of {owner}, not {self.name}")
            raise AgrError(errno.ENOENT, "SIOCSETAGR", f"{name} is not a port of {self.name}")
        self._drop_port(port, restore=True)

    def _drop_port(self, port, restore):
        self.ports.remove(port)
        if self.lacp is not None:
            self._act(self.lacp.remove_port(time.monotonic(), port.index))
        self._recompute()
        if self.fast is not None:
            self.fast.detach_port(port.index)
        if restore:
            errors = port.restore()
            for exc in errors or ():
                log.warning("%s: restoring %s: %s", self.name, port.name, exc)
        else:
            port.close_socket()
        self._save()
        log.info("%s: port %s detached", self.name, port.name)

    def set_mtu(self, mtu):
        done = []
        old = rtnl.link(index=self.tap_index).mtu
        try:
            for p in self.ports:
                rtnl.set_mtu(p.index, mtu)
                done.append(p)
            rtnl.set_mtu(self.tap_index, mtu)
        except AgrError:
            for p in done:
                try:
                    rtnl.set_mtu(p.index, old)
                except AgrError:
                    pass
            raise

    def _sync_memberships(self, only=None):
        """Push agrN's multicast list and promiscuous/allmulti modes to the ports."""
        tap = rtnl.link(index=self.tap_index)
        if tap is None:
            return
        wanted = {(PACKET_MR_MULTICAST, mac) for mac in rtnl.mcast_addresses(self.name)}
        if tap.flags & rtnl.IFF_PROMISC:
            wanted.add((PACKET_MR_PROMISC, b""))
        if tap.flags & rtnl.IFF_ALLMULTI:
            wanted.add((PACKET_MR_ALLMULTI, b""))
        for p in [only] if only else self.ports:
            p.sync_memberships(wanted)

    # -- link events ------------------------------------------------------------------------
    def _on_netlink(self):
        for event in self.linkwatch.read():
            self._link_event(event.index, gone=isinstance(event, linkwatch.LinkGone))

    def _link_event(self, index, gone=False):
        """Something changed on link `index` (None: anything, events were lost)."""
        ours = index in (None, self.tap_index)  # agrN itself, or everything (events were lost)
        ports = [p for p in self.ports if ours or p.index == index]
        if not ours and not ports:
            return
        deleted = ours and gone and index is not None
        tap = None if deleted else rtnl.link(index=self.tap_index)
        if ours and tap is None:  # deleted: seen, or found after lost events
            log.warning("%s: deleted by someone else; giving the ports back", self.name)
            self.stopping = True
            return
        if ours:
            self._sync_memberships()
            if tap is not None and tap.mac != self.mac:
                # `ip link set agrN address ...`: the ports and the LACP system follow.
                log.info("%s: link address changed to %s", self.name, tap.mac)
                self.mac = tap.mac
                if self.lacp is not None:
                    self._act(self.lacp.set_system_mac(time.monotonic(), rtnl.mac_bytes(self.mac)))
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
            self._revert_port_changes(port, link, tap, addrs.get(port.index, []))
            carrier = link.carrier and link.up
            if carrier != port.carrier:
                port.carrier = carrier
                log.info("%s: port %s carrier %s", self.name, port.name, "up" if carrier else "down")
                if self.lacp is not None:
                    self._act(self.lacp.set_carrier(time.monotonic(), port.index, carrier))
                self._recompute()

    def _revert_port_changes(self, port, link, tap, addrs):
        """Another tool changed a member: put back what membership needs, and say so.
        `tap` is agrN's link (None if it is gone), `addrs` the port's addresses."""
        try:
            if tap is not None and link.mac != self.mac:
                log.warning("%s: %s's MAC was changed to %s; set back to %s", self.name, port.name, link.mac, self.mac)
                rtnl.set_mac(port.index, self.mac)
            if tap is not None and link.mtu != tap.mtu:
                log.warning("%s: %s's MTU was changed to %d; set back to %d", self.name, port.name, link.mtu, tap.mtu)
                rtnl.set_mtu(port.index, tap.mtu)
            for addr in addrs:
                # A member's own stack must stay out of the way (see PORT_SYSCTLS).
                log.warning("%s: address %s/%d added to port %s; removed (put it on %s)", self.name,
                            addr.address, addr.prefixlen, port.name, self.name)
                rtnl.del_address(port.index, addr)
        except AgrError as exc:
            log.error("%s: cannot set port %s back: %s", self.name, port.name, exc)

    # -- control ----------------------------------------------------------------------------
    def handle(self, req):
        op = req["op"]
        if op == "status":
            return self.status()
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
        elif op == "setmtu":
            self.set_mtu(int(req["mtu"]))
        elif op == "shutdown":
            self.stopping = True
        elif op in ("ping", "save"):
            pass  # save: the state file is written below (the front end found it unusable)
        else:
            raise AgrError(errno.EINVAL, "control", f"unknown request {op!r}")
        if op not in ("shutdown", "ping"):
            self._save()
        return self.status()

    def status(self):
        ports = []
        counters = dict(self.relay.counters)
        fast = self.fast.counters() if self.fast is not None else {}
        counters.update({k: v for k, v in fast.items() if k != "ports"})
        for p in self.ports:
            bits = (1 if p.index in self.collecting else 0) | (2 if p.index in self.distributing else 0)
            entry = {"name": p.name, "index": p.index, "flags": bits, "carrier": p.carrier,
                     "original_mac": p.orig["mac"], "speed": p.speed, "duplex_full": p.duplex_full}
            c = self.relay.port_counters.get(p.index, [0, 0, 0, 0])
            entry["counters"] = {"tx_packets": c[0], "tx_bytes": c[1], "rx_packets": c[2], "rx_bytes": c[3],
                                 "rx_slow_limited": self.relay.slow_limited.get(p.index, 0)}
            for key, value in fast.get("ports", {}).get(p.index, {}).items():
                entry["counters"][key] = entry["counters"].get(key, 0) + value
            if self.lacp is not None:
                entry["lacp"] = self.lacp.port_status(p.index)
            ports.append(entry)
        return {"name": self.name, "pid": os.getpid(), "mac": self.mac, "flags": dict(self.flags),
                "protocol": "static" if self.lacp is None else "lacp",
                "datapath": "ebpf" if self.fast is not None else "relay", "datapath_note": self.datapath_note,
                "datapath_mode": self.fast.mode if self.fast is not None else None,
                "ports": ports, "counters": counters,
                "lacp": self.lacp.status() if self.lacp is not None else None}

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
        self._link_event(None)  # catch up with anything missed while starting
        while not self.stopping:
            now = time.monotonic()
            deadline = self.next_mcast
            timer = self.lacp.get_timer() if self.lacp is not None else None
            if timer is not None:
                deadline = min(deadline, timer)
            if self.join_deadline is not None:
                deadline = min(deadline, self.join_deadline)
            served = self.control.next_deadline()
            if served is not None:
                deadline = min(deadline, served)
            for key, _ in self.sel.select(max(0.0, deadline - now)):
                try:
                    key.data()
                except Exception:  # one bad event must not take the interface down
                    log.exception("%s: error handling an event", self.name)
                if self.stopping:
                    break
            now = time.monotonic()
            self.control.handle_timer(now)
            if self.lacp is not None:
                timer = self.lacp.get_timer()
                if timer is not None and timer <= now:
                    self._act(self.lacp.handle_timer(now))
            if self.join_deadline is not None and now >= self.join_deadline:
                log.warning("%s: agrN's queue did not empty while a port joined; redirecting anyway", self.name)
                self._end_join()
            if now >= self.next_mcast:
                self._sync_memberships()
                self.next_mcast = now + MCAST_RESYNC
        self.shutdown()

    def shutdown(self):
        """Give every port back, remove agrN and every file, and exit."""
        log.info("%s: shutting down", self.name)
        self.relay.stop()
        if self.fast is not None:
            self.fast.close()
            self.fast = None
        for port in list(reversed(self.ports)):
            for exc in port.restore() or ():
                log.warning("%s: restoring %s: %s", self.name, port.name, exc)
        self.ports.clear()
        statefile.remove(self.name)
        try:
            unpersist(self.tap_fd)
        except OSError:
            pass
        self.listener.close()


# -- process management ---------------------------------------------------------------------

def setup_logging(name):
    logger = logging.getLogger("agrconfig")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    # AGRCONFIG_LOG=file: the runtime directory's log even where there is syslog (tests read it).
    if os.path.exists("/dev/log") and os.environ.get("AGRCONFIG_LOG") != "file":
        handler = logging.handlers.SysLogHandler("/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.ident = f"agrconfig/{name}[{os.getpid()}]: "
    else:
        paths.run_dir(create=True)
        handler = logging.FileHandler(paths.log_file(name))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)


def _set_title(name, role="worker"):
    try:
        import setproctitle
        setproctitle.setproctitle(f"agrconfig: {role} {name}")
    except ImportError:
        pass


def spawn(name, resume):
    """Fork a daemonized, supervised worker for `name`; wait until it serves or fails."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _daemon_main(name, resume, ready_w)
        finally:
            os._exit(1)
    os.close(ready_w)
    os.waitpid(pid, 0)
    with os.fdopen(ready_r, "rb") as f:
        data = f.read()
    if data.startswith(b"ok"):
        return int(data[2:] or 0)
    if data:
        raise AgrError.from_dict(json.loads(data))
    raise AgrError(errno.EIO, "SIOCIFCREATE", f"worker for {name} died while starting")


def _daemon_main(name, resume, ready_w):
    os.chdir("/")
    os.umask(0o077)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, ready_w)
    os.closerange(ready_w + 1, 65536)
    for sig in (signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    rtnl.reset()
    setup_logging(name)
    _supervise(name, resume, ready_w)


RESTART_DELAY = 0.05     # first restart after a crash: well inside LACP's 3 s short timeout
RESTART_DELAY_MAX = 5.0  # a worker that keeps dying is restarted ever more slowly
STABLE_AFTER = 10.0      # a worker that ran this long resets the delay
START_FAILED = 2


def _supervise(name, resume, ready_w):
    """A small parent that restarts the worker when it crashes or is killed.

    The TAP is persistent and the state file has the ports, so a restarted
    worker picks up where the dead one stopped; agr0 and its addresses stay.
    SIGTERM is passed on: the worker restores the ports and exits cleanly.
    """
    _set_title(name, "supervisor")
    try:  # inherited by every worker it starts
        kept = privs.drop()
        log.debug("%s: capabilities kept: %s", name, ", ".join(privs.NAMES[c] for c in kept))
    except OSError as exc:
        log.warning("%s: cannot drop capabilities (%s); running with those we were given", name, exc)
    child = None
    stopping = False

    def on_term(sig, _frame):
        nonlocal stopping
        stopping = True
        if child:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    delay = RESTART_DELAY
    first = True
    # Each worker hands us its TAP fd and we keep it open: while a worker is dead and
    # restarting, agrN keeps its carrier (so its neighbours and qdisc stay) and frames
    # wait in the TAP's queue for the next worker, which inherits the fd.
    keeper_r, keeper_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    keeper_r.setblocking(False)  # (socket.recv_fds ignores its flags argument before 3.12)
    held_tap = None
    while not stopping:
        r, w = os.pipe2(os.O_CLOEXEC)
        started = time.monotonic()
        # The worker's collector then leaves what we share alone: fewer pages copied, less
        # memory held twice by the two processes.
        gc.freeze()
        child = os.fork()
        if child == 0:
            os.close(r)
            if first:
                os.close(ready_w)  # the front end waits for EOF on it: only we may hold it
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            keeper_r.close()
            _worker_main(name, resume, w, held_tap, keeper_w)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            ready = f.read()
        held_tap = _take_tap(keeper_r, held_tap)
        if first:
            if ready.startswith(b"ok"):
                with open(paths.pid_file(name), "w") as f:
                    f.write(f"{os.getpid()}\n")
            os.write(ready_w, ready)
            os.close(ready_w)
            first = False
        _pid, status = os.waitpid(child, 0)
        child = None
        code = os.waitstatus_to_exitcode(status)
        if code == 0 or stopping or statefile.load(name) is None:
            break  # a clean shutdown, or there is nothing left to resume
        if not ready.startswith(b"ok") and code == START_FAILED and delay >= RESTART_DELAY_MAX:
            log.error("%s: worker cannot start again; giving up", name)
            break
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        log.error("%s: worker %s; restarting in %.2f s", name, how, delay)
        time.sleep(delay)
        delay = RESTART_DELAY if time.monotonic() - started > STABLE_AFTER else min(delay * 4, RESTART_DELAY_MAX)
        resume = True
    os._exit(0)


def _take_tap(keeper, held):
    """The TAP fd the worker just sent (if any) replaces the one we held."""
    while True:
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(keeper, 16, 1)
        except (BlockingIOError, InterruptedError):
            return held
        for fd in fds:
            if held is not None and held != fd:
                os.close(held)
            held = fd


def _worker_main(name, resume, ready_w, held_tap=None, keeper=None):
    _set_title(name)
    rtnl.reset()
    worker = None
    try:
        saved = statefile.load(name) if resume else None
        if resume and saved is None:
            raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"no saved state for {name}")
        worker = Worker(name, saved, held_tap, keeper)
        worker.start()
    except AgrError as exc:
        os.write(ready_w, json.dumps(exc.to_dict()).encode())
        log.error("%s: worker failed to start: %s", name, exc)
        os._exit(START_FAILED)
    except Exception:
        import traceback
        os.write(ready_w, json.dumps(AgrError(errno.EIO, "SIOCIFCREATE", traceback.format_exc()).to_dict()).encode())
        log.exception("%s: worker failed to start", name)
        os._exit(START_FAILED)

    def on_term(_sig, _frame):
        worker.stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    os.write(ready_w, f"ok{os.getpid()}".encode())
    os.close(ready_w)
    try:
        worker.run()
    except Exception:
        log.exception("%s: worker crashed", name)
        os._exit(3)
    os._exit(0)
