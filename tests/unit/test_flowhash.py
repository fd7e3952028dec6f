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
    assert flow_hash(pkt, L2) == 0x9AC31C6A, "the value the eBPF program is pinned to"
    words = [int.from_bytes(pkt[i:i + 4], "little") for i in (0, 4, 8)]
    x = 0x811C9DC5
    for w in words:
        x = ((x ^ w) * 0x01000193) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    assert flow_hash(pkt, L2) == x ^ (x >> 16)


def reference_flow_hash(frame, policy, off=0):
    """The module docstring's definition transcribed word for word (the relay's flow_hash is
    written for speed; it must give the same value for every frame)."""
    def mix(h, word):
        return ((h ^ word) * 0x01000193) & 0xFFFFFFFF

    def u32(pos):
        return int.from_bytes(frame[pos:pos + 4], "little")

    def fmix(h):
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        return h ^ (h >> 16)

    end, h = len(frame), 0x811C9DC5
    if end < off + 14:
        return fmix(h)
    ethertype, l3 = (frame[off + 12] << 8) | frame[off + 13], off + 14
    if policy & L2:
        for pos in (0, 4, 8):
            h = mix(h, u32(off + pos))
    if ethertype == 0x8100:
        if end < off + 18:
            return fmix(h)
        if policy & L2:
            h = mix(h, int.from_bytes(frame[off + 14:off + 16], "little"))
        ethertype, l3 = (frame[off + 16] << 8) | frame[off + 17], off + 18
    if ethertype == 0x0800 and end >= l3 + 20:
        if policy & L3:
            h = mix(mix(h, u32(l3 + 12)), u32(l3 + 16))
        if policy & L4 and frame[l3 + 9] in (6, 17):
            frag = ((frame[l3 + 6] << 8) | frame[l3 + 7]) & 0x3FFF
            l4 = l3 + (frame[l3] & 0x0F) * 4
            if frag == 0 and end >= l4 + 4:
                h = mix(h, u32(l4))
    elif ethertype == 0x86DD and end >= l3 + 40:
        if policy & L3:
            for pos in range(8, 40, 4):
                h = mix(h, u32(l3 + pos))
        if policy & L4 and frame[l3 + 6] in (6, 17) and end >= l3 + 44:
            h = mix(h, u32(l3 + 40))
    return fmix(h)


from hypothesis import given, settings, strategies as st  # noqa: E402

ETHERTYPES = st.sampled_from([b"\x08\x00", b"\x86\xdd", b"\x81\x00", b"\x88\x09", b"\x08\x06"])


@st.composite
def frames(draw):
    """Mostly well-formed headers, cut anywhere, with the bytes the hash looks at drawn."""
    head = draw(st.binary(min_size=12, max_size=12))
    outer = draw(ETHERTYPES)
    tag = draw(st.binary(min_size=2, max_size=2)) + draw(ETHERTYPES) if outer == b"\x81\x00" else b""
    first = draw(st.sampled_from([0x45, 0x46, 0x4F, 0x60, 0x00]))
    proto = draw(st.sampled_from([6, 17, 1, 58]))
    frag = draw(st.sampled_from([b"\x00\x00", b"\x40\x00", b"\x20\x00", b"\x00\x01", b"\xc0\x00"]))
    ip = bytearray(draw(st.binary(min_size=80, max_size=80)))
    ip[0], ip[6:8], ip[9] = first, frag, proto
    if draw(st.booleans()):
        ip[6] = proto  # IPv6 next header
    frame = head + outer + tag + bytes(ip)
    return frame[:draw(st.integers(0, len(frame)))]


@settings(max_examples=2000, deadline=None)
@given(frames(), st.integers(1, 7), st.binary(max_size=12))
def test_fast_flow_hash_is_the_definition(frame, policy, prefix):
    assert flow_hash(frame, policy) == reference_flow_hash(frame, policy)
    padded = memoryview(bytearray(prefix + frame))
    assert flow_hash(padded, policy, len(prefix)) == reference_flow_hash(padded, policy, len(prefix))
