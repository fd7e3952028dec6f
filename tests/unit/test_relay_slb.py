"""agrproto slb on the relay (dataplane.py applying slb.py), with socketpairs for agrN's TAP
and the ports' sockets (tests/unit/test_relay.py's Net)."""
import struct
import time

import pytest

from agrconfig.worker import dataplane, slb
from agrconfig.worker.datapath import RelayPath

from .test_relay import VNET, Net

BCAST = b"\xff" * 6
FAR = bytes.fromhex("02000000ff01")


def eth(src, dst=BCAST, vlan=0, etype=0x0800, body=b""):
    tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
    return dst + src + tag + struct.pack("!H", etype) + (body or bytes(46))


def garp(src, ip=bytes([192, 0, 2, 77])):
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + ip + bytes(6) + ip
    return eth(src, etype=0x0806, body=body + bytes(18))


def macs_on(port, plan, count, vlan=0):
    out = []
    for i in range(1, 5000):
        m = bytes([2, 0, 0, 5, i >> 8, i & 0xFF])
        if plan.buckets[slb.bucket_of(m, vlan)] == port:
            out.append(m)
            if len(out) == count:
                return out
    raise AssertionError("no MACs")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def net(monkeypatch):
    n = Net()
    n.clock = Clock()
    n.relay.clock = n.clock
    monkeypatch.setattr(dataplane.os, "_exit", lambda code: n.failed.append(code))
    yield n
    n.close()


def use_slb(net, distributing, balance=None):
    balance = balance or slb.Balance()
    ports = [p.index for p in net.ports]
    up = {10 + i for i in distributing}
    plan, moves = balance.update(ports, up, net.relay.slb_learned.entries(net.clock()))
    net.relay.slb_plan = plan
    net.set(distributing)
    return plan, moves


def tap_received(net, timeout=0.25):
    out = []
    net.tap_far.settimeout(timeout)
    try:
        while True:
            out.append(net.tap_far.recv(70000))
    except (TimeoutError, BlockingIOError):
        return out


def test_every_frame_leaves_by_its_source_macs_port_broadcast_included(net):
    plan, _ = use_slb(net, {0, 1})
    net.relay.start()
    on0, on1 = macs_on(10, plan, 3), macs_on(11, plan, 3)
    sent = []
    for m in on0 + on1:
        for dst in (BCAST, FAR, b"\x01\x00\x5e\x00\x00\x01"):
            f = VNET + eth(m, dst)
            sent.append(f)
            net.tap_far.send(f)
    got0, got1 = net.received(0, 0.25), net.received(1, 0.25)
    assert sorted(got0) == sorted(f for f in sent if f[VNET_LEN + 6:VNET_LEN + 12] in on0)
    assert sorted(got1) == sorted(f for f in sent if f[VNET_LEN + 6:VNET_LEN + 12] in on1)
    assert net.relay.port_counters[10][0] == 9 and net.relay.port_counters[11][0] == 9
    assert net.relay.slb_learned.entries(net.clock()) == sorted((m, 0) for m in on0 + on1)


VNET_LEN = len(VNET)


def test_the_vlan_takes_part_in_the_choice_and_is_learned(net):
    plan, _ = use_slb(net, {0, 1})
    net.relay.start()
    m = bytes.fromhex("020000000777")
    vlans = {slb.bucket_of(m, v) for v in range(1, 40)}
    assert len({plan.buckets[b] for b in vlans}) == 2
    for v in range(1, 40):
        net.tap_far.send(VNET + eth(m, vlan=v))
    got = net.received(0, 0.25) + net.received(1, 0.25)
    assert len(got) == 39
    for i, side in enumerate((net.received(0, 0.25), net.received(1, 0.25))):
        for f in side:
            assert plan.buckets[slb.bucket_of(m, struct.unpack_from("!H", f, VNET_LEN + 14)[0])] == 10 + i
    assert len(net.relay.slb_learned.entries(net.clock())) == 39


def test_no_distributing_port_drops_and_counts(net):
    use_slb(net, set())
    net.relay.start()
    net.tap_far.send(VNET + eth(FAR))
    time.sleep(0.2)
    assert net.relay.counters["tx_drop_no_port"] == 1


def test_broadcast_is_accepted_on_the_designated_port_only(net):
    plan, _ = use_slb(net, {0, 1})
    assert plan.designated == 10
    net.relay.start()
    b = VNET + eth(FAR)
    mcast = VNET + eth(FAR, dst=b"\x33\x33\x00\x00\x00\x01")
    net.far[0].send(b)
    net.far[1].send(b)
    net.far[1].send(mcast)
    assert tap_received(net) == [b]
    assert net.relay.slb_dropped == {11: [2, 0]}


