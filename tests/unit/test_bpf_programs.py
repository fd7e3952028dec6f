"""The fast path's programs and maps, run in the kernel with BPF_PROG_TEST_RUN (no devices)."""
import errno
import os

import pytest

from agrconfig.worker import bpf, fastpath
from agrconfig.worker.flowhash import L2, L3, L4

SRC, DST = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
LACP = bytes.fromhex("0180c2000002") + SRC + b"\x88\x09\x01\x01" + bytes(108)
MARKER = bytes.fromhex("0180c2000002") + SRC + b"\x88\x09\x02\x01" + bytes(108)
DATA = DST + SRC + b"\x88\xb5" + bytes(50)
TAGGED_SLOW = bytes.fromhex("0180c2000002") + SRC + b"\x81\x00\x00\x05\x88\x09\x01\x01" + bytes(104)
TAP = 77


@pytest.fixture
def fp():
    with fastpath.FastPath(TAP, L2 | L3, False) as f:
        yield f


def ingress(fp, ifindex):
    return bpf.prog_load(fastpath.ingress_program(fp.conf.fd, fp.stats.fd, fp.slots[ifindex], TAP), "t_in")


def test_programs_pass_the_verifier_for_every_size():
    for max_ports in (1, 2, 16, 32):
        with fastpath.FastPath(1, L2, True, max_ports=max_ports) as f:
            f.set_collecting([5])
            os.close(ingress(f, 5))
    with pytest.raises(ValueError):
        fastpath.FastPath(1, L2, False, max_ports=33)


def test_ingress_slow_protocols_up_data_into_agr_others_dropped(fp):
    fp.set_collecting([101, 102])
    fp.set_collecting([101])                       # 102 keeps its slot, no longer collecting
    prog101, prog102 = ingress(fp, 101), ingress(fp, 102)
    try:
        assert bpf.prog_test_run(prog101, LACP) == bpf.TC_ACT_OK
        assert bpf.prog_test_run(prog101, MARKER) == bpf.TC_ACT_OK
        assert bpf.prog_test_run(prog102, LACP) == bpf.TC_ACT_OK        # LACP flows while not collecting
        assert bpf.prog_test_run(prog101, DATA) == bpf.TC_ACT_REDIRECT
        assert bpf.prog_test_run(prog101, TAGGED_SLOW) == bpf.TC_ACT_REDIRECT   # a tagged 0x8809 is data
        assert bpf.prog_test_run(prog102, DATA) == bpf.TC_ACT_SHOT
        c = fp.counters()["ports"]
        assert c[101] == {"tx_packets": 0, "tx_bytes": 0, "rx_packets": 2, "rx_bytes": len(DATA) + len(TAGGED_SLOW),
                          "rx_dropped": 0, "rx_slow": 2}
        assert (c[102]["rx_packets"], c[102]["rx_dropped"], c[102]["rx_slow"]) == (0, 1, 1)
        fp.set_collecting([102])
        assert bpf.prog_test_run(prog101, DATA) == bpf.TC_ACT_SHOT
        assert bpf.prog_test_run(prog102, DATA) == bpf.TC_ACT_REDIRECT
    finally:
        os.close(prog101)
        os.close(prog102)


def test_no_distributing_port_drops_and_counts(fp):
    assert bpf.prog_test_run(fp.egress_fd, DATA) == bpf.TC_ACT_SHOT
    fp.set_ports([5])
    assert bpf.prog_test_run(fp.egress_fd, DATA) == bpf.TC_ACT_REDIRECT
    fp.set_ports([])
    assert bpf.prog_test_run(fp.egress_fd, DATA, repeat=4) == bpf.TC_ACT_SHOT
    c = fp.counters()
    assert c["tx_drop_no_port"] == 5
    assert c["ports"][5]["tx_packets"] == 1 and c["ports"][5]["tx_bytes"] == len(DATA)


def test_join_modes_pass_to_agr_then_drop_then_redirect(fp):
    fp.set_ports([5, 6])
    fp.set_mode("pass")                            # frames go on to agrN's queue: the worker's
    assert bpf.prog_test_run(fp.egress_fd, DATA, repeat=3) == bpf.TC_ACT_OK
    fp.set_mode("drop")
    assert bpf.prog_test_run(fp.egress_fd, DATA, repeat=2) == bpf.TC_ACT_SHOT
    fp.set_mode("normal")
    assert bpf.prog_test_run(fp.egress_fd, DATA) == bpf.TC_ACT_REDIRECT
    c = fp.counters()
    assert c["tx_drop_no_port"] == 2
    assert sum(p["tx_packets"] for p in c["ports"].values()) == 1
    with pytest.raises(ValueError):
        fp.set_mode("hold")


