"""agrN's speed (ethtool): the worker sets the sum of the distributing ports' speeds on its TAP
before the carrier comes on, and again whenever the distributing set changes; a port's speed
is read again when its carrier comes back, and LACP hears of it before the port is enabled."""
from types import SimpleNamespace

import pytest

from agrconfig.net import ethtool
from agrconfig.worker import linkstate, parts
from tests.unit.test_minports_words import FakeWorker


class Ports(list):
    def name_of(self, index):
        return next((p.name for p in self if p.index == index), str(index))


def port(index, speed, duplex_full=True):
    return SimpleNamespace(index=index, name=f"p{index}", speed=speed, duplex_full=duplex_full)


@pytest.fixture
def calls(monkeypatch):
    out = []
    monkeypatch.setattr(parts, "set_carrier", lambda fd, on: out.append(("carrier", on)))
    monkeypatch.setattr(parts.ethtool, "set_link_mode", lambda name, speed, duplex: out.append(("speed", speed, duplex)))
    return out


def worker(*ports):
    w = FakeWorker()
    w.members = Ports(ports)
    return w


def test_the_speed_is_set_before_the_carrier_comes_on(calls):
    w = worker(port(3, 10000), port(4, 10000))
    w.distribute()
    assert calls == [("speed", None, None), ("carrier", False)], "no port distributes: unknown"
    w.distribute(3)
    assert calls[2:] == [("speed", 10000, True), ("carrier", True)]
    w.distribute(3, 4)
    assert calls[4:] == [("speed", 20000, True)]
    assert w.tap_speed.mode == ethtool.LinkMode(20000, True)
    w.distribute(3, 4)
    assert len(calls) == 5, "no change, no ioctl"
    w.distribute(4)
    assert calls[5:] == [("speed", 10000, True)]
    w.distribute()
    assert calls[6:] == [("speed", None, None), ("carrier", False)]


def test_ports_of_unknown_speed_add_nothing(calls):
    w = worker(port(3, None), port(4, 1000))
    w.distribute(3)
    assert calls[0] == ("speed", None, None)
    w.distribute(3, 4)
    assert calls[-1] == ("speed", 1000, True)


def test_a_tap_that_refuses_keeps_the_worker_going(monkeypatch, calls, caplog):
    def refuse(name, speed, duplex):
        raise OSError(95, "Operation not supported")
    monkeypatch.setattr(parts.ethtool, "set_link_mode", refuse)
    w = worker(port(3, 1000))
    w.distribute(3)
    w.distribute()
    w.distribute(3)
    assert ("carrier", True) in calls and w.tap_speed.mode is None
    assert sum("cannot set the link speed" in r.message for r in caplog.records) == 1, "said once"


class Agg:
    def __init__(self, log):
        self.log = log

    def set_port_speed(self, now, index, speed, duplex):
        self.log.append(("speed", index, speed, duplex))

    def set_carrier(self, now, index, up):
        self.log.append(("carrier", index, up))


def test_a_port_s_speed_is_read_again_when_its_carrier_comes_back(monkeypatch):
    log = []
    member = SimpleNamespace(index=5, name="p5", speed=1000, duplex_full=True, carrier=False, up=True)
    members = type("Members", (list,), {"revert_changes": lambda self, *a: None,
                                        "sync_memberships": lambda self: None})([member])
    agr = SimpleNamespace(name="agr0", tap_index=1, mac="02:00:00:00:00:01", members=members, aggregation=Agg(log),
                          linkcheck=SimpleNamespace(carrier_back=lambda now, p: None),
                          recompute=lambda: log.append(("recompute",)))
    link = SimpleNamespace(name="p5", carrier=True, up=True, mac=agr.mac)
    monkeypatch.setattr(linkstate.rtnl, "link", lambda name=None, index=None: link)
    monkeypatch.setattr(linkstate.rtnl, "all_addresses", lambda: {})
    monkeypatch.setattr(linkstate.rtnl, "link_mode", lambda name: (10000, True))
    state = linkstate.LinkState(agr)
    state.changed(1.0, 5)
    assert log == [("speed", 5, 10000, True), ("carrier", 5, True), ("recompute",)], "the key before Port_Enabled"
    assert (member.speed, member.duplex_full) == (10000, True)
    # The same speed on the next return: the aggregation hears nothing of it.
    del log[:]
    member.carrier = False
    state.changed(2.0, 5)
    assert log == [("carrier", 5, True), ("recompute",)]
