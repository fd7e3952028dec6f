"""agrproto slb's rules (worker/slb.py): placement, designated port, learned table, admission,
moves and learning frames, with a fake clock."""
import itertools
import struct

import pytest

from agrconfig.worker import slb

MAC_A = bytes.fromhex("020000000a01")
MAC_B = bytes.fromhex("020000000b02")
FAR = bytes.fromhex("020000000f0f")


def frame(src, dst=slb.BROADCAST, vlan=0, etype=0x0800, payload=b""):
    tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
    return dst + src + tag + struct.pack("!H", etype) + (payload or bytes(46))


def arp(src, sender_ip, target_ip, vlan=0, op=1):
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + src + sender_ip + bytes(6) + target_ip
    return frame(src, vlan=vlan, etype=0x0806, payload=body + bytes(18))


# -- hash and buckets -----------------------------------------------------------------------------
def test_hash_depends_on_mac_and_vlan_only():
    assert slb.slb_hash(MAC_A, 0) == slb.slb_hash(bytearray(MAC_A), 0)
    assert slb.slb_hash(MAC_A, 0) != slb.slb_hash(MAC_B, 0)
    assert slb.slb_hash(MAC_A, 10) != slb.slb_hash(MAC_A, 11)
    assert slb.slb_hash(MAC_A, 0x1010) == slb.slb_hash(MAC_A, 0x010)   # the VLAN id only, not PCP/DEI
    assert 0 <= slb.bucket_of(MAC_A, 5) < slb.BUCKETS


def test_hash_spreads_macs_over_buckets():
    macs = [bytes([2, 0, 0, 0, i >> 8, i & 0xFF]) for i in range(4096)]
    counts = [0] * slb.BUCKETS
    for m in macs:
        counts[slb.bucket_of(m)] += 1
    assert min(counts) > 4 and max(counts) < 32   # 16 on average


def test_hash_is_the_documented_definition():
    def plain(mac, vlan):
        h = 0x811C9DC5
        for w in (int.from_bytes(mac[:4], "little"), int.from_bytes(mac[4:], "little") | (vlan & 0xFFF) << 16):
            h = ((h ^ w) * 0x01000193) % 2**32
        h ^= h >> 16
        h = h * 0x85EBCA6B % 2**32
        h ^= h >> 13
        h = h * 0xC2B2AE35 % 2**32
        return h ^ (h >> 16)
    for mac, vlan in itertools.product((MAC_A, MAC_B, FAR, b"\xff" * 6, bytes(6)), (0, 1, 4095)):
        assert slb.slb_hash(mac, vlan) == plain(mac, vlan)


# -- placement ------------------------------------------------------------------------------------
def test_placement_all_up_is_round_robin_over_the_ports_in_order():
    p = slb.placement([7, 3, 9], {3, 7, 9})
    assert len(p) == slb.BUCKETS
    assert p[:6] == (7, 3, 9, 7, 3, 9)
    assert {x: p.count(x) for x in set(p)} == {7: 86, 3: 85, 9: 85}


def test_placement_none_distributing_is_empty():
    assert slb.placement([1, 2], set()) == ()
    assert slb.placement([], set()) == ()


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_a_port_going_moves_only_its_buckets_and_spreads_them(n):
    ports = list(range(10, 10 + n))
    before = slb.placement(ports, set(ports))
    for gone in ports:
        up = set(ports) - {gone}
        after = slb.placement(ports, up)
        for b in range(slb.BUCKETS):
            if before[b] != gone:
                assert after[b] == before[b]      # the others' MACs stay
            else:
                assert after[b] in up
        moved = [after[b] for b in range(slb.BUCKETS) if before[b] == gone]
        counts = [moved.count(p) for p in sorted(up)]
        assert max(counts) - min(counts) <= 1   # spread evenly over the live ports


def test_a_port_coming_back_takes_its_buckets_home():
    ports = [1, 2, 3]
    assert slb.placement(ports, {1, 2, 3}) == slb.placement(ports, {1, 2, 3})
    assert slb.placement(ports, {1, 3}) != slb.placement(ports, {1, 2, 3})


