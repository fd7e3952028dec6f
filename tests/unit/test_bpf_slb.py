"""agrproto slb on the eBPF fast path (fastpath.py), run in the kernel with BPF_PROG_TEST_RUN:
the key and bucket as slb.py computes them, egress by the source MAC's bucket with learning,
ingress drops (off the designated port, reflections) and the gratuitous ARP exception.
BPF_PROG_TEST_RUN runs a program on the namespace's loopback: skb->ifindex is 1."""
import os
import struct
import time

import pytest

from agrconfig.worker import bpf, fastpath, slb
from agrconfig.worker.flowhash import L2, L3

TAP = 77
LO = 1            # the ifindex a test run's skb has
BCAST = b"\xff" * 6
OURS = bytes.fromhex("020000000001")
FAR = bytes.fromhex("02000000ff01")
IP = bytes([192, 0, 2, 7])


def eth(src, dst=BCAST, vlan=0, etype=0x0800, body=b""):
    tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
    return dst + src + tag + struct.pack("!H", etype) + (body or bytes(46))


def garp(src, vlan=0, target=IP):
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + IP + bytes(6) + target + bytes(18)
    return eth(src, vlan=vlan, etype=0x0806, body=body)


@pytest.fixture
def fp():
    with fastpath.FastPath(TAP, L2 | L3, False) as f:
        yield f


def test_the_key_and_bucket_are_slb_pys():
    fd = bpf.prog_load(fastpath.slb_key_program(), "t_slbkey")
    try:
        for i in range(64):
            mac = bytes([2, 0, 0, i, 7, i * 3 & 0xFF])
            for vlan in (0, 5, 4095):
                want = slb.bucket_of(mac, vlan) | vlan << 16
                assert bpf.prog_test_run(fd, eth(mac, vlan=vlan)) == want
                assert bpf.prog_test_run(fd, garp(mac, vlan)) == want | 1 << 8
                assert bpf.prog_test_run(fd, garp(mac, vlan, target=bytes([9, 9, 9, 9]))) == want
        assert bpf.prog_test_run(fd, garp(OURS)[:40]) == slb.bucket_of(OURS) | 0   # cut short: not one
    finally:
        os.close(fd)


def with_slb(fp, ports, up, designated=None):
    plan = slb.Plan(slb.placement(ports, up), designated if designated is not None else min(up, default=None))
    fp.set_ports([p for p in ports if p in up])
    fp.set_collecting(up)
    fp.set_slb(plan)
    return plan


def mac_on(plan, port, avoid=()):
    for i in range(1, 1000):
        m = bytes([2, 0, 0, 9, i >> 8, i & 0xFF])
        if plan.buckets[slb.bucket_of(m)] == port and m not in avoid:
            return m
    raise AssertionError


def test_egress_sends_by_the_source_macs_bucket_and_learns(fp):
    plan = with_slb(fp, [5, 6], {5, 6})
    on5, on6 = mac_on(plan, 5), mac_on(plan, 6)
    for m, n in ((on5, 3), (on6, 2)):
        for dst in (BCAST, FAR):
            assert bpf.prog_test_run(fp.egress_fd, eth(m, dst), repeat=n) == bpf.TC_ACT_REDIRECT
    c = fp.counters()["ports"]
    assert c[5]["tx_packets"] == 6 and c[6]["tx_packets"] == 4
    now = time.monotonic()
    assert fp.slb_entries(now) == sorted([(on5, 0), (on6, 0)])
    assert fp.slb_entries(now + slb.AGING + 1) == [] and bpf.map_keys(fp.slb_learned.fd, 8) == []
    # Tagged: the VLAN is part of the key (and of the bucket).
    assert bpf.prog_test_run(fp.egress_fd, eth(on5, vlan=12)) == bpf.TC_ACT_REDIRECT
    assert fp.slb_entries(time.monotonic()) == [(on5, 12)]


def test_egress_without_slb_hashes_flows_and_with_no_bucket_drops(fp):
    fp.set_ports([5])
    assert bpf.prog_test_run(fp.egress_fd, eth(OURS)) == bpf.TC_ACT_REDIRECT
    assert bpf.map_keys(fp.slb_learned.fd, 8) == []                  # nothing learned off slb
    with_slb(fp, [5], set())
    assert bpf.prog_test_run(fp.egress_fd, eth(OURS)) == bpf.TC_ACT_SHOT
    fp.set_slb(None)
    fp.set_ports([5])
    assert bpf.prog_test_run(fp.egress_fd, eth(OURS)) == bpf.TC_ACT_REDIRECT


