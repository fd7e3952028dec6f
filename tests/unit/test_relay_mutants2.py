"""The relay's paths that the second mutation audit (tests/MUTATION.md, relay section) found
unchecked: error branches with injected OSErrors, the poll timeouts of the hold and the quiet
time with a fake clock and a scripted poller, and the descriptors' flags. Most tests call the
relay's methods in this thread (no relay thread, no sleeping): each outcome is exact."""
import errno
import fcntl
import os
import select
import types

import pytest

from agrconfig.worker import dataplane
from agrconfig.worker.dataplane import BATCH, Relay
from tests.unit.test_relay import AUXDATA, TP_STATUS_VLAN_VALID, VNET, Net, auxdata, frame, restore, tagged
from tests.unit.test_relay_mutants import FailingSend


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
    data = VNET + frame(1)
    got = restore(data, [(*AUXDATA, auxdata(TP_STATUS_VLAN_VALID, 5))], size=len(data) + 4)
    assert got == VNET + tagged(frame(1), 0x8100, 5)


# -- the loop, one turn per scripted poll --------------------------------------------------------

class Stop(Exception):
    pass


class ScriptedPoller:
    """select.poll() for the relay loop: each poll() runs the next step of the script (a list of
    (fd, events), or a function of the poller returning one) and records its timeout; when the
    script is done, the loop is stopped. register/modify/unregister behave as poll's do."""

    def __init__(self, script):
        self.script, self.timeouts, self.registered = list(script), [], {}

    def register(self, fd, mask=select.POLLIN | select.POLLPRI | select.POLLOUT):
        self.registered[fd] = mask

    def modify(self, fd, mask):
        if fd not in self.registered:
            raise FileNotFoundError(errno.ENOENT, "not registered")
        self.registered[fd] = mask

    def unregister(self, fd):
        del self.registered[fd]

    def poll(self, timeout=None):
        if not self.script:
            raise Stop
        self.timeouts.append(timeout)
        step = self.script.pop(0)
        return step(self) if callable(step) else step


def run_loop(monkeypatch, relay, script):
    poller = ScriptedPoller(script)
    fake = types.SimpleNamespace(**{k: getattr(select, k) for k in dir(select) if k.startswith("POLL")})
    fake.poll = lambda: poller
    monkeypatch.setattr(dataplane, "select", fake)
    relay._running = True
    with pytest.raises(Stop):
        relay._loop()
    return poller


def signalled(fd):
    """An eventfd's count, 0 if nothing was signalled (never blocks)."""
    assert not os.get_blocking(fd)
    try:
        return os.eventfd_read(fd)
    except BlockingIOError:
        return 0


def test_loop_before_any_tables_and_a_drain_asked_before_the_start(n, clock, monkeypatch):
    """The relay may start before the first tables and be asked to drain at once: request()
    without a quiet time is answered in the first turn, which polls without waiting."""
    gen = n.relay.request_drain()
    poller = run_loop(monkeypatch, n.relay, [[]])
    assert poller.timeouts == [0]
    assert set(poller.registered) == {n.relay._wake_r, n.tap_fd}
    assert poller.registered[n.relay._wake_r] & select.POLLIN
    assert n.relay.drained_gen == gen and signalled(n.relay.drained) == 1


def test_loop_a_quiet_time_is_waited_for_in_poll(n, clock, monkeypatch):
    n.set({0})
    gen = n.relay.request_drain(0.05)
    seen = []

    def quiet_over(poller):
        seen.append(signalled(n.relay.drained))
        clock.now += 0.05
        return []

    poller = run_loop(monkeypatch, n.relay, [[], quiet_over, []])
    assert poller.timeouts[:2] == [0, pytest.approx(50, abs=1e-6)]
    assert seen == [0], "not answered before the quiet time was over"
    assert n.relay.drained_gen == gen and signalled(n.relay.drained) == 1
    assert poller.timeouts[2] is None, "answered: nothing to wait for"


def test_loop_a_request_during_the_answer_to_another_is_answered_too(n, clock, monkeypatch):
    n.set({0})
    n.relay.request_drain()
    gens = []

    def ask_again(poller):
        gens.append(n.relay.request_drain())
        return []

    poller = run_loop(monkeypatch, n.relay, [ask_again, []])
    assert poller.timeouts == [0, 0]
    assert n.relay.drained_gen == gens[0] == 2
    assert signalled(n.relay.drained) == 2


def test_loop_a_hold_keeps_frames_in_agr_until_it_ends_to_the_instant(n, clock, monkeypatch):
    n.set({0})
    n.set({0, 1})                                  # a join: held until now + HOLD
    hold_until = n.relay.hold_until
    n.tap_far.send(VNET + frame(1))
    gen = n.relay.request_drain()
    seen = []

    def hold_ends(poller):
        seen.append((poller.registered[n.tap_fd], signalled(n.relay.drained)))
        clock.now = hold_until                     # the hold ends exactly now
        return []

    def tap_ready(poller):
        seen.append((poller.registered[n.tap_fd], signalled(n.relay.drained)))
        return [(n.tap_fd, select.POLLIN)]

    poller = run_loop(monkeypatch, n.relay, [hold_ends, tap_ready, []])
    assert poller.timeouts[0] == pytest.approx(dataplane.HOLD * 1000, abs=1e-6)
    assert poller.timeouts[1:] == [0, 0]
    assert seen == [(0, 0), (select.POLLIN, 0)], "agrN not polled while held, polled after"
    assert len(n.received(0, 0.01) + n.received(1, 0.01)) == 1
    assert n.relay.drained_gen == gen and signalled(n.relay.drained) == 1


