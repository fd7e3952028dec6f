"""The fast path's flow hash, run in the kernel, equals flowhash.flow_hash on every frame.

This is the proof that the Python relay and the eBPF fast path send a flow to the same port.
The hash program is made of the very emit_pull/emit_hash code the agrN egress program uses;
the egress program itself is checked too (its pick must be ports[flow_hash % n]).
"""
import errno
import itertools
import os
import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from agrconfig.worker import bpf, fastpath
from agrconfig.worker.flowhash import L2, L3, L4, flow_hash

# Always give scapy both MACs: left to itself it resolves the destination with ARP on the host.
SRC, DST = "02:00:00:00:00:01", "02:00:00:00:00:02"
POLICIES = [0, L2, L3, L4, L2 | L3, L2 | L4, L3 | L4, L2 | L3 | L4]


def _mac(rnd):
    return ":".join(f"{b:02x}" for b in [rnd.randrange(256) & 0xFE | 2] + [rnd.randrange(256) for _ in range(5)])


def _l4(rnd):
    kind = rnd.randrange(5)
    if kind == 0:
        return TCP(sport=rnd.randrange(65536), dport=rnd.randrange(65536)) / Raw(b"t" * rnd.randrange(20))
    if kind == 1:
        return UDP(sport=rnd.randrange(65536), dport=rnd.randrange(65536)) / Raw(b"u" * rnd.randrange(20))
    if kind == 2:
        return ICMP(id=rnd.randrange(65536))
    if kind == 3:
        return Raw(bytes(rnd.randrange(256) for _ in range(12)))          # SCTP-ish: no ports hashed
    return UDP(sport=rnd.randrange(65536), dport=4789)


def _ip(rnd, l4):
    if rnd.random() < 0.5:
        ip = IP(src=f"192.0.2.{rnd.randrange(256)}", dst=f"198.51.100.{rnd.randrange(256)}",
                id=rnd.randrange(65536), ttl=rnd.randrange(1, 256))
        r = rnd.random()
        if r < 0.15:
            ip.flags, ip.frag = "MF", 0                                  # first fragment
        elif r < 0.3:
            ip.frag = rnd.randrange(1, 8192)                             # later fragment
        elif r < 0.35:
            ip.flags = "DF"
        if rnd.random() < 0.2:
            words = rnd.randrange(1, 11)                                 # IHL 6..15
            ip.ihl, ip.options = 5 + words, b"\x01" * (4 * words)
        if isinstance(l4, Raw):
            ip.proto = rnd.choice([132, 47, 6, 17])                      # unknown payload, or lying
        return ip / l4
    ip6 = IPv6(src=f"2001:db8::{rnd.randrange(65536):x}:{rnd.randrange(65536):x}",
               dst=f"2001:db8:1::{rnd.randrange(65536):x}", fl=rnd.randrange(1 << 20))
    r = rnd.random()
    if r < 0.15:
        return ip6 / IPv6ExtHdrHopByHop() / l4                           # no ports at +40
    if r < 0.25:
        return ip6 / IPv6ExtHdrFragment() / l4
    if isinstance(l4, Raw):
        ip6.nh = rnd.choice([132, 6, 17])
    return ip6 / l4


def _tags(rnd):
    r = rnd.random()
    if r < 0.55:
        return []
    if r < 0.85:
        return [Dot1Q(vlan=rnd.randrange(4096), prio=rnd.randrange(8), dei=rnd.randrange(2))]
    if r < 0.93:
        return [Dot1AD(vlan=rnd.randrange(4096)), Dot1Q(vlan=rnd.randrange(4096))]   # 802.1ad QinQ
    return [Dot1Q(vlan=rnd.randrange(4096)), Dot1Q(vlan=rnd.randrange(4096))]        # 8100/8100


def frames(count=360, seed=20240611):
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        eth = Ether(src=_mac(rnd), dst=rnd.choice([_mac(rnd), "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01"]))
        tags = _tags(rnd)
        r = rnd.random()
        if r < 0.85:
            payload = _ip(rnd, _l4(rnd))
        elif r < 0.92:
            payload = ARP(hwsrc=_mac(rnd), psrc=f"192.0.2.{rnd.randrange(256)}", hwdst="00:00:00:00:00:00",
                          pdst="192.0.2.1")
        else:
            payload = Raw(b"x" * rnd.randrange(46, 80))
            eth.type = rnd.choice([0x88CC, 0x8809, 0x88B5])
        pkt = eth
        for tag in tags:
            pkt = pkt / tag
        out.append(bytes(pkt / payload))
    # Truncated frames: every cut of a few frames of each shape, from 14 bytes up.
    full = list(out)
    for frame in full[:60]:
        for cut in sorted({14, 15, 16, 17, 18, 20, 30, 33, 34, 35, 36, 37, 38, 40, 42, 53, 54, 55, 56, 57,
                           58, 60, 61, 62, 66, 70, 80, 96}):
            if cut < len(frame):
                out.append(frame[:cut])
    return out