def test_join_drain_redirects_only_when_the_relay_has_sent_all_it_was_handed(fp):
    """A port joins: "pass" hands every frame to agrN's queue and counts it (passed); "drain"
    does so only while the relay has not sent (relayed) all of them, and else redirects
    uncounted; "normal" never looks at the counters. Nothing is dropped."""
    assert fp.drains
    fp.set_ports([5, 6])
    fp.relayed.value = 40                          # frames the relay read before (a dead worker's)
    fp.rebase_join()
    assert fp.join_counts() == (40, 40)
    fp.set_mode("pass")
    assert bpf.prog_test_run(fp.egress_fd, DATA, repeat=3) == bpf.TC_ACT_OK
    assert fp.join_counts() == (43, 40)
    fp.set_mode("drain")
    assert bpf.prog_test_run(fp.egress_fd, DATA) == bpf.TC_ACT_OK       # 3 not yet sent: behind them
    assert fp.join_counts() == (44, 40)
    fp.relayed.value = 43                          # the relay sent 3 of the 4
    assert bpf.prog_test_run(fp.egress_fd, DATA) == bpf.TC_ACT_OK
    assert fp.join_counts() == (45, 43)
    fp.relayed.value = 45                          # all sent: the kernel takes the next ones
    assert bpf.prog_test_run(fp.egress_fd, DATA, repeat=5) == bpf.TC_ACT_REDIRECT
    assert fp.join_counts() == (45, 45)
    fp.set_mode("normal")
    fp.relayed.value = 0                           # normal never looks (nor counts)
    assert bpf.prog_test_run(fp.egress_fd, DATA, repeat=2) == bpf.TC_ACT_REDIRECT
    assert fp.join_counts() == (45, 0)
    c = fp.counters()
    assert c["tx_drop_no_port"] == 0
    assert sum(p["tx_packets"] for p in c["ports"].values()) == 5 + 2   # redirected frames only
    fp.set_mode("drain")
    with pytest.raises(ValueError):
        fp.rebase_join()                           # only from normal: frames may be in flight
    fp.set_mode("normal")
    fp.rebase_join()
    assert fp.join_counts() == (0, 0)


def test_join_drain_with_no_distributing_port_drops(fp):
    fp.set_mode("drain")
    assert bpf.prog_test_run(fp.egress_fd, DATA) == bpf.TC_ACT_SHOT     # counters equal: as normal
    assert fp.counters()["tx_drop_no_port"] == 1


def test_join_map_is_shared_with_the_program_through_its_mapping(fp):
    fp.relayed.value = 7
    assert fastpath.JOIN.unpack(fp.join.lookup(0)) == (0, 7)
    fp.join.update(0, fastpath.JOIN.pack(3, 9))
    assert fp.join_counts() == (3, 9)


def test_without_a_join_map_a_join_passes_then_drops(monkeypatch):
    """A kernel without mmap-able maps (or BPF atomic fetch): the egress program has no join
    map; "pass" still hands frames on (uncounted) and "drain" is refused."""
    def no_mmap(self):
        raise OSError(errno.EINVAL, "Invalid argument")
    monkeypatch.setattr(bpf.Map, "mmap", no_mmap)
    with fastpath.FastPath(TAP, L2 | L3, False) as f:
        assert not f.drains and f.join is None
        f.set_ports([5])
        f.rebase_join()                            # nothing to do
        f.set_mode("pass")
        assert bpf.prog_test_run(f.egress_fd, DATA) == bpf.TC_ACT_OK
        with pytest.raises(ValueError):
            f.set_mode("drain")
        f.set_mode("drop")
        assert bpf.prog_test_run(f.egress_fd, DATA) == bpf.TC_ACT_SHOT
        f.set_mode("normal")
        assert bpf.prog_test_run(f.egress_fd, DATA) == bpf.TC_ACT_REDIRECT