@pytest.mark.parametrize("ev", [select.POLLHUP, select.POLLERR, select.POLLNVAL, select.POLLERR | select.POLLHUP])
def test_loop_a_tap_that_reports_an_error_is_given_up_without_a_read(n, clock, monkeypatch, ev):
    n.set({0})
    readv_script(monkeypatch, [OSError(errno.EIO, "io")] * 2)
    poller = run_loop(monkeypatch, n.relay, [[(n.tap_fd, ev)]])
    assert signalled(n.relay.tap_gone) == 1
    assert n.tap_fd not in poller.registered
    assert n.relay.counters == {"tx_drop_no_port": 0, "tx_errors": 0, "rx_errors": 0}


def test_loop_a_lost_tap_counts_as_empty_for_a_pending_drain(n, clock, monkeypatch):
    """Nothing more can come from a TAP that is gone: the drain pending is answered in the
    turn that gave the TAP up."""
    n.set({0})
    gen = n.relay.request_drain()
    run_loop(monkeypatch, n.relay, [[(n.tap_fd, select.POLLHUP)]])
    assert signalled(n.relay.tap_gone) == 1
    assert n.relay.drained_gen == gen and signalled(n.relay.drained) == 1


def test_loop_a_tap_with_frames_and_an_error_is_read_and_kept(n, clock, monkeypatch):
    n.set({0})
    readv_script(monkeypatch, [VNET + frame(1), BlockingIOError(errno.EAGAIN, "again")])
    poller = run_loop(monkeypatch, n.relay, [[(n.tap_fd, select.POLLIN | select.POLLERR)]])
    assert n.received(0, 0.01) == [VNET + frame(1)]
    assert signalled(n.relay.tap_gone) == 0
    assert n.tap_fd in poller.registered


def test_loop_after_the_tap_is_lost_a_join_still_holds_and_drains(n, clock, monkeypatch):
    """agrN's TAP is gone (no longer polled): a port joining then must not touch it, and a
    drain asked meanwhile is answered once the hold is over, not before."""
    n.set({0})
    seen = []

    def join(poller):
        n.set({0, 1})
        seen.append(n.relay.request_drain())
        return []

    def still_held(poller):
        seen.append(signalled(n.relay.drained))
        return []

    def hold_over(poller):
        seen.append(signalled(n.relay.drained))
        clock.now = n.relay.hold_until + 0.001
        return []

    poller = run_loop(monkeypatch, n.relay, [[(n.tap_fd, select.POLLHUP)], join, still_held, hold_over])
    assert signalled(n.relay.tap_gone) == 1
    assert n.tap_fd not in poller.registered
    assert seen == [1, 0, 0]
    assert signalled(n.relay.drained) == 1


def test_loop_a_port_closed_under_it_is_no_longer_polled(n, clock, monkeypatch):
    n.set({0, 1})
    fd1 = n.ports[1].sock.fileno()
    poller = run_loop(monkeypatch, n.relay, [[(fd1, select.POLLNVAL)], []])
    assert set(poller.registered) == {n.relay._wake_r, n.tap_fd, n.ports[0].sock.fileno(), n.ports[2].sock.fileno()}


# -- descriptors, the thread, the log -------------------------------------------------------

def test_the_relays_descriptors_never_block_and_are_not_inherited():
    r = Relay(-1, lambda index, data: None)
    try:
        for fd in (r._wake_r, r._wake_w, r.drained, r.tap_gone):
            assert not os.get_blocking(fd), fd
            assert not os.get_inheritable(fd), fd
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert signalled(r.drained) == 0 and signalled(r.tap_gone) == 0, "nothing signalled yet"
    finally:
        for fd in (r._wake_r, r._wake_w, r.drained, r.tap_gone):
            os.close(fd)


def test_the_relay_thread_never_keeps_the_worker_alive(n):
    import threading
    n.relay.start()
    assert n.relay._thread.is_alive()
    # what the interpreter waits for at exit: threading's non-daemon threads
    assert all(t.daemon for t in threading.enumerate() if t is not threading.main_thread())


def test_a_failing_loop_logs_its_traceback_then_exits_70(n, monkeypatch, caplog):
    exits = []
    monkeypatch.setattr(dataplane.os, "_exit", exits.append)

    def broken():
        raise ZeroDivisionError("boom")

    n.relay._loop = broken
    n.relay._run()
    assert exits == [70]
    rec = [r for r in caplog.records if r.name == "agrconfig"][-1]
    assert rec.levelname == "CRITICAL"
    assert rec.getMessage() == "relay thread failed; the worker exits to be restarted"
    assert rec.exc_info and rec.exc_info[0] is ZeroDivisionError


def test_the_relay_reads_the_clock_it_is_given(n):
    """The worker hands the relay its injectable clock: a join's hold is counted from it."""
    given = Clock(now=5.0)
    n.relay.clock = given.monotonic
    n.set({0})
    n.set({0, 1})                                 # a join
    assert n.relay.hold_until == 5.0 + dataplane.HOLD
    given.now += dataplane.HOLD
    n.tap_far.send(VNET + frame(1))
    assert n.relay._send_from_tap() == (True, True), "the hold is over by the given clock"


def test_a_relay_made_with_a_clock_keeps_it():
    r, w = os.pipe()
    try:
        relay = Relay(r, lambda *a: None, clock=Clock(now=7.0).monotonic)
        assert relay.clock() == 7.0
    finally:
        os.close(r)
        os.close(w)
