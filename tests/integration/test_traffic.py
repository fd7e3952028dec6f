"""Frames through agr0, on both data paths (`datapath relay` and `datapath ebpf`).

Every test asserts the path in force (status JSON and text, and the tc filters on agr0), so
that none can pass on the other path: `datapath auto`, the default, would be eBPF here.
Traffic is counted from the kernel's own counters of the ports and of agr0, not from agrconfig's:
on the fast path agr0's TAP counts no sent frame (tc redirects them before the TAP), on the
relay it counts every one, which tells which path carried the frames.

VLAN: this kernel has no 8021q, so tagged frames are written raw with packet sockets on the
cable's far end or on agr0. The kernel moves a received tag into skb metadata; the relay must
put it back from PACKET_AUXDATA, and the fast path must keep it through the redirect.
"""
import ctypes
import json
import os
import secrets
import select
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from agrconfig.worker import bpf, fastpath
from agrconfig.worker.flowhash import L2, L3, flow_hash
from tests.integration.helpers import aggregate, host_pair, ok, port_flags, status_json
from tests.lab import Lab

pytestmark = pytest.mark.integration

DATAPATHS = ("relay", "ebpf")
PORTS = ("re0", "re1")          # attach order = order of the distributing table (port = PORTS[hash % 2])
ETH_P_ALL, ETH_P_TEST = 0x0003, 0x88B5
SOL_PACKET, PACKET_AUXDATA = 263, 8
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
PACKET_OUTGOING = 4
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


# -- the pair, built once per data path ---------------------------------------------------------
class Pair:
    def __init__(self, lab, a, b, datapath):
        self.lab, self.a, self.b, self.datapath = lab, a, b, datapath

    def check(self, text=False):
        """The data path asked for is the one in force on both ends, both ports distributing."""
        for ns in (self.a, self.b):
            assert_datapath(self.lab, ns, self.datapath, text=text)


