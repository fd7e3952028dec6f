import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from agrconfig.worker.flowhash import (DEFAULT_POLICY, L2, L3, L4, flow_hash, format_policy,
                                       parse_policy)

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def h(pkt, policy=DEFAULT_POLICY):
    return flow_hash(bytes(pkt), policy)


def test_default_is_netbsd_fields():
    assert DEFAULT_POLICY == L2 | L3
    assert format_policy(DEFAULT_POLICY) == "l2,l3"
    assert parse_policy("l3,l2") == DEFAULT_POLICY


def test_same_flow_same_hash_and_ports_ignored_without_l4():
    p1 = Ether(src=A, dst=B) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2)
    p2 = Ether(src=A, dst=B) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=3, dport=4) / (b"x" * 100)
    assert h(p1) == h(p2)
    assert h(p1, L2 | L3 | L4) != h(p2, L2 | L3 | L4)


def test_each_field_counts():
    base = Ether(src=A, dst=B) / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1, dport=2)
    variants = [
        Ether(src=A, dst="02:00:00:00:00:0c") / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1, dport=2),
        Ether(src=A, dst=B) / IP(src="192.0.2.9", dst="192.0.2.2") / TCP(sport=1, dport=2),
        Ether(src=A, dst=B) / IP(src="192.0.2.1", dst="192.0.2.9") / TCP(sport=1, dport=2),
    ]
    for v in variants:
        assert h(v) != h(base)
    tagged = Ether(src=A, dst=B) / Dot1Q(vlan=5) / IP(src="192.0.2.1", dst="192.0.2.2")
    tagged2 = Ether(src=A, dst=B) / Dot1Q(vlan=6) / IP(src="192.0.2.1", dst="192.0.2.2")
    assert h(tagged) != h(tagged2)
    v6 = Ether(src=A, dst=B) / IPv6(src="2001:db8::1", dst="2001:db8::2")
    v6b = Ether(src=A, dst=B) / IPv6(src="2001:db8::1", dst="2001:db8::3")
    assert h(v6) != h(v6b)
    assert h(v6, L2) == h(v6b, L2)


def test_fragments_use_no_ports():
    frag = Ether(src=A, dst=B) / IP(src="192.0.2.1", dst="192.0.2.2", flags="MF") / UDP(sport=1, dport=2)
    frag2 = Ether(src=A, dst=B) / IP(src="192.0.2.1", dst="192.0.2.2", flags="MF") / UDP(sport=7, dport=8)
    assert h(frag, L2 | L3 | L4) == h(frag2, L2 | L3 | L4)


def test_short_frames_and_offset():
    assert isinstance(flow_hash(b"", DEFAULT_POLICY), int)
    assert isinstance(flow_hash(b"\x00" * 13, DEFAULT_POLICY), int)
    pkt = bytes(Ether(src=A, dst=B) / IP(src="192.0.2.1", dst="192.0.2.2"))
    assert flow_hash(b"\x00" * 10 + pkt, DEFAULT_POLICY, off=10) == flow_hash(pkt, DEFAULT_POLICY)
    assert flow_hash(memoryview(pkt), DEFAULT_POLICY) == flow_hash(pkt, DEFAULT_POLICY)


def test_spread_over_two_ports():
    hits = [0, 0]
    for i in range(256):
        pkt = Ether(src=A, dst=B) / IP(src="192.0.2.1", dst=f"198.51.100.{i}")
        hits[h(pkt) % 2] += 1
    assert min(hits) > 80, hits


def test_golden_value():
    """Pins the definition: the eBPF program must compute the very same number."""
    pkt = bytes(range(14))[:12] + struct.pack("!H", 0x0800) + bytes(20)
    assert flow_hash(pkt, L2) == flow_hash(pkt, L2)
    words = [int.from_bytes(pkt[i:i + 4], "little") for i in (0, 4, 8)]
    x = 0x811C9DC5
    for w in words:
        x = ((x ^ w) * 0x01000193) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    assert flow_hash(pkt, L2) == x ^ (x >> 16)
