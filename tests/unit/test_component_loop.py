"""The worker's loop over components (worker/component.py): fake components, a fake clock and a
fake selector; no sleeping. And the control server as one of its components, over a real
socket pair."""
import json
import logging
import os
import selectors
import socket

import pytest

from agrconfig.ipc import protocol, server
from agrconfig.worker.component import READ, WRITE, Component, Loop, Selector


class FakeClock:
    def __init__(self, *times):
        self.times = list(times)
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


class FakeSelector:
    """Registrations as selectors keeps them; select() records its timeout and returns the
    registered files marked ready."""

    def __init__(self):
        self.keys = {}
        self.ready = []
        self.timeouts = []

    def register(self, fileobj, events, data=None):
        if fileobj in self.keys:
            raise KeyError(f"{fileobj!r} is already registered")
        self.keys[fileobj] = selectors.SelectorKey(fileobj, 0, events, data)

    def unregister(self, fileobj):
        return self.keys.pop(fileobj)

    def modify(self, fileobj, events, data=None):
        self.keys[fileobj] = selectors.SelectorKey(fileobj, 0, events, data)

    def select(self, timeout=None):
        self.timeouts.append(timeout)
        ready, self.ready = self.ready, []
        return [(self.keys[f], READ) for f in ready if f in self.keys]


class Fake(Component):
    def __init__(self, name, deadline=None, files=(), fail=False):
        self.name, self.when, self.files, self.fail = name, deadline, list(files), fail
        self.timers, self.events = [], []

    def fds(self):
        return [(f, f"{self.name}:{f}", READ) for f in self.files]

    def deadline(self):
        return self.when

    def on_timer(self, now):
        self.timers.append(now)

    def on_readable(self, now, key):
        self.events.append((now, key))
        if self.fail:
            raise RuntimeError("a bug in one component")


def test_every_component_gets_the_same_now_once_a_turn_and_the_clock_is_read_once_for_them():
    a, b = Fake("a"), Fake("b")
    clock = FakeClock(0.0, 1.0, 2.5)
    loop = Loop([a, b], clock, FakeSelector())
    assert clock.reads == 1
    loop.turn()
    loop.turn()
    assert a.timers == b.timers == [1.0, 2.5]
    assert clock.reads == 3, "no deadline: one read a turn (and one to start)"


def test_the_wait_ends_at_the_earliest_deadline_measured_from_just_before_it():
    sel = FakeSelector()
    comps = [Fake("a", deadline=12.0), Fake("b"), Fake("c", deadline=10.5), Fake("d", deadline=11.0)]
    # start 9.0; turn 1: 10.0 before the wait, 10.25 after; turn 2: 10.4 before the wait.
    clock = FakeClock(9.0, 10.0, 10.25, 10.4, 10.5)
    loop = Loop(comps, clock, sel)
    loop.turn()
    assert sel.timeouts == [0.5], "from 10.0, not from the start at 9.0"
    assert comps[0].timers == [10.25]
    loop.turn()
    assert sel.timeouts[-1] == pytest.approx(0.1), "a long turn does not make the wait late"
    comps[2].when = 9.0            # overdue: no wait at all
    loop.turn()
    assert sel.timeouts[-1] == 0.0
    loop = Loop([Fake("idle")], FakeClock(0.0), sel)
    loop.turn()
    assert sel.timeouts[-1] is None, "no deadline anywhere: wait for an fd"


def test_ready_fds_reach_their_component_with_the_turn_now_then_every_timer():
    sel = FakeSelector()
    a, b = Fake("a", files=[3, 4]), Fake("b", files=[5])
    loop = Loop([a, b], FakeClock(0.0, 7.0), sel)
    loop._watch([a, b])
    sel.ready = [4, 5]
    loop.turn()
    assert a.events == [(7.0, "a:4")] and b.events == [(7.0, "b:5")]
    assert a.timers == b.timers == [7.0]