def test_placement_one_live_port_takes_everything():
    assert set(slb.placement([1, 2, 3], {2})) == {2}


def test_placement_ignores_distributing_ports_it_does_not_know():
    assert set(slb.placement([1, 2], {2, 99})) == {2}


# -- frame parsing ----------------------------------------------------------------------------------
def test_frame_source_untagged_tagged_and_short():
    assert slb.frame_source(frame(MAC_A)) == (MAC_A, 0)
    assert slb.frame_source(frame(MAC_A, vlan=0x2064)) == (MAC_A, 0x064)
    assert slb.frame_source(b"\x00" * 10 + frame(MAC_B), 10) == (MAC_B, 0)
    assert slb.frame_source(frame(MAC_A)[:13]) is None
    assert slb.frame_source(frame(MAC_A, etype=0x88a8)) == (MAC_A, 0)   # only 802.1Q tags count


def test_gratuitous_arp():
    ip, other = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
    assert slb.is_gratuitous_arp(arp(MAC_A, ip, ip))
    assert slb.is_gratuitous_arp(arp(MAC_A, ip, ip, op=2))
    assert slb.is_gratuitous_arp(arp(MAC_A, ip, ip, vlan=5))
    assert not slb.is_gratuitous_arp(arp(MAC_A, ip, other))
    assert not slb.is_gratuitous_arp(arp(MAC_A, ip, ip)[:30])
    assert not slb.is_gratuitous_arp(frame(MAC_A))
    assert not slb.is_gratuitous_arp(b"")


# -- the learned table ------------------------------------------------------------------------------
def test_learned_ages_out():
    t = slb.Learned(aging=300)
    t.learn(100.0, MAC_A, 0)
    assert t.knows(100.0, MAC_A, 0) and t.knows(399.9, MAC_A, 0)
    assert not t.knows(400.0, MAC_A, 0)
    assert not t.knows(100.0, MAC_A, 1)          # per VLAN
    t.learn(200.0, MAC_A, 0)                     # seen again: lives longer
    assert t.knows(499.0, MAC_A, 0)
    assert t.entries(499.0) == [(MAC_A, 0)] and t.entries(500.0) == []
    t.age(499.0)
    assert t.seen
    t.age(500.0)
    assert not t.seen


def test_admit_drops_reflections_of_learned_sources_only():
    t = slb.Learned()
    t.learn(0.0, MAC_A, 0)
    assert not t.admit(1.0, frame(MAC_A))                 # ours, come back
    assert t.admit(1.0, frame(MAC_A, vlan=7))             # another VLAN: not ours
    assert t.admit(1.0, frame(FAR))
    assert t.admit(1.0, b"\x00" * 5)                      # too short to say: the stack decides
    assert t.admit(1000.0, frame(MAC_A))                  # aged out
    assert not t.admit(1.0, b"\x00" * 10 + frame(MAC_A), 10)


def test_admit_gratuitous_arp_of_a_moved_mac_is_accepted_and_forgotten():
    t = slb.Learned()
    ip = bytes([192, 0, 2, 9])
    t.learn(0.0, MAC_A, 0)
    assert t.admit(1.0, arp(MAC_A, ip, ip))
    assert not t.knows(1.0, MAC_A, 0)
    assert t.admit(1.0, frame(MAC_A))                    # it lives elsewhere now


def test_admit_our_own_gratuitous_arp_coming_back_is_a_reflection_for_a_while():
    t = slb.Learned()
    ip = bytes([192, 0, 2, 9])
    t.learn(10.0, MAC_A, 0, grat_arp=True)
    assert not t.admit(10.5, arp(MAC_A, ip, ip))
    assert not t.admit(14.9, arp(MAC_A, ip, ip))
    t.learn(14.9, MAC_A, 0)                             # an ordinary frame does not extend the lock
    assert t.admit(15.0, arp(MAC_A, ip, ip))
    t.learn(20.0, MAC_A, 0, grat_arp=True)
    t.age(25.0)
    assert not t.locked


