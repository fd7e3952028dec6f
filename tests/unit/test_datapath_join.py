"""The eBPF path's hand-over when a port joins (datapath.EbpfPath), on the real maps and
egress program (BPF_PROG_TEST_RUN) with a stand-in for the relay thread."""
import logging
import types

import pytest

from agrconfig.worker import bpf, datapath, fastpath
from agrconfig.worker.dataplane import HOLD
from agrconfig.worker.flowhash import L3, L4

T0 = 1000.0                                        # the loop's clock when a port joins
DATA = bytes.fromhex("020000000002020000000001") + b"\x88\xb5" + bytes(50)
PORTS = [types.SimpleNamespace(index=i, sock=None, carrier=True) for i in (5, 6)]


class Relay:
    """What EbpfPath asks of the relay: its hold, drain requests and their answers."""

    def __init__(self):
        self.hold_until = 0.0
        self.requests = []          # quiet time of each drain request
        self.drained_gen = 0
        self.tap_sink = None
        self.round_robin, self.policy = False, None

    def set_ports(self, ports, distributing, collecting):
        self.tx = sorted(distributing)

    def request_drain(self, quiet=0.0):
        self.requests.append(quiet)
        return len(self.requests)

    def answer(self, path):
        """The relay answers the last request (as its eventfd would wake the loop)."""
        self.drained_gen = len(self.requests)
        path.on_drained()


@pytest.fixture
def path():
    fast = fastpath.FastPath(77, L3 | L4, False)
    relay = Relay()
    p = datapath.EbpfPath("agr9", relay, fast)
    p.set_ports(PORTS, {5, 6}, {5, 6})
    assert p.mode == "normal" and p.get_timer() is None
    yield p
    p.close()
    assert relay.tap_sink is None


def send(path, n=1):
    return bpf.prog_test_run(path.fast.egress_fd, DATA, repeat=n)


def relay_sends(path):
    """The relay reads and sends every frame handed to it."""
    passed, _ = path.fast.join_counts()
    path.fast.relayed.value = passed


def join(path, now=T0):
    """Port 6 leaves, comes back, and the loop's next turn ends at `now`."""
    path.set_ports(PORTS, {5}, {5, 6})             # 6 leaves: no hand-over
    assert path.mode == "normal"
    path.set_ports(PORTS, {5, 6}, {5, 6})          # 6 comes back
    assert path.mode == "pass"
    assert path.get_timer() < now                  # the join's deadlines wait for the loop's time
    path.handle_timer(now)
    assert path.mode == "pass"


def test_the_relay_counts_into_the_join_map(path):
    assert path.relay.tap_sink is path.fast.relayed


def test_a_join_passes_during_the_hold_drains_then_redirects(path):
    path.fast.relayed.value = 12                   # frames the relay read earlier: rebased
    join(path)
    assert path.fast.join_counts() == (12, 12)
    assert path.relay.requests == []               # no drain asked while the relay holds
    hold_end = path.get_timer()
    assert hold_end == T0 + HOLD                   # from the loop's time, not a clock of its own
    path.handle_timer(hold_end - HOLD / 2)
    assert path.mode == "pass"
    assert send(path, 3) == bpf.TC_ACT_OK          # held by the relay
    path.handle_timer(hold_end)
    assert path.mode == "drain" and path.relay.requests == [path.JOIN_QUIET]
    assert send(path) == bpf.TC_ACT_OK             # the relay has 3 unsent: behind them
    relay_sends(path)
    assert send(path, 4) == bpf.TC_ACT_REDIRECT    # all sent: the kernel again, nothing dropped
    path.relay.answer(path)                        # agrN's queue quiet, counters equal
    assert path.mode == "normal" and path.get_timer() is None
    assert path.fast.counters()["tx_drop_no_port"] == 0


def test_a_frame_on_its_way_into_the_queue_is_waited_for(path):
    join(path)
    assert send(path, 2) == bpf.TC_ACT_OK          # during the hold
    path.handle_timer(path.get_timer())
    path.relay.answer(path)                        # quiet, but the 2 counted are not sent: again
    assert path.mode == "drain" and len(path.relay.requests) == 2
    relay_sends(path)
    path.relay.answer(path)
    assert path.mode == "normal"


def test_frames_lost_before_the_queue_end_the_drain_once_nothing_moves(path):
    """Frames counted but dropped on their way into agrN's queue (its qdisc full) never
    reach the relay: over two quiet periods with the counters apart and unchanged, the
    difference is those losses, and the kernel takes over."""
    join(path)
    send(path, 5)
    path.handle_timer(path.get_timer())
    path.fast.relayed.value += 3                   # 2 were lost
    path.relay.answer(path)
    assert path.mode == "drain"
    path.relay.answer(path)
    assert path.mode == "normal"


def test_a_relay_that_never_catches_up_ends_in_a_short_drop(path, caplog):
    join(path)
    send(path, 5)
    path.handle_timer(path.get_timer())
    assert send(path) == bpf.TC_ACT_OK             # the relay never catches up
    limit = path.get_timer()
    assert limit is not None
    with caplog.at_level(logging.INFO, "agrconfig"):
        path.handle_timer(limit)
    assert path.mode == "drop" and "did not catch up" in caplog.text
    assert send(path) == bpf.TC_ACT_SHOT
    path.relay.answer(path)                        # agrN's queue emptied
    assert path.mode == "normal" and path.get_timer() is None


def test_a_join_during_a_drain_goes_back_to_pass_without_rebasing(path):
    join(path)
    send(path, 2)                                  # 2 handed to the relay, unsent
    path.handle_timer(path.get_timer())
    path.set_ports(PORTS, {5}, {5, 6})
    path.set_ports(PORTS, {5, 6}, {5, 6})
    assert path.mode == "pass" and path.fast.join_counts()[0] - path.fast.join_counts()[1] == 2
    path.relay.answer(path)                        # the earlier request's answer: ignored
    assert path.mode == "pass"


def test_the_join_timeout_still_ends_a_join(path, caplog):
    join(path)
    send(path, 2)                                  # handed to the relay, never sent
    path.handle_timer(T0 + path.JOIN_TIMEOUT - 0.01)
    assert path.mode == "drain" and path.get_timer() == T0 + path.JOIN_TIMEOUT
    with caplog.at_level(logging.WARNING, "agrconfig"):
        path.handle_timer(T0 + path.JOIN_TIMEOUT)
    assert path.mode == "normal" and "did not empty" in caplog.text and path.get_timer() is None


def test_without_a_join_map_a_join_passes_then_drops(monkeypatch):
    monkeypatch.setattr(bpf.Map, "mmap", lambda self: (_ for _ in ()).throw(OSError(22, "Invalid argument")))
    relay = Relay()
    p = datapath.EbpfPath("agr9", relay, fastpath.FastPath(77, L3 | L4, False))
    try:
        assert relay.tap_sink is None
        p.set_ports(PORTS, {5, 6}, {5, 6})
        join(p)
        assert relay.requests == [0.0]             # the relay's hold over, its queue empty
        relay.answer(p)
        assert p.mode == "drop" and relay.requests[-1] == p.JOIN_QUIET
        relay.answer(p)
        assert p.mode == "normal"
    finally:
        p.close()
