"""The Python relay's loop with socketpairs standing in for agrN's TAP and the ports' sockets."""
import os
import resource
import select
import socket
import struct
import sys
import threading
import time
import types

import pytest

from agrconfig.worker import dataplane
from agrconfig.worker.dataplane import Relay
from agrconfig.worker.flowhash import flow_hash
from agrconfig.worker.tap import VNET_HDR_LEN

VNET = bytes(VNET_HDR_LEN)


def frame(flow, seq=0, ethertype=b"\x08\x00"):
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, flow])
    return b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a" + ethertype + ip + struct.pack("!I", seq) + bytes(16)


def wait_event(fd, timeout=2.0):
    """An eventfd's count, waiting at most `timeout` (a missing signal fails, never hangs)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, "no signal"
    return os.eventfd_read(fd)


class Net:
    """agrN's TAP and n ports: each a datagram socketpair; the far ends are ours."""

    def __init__(self, nports=2):
        self.tap_far, tap = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.tap_fd = tap.detach()
        self.slow = []
        self.relay = Relay(self.tap_fd, lambda index, data: self.slow.append((index, data)))
        self.ports, self.far = [], []
        for i in range(nports):
            ours, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            ours.setblocking(False)
            far.settimeout(2)
            self.ports.append(types.SimpleNamespace(index=10 + i, sock=ours))
            self.far.append(far)
        self.failed = []

    def set(self, distributing, collecting=None):
        idx = {p.index for p in self.ports}
        self.relay.set_ports(self.ports, {10 + i for i in distributing} & idx,
                             {10 + i for i in (distributing if collecting is None else collecting)} & idx)

    def received(self, i, timeout=0.5):
        out = []
        self.far[i].settimeout(timeout)
        try:
            while True:
                out.append(self.far[i].recv(70000))
        except (socket.timeout, BlockingIOError):
            return out

    def close(self):
        self.relay.stop()
        if self.relay._thread:
            self.relay._thread.join(2)
        for s in (*self.far, self.tap_far, *(p.sock for p in self.ports)):
            s.close()
        if self.tap_fd is not None:
            os.close(self.tap_fd)


@pytest.fixture
def net(monkeypatch):
    n = Net()
    monkeypatch.setattr(dataplane.os, "_exit", lambda code: n.failed.append(code))
    yield n
    n.close()
    assert not n.failed, "the relay thread failed"


def test_frames_from_agr_go_by_flow_hash_with_counters(net):
    net.set({0, 1})
    net.relay.start()
    frames = [frame(flow) for flow in range(40)]
    for f in frames:
        net.tap_far.send(VNET + f)
    got = [net.received(0), net.received(1)]
    for f in frames:
        i = flow_hash(f, net.relay.policy) % 2
        assert VNET + f in got[i]
    assert len(got[0]) + len(got[1]) == 40 and got[0] and got[1]
    c = net.relay.port_counters
    assert c[10][0] == len(got[0]) and c[11][0] == len(got[1])
    assert c[10][1] + c[11][1] == sum(len(f) for f in frames)


def test_no_distributing_port_drops_and_counts(net):
    net.set(set())
    net.relay.start()
    net.tap_far.send(VNET + frame(1))
    time.sleep(0.2)
    assert net.relay.counters["tx_drop_no_port"] == 1


def test_collecting_ports_feed_agr_slow_protocols_go_to_the_worker(net):
    net.set({0}, collecting={0})
    net.relay.start()
    net.far[0].send(VNET + frame(1))
    net.far[1].send(VNET + frame(2))                                  # not collecting: dropped
    lacpdu = frame(3, ethertype=b"\x88\x09")
    net.far[1].send(VNET + lacpdu)                                    # from any port
    net.tap_far.settimeout(1)
    assert net.tap_far.recv(70000) == VNET + frame(1)
    time.sleep(0.2)
    net.tap_far.setblocking(False)
    with pytest.raises(BlockingIOError):
        net.tap_far.recv(70000)
    assert net.slow == [(11, lacpdu)]
    assert net.relay.port_counters[10][2:] == [1, len(frame(1))]


def test_slow_protocol_flood_is_limited(net):
    net.set({0})
    net.relay.start()
    for i in range(100):
        net.far[0].send(VNET + frame(i, ethertype=b"\x88\x09"))
    time.sleep(0.3)
    assert 20 <= len(net.slow) <= 25
    assert net.relay.slow_limited[10] == 100 - len(net.slow)


