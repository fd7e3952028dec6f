"""agrminports: grammar and limits, exit status, provisioning, state file, status, completion,
and the worker's carrier decision (the TAP ioctl faked). No root, no namespaces."""
from types import SimpleNamespace

import pytest

from agrconfig import options
from agrconfig.cli import provision, render
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import SetOption
from agrconfig.cli.provision import plan
from agrconfig.errors import UsageError
from agrconfig.worker import loop, parts, statefile, tap
from agrconfig.worker.announcer import AggregatorWatch
from agrconfig.worker.members import Members
from tests.unit.test_controls_words import agr, complete, refused, said, state
from tests.unit.test_maxports_words import ws
from tests.unit.statuses import aggregate


@pytest.mark.parametrize("words, n", [(["agrminports", "0"], 0), (["agrminports", "2"], 2),
                                      (["agrminports", "1024"], 1024)])
def test_agrminports_parses(words, n):
    assert parse_words(words) == [SetOption("min_ports", n, "agrminports")]


@pytest.mark.parametrize("words, message", [
    (["agrminports", "1025"], r"^agrminports: bad value '1025' \(0-1024\)"),
    (["agrminports", "-1"], "^agrminports: bad value"),
    (["agrminports"], "^agrminports: missing a number 0-1024"),
])
def test_bad_values_are_usage_errors(words, message):
    with pytest.raises(UsageError, match=message):
        parse_words(words)


@pytest.mark.parametrize("words", [["agr0", "agrminports", "1025"], ["agr0", "create", "agrminports", "x"],
                                   ["-n", "agr0", "agrminports", "-3"]])
def test_out_of_range_exits_1_and_changes_nothing(words, monkeypatch, capsys):
    assert refused(words, monkeypatch, capsys).startswith("agrconfig: agrminports: bad value")


def test_plan_and_undo():
    model = agr(["re0"])
    assert said(plan("agr0", parse_words(["agrminports", "2"]), model)) == ["agrconfig agr0 agrminports 2"]
    assert said(provision.undo(parse_words(["agrport", "re0"]), model)) == ["agrconfig agr0 agrminports 1"]


def test_the_state_file_keeps_the_carrier_and_refuses_bad_values():
    statefile.validate(state([], {"min_ports": 2}), "agr0")
    statefile.validate(dict(state([]), carrier=False), "agr0")
    statefile.validate(dict(state([]), carrier=None), "agr0")   # never set (no port yet)
    for bad in ({"carrier": 1}, {"carrier": "on"}):
        with pytest.raises(statefile.BadState):
            statefile.validate(dict(state([]), **bad), "agr0")
    for bad in (-1, 1025, False):
        with pytest.raises(statefile.BadState):
            statefile.validate(state([], {"min_ports": bad}), "agr0")


def test_status_shows_a_limit_other_than_1():
    def first_line(**flags):
        w = ws(0, False)
        w["flags"].update(flags)
        return render.agr_lines(aggregate(w))[0]
    assert first_line().endswith("datapath relay")
    assert first_line(min_ports=2).endswith("datapath relay; minports 2")
    assert first_line(min_ports=0, max_ports=1).endswith("; maxports 1; minports 0")
    w = ws(0, False)
    w["flags"]["min_ports"] = 3
    assert render.json_doc({"ifname": "agr0", "agr": aggregate(w)})["linkinfo"]["info_data"]["min_links"] == 3


def test_completion_knows_the_word():
    assert "agrminports" in complete("agr0", "")
    assert complete("agr0", "agrminports", "") == []


class FakeWorker(loop.Worker):
    """Only what the carrier decision touches: the flags, the sets the aggregation gives, the
    TAP's carrier (TapCarrier on fd 99) and save."""

    def __init__(self, saved=None):
        self.name, self.flags, self.saved = "agr0", options.defaults(), saved
        self.clock = lambda: 0.0
        self.members = Members("agr0", 1)
        self.distributing = self.collecting = frozenset()
        self.sets = (frozenset(), frozenset())
        self.agg = SimpleNamespace(current=SimpleNamespace(sets=lambda ports: self.sets,
                                                           slb_plan=lambda now, ports, d: (None, [])))
        self.datapath = SimpleNamespace(path=SimpleNamespace(set_ports=lambda ports, d, c: None,
                                                             set_slb=lambda plan: None))
        self.tap_carrier = parts.TapCarrier(self.name, 99, (saved or {}).get("carrier"))
        self.tap_speed = parts.TapSpeed(self.name)
        self.saves = 0
        self.aggregator = AggregatorWatch()   # no LACP move to announce

    def distribute(self, *indexes):
        self.sets = (frozenset(indexes), frozenset(indexes))
        self.recompute()

    def save(self):
        self.saves += 1


@pytest.fixture
def ioctls(monkeypatch):
    calls = []
    monkeypatch.setattr(parts, "set_carrier", lambda fd, on: calls.append((fd, on)))
    monkeypatch.setattr(parts.ethtool, "set_link_mode", lambda name, speed, duplex: None)
    return calls


def test_carrier_follows_the_number_of_distributing_ports(ioctls):
    w = FakeWorker()
    w.distribute()
    assert ioctls == [(99, False)] and w.tap_carrier.on is False, "no port: no carrier by default"
    w.distribute(3)
    assert ioctls[-1] == (99, True) and w.tap_carrier.on is True
    w.distribute(3)
    assert len(ioctls) == 2, "no change, no ioctl"
    w.flags["min_ports"] = 2
    w.distribute(3)
    assert ioctls[-1] == (99, False)
    w.distribute(3, 4)
    assert ioctls[-1] == (99, True)
    w.flags["min_ports"] = 0
    w.distribute()
    assert ioctls[-1] == (99, True) and len(ioctls) == 4, "0: carrier whatever the ports"
    assert w.saves == 4, "every change is saved for a restarted worker"


@pytest.mark.parametrize("saved, want", [({"carrier": False}, [(99, False)]), ({"carrier": True}, [(99, True)]),
                                         ({}, []), ({"carrier": None}, []), (None, [])])
def test_a_restarted_worker_puts_back_the_saved_carrier(ioctls, saved, want):
    w = FakeWorker(saved)
    assert ioctls == want
    assert w.tap_carrier.on == (want[0][1] if want else None)


def test_no_tunsetcarrier_leaves_the_carrier_on(monkeypatch):
    def refuse(fd, on):
        raise OSError(25, "Inappropriate ioctl for device")
    monkeypatch.setattr(parts, "set_carrier", refuse)
    w = FakeWorker()
    w.distribute()
    assert w.tap_carrier.on is True


def test_the_ioctl_number_is_tunsetcarrier():
    # _IOW('T', 226, int)
    assert tap.TUNSETCARRIER == (1 << 30) | (4 << 16) | (ord("T") << 8) | 226