def test_a_component_that_raises_on_an_event_does_not_stop_the_others(caplog):
    sel = FakeSelector()
    bad, good = Fake("bad", files=[3], fail=True), Fake("good", files=[4])
    loop = Loop([bad, good], FakeClock(0.0, 1.0, 2.0), sel, name="agr9")   # no deadline: one read a turn
    loop._watch([bad, good])
    sel.ready = [3, 4]
    with caplog.at_level(logging.ERROR, logger="agrconfig"):
        loop.turn()
    assert good.events == [(1.0, "good:4")] and good.timers == [1.0] and bad.timers == [1.0]
    assert "agr9: error handling an event" in caplog.text
    sel.ready = [3]
    loop.turn()
    assert bad.events[-1] == (2.0, "bad:3"), "the loop goes on"


def test_stopping_after_an_event_ends_the_run():
    sel = FakeSelector()
    stop = []

    class Stopper(Fake):
        def on_readable(self, now, key):
            super().on_readable(now, key)
            stop.append(True)

    a, b = Stopper("a", files=[3]), Fake("b", files=[4])
    loop = Loop([a, b], FakeClock(0.0, 1.0), sel)
    loop._watch([a, b])
    sel.ready = [3, 4]
    loop.run(lambda: bool(stop))
    assert a.events == [(1.0, "a:3")] and b.events == [], "the events after the stop are left"
    assert len(sel.timeouts) == 1


def test_registrations_follow_what_the_components_list():
    sel = FakeSelector()
    a = Fake("a", files=[3])
    loop = Loop([a], FakeClock(0.0), sel)
    loop.turn()
    assert set(sel.keys) == {3}
    a.files = [4, 5]
    loop.turn()
    assert set(sel.keys) == {4, 5}
    assert sel.keys[4].data == (a, "a:4")
    a.files = []
    loop.turn()
    assert sel.keys == {}


def test_a_part_replaced_between_turns_is_driven_from_the_next_turn():
    old, new = Fake("old", deadline=5.0, files=[3]), Fake("new", deadline=7.0, files=[4])
    current = [old]
    sel = FakeSelector()
    loop = Loop(lambda: current, FakeClock(0.0, 0.0, 1.0, 1.0, 2.0), sel)
    loop.turn()
    current[0] = new
    loop.turn()
    assert old.timers == [1.0] and new.timers == [2.0]
    assert set(sel.keys) == {4} and sel.timeouts == [5.0, 6.0]


def test_a_closed_socket_whose_number_is_reused_is_watched_afresh():
    """A component closes a socket and opens another, which gets the same fd number: the
    real selector must let go of the old one before it takes the new one."""
    a = Fake("a")
    loop = Loop([a], FakeClock(0.0))   # the worker's own selector (component.Selector)
    first, peer = socket.socketpair()
    a.files = [first]
    loop._watch([a])
    number = first.fileno()
    first.close()
    second, peer2 = socket.socketpair()
    if second.fileno() != number:   # make it so: the case under test (no skip)
        fd = second.detach()
        os.dup2(fd, number)
        os.close(fd)
        second = socket.socket(fileno=number)
    try:
        assert second.fileno() == number
        a.files = [second]
        peer2.send(b"x")
        loop.turn()
        assert a.events == [(0.0, f"a:{second}")]
    finally:
        for s in (second, peer, peer2):
            s.close()
        loop.close()


def test_a_null_component_lists_nothing_and_waits_for_nothing():
    c = Component()
    assert list(c.fds()) == [] and c.deadline() is None
    c.on_timer(1.0)
    c.on_readable(1.0, None)
    c.close()


# -- the control server as a component ----------------------------------------------------------

@pytest.fixture
def control():
    """A Server on a listening socket of its own, driven by a Loop with a fake clock."""
    address = f"\0agrconfig-test/{os.getpid()}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(address)
    listener.listen(8)
    listener.setblocking(False)
    seen = []

    def handler(req, now):
        seen.append((req, now))
        return {"pong": now}

    srv = server.Server(listener, handler, timeout=2.0, clock=lambda: 100.0)
    # The ticker's deadline has passed: no turn waits (the fake clock stands still).
    loop = Loop([srv, Fake("ticker", deadline=0.0)], FakeClock(100.0), name="agrT")
    yield address, srv, loop, seen
    srv.close()
    listener.close()
    loop.close()