def test_unicast_is_accepted_on_every_port(net):
    use_slb(net, {0, 1})
    net.relay.start()
    ours = b"\x02" + bytes(5)
    u0, u1 = VNET + eth(FAR, dst=ours), VNET + eth(bytes.fromhex("02000000ff02"), dst=ours)
    net.far[0].send(u0)
    net.far[1].send(u1)
    assert sorted(tap_received(net)) == sorted([u0, u1])


def test_our_own_frames_coming_back_are_dropped_as_reflections(net):
    plan, _ = use_slb(net, {0, 1})
    net.relay.start()
    vm = macs_on(11, plan, 1)[0]
    net.tap_far.send(VNET + eth(vm))                  # learned as it leaves by port 1
    assert len(net.received(1, 0.25)) == 1
    back = VNET + eth(vm)
    net.far[0].send(back)                             # the switches flood it back: the designated port
    net.far[1].send(VNET + eth(vm, dst=b"\x02" + bytes(5)))   # unicast from our own source
    assert tap_received(net) == []
    assert net.relay.slb_dropped == {10: [0, 1], 11: [0, 1]}
    net.far[0].send(VNET + eth(vm, vlan=9))            # another VLAN: not ours
    assert len(tap_received(net)) == 1


def test_learned_sources_age_out(net):
    plan, _ = use_slb(net, {0})
    net.relay.start()
    vm = bytes.fromhex("020000000333")
    net.tap_far.send(VNET + eth(vm))
    assert len(net.received(0, 0.25)) == 1
    net.clock.now += slb.AGING
    net.far[0].send(VNET + eth(vm))
    assert len(tap_received(net)) == 1
    net.tap_far.send(VNET + eth(FAR))               # a sweep happens on the way out
    assert len(net.received(0, 0.25)) == 1
    assert net.relay.slb_learned.seen == {(FAR, 0): net.clock.now}


def test_a_gratuitous_arp_of_a_vm_that_moved_is_accepted_and_ours_is_not(net):
    plan, _ = use_slb(net, {0, 1})
    net.relay.start()
    vm, host = bytes.fromhex("020000000444"), bytes.fromhex("020000000555")
    net.tap_far.send(VNET + eth(vm))
    net.tap_far.send(VNET + garp(host))              # ours: agrannounce's, failover's
    assert len(net.received(0, 0.25)) + len(net.received(1, 0.25)) == 2
    net.far[0].send(VNET + garp(host))               # reflected: dropped for a while
    assert tap_received(net) == []
    net.far[0].send(VNET + garp(vm))                 # the VM lives elsewhere now
    assert tap_received(net) == [VNET + garp(vm)]
    assert not net.relay.slb_learned.knows(net.clock(), vm, 0)
    net.clock.now += slb.GRAT_ARP_LOCK
    net.far[0].send(VNET + garp(host))               # long after: a host that took our MAC
    assert len(tap_received(net)) == 1


def test_plan_none_is_the_ordinary_flow_hash(net):
    use_slb(net, {0, 1})
    path = RelayPath("agr0", net.relay)
    path.set_slb(None)
    net.set({0, 1})
    assert net.relay.slb is None
    net.relay.start()
    b = VNET + eth(FAR)
    net.far[1].send(b)                               # any collecting port takes broadcast again
    assert tap_received(net) == [b]


def test_counters_of_the_relay_path_name_the_slb_drops(net):
    use_slb(net, {0, 1})
    net.relay.start()
    net.far[1].send(VNET + eth(FAR))
    tap_received(net, 0.2)
    _totals, ports = RelayPath("agr0", net.relay).counters([10, 11])
    assert ports[11]["rx_slb_not_designated"] == 1 and ports[11]["rx_slb_reflected"] == 0
    assert "rx_slb_not_designated" not in ports[10]


def test_a_port_going_sends_its_macs_the_other_way_and_moves_name_them(net):
    balance = slb.Balance()
    plan, _ = use_slb(net, {0, 1}, balance)
    net.relay.start()
    on0, on1 = macs_on(10, plan, 2), macs_on(11, plan, 2)
    for m in on0 + on1:
        net.tap_far.send(VNET + eth(m))
    assert len(net.received(0, 0.25)) == 2 and len(net.received(1, 0.25)) == 2
    plan, moves = use_slb(net, {0}, balance)
    assert moves == [slb.Move(10, m, 0) for m in sorted(on1)]
    for m in on0 + on1:
        net.tap_far.send(VNET + eth(m))
    assert len(net.received(0, 0.25)) == 4 and net.received(1, 0.25) == []
