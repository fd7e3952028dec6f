"""agrdowndelay on a fake clock: the pure DownDelay, and LinkState holding a carrier loss (link
watch and carrier poll) or an agrlinkcheck verdict before the aggregation hears of it."""
from types import SimpleNamespace

import pytest

from agrconfig.worker import linkstate
from agrconfig.worker.downdelay import DownDelay
from agrconfig.worker.linkcheck import NoLinkCheck
from agrconfig.worker.linkstate import LinkState


def test_no_delay_holds_nothing():
    d = DownDelay()
    assert d.holding(0.0, ("carrier", 3), 0.0) is False and d.deadline() is None


def test_a_loss_is_held_for_the_delay_from_its_first_sighting():
    d = DownDelay()
    assert d.holding(10.0, ("carrier", 3), 0.5) is True
    assert d.holding(10.3, ("carrier", 3), 0.5) is True, "seen again: the wait does not start over"
    assert d.deadline() == 10.5 and d.due(10.4) == [] and d.left(10.2, 3) == pytest.approx(0.3)
    assert d.due(10.5) == [("carrier", 3)]
    assert d.holding(10.5, ("carrier", 3), 0.5) is False, "over: apply it"
    d.cancel(("carrier", 3))
    assert d.deadline() is None and d.left(11.0, 3) is None


def test_a_loss_that_ends_is_forgotten_and_the_next_waits_afresh():
    d = DownDelay()
    d.holding(0.0, ("carrier", 3), 1.0)
    d.cancel(("carrier", 3))
    assert d.holding(0.9, ("carrier", 3), 1.0) is True and d.deadline() == pytest.approx(1.9)
    d.holding(0.9, ("check", 4), 1.0)
    d.holding(0.95, ("check", 3), 1.0)
    d.cancel_port(3)
    assert list(d.until) == [("check", 4)]


class Port:
    def __init__(self, index, name):
        self.index, self.name, self.carrier, self.alive = index, name, True, True
        self.speed, self.duplex_full = 1000, True

    @property
    def up(self):
        return self.carrier and self.alive


class Members(list):
    def find(self, index):
        return next((p for p in self if p.index == index), None)

    def revert_changes(self, *args):
        pass

    def sync_memberships(self):
        pass


class World:
    """A worker as LinkState sees it, and the kernel's links (rtnl faked)."""

    def __init__(self, monkeypatch, delay_ms):
        self.links = {i: SimpleNamespace(index=i, name=n, mac="02:00:00:00:00:01", carrier=True, up=True)
                      for i, n in ((1, "agr0"), (3, "re0"), (4, "re1"))}
        self.told = []   # what the aggregation heard: (now, port, up)
        self.ports = [Port(3, "re0"), Port(4, "re1")]
        self.agr = SimpleNamespace(
            name="agr0", members=Members(self.ports), mac="02:00:00:00:00:01", tap_index=1,
            flags={"down_delay": delay_ms}, linkcheck=NoLinkCheck(), save=lambda: None,
            recompute=lambda: None, stopping=False,
            aggregation=SimpleNamespace(set_carrier=lambda now, index, up: self.told.append((now, index, up))))
        monkeypatch.setattr(linkstate.rtnl, "link", lambda name=None, index=None: self.links.get(index))
        monkeypatch.setattr(linkstate.rtnl, "all_addresses", lambda: {})
        monkeypatch.setattr(linkstate.rtnl, "link_mode", lambda name: (1000, True))   # read again at carrier back
        self.state = LinkState(self.agr)

    def carrier(self, now, index, on):
        self.links[index].carrier = on
        self.state.changed(now, index)

    def turn(self, now):
        deadline = self.state.deadline()
        if deadline is not None and deadline <= now:
            self.state.on_timer(now)


def test_a_flap_shorter_than_the_delay_changes_nothing(monkeypatch):
    w = World(monkeypatch, 500)
    w.carrier(1.0, 3, False)
    assert w.told == [] and w.ports[0].carrier is True and w.state.deadline() == 1.5
    assert w.state.held_left(1.2, 3) == pytest.approx(0.3)
    w.turn(1.4)
    w.carrier(1.4, 3, True)
    assert w.state.deadline() is None
    w.turn(2.0)
    assert w.told == [] and w.ports[0].carrier is True


def test_a_longer_loss_applies_at_the_deadline(monkeypatch):
    w = World(monkeypatch, 500)
    w.carrier(1.0, 3, False)
    w.carrier(1.2, 3, False)   # seen again (a link event): the wait does not start over
    w.turn(1.49)
    assert w.told == []
    w.turn(1.5)
    assert w.told == [(1.5, 3, False)] and w.ports[0].carrier is False and w.state.deadline() is None
    w.carrier(3.0, 3, True)
    assert w.told[-1] == (3.0, 3, True), "a carrier that comes back is taken at once"


def test_a_loss_that_ended_unseen_is_read_again_at_the_deadline(monkeypatch):
    w = World(monkeypatch, 500)
    w.carrier(1.0, 3, False)
    w.links[3].carrier = True   # back, its event lost
    w.turn(1.5)
    assert w.told == [] and w.ports[0].carrier is True and w.state.deadline() is None


def test_without_a_delay_the_port_goes_at_once(monkeypatch):
    w = World(monkeypatch, 0)
    w.carrier(1.0, 3, False)
    assert w.told == [(1.0, 3, False)] and w.state.deadline() is None


def test_the_carrier_poll_waits_too(monkeypatch):
    w = World(monkeypatch, 200)
    w.links[4].carrier = False
    for t in (1.0, 1.01, 1.02, 1.1):   # the poll looks every 10 ms
        w.state.carrier_lost(t, w.ports[1])
    assert w.told == [] and w.state.deadline() == pytest.approx(1.2)
    w.turn(1.2)
    assert w.told == [(1.2, 4, False)] and w.ports[1].carrier is False


def test_a_link_check_verdict_waits_and_a_target_heard_meanwhile_cancels_it(monkeypatch):
    w = World(monkeypatch, 300)
    w.state.verdict(1.0, 3, False)
    assert w.told == [] and w.ports[0].alive is True
    w.state.verdict(1.2, 3, True)
    w.turn(2.0)
    assert w.told == [] and w.ports[0].alive is True
    w.state.verdict(3.0, 3, False)
    w.turn(3.29)
    assert w.told == []
    w.turn(3.3)
    assert w.told == [(3.3, 3, False)] and w.ports[0].alive is False and w.state.deadline() is None
    w.state.set_alive(4.0, w.ports[0], True)   # the check turned off: every port up again
    assert w.told[-1] == (4.0, 3, True)


def test_a_port_gone_meanwhile_is_forgotten(monkeypatch):
    w = World(monkeypatch, 300)
    w.state.verdict(1.0, 4, False)
    w.agr.members.remove(w.ports[1])
    w.turn(1.3)
    assert w.told == [] and w.state.deadline() is None