def test_a_joining_port_holds_frames_then_drain_is_signalled(net, monkeypatch):
    sent_when_drained = []
    signal = os.eventfd_write

    def eventfd_write(fd, value):  # in the relay thread, at the moment it signals
        sent_when_drained.append(sum(c[0] for c in net.relay.port_counters.values()))
        signal(fd, value)

    monkeypatch.setattr(dataplane.os, "eventfd_write", eventfd_write)
    net.set({0})
    net.relay.start()
    net.set({0, 1})                                   # joins: frames wait HOLD seconds
    t = time.monotonic()
    for flow in range(8):
        net.tap_far.send(VNET + frame(flow))
    net.relay.request_drain()
    got = net.received(0, 1) + net.received(1, 1)
    assert len(got) == 8
    assert wait_event(net.relay.drained) == 1
    assert time.monotonic() - t >= dataplane.HOLD
    assert sent_when_drained == [8], "drained only once the held frames were sent"


@pytest.mark.parametrize("quiet", [0.0, 0.05])
def test_drain_is_signalled_with_nothing_queued(net, quiet):
    """A join with no traffic: the drain ends once the hold (and the quiet time) are over,
    without waiting for a frame that may never come."""
    net.set({0})
    net.relay.start()
    t = time.monotonic()
    net.set({0, 1})
    net.relay.request_drain(quiet)
    assert wait_event(net.relay.drained) == 1
    took = time.monotonic() - t
    assert dataplane.HOLD + quiet <= took < dataplane.HOLD + quiet + 0.2, took


def test_tables_changing_under_load_never_kill_the_thread(net):
    """The socket table and its counters change together: a frame never takes a socket from
    one table and its counters from another (that killed the relay thread once)."""
    net.set({0, 1})
    net.relay.start()
    stop = threading.Event()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between almost any two bytecodes

    def flap():
        while not stop.is_set():
            net.set({0})
            net.set({0, 1})  # joins: holds; a bounded queue drains meanwhile
            net.relay.hold_until = 0

    t = threading.Thread(target=flap)
    t.start()
    try:
        for seq in range(3000):
            try:
                net.tap_far.send(VNET + frame(seq % 7 + 1, seq), socket.MSG_DONTWAIT)
            except BlockingIOError:
                time.sleep(0.001)
            if seq % 100 == 0:
                net.received(0, 0.01), net.received(1, 0.01)
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
    time.sleep(0.2)
    assert net.relay._thread.is_alive()
    assert not net.failed


def test_a_failing_loop_ends_the_worker_loudly(net, caplog):
    net.set({0})
    net.relay.tx_table = ((None, None),) * 2           # a table no frame can be sent on
    net.relay.start()
    net.tap_far.send(VNET + frame(1))
    deadline = time.monotonic() + 2
    while not net.failed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert net.failed == [70]
    assert "relay thread failed" in caplog.text
    net.failed.clear()


def test_quiet_time_starts_again_when_a_frame_comes(net):
    """`stays empty for quiet seconds`: a frame inside the quiet time restarts it."""
    net.set({0})
    net.relay.start()
    t = time.monotonic()
    gen = net.relay.request_drain(0.1)
    time.sleep(0.05)
    net.tap_far.send(VNET + frame(1))
    assert wait_event(net.relay.drained) == 1
    assert time.monotonic() - t >= 0.15
    assert net.relay.drained_gen == gen
    assert len(net.received(0)) == 1


def test_each_drain_request_is_answered_by_number(net):
    net.set({0})
    net.relay.start()
    first = net.relay.request_drain(0.05)
    second = net.relay.request_drain(0.0)  # asked again before the first was answered
    assert second == first + 1
    wait_event(net.relay.drained)
    assert net.relay.drained_gen == second


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_a_port_socket_closed_under_the_relay_is_left_alone(net):
    """The worker may close a port's socket before it gives the relay new tables: no
    busy loop on the dead descriptor, no error counted per turn."""
    net.set({0, 1})
    net.relay.start()
    time.sleep(0.05)
    net.ports[1].sock.close()
    start = cpu_seconds()
    time.sleep(0.5)
    assert cpu_seconds() - start < 0.2, "the relay thread spins"
    assert net.relay.counters["rx_errors"] < 5
    net.set({0})                           # new tables: the port is gone
    net.far[0].send(VNET + frame(1))
    net.tap_far.settimeout(1)
    assert net.tap_far.recv(70000) == VNET + frame(1)


def test_a_dead_tap_is_reported_once_and_not_spun_on(net):
    net.set({0})
    net.relay.start()
    time.sleep(0.05)
    os.close(net.tap_fd)                   # as if agrN were deleted under the worker
    net.tap_fd = None
    net.set({0})                           # wakes the loop, which polls the dead descriptor
    assert wait_event(net.relay.tap_gone) == 1
    start = cpu_seconds()
    time.sleep(0.5)
    assert cpu_seconds() - start < 0.2, "the relay thread spins"
    net.far[0].send(VNET + frame(1, ethertype=b"\x88\x09"))  # the ports are still served
    time.sleep(0.2)
    assert len(net.slow) == 1