def ask(address, data):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(address)
    client.sendall(data)
    client.shutdown(socket.SHUT_WR)
    return client


def test_the_control_server_answers_through_the_loop_with_the_turn_now(control):
    address, srv, loop, seen = control
    client = ask(address, b'{"op": "ping"}')   # a look: any user's peer is answered
    for _ in range(4):
        loop.turn()
    reply = json.loads(client.recv(65536))
    client.close()
    assert reply["result"] == {"pong": 100.0} and reply["version"] == protocol.PROTOCOL_VERSION
    assert seen == [(protocol.Ping(), 100.0)]
    loop.turn()
    assert srv.conns == {} and set(loop.watched) == {srv.listener}, "the connection is let go"


def test_the_control_server_reports_its_deadline_and_closes_a_silent_client(control):
    address, srv, loop, _seen = control
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(address)          # says nothing
    loop.turn()
    assert srv.deadline() == 102.0
    conn = next(iter(srv.conns.values()))
    assert (conn.sock, conn, READ) in list(srv.fds())
    srv.on_timer(101.9)
    assert srv.conns
    srv.on_timer(102.0)
    assert srv.conns == {} and srv.deadline() is None
    assert client.recv(10) == b"", "closed"
    client.close()


def test_a_reply_the_socket_cannot_take_at_once_waits_for_write():
    conn = server._Conn(None, 0.0)
    conn.events = READ | WRITE
    srv = server.Server(None, None)
    srv.conns[7] = conn
    assert [(f, k, e) for f, k, e in srv.fds()][1] == (None, conn, READ | WRITE)


# -- component.Selector: selectors.EpollSelector's behaviour for what the loop uses -------------
def test_the_event_values_are_selectors():
    assert (READ, WRITE) == (selectors.EVENT_READ, selectors.EVENT_WRITE) == (server.READ, server.WRITE)


@pytest.mark.parametrize("make", [Selector, selectors.EpollSelector], ids=["ours", "selectors"])
def test_the_selector_registers_modifies_and_reports_as_selectors_does(make):
    sel = make()
    a, b = socket.socketpair()
    try:
        sel.register(a, READ, "first")
        assert sel.select(0) == []                          # nothing to read yet
        b.send(b"x")
        ((key, events),) = sel.select(0)
        assert (key.fileobj, key.data, events) == (a, "first", READ)
        sel.modify(a, READ | WRITE, "second")
        ((key, events),) = sel.select(1.0)
        assert (key.data, events) == ("second", READ | WRITE)
        sel.modify(a, WRITE, "third")
        ((key, events),) = sel.select(None)
        assert (key.data, events) == ("third", WRITE)        # readable, but not asked for
        with pytest.raises(KeyError):
            sel.register(a, READ, "again")
        with pytest.raises(KeyError):
            sel.unregister(b)                               # never registered
        sel.unregister(a)
        assert sel.select(0) == []
        with pytest.raises(KeyError):
            sel.modify(a, READ)
        sel.register(a.fileno(), READ, "by number")         # a bare fd works too
        ((key, events),) = sel.select(0)
        assert key.data == "by number" and events == READ
        sel.unregister(a.fileno())
        sel.register(a, READ, "closed")
        a.close()                                           # found by identity once closed
        sel.unregister(a)
        assert sel.select(0) == []
    finally:
        for s in (a, b):
            s.close()
        sel.close()


def test_the_selectors_wait_is_rounded_up_not_down(monkeypatch):
    """A timeout of 0.0004 s must not wake after 0 ms (the loop would spin until a deadline)."""
    sel = Selector()
    asked = []
    monkeypatch.setattr(sel, "epoll", type("E", (), {"poll": lambda self, t, n: asked.append(t) or []})())
    for timeout in (None, 0, -1.0, 0.0004, 0.0015, 2.0):
        sel.select(timeout)
    assert asked == [-1, 0, 0, 0.001, 0.002, 2.0]