def test_the_join_modes_cost_the_steady_state_nothing():
    """The program with the join map and without it run the same instructions up to the
    join modes' branch: the normal mode's path is the same."""
    with fastpath.FastPath(TAP, L2 | L3, False) as f:
        with_join = fastpath.egress_program(f.conf.fd, f.stats.fd, join_fd=f.join.fd)
        without = fastpath.egress_program(f.conf.fd, f.stats.fd)
    insns = lambda code: [code[i:i + 8] for i in range(0, len(code), 8)]  # noqa: E731
    a, b = insns(with_join), insns(without)
    shot = len(b) - 2                              # without: ... shot: r0 = 2; exit; pass: r0 = 0; exit
    assert a[:shot] == b[:shot]


def test_round_robin_cycles_through_the_ports(fp):
    cpu = min(os.sched_getaffinity(0))
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})                 # the round-robin counter is per CPU
    try:
        fp.set_ports([21, 22, 23])
        fp.set_policy(L2 | L3, True)
        seen = []
        for _ in range(9):
            before = {i: c["tx_packets"] for i, c in fp.counters()["ports"].items()}
            assert bpf.prog_test_run(fp.egress_fd, DATA) == bpf.TC_ACT_REDIRECT
            after = {i: c["tx_packets"] for i, c in fp.counters()["ports"].items()}
            (port,) = [i for i in after if after[i] != before[i]]
            seen.append(port)
        start = seen.index(21)
        assert (seen + seen)[start:start + 9] == [21, 22, 23] * 3
    finally:
        os.sched_setaffinity(0, saved)


def test_configuration_flips_between_two_copies(fp):
    active = lambda: int.from_bytes(fp.conf.lookup(0)[:4], "little")
    first = active()
    fp.set_ports([3, 4])
    assert active() == 3 - first
    n, mode, collecting, _pad, *rest = fp.conf_struct.unpack(fp.conf.lookup(active()))
    assert (n, mode, rest[:2], rest[16:18]) == (2, L2 | L3, [3, 4], [fp.slots[3], fp.slots[4]])
    fp.set_policy(L4, True)
    fp.set_collecting([4])
    n, mode, collecting, _pad, *rest = fp.conf_struct.unpack(fp.conf.lookup(active()))
    assert (n, mode, collecting) == (2, L4 | fastpath.MODE_RR, 1 << fp.slots[4])


def test_slots_are_reused_and_reset_and_limited():
    with fastpath.FastPath(1, L2, False, max_ports=2) as f:
        f.set_ports([7])
        assert bpf.prog_test_run(f.egress_fd, DATA) == bpf.TC_ACT_REDIRECT
        assert f.counters()["ports"][7]["tx_packets"] == 1
        f.set_ports([7, 8])
        with pytest.raises(OSError) as info:
            f.set_collecting([9])                  # a third port: no counter slot left
        assert info.value.errno == errno.ENOSPC
        with pytest.raises(ValueError):
            f.set_ports([7, 8, 9])
        f.detach_port(7)                           # not attached: only the maps change
        assert f.distributing == [8] and 7 not in f.counters()["ports"]
        f.set_collecting([9])                      # takes 7's slot, counters from zero
        assert f.slots[9] == 0 and f.counters()["ports"][9]["tx_packets"] == 0


def test_bad_policy_refused(fp):
    with pytest.raises(ValueError):
        fp.set_policy(8, False)
    with pytest.raises(ValueError):
        fastpath.FastPath(1, "l2", False)


def test_close_is_idempotent_and_releases_the_fds():
    f = fastpath.FastPath(1, L2 | L3 | L4, False)
    fds = [f.egress_fd, f.conf.fd, f.stats.fd, f.join.fd]
    f.close()
    f.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_counters_off_for_the_benchmark_only(monkeypatch):
    """AGRCONFIG_BPF_COUNTERS=0 (bench/throughput's comparison) moves frames the same way and
    counts none of them; by default they are counted."""
    monkeypatch.setenv("AGRCONFIG_BPF_COUNTERS", "0")
    with fastpath.FastPath(TAP, L2, False) as f:
        f.set_ports([5])
        f.set_collecting([5])
        prog = bpf.prog_load(fastpath.ingress_program(f.conf.fd, f.stats.fd, f.slots[5], TAP, f.count), "t_in")
        try:
            assert bpf.prog_test_run(f.egress_fd, DATA) == bpf.TC_ACT_REDIRECT
            assert bpf.prog_test_run(prog, DATA) == bpf.TC_ACT_REDIRECT
        finally:
            os.close(prog)
        c = f.counters()["ports"][5]
        assert (c["tx_packets"], c["rx_packets"]) == (0, 0)
    monkeypatch.delenv("AGRCONFIG_BPF_COUNTERS")
    assert fastpath.counting()
