"""The relay's paths that the second mutation audit (tests/MUTATION.md, relay section) found
unchecked: error branches with injected OSErrors, the poll timeouts of the hold and the quiet
time with a fake clock and a scripted poller, and the descriptors' flags. Most tests call the
relay's methods in this thread (no relay thread, no sleeping): each outcome is exact."""
import errno
import fcntl
import os
import select
import socket
import types

import pytest

from agrconfig.worker import dataplane
from agrconfig.worker.dataplane import BATCH, Relay
from tests.unit.test_relay import (AUXDATA, TP_STATUS_VLAN_VALID, VNET, AuxPort, Net, auxdata,
                                   frame, tagged)


class OsWith:
    """The os module as dataplane sees it, with some functions replaced."""

    def __init__(self, **replaced):
        self.__dict__.update(replaced)

    def __getattr__(self, name):
        return getattr(os, name)


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def monotonic(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(dataplane, "time", types.SimpleNamespace(monotonic=c.monotonic))
    return c


@pytest.fixture
def n():
    net = Net(nports=3)
    os.set_blocking(net.tap_fd, False)  # as the relay thread sets it (these tests call in)
    yield net
    net.close()


def readv_script(monkeypatch, results):
    """os.readv in dataplane returns/raises each of `results` in turn (bytes are copied into
    the buffer as a frame of that length)."""
    results = list(results)

    def readv(fd, iov):
        r = results.pop(0)
        if isinstance(r, BaseException):
            raise r
        iov[0][:len(r)] = r
        return len(r)

    monkeypatch.setattr(dataplane, "os", OsWith(readv=readv))
    return results


# -- agrN -> ports: _send_from_tap's outcomes -------------------------------------------------

@pytest.mark.parametrize("exc, want_empty, want_errors", [
    (BlockingIOError(errno.EAGAIN, "again"), True, 0),      # queue empty
    (InterruptedError(errno.EINTR, "intr"), False, 0),      # try again, nothing lost
    (OSError(errno.EIO, "io"), False, 1),                   # a frame lost: counted once
    (OSError(errno.EFAULT, "fault"), False, 1),
    (OSError(errno.EBADF, "bad fd"), None, 0),              # the TAP is gone
    (OSError(errno.EBADFD, "bad fd state"), None, 0),
])
def test_send_from_tap_read_errors(n, monkeypatch, exc, want_empty, want_errors):
    n.set({0})
    readv_script(monkeypatch, [VNET + frame(1), exc, exc])
    assert n.relay._send_from_tap() == (True, want_empty)
    assert n.relay._send_from_tap() == (False, want_empty), "the error ends the batch"
    assert n.relay.counters == {"tx_drop_no_port": 0, "tx_errors": 2 * want_errors, "rx_errors": 0}
    assert n.received(0, 0.01) == [VNET + frame(1)]


def test_send_from_tap_end_of_file_is_a_lost_tap(n, monkeypatch):
    n.set({0})
    readv_script(monkeypatch, [b""])
    assert n.relay._send_from_tap() == (False, None)
    assert n.relay.counters["tx_errors"] == 0


def test_send_from_tap_moves_one_batch_then_yields(n, monkeypatch):
    """agrN's queue holds more than a batch: 64 frames, then "more may wait" (not empty)."""
    n.set(set())                                  # dropped and counted: no port queue fills
    readv_script(monkeypatch, [VNET + frame(1, seq) for seq in range(BATCH + 3)]
                 + [BlockingIOError(errno.EAGAIN, "again")] * 2)
    assert n.relay._send_from_tap() == (True, False)
    assert n.relay.counters["tx_drop_no_port"] == BATCH
    assert n.relay._send_from_tap() == (True, True)
    assert n.relay.counters["tx_drop_no_port"] == BATCH + 3
    assert n.relay._send_from_tap() == (False, True)


def test_send_from_tap_a_frame_that_cannot_be_sent_does_not_end_the_batch(n, monkeypatch):
    from tests.unit.test_relay_mutants import FailingSend
    n.ports[0].sock = FailingSend(n.ports[0].sock)
    n.relay.round_robin = True
    n.set({0, 1})
    frames = [VNET + frame(7, seq) for seq in range(4)]
    readv_script(monkeypatch, frames + [BlockingIOError(errno.EAGAIN, "again")])
    assert n.relay._send_from_tap() == (True, True)
    assert n.relay.counters["tx_errors"] == 2
    assert len(n.received(1, 0.01)) == 2
    assert n.relay.port_counters[11][0] == 2


def test_send_from_tap_without_ports_drops_and_counts_each_frame(n):
    n.set(set())
    for seq in range(3):
        n.tap_far.send(VNET + frame(1, seq))
    assert n.relay._send_from_tap() == (True, True)
    assert n.relay.counters == {"tx_drop_no_port": 3, "tx_errors": 0, "rx_errors": 0}


def test_send_from_tap_stops_when_a_join_begins_a_hold(n, clock):
    n.set({0})
    n.relay._send_from_tap()                      # the relay has seen this table
    n.tap_far.send(VNET + frame(1))
    n.set({0, 1})                                 # a join: hold_until = now + HOLD
    assert n.relay.hold_until == clock.now + dataplane.HOLD
    assert n.relay._send_from_tap() == (False, False), "held: nothing read, frames wait"
    assert n.received(0, 0.01) == [] and n.received(1, 0.01) == []


def test_send_from_tap_a_hold_that_ends_now_holds_nothing(n, clock):
    n.set({0})
    n.relay._send_from_tap()
    n.tap_far.send(VNET + frame(1))
    n.set({0, 1})
    clock.now += dataplane.HOLD                   # the hold is over exactly now
    assert n.relay._send_from_tap() == (True, True)
    assert len(n.received(0, 0.01) + n.received(1, 0.01)) == 1


# -- ports -> agrN: _receive's outcomes -------------------------------------------------------

class ScriptedSock:
    """A port socket whose receives return/raise the given results in turn."""

    def __init__(self, sock, results):
        self.sock, self.results = sock, list(results)

    def fileno(self):
        return self.sock.fileno()

    def recvmsg_into(self, buffers, ancbufsize):
        r = self.results.pop(0) if self.results else BlockingIOError(errno.EAGAIN, "again")
        if isinstance(r, BaseException):
            raise r
        buffers[0][:len(r)] = r
        return len(r), [], 0, None

    def close(self):
        self.sock.close()


def tap_frames(net):
    out = []
    net.tap_far.setblocking(False)
    try:
        while True:
            out.append(net.tap_far.recv(70000))
    except BlockingIOError:
        return out


@pytest.mark.parametrize("exc, want, want_errors", [
    (BlockingIOError(errno.EAGAIN, "again"), True, 0),
    (InterruptedError(errno.EINTR, "intr"), True, 0),
    (OSError(errno.EBADF, "bad fd"), False, 0),       # closed under us
    (OSError(errno.ENETDOWN, "down"), True, 1),       # counted once, the port stays
    (OSError(errno.EBADFD, "bad fd state"), True, 1),
])
def test_receive_errors(n, exc, want, want_errors):
    sock = n.ports[0].sock = ScriptedSock(n.ports[0].sock, [VNET + frame(1), exc, exc, VNET + frame(2)])
    n.set({0})
    assert n.relay._receive(sock.fileno(), 10, sock) is want
    assert tap_frames(n) == [VNET + frame(1)], "the error ends the batch"
    assert n.relay._receive(sock.fileno(), 10, sock) is want
    assert n.relay.counters == {"tx_drop_no_port": 0, "tx_errors": 0, "rx_errors": 2 * want_errors}
    assert n.relay.port_counters[10][2:] == [1, len(frame(1))]


def test_receive_without_a_socket_is_a_closed_port(n):
    assert n.relay._receive(5, 10, None) is False


def test_receive_moves_one_batch_then_yields(n):
    sock = n.ports[0].sock = ScriptedSock(n.ports[0].sock, [VNET + frame(1, seq) for seq in range(BATCH + 2)])
    n.set({0})
    assert n.relay._receive(sock.fileno(), 10, sock) is True
    assert len(tap_frames(n)) == BATCH
    assert n.relay._receive(sock.fileno(), 10, sock) is True
    assert len(tap_frames(n)) == 2


def test_receive_runts_slow_frames_and_discards_do_not_end_the_batch(n):
    """Each frame that does not go into agrN is passed over, and the next one is read."""
    slow = frame(3, ethertype=b"\x88\x09")
    sock = n.ports[1].sock = ScriptedSock(n.ports[1].sock, [
        VNET + frame(1)[:13],        # a runt
        VNET + slow,                 # to the worker
        VNET + frame(2),             # port 1 is not collecting: discarded
        VNET + slow,
    ])
    n.set({0, 1}, collecting={0})
    assert n.relay._receive(sock.fileno(), 11, sock) is True
    assert n.slow == [(11, slow), (11, slow)]
    assert tap_frames(n) == []
    sock = n.ports[0].sock = ScriptedSock(n.ports[0].sock, [VNET + frame(1)[:13], VNET + frame(1)])
    n.set({0, 1}, collecting={0})
    assert n.relay._receive(sock.fileno(), 10, sock) is True
    assert tap_frames(n) == [VNET + frame(1)]


def test_receive_from_a_port_without_counters_still_delivers(n):
    n.set({0})
    port = n.ports[0].sock
    n.far[0].send(VNET + frame(1))
    assert n.relay._receive(port.fileno(), 99, port) is True
    assert tap_frames(n) == [VNET + frame(1)]
    assert 99 not in n.relay.port_counters


def test_receive_each_frame_agr_refuses_is_counted_once(n, monkeypatch):
    writes = []

    def write(fd, data):
        writes.append(bytes(data))
        if len(writes) <= 2:
            raise OSError(errno.EIO, "io")
        return len(data)

    n.set({0})
    monkeypatch.setattr(dataplane, "os", OsWith(write=write))
    for seq in range(3):
        n.far[0].send(VNET + frame(1, seq))
    port = n.ports[0].sock
    assert n.relay._receive(port.fileno(), 10, port) is True
    assert writes == [VNET + frame(1, seq) for seq in range(3)]
    assert n.relay.counters["rx_errors"] == 2
    assert n.relay.port_counters[10][2:] == [1, len(frame(1))]


def test_restore_vlan_uses_the_buffer_to_its_last_octet():
    from tests.unit.test_relay import restore
    data = VNET + frame(1)
    got = restore(data, [(*AUXDATA, auxdata(TP_STATUS_VLAN_VALID, 5))], size=len(data) + 4)
    assert got == VNET + tagged(frame(1), 0x8100, 5)