def test_admit_non_gratuitous_arp_from_a_learned_mac_is_a_reflection():
    t = slb.Learned()
    t.learn(0.0, MAC_A, 0)
    assert not t.admit(1.0, arp(MAC_A, bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])))


# -- Balance: designated port and moves ------------------------------------------------------------
def mac_in_bucket_of(port, placement, avoid=()):
    for i in range(1, 100000):
        m = bytes([2, 0, 0, 1, i >> 8, i & 0xFF])
        if placement[slb.bucket_of(m)] == port and m not in avoid:
            return m
    raise AssertionError("no MAC found")


def test_designated_is_the_first_distributing_port_and_sticky():
    b = slb.Balance()
    plan, moves = b.update([1, 2, 3], {2, 3}, [])
    assert plan.designated == 2 and moves == []
    plan, _ = b.update([1, 2, 3], {1, 2, 3}, [])
    assert plan.designated == 2                     # 1 returns: 2 stays
    plan, _ = b.update([1, 2, 3], {1, 3}, [])
    assert plan.designated == 1
    plan, _ = b.update([1, 2, 3], set(), [])
    assert plan.designated is None and plan.buckets == ()
    plan, _ = b.update([1, 2, 3], {3}, [])
    assert plan.designated == 3


def test_moves_name_each_learned_mac_whose_port_changed():
    ports = [1, 2]
    b = slb.Balance()
    full = slb.placement(ports, {1, 2})
    on1, on2 = mac_in_bucket_of(1, full), mac_in_bucket_of(2, full)
    learned = [(on1, 0), (on2, 0)]
    _plan, moves = b.update(ports, {1, 2}, learned)
    assert moves == []                              # the first placement moves nothing
    plan, moves = b.update(ports, {1}, learned)
    assert moves == [slb.Move(1, on2, 0)]
    assert plan.buckets[slb.bucket_of(on2)] == 1
    _plan, moves = b.update(ports, {1, 2}, learned)
    assert moves == [slb.Move(2, on2, 0)]          # home again: the switches learn that too
    _plan, moves = b.update(ports, {1, 2}, learned)
    assert moves == []


def test_moves_keep_the_vlan_and_nothing_moves_when_no_port_is_left():
    ports = [1, 2]
    b = slb.Balance()
    full = slb.placement(ports, {1, 2})
    m = None
    for vlan in range(1, 50):
        for i in range(256):
            cand = bytes([2, 0, 0, 2, 0, i])
            if full[slb.bucket_of(cand, vlan)] == 2:
                m = (cand, vlan)
                break
        if m:
            break
    b.update(ports, {1, 2}, [m])
    _plan, moves = b.update(ports, {1}, [m])
    assert moves == [slb.Move(1, m[0], m[1])]
    _plan, moves = b.update(ports, set(), [m])
    assert moves == []
    _plan, moves = b.update(ports, {2}, [m])
    assert moves == []                              # from nothing: a first placement again


def test_plan_is_a_record():
    plan, _ = slb.Balance().update([5], {5}, [])
    assert plan == slb.Plan(slb.placement([5], {5}), 5)
    with pytest.raises(AttributeError):
        plan.designated = 1


# -- the Slb aggregation and its status ------------------------------------------------------------
def test_slb_aggregation_plans_counts_moves_and_reports():
    from types import SimpleNamespace

    from agrconfig.status import SlbStatus
    from agrconfig.worker import aggregation
    full = slb.placement([1, 2], {1, 2})
    on2 = mac_in_bucket_of(2, full)
    learned = [(on2, 0), (MAC_A, 0)]
    agg = aggregation.create({"proto": "slb", "wtr_time": 0}, b"\x02" * 6, 0.0, None, lambda now: learned)
    assert agg.kind == "slb" and agg.fits({"proto": "slb"}) and not agg.fits({"proto": "loadbalance"})
    ports = [SimpleNamespace(index=1, up=True), SimpleNamespace(index=2, up=True)]
    assert agg.sets(ports) == (frozenset({1, 2}), frozenset({1, 2}))
    plan, moves = agg.slb_plan(1.0, [1, 2], {1, 2})
    assert plan == slb.Plan(full, 1) and moves == []
    plan, moves = agg.slb_plan(2.0, [1, 2], {1})
    assert slb.Move(1, on2, 0) in moves
    assert agg.status_extra() == {"slb": SlbStatus(1, 2, len(moves))}
    assert aggregation.Static().slb_plan(0.0, [1], {1}) == (None, [])