FRAMES = frames()


def kernel_refuses(frame):
    """BPF_PROG_TEST_RUN refuses (EINVAL) an untagged IPv4/IPv6 frame whose IP header is cut."""
    ethertype = int.from_bytes(frame[12:14], "big")
    return (ethertype == 0x0800 and len(frame) < 34) or (ethertype == 0x86DD and len(frame) < 54)


@pytest.fixture(scope="module")
def hash_progs():
    fds = {p: bpf.prog_load(fastpath.hash_program(p), "t_hash") for p in POLICIES}
    yield fds
    for fd in fds.values():
        os.close(fd)


def run_hash(fd, frame):
    try:
        return bpf.prog_test_run(fd, frame)
    except OSError as exc:
        assert exc.errno == errno.EINVAL and kernel_refuses(frame), frame.hex()
        return None


def test_frames_cover_the_cases():
    ethertypes = {int.from_bytes(f[12:14], "big") for f in FRAMES}
    assert {0x0800, 0x86DD, 0x8100, 0x88A8, 0x0806}.issubset(ethertypes)
    assert len(FRAMES) > 600
    # Flows with ports, fragments, options, and truncation all present:
    assert len({flow_hash(f, L4) for f in FRAMES}) > 100
    assert sum(len(f) > 14 and f[12:14] == b"\x08\x00" and f[14] != 0x45 for f in FRAMES) > 5


def policy_name(p):
    return "+".join(n for n, b in (("l2", L2), ("l3", L3), ("l4", L4)) if p & b) or "none"


@pytest.mark.parametrize("policy", POLICIES, ids=policy_name)
def test_bpf_hash_equals_python_hash(hash_progs, policy):
    checked = 0
    for frame in FRAMES:
        got = run_hash(hash_progs[policy], frame)
        if got is None:
            continue
        assert got == flow_hash(frame, policy), f"policy {policy} frame {frame.hex()}"
        checked += 1
    assert checked > 1200


def test_hash_does_not_depend_on_bytes_beyond_the_fields():
    """Payload bytes after the hashed fields change neither hash (both sides read only them)."""
    fd = bpf.prog_load(fastpath.hash_program(L2 | L3 | L4), "t_hash")
    try:
        base = bytes(Ether(src=SRC, dst=DST) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2)
                     / Raw(b"a" * 40))
        other = base[:-40] + b"b" * 40
        assert bpf.prog_test_run(fd, base) == bpf.prog_test_run(fd, other) == flow_hash(base, L2 | L3 | L4)
    finally:
        os.close(fd)


@pytest.mark.parametrize("policy,n", [(L2 | L3, 3), (L3 | L4, 2), (L2 | L3 | L4, 5), (L2, 1)])
def test_egress_program_picks_ports_of_flow_hash(policy, n):
    """The whole egress program: redirect to ports[flow_hash % n], counted on that port."""
    ports = [1000 + i for i in range(n)]
    with fastpath.FastPath(1, policy, False) as fp:
        fp.set_ports(ports)
        before = {i: 0 for i in ports}
        for frame in FRAMES[:300]:
            try:
                ret = bpf.prog_test_run(fp.egress_fd, frame)
            except OSError:
                assert kernel_refuses(frame)
                continue
            assert ret == bpf.TC_ACT_REDIRECT
            after = {i: c["tx_packets"] for i, c in fp.counters()["ports"].items()}
            moved = [i for i in ports if after[i] != before[i]]
            assert moved == [ports[flow_hash(frame, policy) % n]], frame.hex()
            before = after


def test_policy_change_takes_effect_at_once():
    frame = bytes(Ether(src=SRC, dst=DST) / IP(src="192.0.2.1", dst="192.0.2.9")
                  / TCP(sport=1234, dport=80))
    ports = [11, 12, 13, 14, 15, 16, 17]
    with fastpath.FastPath(1, L2, False) as fp:
        fp.set_ports(ports)
        for policy in itertools.chain(POLICIES, reversed(POLICIES)):
            fp.set_policy(policy, False)
            before = {i: c["tx_packets"] for i, c in fp.counters()["ports"].items()}
            assert bpf.prog_test_run(fp.egress_fd, frame) == bpf.TC_ACT_REDIRECT
            after = {i: c["tx_packets"] for i, c in fp.counters()["ports"].items()}
            assert [i for i in ports if after[i] != before[i]] == [ports[flow_hash(frame, policy) % 7]]
