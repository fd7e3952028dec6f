"""The relay loop's behaviours that mutation testing (scripts/mutation, tests/MUTATION.md)
found unchecked by test_relay.py; the same socketpair Net stands in for agrN and its ports."""
import time
import types

import pytest

from agrconfig.worker import dataplane
from tests.unit.test_relay import VNET, Net, frame, net, settled  # noqa: F401  (net is a fixture)


def test_counters_count_frames_and_bytes_without_the_vnet_header(net):
    net.set({0}, collecting={0})
    net.relay.start()
    net.tap_far.send(VNET + frame(1))
    net.far[0].send(VNET + frame(2) + bytes(10))
    net.tap_far.settimeout(1)
    assert net.tap_far.recv(70000) == VNET + frame(2) + bytes(10)
    assert net.received(0) == [VNET + frame(1)]
    assert settled(lambda: net.relay.port_counters[10], [1, len(frame(1)), 1, len(frame(2)) + 10])
    assert net.relay.counters == {"tx_drop_no_port": 0, "tx_errors": 0, "rx_errors": 0}


def test_a_hold_begins_only_when_a_port_joins():
    """The first table and a port leaving start no hold; a port joining holds HOLD (20 ms)."""
    n = Net(nports=3)
    try:
        r = n.relay
        n.set({0})
        assert r.hold_until == 0.0, "nothing was distributing: nothing to reorder"
        n.set({0})
        assert r.hold_until == 0.0, "the same ports"
        before = time.monotonic()
        n.set({0, 1})
        after = time.monotonic()
        assert before + 0.02 <= r.hold_until <= after + 0.02
        held = r.hold_until
        n.set({1})
        assert r.hold_until == held, "a port leaving moves no flow onto another's queue"
        n.set({1, 2})
        assert r.hold_until > held
    finally:
        n.close()


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


def test_the_slow_protocols_bucket_holds_twenty_and_refills_ten_a_second(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(dataplane, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    n = Net()
    try:
        r = n.relay
        assert [r._slow_allowed(10) for _ in range(21)] == [True] * 20 + [False]
        assert r.slow_limited == {10: 1}
        assert r._slow_allowed(11), "one bucket per port"
        clock.now += 0.1                      # one token
        assert [r._slow_allowed(10) for _ in range(2)] == [True, False]
        clock.now += 0.25                     # two and a half
        assert [r._slow_allowed(10) for _ in range(3)] == [True, True, False]
        clock.now += 3600                     # never more than twenty
        assert sum(r._slow_allowed(10) for _ in range(30)) == 20
        assert r.slow_limited == {10: 1 + 1 + 1 + 10}
    finally:
        n.close()


def test_runts_are_dropped_the_smallest_frame_passes(net):
    net.set({0}, collecting={0})
    net.relay.start()
    header_only = VNET + frame(1)[:14]              # an Ethernet header and nothing else
    net.far[0].send(VNET + frame(1)[:13])           # one octet short of an EtherType
    net.far[0].send(header_only)
    net.tap_far.settimeout(1)
    assert net.tap_far.recv(70000) == header_only
    assert settled(lambda: net.relay.port_counters[10][2:], [1, 14])


@pytest.mark.parametrize("ethertype", [b"\x88\xcc", b"\x08\x09", b"\x89\x09"])
def test_only_0x8809_goes_to_the_worker(net, ethertype):
    """LLDP (0x88cc) and other EtherTypes that share an octet with Slow Protocols are data."""
    net.set({0}, collecting={0})
    net.relay.start()
    f = frame(1, ethertype=ethertype)
    net.far[0].send(VNET + f)
    net.tap_far.settimeout(1)
    assert net.tap_far.recv(70000) == VNET + f
    assert net.slow == []


class FailingSend:
    """A port socket that cannot send (the link went away under us)."""

    def __init__(self, sock):
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def recvmsg_into(self, *args):
        return self.sock.recvmsg_into(*args)

    def send(self, data):
        raise OSError(105, "No buffer space available")

    def close(self):
        self.sock.close()


def test_a_frame_that_cannot_be_sent_is_counted_once_and_the_next_goes_on(net):
    net.ports[0].sock = FailingSend(net.ports[0].sock)
    net.relay.round_robin = True                      # alternate: 0, 1, 0, 1 ...
    net.set({0, 1})
    net.relay.start()
    for seq in range(6):
        net.tap_far.send(VNET + frame(1, seq))
    assert len(net.received(1)) == 3
    assert settled(lambda: net.relay.counters["tx_errors"], 3)
    assert net.relay.port_counters[10][:2] == [0, 0] and net.relay.port_counters[11][0] == 3


def test_frames_agr_cannot_take_are_counted_as_receive_errors(net):
    """agrN's queue is full (nobody reads it here): each frame lost is counted once, and
    only the frames agrN took count as received."""
    net.set({0}, collecting={0})
    net.relay.start()
    for seq in range(40):
        net.far[0].send(VNET + frame(1, seq))
    assert settled(lambda: net.relay.counters["rx_errors"] + net.relay.port_counters[10][2], 40, timeout=2)
    taken = []
    net.tap_far.settimeout(0.2)
    try:
        while True:
            taken.append(net.tap_far.recv(70000))
    except OSError:
        pass
    assert taken and net.relay.counters["rx_errors"] == 40 - len(taken)
    assert net.relay.port_counters[10][2:] == [len(taken), len(taken) * len(frame(1))]
