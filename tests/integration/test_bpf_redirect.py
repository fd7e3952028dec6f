"""The fast path on real devices, in a private namespace: veth ports p0/q0, p1/q1 and a TAP agrX
held open by this process.  (This kernel has no 8021q: VLAN tags come inline from the veth
peers, or as skb metadata pushed by a tc program ahead of ours.)

- port ingress: frames sent from q0 arrive on agrX as received there (seen by a packet socket
  on agrX, VLAN-tagged ones on agrX.5), never on p0's own stack; Slow Protocols frames stay on p0.
- agrX egress: frames the kernel sends on agrX leave on a port (seen on q0/q1), not on the TAP
  fd; the port is ports[flow_hash % n] of the frame as the relay would read it from the TAP,
  including for VLAN tags the stack keeps as skb metadata.
- close() leaves no clsact and nothing on tcx; cleanup() removes a killed process's filters and
  tcx programs, and nobody else's.

The test process enters the namespace with setns() for its sockets, TAP and FastPath (one
thread only) and always returns to its own namespace and deletes the namespace.
"""
import ctypes
import errno
import fcntl
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest
from pyroute2 import IPRoute
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from agrconfig.worker import bpf
from agrconfig.worker.bpf import R0, R1, R2, R3, R6, Asm
from agrconfig.worker import fastpath
from agrconfig.worker.fastpath import EGRESS, INGRESS, FastPath
from agrconfig.worker.flowhash import L2, L3, L4, flow_hash

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLONE_NEWNET = 0x40000000
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
ETH_P_ALL, ETH_P_SLOW, ETH_P_TEST = 0x0003, 0x8809, 0x88B5
SOL_PACKET, PACKET_AUXDATA, PACKET_VNET_HDR, TP_STATUS_VLAN_VALID = 263, 8, 15, 0x10
PACKET_OUTGOING = 4
BPF_FUNC_skb_vlan_push = 18
AGR_MAC = bytes.fromhex("02aa00000001")
PEER_MAC = bytes.fromhex("02bb00000002")
SLOW_MAC = bytes.fromhex("0180c2000002")
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class Net:
    def __init__(self, name):
        self.name = name
        self.socks, self.fastpaths = [], []
        self.tap = None

    def run(self, *argv, check=True):
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True,
                              check=check, timeout=30)

    def tc(self, *argv):
        return self.run("tc", *argv).stdout

    def index(self, dev):
        return socket.if_nametoindex(dev)

    def sock(self, dev, proto=ETH_P_ALL):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        s.bind((dev, proto))
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self.socks.append(s)
        return s

    def fastpath(self, *args, **kw):
        fp = FastPath(self.index("agrX"), *args, **kw)
        self.fastpaths.append(fp)
        return fp

    def close(self):
        for fp in self.fastpaths:
            try:
                fp.close()
            except Exception:
                pass
        for s in self.socks:
            s.close()
        if self.tap is not None:
            os.close(self.tap)


@pytest.fixture
def net():
    name = "bpfh" + secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    n = Net(name)
    try:
        # No IPv6 chatter (router solicitations, MLD) on the test's interfaces.
        n.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        for i in (0, 1):
            n.run("ip", "link", "add", f"p{i}", "type", "veth", "peer", "name", f"q{i}")
        ns_fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(ns_fd)
        finally:
            os.close(ns_fd)
        n.tap = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(n.tap, TUNSETIFF, struct.pack("16sH", b"agrX", IFF_TAP | IFF_NO_PI))
        n.run("ip", "link", "set", "agrX", "address", AGR_MAC.hex(":"), "up")
        for dev in ("p0", "q0", "p1", "q1"):
            n.run("ip", "link", "set", dev, "up")
        yield n
    finally:
        try:
            n.close()
        finally:
            _setns(home)
            os.close(home)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


# -- frames -----------------------------------------------------------------------------------
def data_frame(marker, i, dst=AGR_MAC, src=PEER_MAC, ethertype=ETH_P_TEST, tag=None):
    head = dst + src + (struct.pack("!HH", 0x8100, tag) if tag is not None else b"")
    return head + struct.pack("!H", ethertype) + marker + struct.pack("!I", i) + bytes(40)


def udp_frame(marker, i):
    return bytes(Ether(src=AGR_MAC, dst=PEER_MAC) / IP(src="192.0.2.1", dst=f"192.0.2.{2 + i % 50}")
                 / UDP(sport=1024 + 7 * i, dport=5000 + i) / Raw(marker + struct.pack("!I", i) + bytes(20)))