def test_slb_status_text_and_json():
    from agrconfig import options
    from agrconfig.cli import render
    from tests.unit.statuses import aggregate
    st = aggregate({"flags": {**options.defaults(), "proto": "slb"}, "protocol": "slb",
                    "slb": {"designated": 8, "learned": 3, "moved": 1},
                    "ports": [{"name": "re0", "flags": 3, "index": 7}, {"name": "re1", "flags": 3, "index": 8}]})
    assert st.designated_port.name == "re1"
    assert render.agr_lines(st)[0] == ("\tagr: slb (no LACP), designated re1, 3 MACs learned, 1 moved; "
                                       "distribution source MAC and VLAN; datapath relay")
    info = render.json_doc({"ifname": "agr0", "agr": st})["linkinfo"]["info_data"]
    assert info["mode"] == "balance-slb"
    assert info["slb"] == {"designated": "re1", "learned": 3, "moved": 1}
    old = aggregate({"flags": {**options.defaults(), "proto": "slb"}, "protocol": "slb", "ports": []})
    assert old.slb is None and "designated none" in render.agr_lines(old)[0]



def test_learned_table_is_bounded():
    t = slb.Learned(aging=10, limit=2)
    assert t.learn(0.0, MAC_A, 0) and t.learn(0.0, MAC_B, 0)
    assert not t.learn(1.0, FAR, 0) and not t.knows(1.0, FAR, 0)
    assert t.learn(5.0, MAC_A, 0)                    # known pairs are refreshed
    t.age(10.0)                                      # MAC_B expired: room again
    assert t.learn(10.0, FAR, 0) and t.entries(10.0) == [(MAC_A, 0), (FAR, 0)]


def test_preview_is_the_plan_update_would_give_and_changes_nothing():
    b = slb.Balance()
    b.update([1, 2, 3], {2, 3}, [])
    assert b.preview([1, 2, 3], {1, 2, 3}) == slb.Plan(slb.placement([1, 2, 3], {1, 2, 3}), 2)
    assert b.buckets == slb.placement([1, 2, 3], {2, 3}) and b.designated == 2
    assert b.preview([1, 2, 3], {1, 3}).designated == 1 and b.designated == 2
    assert b.preview([1, 2, 3], {1, 3}) == b.update([1, 2, 3], {1, 3}, [])[0]


def test_learned_is_read_only_when_the_placement_changed():
    calls = []

    def learned():
        calls.append(1)
        return [(MAC_A, 0)]
    b = slb.Balance()
    b.update([1, 2], {1, 2}, learned)
    b.update([1, 2], {1, 2}, learned)
    assert calls == []
    b.update([1, 2], {1}, learned)
    assert calls == [1]


def test_slb_aggregation_sweeps_the_learned_table_on_its_timer():
    from agrconfig.worker import aggregation
    reads = []
    agg = aggregation.Slb(None, 0, lambda now: reads.append(now) or [])
    assert agg.get_timer() == 0.0
    agg.handle_timer(5.0)
    assert reads == [5.0] and agg.get_timer() == 5.0 + slb.SWEEP
    agg.handle_timer(20.0)
    assert reads == [5.0]
    agg.handle_timer(35.0)
    assert reads == [5.0, 35.0]
    agg.configure(36.0, {"wtr_time": 10})
    agg.set_carrier(36.0, 4, False)
    agg.set_carrier(37.0, 4, True)                 # a wait-to-restore comes first
    assert agg.get_timer() == 47.0