def ingress(fp, ifindex):
    # the program attach_port loads, without tc
    return bpf.prog_load(fastpath.ingress_program(fp.conf.fd, fp.stats.fd, fp._slot(ifindex), TAP,
                                                  learned_fd=fp.slb_learned.fd), "t_in")


def test_ingress_takes_broadcast_on_the_designated_port_only(fp):
    with_slb(fp, [LO, 6], {LO, 6}, designated=LO)
    prog = ingress(fp, LO)
    try:
        assert bpf.prog_test_run(prog, eth(FAR)) == bpf.TC_ACT_REDIRECT
        assert bpf.prog_test_run(prog, eth(FAR, dst=b"\x01\x00\x5e\x00\x00\x01")) == bpf.TC_ACT_REDIRECT
        with_slb(fp, [LO, 6], {LO, 6}, designated=6)                    # the test run is on LO
        assert bpf.prog_test_run(prog, eth(FAR), repeat=2) == bpf.TC_ACT_SHOT
        assert bpf.prog_test_run(prog, eth(FAR, dst=b"\x33\x33\x00\x00\x00\x01")) == bpf.TC_ACT_SHOT
        assert bpf.prog_test_run(prog, eth(FAR, dst=OURS)) == bpf.TC_ACT_REDIRECT   # unicast: any port
        c = fp.counters()["ports"][LO]
        assert c["rx_slb_not_designated"] == 3 and c["rx_slb_reflected"] == 0 and c["rx_packets"] == 3
        fp.set_slb(None)
        assert bpf.prog_test_run(prog, eth(FAR)) == bpf.TC_ACT_REDIRECT          # slb off: as before
    finally:
        os.close(prog)


def test_ingress_drops_reflections_and_takes_a_moved_vms_gratuitous_arp(fp):
    plan = with_slb(fp, [LO, 6], {LO, 6}, designated=LO)
    prog = ingress(fp, LO)
    vm, host = mac_on(plan, 6), mac_on(plan, LO)
    try:
        assert bpf.prog_test_run(prog, eth(vm)) == bpf.TC_ACT_REDIRECT          # not learned yet
        assert bpf.prog_test_run(fp.egress_fd, eth(vm)) == bpf.TC_ACT_REDIRECT  # learned on the way out
        assert bpf.prog_test_run(fp.egress_fd, garp(host)) == bpf.TC_ACT_REDIRECT   # ours: locked
        assert bpf.prog_test_run(prog, eth(vm)) == bpf.TC_ACT_SHOT              # come back: dropped
        assert bpf.prog_test_run(prog, eth(vm, dst=OURS)) == bpf.TC_ACT_SHOT    # unicast too
        assert bpf.prog_test_run(prog, eth(vm, vlan=3)) == bpf.TC_ACT_REDIRECT  # another VLAN
        assert bpf.prog_test_run(prog, garp(host)) == bpf.TC_ACT_SHOT           # our own, locked
        assert bpf.prog_test_run(prog, garp(vm)) == bpf.TC_ACT_REDIRECT         # moved away
        assert bpf.prog_test_run(prog, eth(vm)) == bpf.TC_ACT_REDIRECT          # ... and forgotten
        c = fp.counters()["ports"][LO]
        assert c["rx_slb_reflected"] == 3 and c["rx_slb_not_designated"] == 0
        assert fp.slb_entries(time.monotonic()) == [(host, 0)]
        # An old entry (seen AGING ago) is not ours any more.
        key = fastpath.SLB_KEY.pack(host, 0)
        old = time.monotonic_ns() - int(slb.AGING * fastpath.NS) - 1
        fp.slb_learned.update(key, fastpath.SLB_SEEN.pack(old, 0))
        assert bpf.prog_test_run(prog, eth(host)) == bpf.TC_ACT_REDIRECT
    finally:
        os.close(prog)


def test_set_slb_writes_every_bucket_and_the_designated_port(fp):
    plan = with_slb(fp, [5, 6, 7], {5, 7}, designated=7)
    for b in (0, 1, 2, 100, 255):
        ifindex, slot = fastpath.SLB_BUCKET.unpack(fp.slb_buckets.lookup(b))
        assert ifindex == plan.buckets[b] and slot == fp.slots[ifindex]
    active = struct.unpack_from("<I", fp.conf.lookup(0))[0]
    n, mode, _coll, designated = struct.unpack_from("<IIII", fp.conf.lookup(active))
    assert mode & fastpath.MODE_SLB and designated == 7 and n == 2
    fp.set_slb(None)
    active = struct.unpack_from("<I", fp.conf.lookup(0))[0]
    assert not struct.unpack_from("<IIII", fp.conf.lookup(active))[1] & fastpath.MODE_SLB