def recv(sock, timeout):
    """One frame not sent by this host, with a VLAN tag the kernel kept aside put back inline."""
    r, _, _ = select.select([sock], [], [], timeout)
    if not r:
        return None
    data, anc, _flags, addr = sock.recvmsg(65536, socket.CMSG_SPACE(20))
    if addr[2] == PACKET_OUTGOING:
        return b""
    for level, kind, value in anc:
        if (level, kind) == (SOL_PACKET, PACKET_AUXDATA):
            status, _len, _snap, _mac, _net, tci, tpid = struct.unpack("IIIHHHH", value[:20])
            if status & TP_STATUS_VLAN_VALID:
                data = data[:12] + struct.pack("!HH", tpid or 0x8100, tci) + data[12:]
    return data


def collect_from(socks, marker, want, timeout=1.0):
    """[(index of the socket, frame)] of the marked frames arriving on any of socks, until
    `want` came or `timeout` passed."""
    got, deadline = [], time.monotonic() + timeout
    while len(got) < want:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(socks, [], [], left)
        for sock in ready:
            frame = recv(sock, 0)
            if frame and marker in frame:
                got.append((socks.index(sock), frame))
    return got


def collect(sock, marker, want, timeout=1.0):
    """The marked frames arriving on sock: until `want` came or `timeout` passed."""
    return [frame for _i, frame in collect_from([sock], marker, want, timeout)]


def tap_frames(net, marker):
    out = []
    while True:
        try:
            frame = os.read(net.tap, 65536)
        except BlockingIOError:
            return out
        if marker in frame:
            out.append(frame)


