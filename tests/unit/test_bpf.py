"""The eBPF assembler, and the fast path's flow hash against flowhash.py in the kernel."""
import itertools
import random
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from agrconfig.worker import bpf, fastpath
from agrconfig.worker.bpf import R0, R1, R2, R10, Asm, AsmError
from agrconfig.worker.flowhash import L2, L3, L4, flow_hash


def test_encodings():
    assert Asm().mov(R0, 7).assemble() == bytes.fromhex("b700000007000000")
    assert Asm().exit().assemble() == bytes.fromhex("9500000000000000")
    assert Asm().mov(R1, src=R2).assemble() == bytes.fromhex("bf21000000000000")
    assert Asm().alu32("mul", R0, 0x85EBCA6B).assemble() == bytes.fromhex("24000000") + struct.pack("<i", 0x85EBCA6B - 2**32)
    assert Asm().ldx(4, R0, R1, 76).assemble() == bytes.fromhex("61104c0000000000")
    assert Asm().stx(4, R10, -4, R1).assemble() == bytes.fromhex("631afcff00000000")
    assert Asm().atomic_add(8, R0, 16, R1).assemble() == bytes.fromhex("db10100000000000")
    assert Asm().call(23).assemble() == bytes.fromhex("8500000017000000")
    assert Asm().ld_map_fd(R1, 9).assemble() == bytes.fromhex("1811000009000000") + bytes(8)
    assert Asm().be16(R1).assemble() == bytes.fromhex("dc01000010000000")


def test_labels_resolve_forward_and_back():
    a = Asm().label("top").mov(R0, 0).jmp("jeq", R0, "out", 1).ja("top").label("out").exit()
    code = a.assemble()
    assert struct.unpack_from("<h", code, 8 + 2)[0] == 1      # jeq skips the ja
    assert struct.unpack_from("<h", code, 16 + 2)[0] == -3    # ja back to the top


def test_assembler_errors():
    with pytest.raises(AsmError):
        Asm().ja("nowhere").assemble()
    with pytest.raises(AsmError):
        Asm().label("x").label("x")
    with pytest.raises(AsmError):
        Asm().mov(R0, 1 << 33)
    with pytest.raises(AsmError):
        Asm().mov(11, 0)


def test_verifier_refusal_carries_its_log():
    with pytest.raises(OSError) as info:
        bpf.prog_load(Asm().exit().assemble())  # R0 never set
    assert "verifier" in str(info.value)


def frames():
    rnd = random.Random(7)
    macs = ["02:00:00:00:00:01", "02:00:00:00:00:02", "0a:1b:2c:3d:4e:5f", "ff:ff:ff:ff:ff:ff"]
    out = []
    for i in range(60):
        src, dst = rnd.sample(macs, 2)
        v4 = IP(src=f"192.0.2.{rnd.randrange(256)}", dst=f"198.51.100.{rnd.randrange(256)}")
        v6 = IPv6(src=f"2001:db8::{rnd.randrange(65536):x}", dst=f"2001:db8:1::{rnd.randrange(65536):x}")
        l4 = rnd.choice([TCP(sport=rnd.randrange(65536), dport=80), UDP(sport=53, dport=rnd.randrange(65536))])
        out += [Ether(src=src, dst=dst) / v4 / l4, Ether(src=src, dst=dst) / v6 / l4,
                Ether(src=src, dst=dst) / Dot1Q(vlan=rnd.randrange(4096), prio=rnd.randrange(8)) / v4 / l4,
                Ether(src=src, dst=dst) / IP(src="192.0.2.1", dst="192.0.2.2", flags="MF", frag=i) / l4,
                Ether(src=src, dst=dst) / IP(src="192.0.2.1", dst="192.0.2.2", ihl=6, options=b"\x01\x01\x01\x01") / l4,
                Ether(src=src, dst=dst, type=0x88CC) / (b"x" * 50)]
    raw = [bytes(f) for f in out]
    # Truncated frames: VLAN-tagged ones, since the kernel's test run refuses a short IP header
    # (the program's own bounds checks are what these exercise).
    raw += [r[:n] for r in raw[2:60:6] for n in (14, 16, 17, 20, 30, 40, 54, 60) if n < len(r)]
    return raw


@pytest.mark.parametrize("policy", [L2, L3, L4, L2 | L3, L3 | L4, L2 | L3 | L4])
def test_bpf_hash_equals_python_hash(policy):
    fd = bpf.prog_load(fastpath.hash_program(policy), "agr_hash_test")
    checked = 0
    for frame in frames():
        if len(frame) < 14:
            continue  # the kernel's test run needs an Ethernet header
        assert bpf.prog_test_run(fd, frame) == flow_hash(frame, policy), frame.hex()
        checked += 1
    assert checked > 350


def test_all_programs_pass_the_verifier():
    cfg = bpf.map_create(bpf.BPF_MAP_TYPE_ARRAY, 4, fastpath.CFG.size, 1)
    ports = bpf.map_create(bpf.BPF_MAP_TYPE_HASH, 4, fastpath.PORT.size, 64)
    for policy, rr in itertools.product([L2, L2 | L3, L2 | L3 | L4], [False, True]):
        bpf.prog_load(fastpath.egress_program(cfg, ports, policy, rr), "agr_egress")
    bpf.prog_load(fastpath.ingress_program(ports, 1), "agr_ingress")


def test_ingress_passes_slow_protocols_and_drops_unknown_ports():
    ports = bpf.map_create(bpf.BPF_MAP_TYPE_HASH, 4, fastpath.PORT.size, 64)
    fd = bpf.prog_load(fastpath.ingress_program(ports, 1), "agr_ingress")
    lacp = bytes.fromhex("0180c2000002" "020000000001" "8809") + bytes(110)
    assert bpf.prog_test_run(fd, lacp) == bpf.TC_ACT_OK
    ip = bytes(Ether() / IP())
    assert bpf.prog_test_run(fd, ip) == bpf.TC_ACT_SHOT
