"""agrlinkcheck: a port is up only while its targets answer on it (bonding's arp_ip_target /
ns_ip6_target with arp_validate, teamd's arp_ping / nsna_ping), for loadbalance and failover.

Every port probes on its own, from its own original MAC address: an ARP probe (sender
address 0.0.0.0, RFC 5227, so no neighbour cache learns it) per IPv4 target and a Neighbor
Solicitation from the port's EUI-64 link-local address per IPv6 target. The answers come back
to that MAC, which the switches learned on that very cable, so a probe on a standby port
neither moves agrN's MAC in a switch nor is answered on another port. Any frame from a target
(its ARP, IPv4 or IPv6 traffic) counts, as bonding's arp_validate; it must arrive within three
intervals.

Monitor is the pure part (a clock passed in); Checker adds the sockets (one per port, with a
classic BPF filter so the kernel hands over only the targets' frames); LinkCheck is the
worker's component around it, NoLinkCheck the one in its place while no check runs.
"""
import ctypes
import ipaddress
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB
import struct

from .component import READ, Component
from .port import PACKET_ADD_MEMBERSHIP, PACKET_IGNORE_OUTGOING, PACKET_MR_UNICAST, SOL_PACKET
from ..logger import log
from .parts import NoLinkCheck  # noqa: F401 (its null object lives with the worker's parts)


MISSED = 3   # intervals without a frame from a target before a port is down
ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26


class Monitor:
    """Which ports have heard a target lately. A port added when checking starts counts as up
    for three intervals (turning the check on interrupts nothing); a port attached later, or
    whose carrier comes back, is down until it hears a target."""

    def __init__(self, interval, now):
        self.interval = interval          # seconds
        self.heard_at = {}                # port -> monotonic time a target was last heard, or None
        self.verdict = {}                 # port -> up as last reported
        self.next_probe = now

    def add(self, now, port, assume_up=False):
        self.heard_at[port] = now if assume_up else None
        self.verdict[port] = assume_up

    def remove(self, port):
        self.heard_at.pop(port, None)
        self.verdict.pop(port, None)

    def reset(self, now, port):
        """The port's carrier came back: it proves itself again."""
        if port in self.heard_at:
            self.heard_at[port] = None
            self.verdict[port] = False
        self.next_probe = now   # ask at once

    def heard(self, now, port):
        if port in self.heard_at:
            self.heard_at[port] = now

    def up(self, now, port):
        at = self.heard_at.get(port)
        return at is not None and now - at < MISSED * self.interval

    def changes(self, now):
        """[(port, up)] whose verdict changed since the last call."""
        out = []
        for port in self.heard_at:
            up = self.up(now, port)
            if up != self.verdict[port]:
                self.verdict[port] = up
                out.append((port, up))
        return out

    def probe_due(self, now):
        if now < self.next_probe:
            return False
        self.next_probe = now + self.interval
        return True

    def next_deadline(self):
        expiries = [at + MISSED * self.interval for port, at in self.heard_at.items()
                    if at is not None and self.verdict[port]]
        return min([self.next_probe, *expiries])


# -- frames ----------------------------------------------------------------------------------------

def arp_probe(mac, target):
    """Who has `target`? from `mac`, sender address 0.0.0.0."""
    tip = ipaddress.IPv4Address(target).packed
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + bytes(4) + bytes(6) + tip
    return b"\xff" * 6 + mac + b"\x08\x06" + arp


def link_local(mac):
    """fe80::/64 with the modified EUI-64 of `mac`."""
    eui = bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:]
    return ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui)


def neighbor_solicitation(mac, target):
    """NS for `target` to its solicited-node group, from `mac`'s link-local address."""
    from .announce import checksum
    tgt = ipaddress.IPv6Address(target)
    src = link_local(mac)
    dst = ipaddress.IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + tgt.packed[13:])
    body = struct.pack("!BBHI", 135, 0, 0, 0) + tgt.packed + struct.pack("!BB", 1, 1) + mac
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(body), 58, 255) + src.packed + dst.packed
    return b"\x33\x33" + dst.packed[12:] + mac + b"\x86\xdd" + ip6 + body


def probes(mac, targets):
    return [arp_probe(mac, t) if ":" not in t else neighbor_solicitation(mac, t) for t in targets]