@pytest.fixture(scope="module", params=DATAPATHS)
def built(request):
    """Two hosts, agr0 over re0+re1 on each with the data path given at create; the lab (and
    with it every namespace and worker) goes when the module's tests on this path are done."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    with Lab() as lab:
        a, b = host_pair(lab)
        both(lambda ns, addr: (make_agr(lab, ns, ("datapath", request.param)),
                               ok(lab, ns, "agr0", "inet", addr)),
             (a, "192.0.2.1/24"), (b, "192.0.2.2/24"))
        yield Pair(lab, a, b, request.param)


def make_agr(lab, ns, words):
    """agr0 over re0 and re1. The kernel gives a veth its link-local address only once the
    carrier is seen, from a work queue, up to a second after `link up`: wait for it, or it can
    come after aggregate() removed the addresses, and agrport fails with EBUSY."""
    lab.wait_for(lambda: all("inet6 fe80" in lab.ip(ns, "-o", "addr", "show", "dev", p).stdout for p in PORTS),
                 timeout=15, what=f"{ns}: link-local addresses on the ports")
    aggregate(lab, ns, words=words)


def both(fn, *args):
    """fn(*x) for each x at the same time (the two hosts' set-ups, to halve the wait)."""
    with ThreadPoolExecutor(len(args)) as pool:
        return [f.result() for f in [pool.submit(fn, *x) for x in args]]


@pytest.fixture
def pair(built):
    built.check(text=True)
    return built


def assert_datapath(lab, ns, want, ports=PORTS, text=False):
    """`want` in force in ns by status JSON (and text), and by the tc filters on agr0; waits
    for `ports` to distribute and, on eBPF, for the "normal" mode ("pass" hands frames to the
    relay for the moment a port joins)."""
    last = {}

    def settled():
        doc = status_json(lab, ns)
        info = doc["linkinfo"]["info_data"]
        assert info["datapath"] == want, f"{ns}: datapath {info['datapath']} in force, not {want}"
        last.update(mode=info["datapath_mode"], ports={p["ifname"]: (p["flags"], p.get("mux_state"),
                                                                      p.get("rx_state")) for p in doc["agrports"]})
        return all(last["ports"][p][0] == 3 for p in ports) and \
            info["datapath_mode"] == ("normal" if want == "ebpf" else None)
    lab.wait_for(settled, timeout=45, interval=0.5, what=Lazy(lambda: f"{ns}: {ports} distributing on {want}; "
                                                                   f"last seen {last}"))
    if text:
        agr_line = next(line for line in ok(lab, ns, "agr0").splitlines() if line.startswith("\tagr: "))
        assert agr_line.endswith(f"; datapath {want}"), agr_line
    filters = lab.run(ns, "tc", "filter", "show", "dev", "agr0", "egress", check=False).stdout
    if want == "ebpf":
        assert "agrconfig_" in filters, f"{ns}: status says ebpf but agr0 has no egress program"
    else:
        assert "agrconfig_" not in filters, f"{ns}: status says relay but agr0 has an egress program"


class Lazy:
    """A message made when printed (after the wait, with what was last seen)."""
    def __init__(self, fn):
        self.fn = fn

    def __str__(self):
        return self.fn()


# -- counting -------------------------------------------------------------------------------------
def tx_counts(lab, ns):
    """Frames sent, by the kernel's count, on re0, re1 and agr0."""
    links = json.loads(lab.ip(ns, "-j", "-s", "link", "show").stdout)
    return {link["ifname"]: link["stats64"]["tx"]["packets"] for link in links
            if link["ifname"] in (*PORTS, "agr0")}


def flood(lab, ns, dst, count):
    lab.run(ns, "ping", "-q", "-f", "-c", str(count), "-W", "1", dst, check=False, timeout=120)


def flooded(p, dst, count):
    """Flood dst from a; the kernel's tx counts of a's ports and agr0 over the flood."""
    before = tx_counts(p.lab, p.a)
    flood(p.lab, p.a, dst, count)
    after = tx_counts(p.lab, p.a)
    return {k: after[k] - before[k] for k in after}


def assert_carried_by(p, delta, sent):
    """The frames went the configured way: through the TAP with the relay, around it on eBPF."""
    if p.datapath == "relay":
        assert delta["agr0"] >= sent, f"relay: agr0's TAP sent only {delta['agr0']} of {sent} frames"
    else:
        assert delta["agr0"] <= 2, f"ebpf: {delta['agr0']} of {sent} frames went through agr0's TAP"


# -- ping and TCP ---------------------------------------------------------------------------------
def ping(lab, ns, dst, *args):
    return lab.run(ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", *args, dst, check=False).returncode == 0


def test_ping_both_ways(pair):
    p = pair
    assert ping(p.lab, p.a, "192.0.2.2") and ping(p.lab, p.b, "192.0.2.1")
    assert ping(p.lab, p.a, "192.0.2.2", "-s", "4000"), "larger than the MTU: fragments"
    p.check()


TRANSFER = r"""
import hashlib, random, socket, sys, time
mode, addr, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "recv":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 5301)); s.listen(1); s.settimeout(60); print("ready", flush=True)
    c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(1 << 16)
        if not d: break
        h.update(d); n += len(d)
    print(n, h.hexdigest(), flush=True)
else:
    data = random.Random(size).randbytes(size)
    s = socket.create_connection((addr, 5301), timeout=30); t = time.monotonic()
    s.sendall(data); s.shutdown(socket.SHUT_WR); s.recv(1)
    print(time.monotonic() - t, hashlib.sha256(data).hexdigest(), flush=True)
"""


def tcp_transfer(lab, src, dst, dst_addr, size):
    """size bytes over TCP from src to dst; returns (bytes received, received sha, sent sha, s)."""
    server = subprocess.Popen(["ip", "netns", "exec", dst, sys.executable, "-c", TRANSFER, "recv", dst_addr,
                               str(size)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready", server.stderr.read()
        client = lab.run(src, sys.executable, "-c", TRANSFER, "send", dst_addr, str(size), check=False,
                         timeout=90)
        assert client.returncode == 0, f"TCP transfer failed: {client.stderr[-800:]}"
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    got, got_sha = out.split()
    seconds, sent_sha = client.stdout.split()
    return int(got), got_sha, sent_sha, float(seconds)


def test_tcp_payload_crosses_intact_both_ways(pair):
    """A real TCP payload, checked end to end: veth leaves TCP checksums to finish
    (CHECKSUM_PARTIAL) and sends 64 KB GSO frames; a copying path without the virtio-net header
    breaks TCP while ping still works."""
    p = pair
    size = 32 << 20
    for src, dst, addr in ((p.a, p.b, "192.0.2.2"), (p.b, p.a, "192.0.2.1")):
        got, got_sha, sent_sha, seconds = tcp_transfer(p.lab, src, dst, addr, size)
        assert (got, got_sha) == (size, sent_sha), f"TCP payload to {addr} arrived changed or short"
        mbit = size * 8 / seconds / 1e6
        assert mbit > 50, f"TCP to {addr} through agr0 crawls at {mbit:.1f} Mbit/s"
    p.check()


# -- distribution ---------------------------------------------------------------------------------
ALIASES = [f"192.0.2.{i}" for i in range(3, 19)]


def test_each_flow_stays_on_its_hashed_port_and_flows_use_both(pair):
    """16 flows (one per destination address), flow hash (-link0): every frame of a flow leaves
    on PORTS[flow_hash % 2], the port the relay and the eBPF program must both choose, and the
    flows use both ports."""
    p = pair
    lab, a, b = p.lab, p.a, p.b
    lab.run(b, "ip", "-batch", "-", input="".join(f"addr replace {x}/24 dev agr0\n" for x in ALIASES))
    info = status_json(lab, a)["linkinfo"]["info_data"]
    assert info["flags"]["link0"] is False
    policy = info["flags"]["hash"]
    mac_a, mac_b = status_json(lab, a)["address"], status_json(lab, b)["address"]
    for x in ALIASES:                   # neighbours resolved first: no ARP inside the counts
        assert lab.ping(a, x, count=1, wait=3), x
    used, total = set(), {k: 0 for k in (*PORTS, "agr0")}
    for x in ALIASES:
        frame = bytes(Ether(src=mac_a, dst=mac_b) / IP(src="192.0.2.1", dst=x) / ICMP())
        want = PORTS[flow_hash(frame, policy) % 2]
        other = PORTS[1 - PORTS.index(want)]
        delta = flooded(p, x, 50)
        # A few frames of background (LACPDUs, IPv6 multicast, neighbour probes) are allowed.
        assert delta[want] >= 50 and delta[other] <= 3, f"flow to {x}: {delta}, expected on {want}"
        used.add(want)
        total = {k: total[k] + delta[k] for k in total}
    assert used == set(PORTS), "the 16 flows all hashed to one port: choose other addresses"
    assert_carried_by(p, total, 16 * 50)
    p.check()


def test_link0_round_robin_spreads_one_flow(pair):
    p = pair
    ok(p.lab, p.a, "agr0", "link0")
    try:
        assert "LINK0" in ok(p.lab, p.a, "agr0").splitlines()[0]
        assert "distribution round-robin (link0)" in ok(p.lab, p.a, "agr0")
        delta = flooded(p, "192.0.2.2", 200)
    finally:
        ok(p.lab, p.a, "agr0", "-link0")
    # One flow, 200 echo requests: about half on each port (a flow hash puts all on one).
    assert all(delta[x] >= 60 for x in PORTS), f"one flow not spread by link0: {delta}"
    assert_carried_by(p, delta, 200)
    p.check()


# -- VLAN-tagged frames ---------------------------------------------------------------------------
@contextmanager
def in_netns(name):
    """Run the block (one thread) in namespace `name`: sockets made there stay there."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        yield
    finally:
        if _libc.setns(home, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back home")
        os.close(target)
        os.close(home)


@contextmanager
def packet_sockets(*where):
    """ETH_P_ALL packet sockets with PACKET_AUXDATA on (namespace, device) pairs."""
    socks = []
    try:
        for ns, dev in where:
            with in_netns(ns):
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.bind((dev, ETH_P_ALL))
                s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
                socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def send_raw(ns, dev, frames):
    with in_netns(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        s.bind((dev, 0))
        for frame in frames:
            s.send(frame)
    finally:
        s.close()


def received(socks, marker, want, timeout=10.0):
    """[(index of socket, frame)] of frames holding marker that arrived (not sent) on socks, the
    VLAN tag the kernel moved into metadata put back in place; until `want` came, then a short
    extra wait for any duplicate."""
    got, deadline = [], time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        ready, _, _ = select.select(socks, [], [], left)
        for s in ready:
            data, anc, _flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(20))
            if addr[2] == PACKET_OUTGOING or marker not in data:
                continue
            for level, kind, value in anc:
                if (level, kind) == (SOL_PACKET, PACKET_AUXDATA):
                    status, _len, _snap, _mac, _net, tci, tpid = struct.unpack("IIIHHHH", value[:20])
                    if status & TP_STATUS_VLAN_VALID:
                        tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                        data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
            got.append((socks.index(s), data))
        if len(got) >= want:
            deadline = min(deadline, time.monotonic() + 0.3)


def tagged_frame(dst, src, marker, i, tags=()):
    """Ethernet frame of the local experimental EtherType with 802.1Q/802.1ad tags [(tpid, tci)]."""
    head = dst + src + b"".join(struct.pack("!HH", tpid, tci) for tpid, tci in tags)
    return head + struct.pack("!H", ETH_P_TEST) + marker + struct.pack("!I", i) + bytes(50)


TAG_CASES = [
    (),                                              # untagged, for comparison
    ((0x8100, 0xB02A),),                             # priority 5, DEI, VLAN 42
    ((0x8100, 0x0000),),                             # TCI 0: tag present, all fields zero
    ((0x8100, 0x6000),),                             # priority-tagged (VLAN 0, priority 3)
    ((0x88A8, 0x0064), (0x8100, 0x00C8)),            # 802.1ad QinQ: S-tag 100, C-tag 200
]


def test_tagged_frames_from_the_cable_reach_agr0_with_their_tags(pair):
    """Frames tagged on the wire arrive on a's agr0 with the same tag, through either port:
    the kernel strips the tag into metadata on the port, so the relay must restore it from
    PACKET_AUXDATA (with its TPID), and the fast path must keep it across bpf_redirect."""
    p = pair
    mac_a = bytes.fromhex(status_json(p.lab, p.a)["address"].replace(":", ""))
    src = bytes.fromhex("02bb000000b1")
    marker = secrets.token_bytes(8)
    sent = {}
    with packet_sockets((p.a, "agr0")) as socks:
        for n, port in enumerate(PORTS):
            frames = [tagged_frame(mac_a, src, marker, 10 * n + k, tags) for k, tags in enumerate(TAG_CASES)]
            send_raw(p.b, port, frames)             # b's port directly: around b's agr0
            sent.update((f, port) for f in frames)
        got = received(socks, marker, len(sent))
    frames = [f for _i, f in got]
    assert sorted(frames) == sorted(sent), (
        "frames reached agr0 changed, lost or doubled (tags shown inline):\n"
        + "\n".join(f"sent {f[12:20].hex()} via {port}" for f, port in sent.items()) + "\n"
        + "\n".join(f"got  {f[12:20].hex()}" for f in frames))
    p.check()


VLAN_MACS = (bytes.fromhex("02bb000000b2"), bytes.fromhex("02aa000000a2"))  # fixed: a fixed spread


def test_tagged_frames_from_agr0_leave_by_their_hash_with_their_tags(pair):
    """Tagged frames written on a's agr0 leave on PORTS[flow_hash % 2] (l2 hashes the VLAN ID,
    so frames that differ only in their VLAN use both ports) with their tag, and arrive on b's
    agr0 (through b's data path) with it too."""
    p = pair
    policy = status_json(p.lab, p.a)["linkinfo"]["info_data"]["flags"]["hash"]
    assert policy & L2, "the default hash must include l2 (NetBSD's l2,l3)"
    dst, src = VLAN_MACS
    marker = secrets.token_bytes(8)
    frames = [tagged_frame(dst, src, marker, vid, [(0x8100, 0x2000 | vid)]) for vid in range(1, 17)]
    frames += [tagged_frame(dst, src, marker, 100 + k, tags) for k, tags in enumerate(TAG_CASES)]
    want = {f: PORTS[flow_hash(f, policy) % 2] for f in frames}
    assert set(want.values()) == set(PORTS), "these frames all hash to one port: choose others"
    where = [(p.b, port) for port in PORTS]
    with packet_sockets(*where, (p.b, "agr0")) as socks:
        send_raw(p.a, "agr0", frames)
        got = received(socks, marker, 2 * len(frames))
    on_wire = sorted((f, PORTS[i]) for i, f in got if i < len(PORTS))
    assert on_wire == sorted(want.items()), (
        "frames left a on other ports than flow_hash says, changed, lost or doubled:\n"
        + "\n".join(f"{f[12:18].hex()} want {port}" for f, port in want.items()) + "\n"
        + "\n".join(f"{f[12:18].hex()} got  {port}" for f, port in on_wire))
    into_b = sorted(f for i, f in got if i == len(PORTS))
    assert into_b == sorted(frames), "frames reached b's agr0 changed, lost or doubled"
    p.check()


def test_egress_program_hashes_the_vlan_tag():
    """BPF_PROG_TEST_RUN of the agrN egress program: frames that differ only in their 802.1Q
    tag go to ports[flow_hash % n], as the relay sends them, and not all to the same port."""
    ports = [2001, 2002, 2003]
    dst, src = VLAN_MACS
    frames = [tagged_frame(dst, src, b"vlanhash", 0, [(0x8100, 0x2000 | vid)]) for vid in range(1, 25)]
    frames += [tagged_frame(dst, src, b"vlanhash", 0, [(0x8100, 5 << 13 | 7)]),      # priority differs
               tagged_frame(dst, src, b"vlanhash", 0)]
    with fastpath.FastPath(1, L2 | L3, False) as fp:
        fp.set_ports(ports)
        picked = []
        for frame in frames:
            before = {i: c["tx_packets"] for i, c in fp.counters()["ports"].items()}
            assert bpf.prog_test_run(fp.egress_fd, frame) == bpf.TC_ACT_REDIRECT
            after = {i: c["tx_packets"] for i, c in fp.counters()["ports"].items()}
            moved = [i for i in ports if after[i] != before[i]]
            assert moved == [ports[flow_hash(frame, L2 | L3) % 3]], frame[12:16].hex()
            picked.append(moved[0])
    assert len(set(picked)) == 3, "the VLAN tag does not change the port: is it hashed?"


# -- static, without LACP -------------------------------------------------------------------------
@pytest.mark.parametrize("datapath", DATAPATHS)
def test_link1_static_distributes_without_lacp(lab, datapath):
    a, b = host_pair(lab)
    both(lambda ns: make_agr(lab, ns, ("link1", "datapath", datapath)), (a,), (b,))
    for ns in (a, b):
        assert_datapath(lab, ns, datapath, text=True)
        assert "LINK1" in ok(lab, ns, "agr0").splitlines()[0]
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")
    assert ping(lab, a, "192.0.2.2")
    lab.ip(b, "link", "set", "re1", "down")
    lab.wait_for(lambda: port_flags(lab, a)["re1"] == 0, timeout=10, what="re1 out on carrier loss")
    assert ping(lab, a, "192.0.2.2")
    assert_datapath(lab, a, datapath, ports=("re0",))