def send(sock_dev, frames, dropped=False):
    """Send frames on a device; dropped=True: expect each send to fail with ENOBUFS (a tc program
    said TC_ACT_SHOT)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        s.bind((sock_dev, 0))
        for frame in frames:
            if dropped:
                with pytest.raises(OSError) as info:
                    s.send(frame)
                assert info.value.errno == errno.ENOBUFS
            else:
                s.send(frame)
    finally:
        s.close()


QUIET = 0.25    # how long to wait to be sure nothing comes


# -- port ingress ---------------------------------------------------------------------------------
def test_port_ingress_into_agr_slow_protocols_stay(net):
    p0 = net.index("p0")
    fp = net.fastpath(L2 | L3, False)
    fp.attach_port("p0")
    fp.set_collecting([p0])
    agr = net.sock("agrX")
    p0_test, p0_slow = net.sock("p0", ETH_P_TEST), net.sock("p0", ETH_P_SLOW)
    m = secrets.token_bytes(8)
    data = [data_frame(m, i) for i in range(10)]
    tagged = [data_frame(m, 100 + i, tag=5) for i in range(2)]
    tagged_slow = [data_frame(m, 200, dst=SLOW_MAC, ethertype=ETH_P_SLOW, tag=5)]
    slow = [data_frame(m, 300 + i, dst=SLOW_MAC, ethertype=ETH_P_SLOW) for i in range(3)]
    send("q0", data + tagged + tagged_slow + slow)

    into_agr = collect(agr, m, 13)
    assert sorted(into_agr) == sorted(data + tagged + tagged_slow)        # tags intact, no Slow Protocols
    assert collect(p0_slow, m, 3) == slow                                 # LACP/Marker: to the worker
    assert collect(p0_test, m, 1, QUIET) == []                            # p0's own stack saw no data
    assert collect(agr, m, 1, QUIET) == []
    c = fp.counters()["ports"][p0]
    assert (c["rx_packets"], c["rx_slow"], c["rx_dropped"]) == (13, 3, 0)
    assert c["rx_bytes"] == sum(len(f) for f in data) + sum(len(f) - 4 for f in tagged + tagged_slow)

    fp.set_collecting([])                                                 # not collecting: discard
    send("q0", [data_frame(m, 400 + i) for i in range(5)] + slow)
    assert collect(p0_slow, m, 3) == slow
    assert collect(agr, m, 1, QUIET) == [] and collect(p0_test, m, 1, 0.01) == []
    c = fp.counters()["ports"][p0]
    assert (c["rx_packets"], c["rx_slow"], c["rx_dropped"]) == (13, 6, 5)


# -- agr egress -----------------------------------------------------------------------------------
def test_agr_egress_to_the_port_or_dropped(net):
    p0 = net.index("p0")
    q0 = net.sock("q0")
    m = secrets.token_bytes(8)
    send("agrX", [udp_frame(m, 0)])                       # control: without the program, the TAP has it
    seen, deadline = [], time.monotonic() + 1
    while not seen and time.monotonic() < deadline:
        seen = tap_frames(net, m) or time.sleep(0.01) or []
    assert len(seen) == 1

    fp = net.fastpath(L2 | L3, False)
    fp.attach_tap()
    frames = [udp_frame(m, i) for i in range(1, 5)]
    send("agrX", frames, dropped=True)                    # no distributing port
    assert collect(q0, m, 1, QUIET) == [] and tap_frames(net, m) == []
    assert fp.counters()["tx_drop_no_port"] == 4

    fp.set_ports([p0])
    frames = [udp_frame(m, i) for i in range(10, 20)]
    send("agrX", frames)
    assert collect(q0, m, 10) == frames
    assert tap_frames(net, m) == []
    c = fp.counters()
    assert c["ports"][p0]["tx_packets"] == 10 and c["ports"][p0]["tx_bytes"] == sum(map(len, frames))
    assert c["tx_drop_no_port"] == 4


def test_two_ports_by_flow_hash_with_vlan_metadata_and_round_robin(net):
    p0, p1 = net.index("p0"), net.index("p1")
    q = [net.sock("q0"), net.sock("q1")]
    fp = net.fastpath(L2 | L3 | L4, False)
    fp.attach_tap()
    fp.set_ports([p0, p1])
    m = secrets.token_bytes(8)
    frames = [udp_frame(m, i) for i in range(24)]
    arrived = {}

    def arrivals(count):
        for port, frame in collect_from(q, m, count):
            arrived.setdefault(frame, []).append(port)
        assert collect_from(q, m, 1, 0.05) == []

    send("agrX", frames)
    arrivals(24)
    # A VLAN device would hand agrX its tag as skb metadata; this kernel has no 8021q, so a program
    # ahead of ours does the same with bpf_skb_vlan_push (tag 5 as metadata, then "continue"):
    # before ours on the tcx hook (this kernel has tcx: there ours runs before any filter).
    tagger = (Asm().mov(R6, src=R1).mov(R1, src=R6).mov(R2, 0x0081).mov(R3, 5).call(BPF_FUNC_skb_vlan_push)
              .mov(R0, -1).exit())
    prog = bpf.prog_load(tagger.assemble(), "t_tagger")
    (ours_id,) = fastpath.tcx_ours(net.index("agrX"), EGRESS)
    bpf.tcx_attach(net.index("agrX"), bpf.BPF_TCX_EGRESS, prog, before_id=ours_id)
    os.close(prog)
    send("agrX", frames)
    arrivals(24)
    assert len(arrived) == 48 and all(len(v) == 1 for v in arrived.values())
    for frame in frames:
        tagged = frame[:12] + b"\x81\x00\x00\x05" + frame[12:]          # as the relay reads it from the TAP
        assert arrived[frame] == [flow_hash(frame, L2 | L3 | L4) % 2]
        assert arrived[tagged] == [flow_hash(tagged, L2 | L3 | L4) % 2]
    assert {v[0] for v in arrived.values()} == {0, 1}

    fp.set_policy(L2 | L3, True)
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})           # round robin counts per CPU
    try:
        m = secrets.token_bytes(8)
        one_flow = [udp_frame(m, 0)[:-4] + struct.pack("!I", k) for k in range(10)]   # numbered
        send("agrX", one_flow)
        got = collect_from(q, m, 10)
    finally:
        os.sched_setaffinity(0, saved)
    ports = [port for port, _frame in sorted(got, key=lambda pf: pf[1][-4:])]   # in sending order
    assert ports in ([0, 1] * 5, [1, 0] * 5)


def test_headers_outside_the_linear_part_are_pulled_in(net):
    """A frame whose linear part holds only the Ethernet header (packet socket with a vnet header
    saying hdr_len 14, frame larger than a page): the program pulls the headers in and hashes
    them; without that every such frame would hash alike (policy l3,l4 has nothing in 14 bytes)."""
    for dev in ("agrX", "p0", "q0", "p1", "q1"):
        net.run("ip", "link", "set", dev, "mtu", "9000")
    p0, p1 = net.index("p0"), net.index("p1")
    q = [net.sock("q0"), net.sock("q1")]
    fp = net.fastpath(L3 | L4, False)
    fp.attach_tap()
    fp.set_ports([p0, p1])
    m = secrets.token_bytes(8)
    frames = [bytes(Ether(src=AGR_MAC, dst=PEER_MAC) / IP(src="192.0.2.1", dst="192.0.2.2")
                    / UDP(sport=2000 + i, dport=6000 + 3 * i) / Raw(m + bytes(5000))) for i in range(16)]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.bind(("agrX", 0))
        for frame in frames:
            s.send(struct.pack("<BBHHHH", 0, 0, 14, 0, 0, 0) + frame)      # virtio_net_hdr, hdr_len 14
    finally:
        s.close()
    got = dict((frame, port) for port, frame in collect_from(q, m, 16))
    assert len(got) == 16
    assert [got[f] for f in frames] == [flow_hash(f, L3 | L4) % 2 for f in frames]
    assert set(got.values()) == {0, 1}


# -- leaving no trace -------------------------------------------------------------------------------
def ours(net, dev, hook):
    """Our filters on the hook; on tcx (this kernel has it), the one program of theirs."""
    parent = {"egress": EGRESS, "ingress": INGRESS}[hook]
    count = net.tc("filter", "show", "dev", dev, hook).count("agrconfig_")
    assert len(fastpath.tcx_ours(net.index(dev), parent)) == count, (dev, hook)
    return count


def tcx_ids(net, dev, hook):
    return bpf.tcx_query(net.index(dev), {"egress": bpf.BPF_TCX_EGRESS, "ingress": bpf.BPF_TCX_INGRESS}[hook])[0]


def test_close_removes_clsact(net):
    fp = net.fastpath()
    fp.attach_tap()
    fp.attach_port("p0")
    fp.attach_port("p1")
    first = tcx_ids(net, "p1", "ingress")
    fp.attach_port("p1")                              # again: replaced, not doubled
    assert (ours(net, "agrX", "egress"), ours(net, "p0", "ingress"), ours(net, "p1", "ingress")) == (1, 1, 1)
    assert len(first) == 1 and len(tcx_ids(net, "p1", "ingress")) == 1 and tcx_ids(net, "p1", "ingress") != first
    assert "clsact" in net.tc("qdisc", "show", "dev", "p0")
    net.run("tc", "qdisc", "del", "dev", "p1", "clsact")   # somebody took the filter naming ours on tcx
    assert len(tcx_ids(net, "p1", "ingress")) == 1
    fp.detach_port("p1")                              # ours comes off tcx all the same
    assert "clsact" not in net.tc("qdisc", "show", "dev", "p1") and tcx_ids(net, "p1", "ingress") == []
    fp.close()
    for dev in ("agrX", "p0", "p1"):
        assert "clsact" not in net.tc("qdisc", "show", "dev", dev), dev
        assert tcx_ids(net, dev, "egress") == tcx_ids(net, dev, "ingress") == [], dev


def test_cleanup_after_a_killed_owner_keeps_foreign_filters(net):
    devs = ["agrX", "p0", "p1"]
    index = {d: net.index(d) for d in devs}
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from agrconfig.worker.fastpath import FastPath;"
            "f = FastPath(int(sys.argv[2])); f.attach_tap(); f.attach_port('p0'); f.attach_port('p1');"
            "print('ready', flush=True); time.sleep(60)")
    proc = subprocess.Popen(["ip", "netns", "exec", net.name, sys.executable, "-c", code, ROOT, str(index["agrX"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # Somebody else's filter on p1's ingress, ahead of ours (returns "continue").
    prog = bpf.prog_load(Asm().mov(R0, -1).exit().assemble(), "t_foreign")
    with IPRoute() as ipr:
        ipr.tc("add-filter", "bpf", index["p1"], 1, fd=prog, name="foreign", parent=INGRESS, classid=1,
               direct_action=True, prio=7, protocol=ETH_P_ALL)
    foreign = bpf.prog_load(Asm().mov(R0, -1).exit().assemble(), "t_foreign")   # and on tcx, after ours
    bpf.tcx_attach(index["p1"], bpf.BPF_TCX_INGRESS, foreign)
    os.close(foreign)
    os.close(prog)
    assert (ours(net, "agrX", "egress"), ours(net, "p0", "ingress"), ours(net, "p1", "ingress")) == (1, 1, 1)
    assert len(tcx_ids(net, "p1", "ingress")) == 2

    fp = net.fastpath()                               # a new owner attaching over the leftovers
    fp.attach_tap()
    fp.attach_port("p0")
    assert (ours(net, "agrX", "egress"), ours(net, "p0", "ingress")) == (1, 1)
    fp.close()

    FastPath.cleanup(list(index.values()))
    for dev in ("agrX", "p0"):
        assert "clsact" not in net.tc("qdisc", "show", "dev", dev), dev
    assert ours(net, "p1", "ingress") == 0 and "foreign" in net.tc("filter", "show", "dev", "p1", "ingress")
    assert len(tcx_ids(net, "p1", "ingress")) == 1                                   # the foreign one
    assert tcx_ids(net, "agrX", "egress") == tcx_ids(net, "p0", "ingress") == []
    assert "clsact" in net.tc("qdisc", "show", "dev", "p1")
    FastPath.cleanup(list(index.values()))            # twice: nothing to do, no error