def target_filter(targets):
    """A classic BPF program (code, jt, jf, k) that keeps the frames from `targets`: ARP with
    one as sender, IPv4 or IPv6 with one as source."""
    v4 = [int(ipaddress.IPv4Address(t)) for t in targets if ":" not in t]
    v6 = [ipaddress.IPv6Address(t).packed for t in targets if ":" in t]
    LDH, LDW, JEQ, RET = 0x28, 0x20, 0x15, 0x06
    prog = []   # (code, jt label or None, jf label or None, k); labels resolved below

    def any_of(offset, values):
        prog.append((LDW, None, None, offset))
        for v in values:
            prog.append((JEQ, "accept", None, v))
        prog.append((RET, None, None, 0))

    prog += [(LDH, None, None, 12), (JEQ, "arp", None, 0x0806), (JEQ, "ip4", None, 0x0800),
             (JEQ, "ip6", None, 0x86DD), (RET, None, None, 0)]
    labels = {"arp": len(prog)}
    any_of(28, v4)
    labels["ip4"] = len(prog)
    any_of(26, v4)
    labels["ip6"] = len(prog)
    for n, addr in enumerate(v6):
        words = struct.unpack("!4I", addr)
        for w, off in enumerate((22, 26, 30, 34)):
            prog.append((LDW, None, None, off))
            last = w == 3
            prog.append((JEQ, "accept" if last else None, None if last else f"v6next{n}", words[w]))
        labels[f"v6next{n}"] = len(prog)
    prog.append((RET, None, None, 0))
    labels["accept"] = len(prog)
    prog.append((RET, None, None, 0x40000))
    out = []
    for pc, (code, jt, jf, k) in enumerate(prog):
        out.append((code, 0 if jt is None else labels[jt] - pc - 1, 0 if jf is None else labels[jf] - pc - 1, k))
    return out


# -- sockets -------------------------------------------------------------------------------------

class Checker:
    """The probes and their answers for every port of agrN."""

    def __init__(self, setting, now):
        self.targets = setting["targets"]
        self.setting = setting
        self.monitor = Monitor(setting["interval"] / 1000, now)
        self.socks = {}          # port index -> socket
        self.macs = {}           # port index -> its original MAC (bytes)
        self.program = target_filter(self.targets)

    def add(self, now, port, assume_up=False):
        self.monitor.add(now, port.index, assume_up)
        self.macs[port.index] = port.mac
        try:
            self.socks[port.index] = self._open(port)
        except OSError as exc:   # the port then never hears a target: down, and said why
            log.warning("linkcheck: %s: %s", port.name, exc)

    def _open(self, port):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.htons(ETH_P_ALL))
        try:
            code = b"".join(struct.pack("HBBI", *insn) for insn in self.program)
            buf = ctypes.create_string_buffer(code)
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                            struct.pack("HxxxxxxQ", len(self.program), ctypes.addressof(buf)))
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.bind((port.name, ETH_P_ALL))
            # The answers come to the port's own MAC, no longer the NIC's address: let it in.
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP,
                            struct.pack("iHH8s", port.index, PACKET_MR_UNICAST, 6, port.mac))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def remove(self, index):
        self.monitor.remove(index)
        self.macs.pop(index, None)
        sock = self.socks.pop(index, None)
        if sock is not None:
            sock.close()

    def close(self):
        for index in list(self.socks):
            self.remove(index)

    def read(self, now, index):
        """Frames waiting on port `index`'s socket: the filter let only the targets' through."""
        sock = self.socks.get(index)
        while sock is not None:
            try:
                sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.monitor.heard(now, index)

    def get_timer(self):
        return self.monitor.next_deadline()

    def handle_timer(self, now):
        """Send the probes when due; returns the ports whose verdict changed."""
        if self.monitor.probe_due(now):
            for index, sock in self.socks.items():
                for frame in probes(self.macs[index], self.targets):
                    try:
                        sock.send(frame)
                    except OSError as exc:   # no carrier, a full queue: the next interval tries again
                        log.debug("linkcheck: send on %d: %s", index, exc)
        return self.monitor.changes(now)

    def status(self, now, index):
        at = self.monitor.heard_at.get(index)
        return {"up": self.monitor.up(now, index), "heard_ago": None if at is None else round(now - at, 3)}


# -- the worker's component -----------------------------------------------------------------

class LinkCheck(Component):
    """agrlinkcheck in the worker's loop: the probes on each port's socket, the targets' frames,
    and `on_verdict(now, port index, up)` when a port's verdict changes."""
    running = True

    def __init__(self, setting, now, on_verdict):
        self.setting = setting
        self.checker = Checker(setting, now)
        self.on_verdict = on_verdict

    def start(self, now, ports):
        """The ports agrN has when the check is turned on: up for now (it interrupts nothing)."""
        for port in ports:
            self.checker.add(now, port, assume_up=True)

    def add_port(self, now, port):
        """A port attached while the check runs: down until a target answers on it."""
        self.checker.add(now, port)
        port.alive = False

    def remove_port(self, index):
        self.checker.remove(index)

    def carrier_back(self, now, port):
        """The port's carrier came back: it proves itself again."""
        self.checker.monitor.reset(now, port.index)
        port.alive = False

    def fds(self):
        return [(sock, index, READ) for index, sock in self.checker.socks.items()]

    def on_readable(self, now, index):
        self.checker.read(now, index)
        self._report(now, self.checker.monitor.changes(now))

    def deadline(self):
        return self.checker.get_timer()

    def on_timer(self, now):
        self._report(now, self.checker.handle_timer(now))

    def _report(self, now, changes):
        for index, up in changes:
            self.on_verdict(now, index, up)

    def status(self, now, index):
        return self.checker.status(now, index)

    def close(self):
        self.checker.close()
