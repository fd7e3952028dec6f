"""agrwtr outside the LACP core: grammar and limits, exit status, provisioning, the worker's
aggregations (LACP hands it to the core; link1 waits itself), status and completion."""
from types import SimpleNamespace

import pytest

from agrconfig import options
from agrconfig.cli import provision, render
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import SetOption
from agrconfig.cli.provision import plan
from agrconfig.errors import UsageError
from agrconfig.lacp import DistributingChanged
from agrconfig.worker import aggregation
from tests.unit.test_controls_words import agr, complete, refused, said
from tests.unit.test_maxports_words import ws
from tests.unit.statuses import aggregate


@pytest.mark.parametrize("words, n", [(["agrwtr", "0"], 0), (["agrwtr", "30"], 30), (["agrwtr", "3600"], 3600)])
def test_agrwtr_parses(words, n):
    assert parse_words(words) == [SetOption("wtr_time", n, "agrwtr")]


@pytest.mark.parametrize("words, message", [
    (["agrwtr", "3601"], r"^agrwtr: bad value '3601' \(0-3600\)"),
    (["agrwtr", "-1"], "^agrwtr: bad value"),
    (["agrwtr", "1.5"], "^agrwtr: bad value"),
    (["agrwtr"], "^agrwtr: missing a number 0-3600"),
])
def test_bad_values_are_usage_errors(words, message):
    with pytest.raises(UsageError, match=message):
        parse_words(words)


@pytest.mark.parametrize("words", [["agr0", "agrwtr", "3601"], ["agr0", "create", "agrwtr", "soon"],
                                   ["-n", "agr0", "agrwtr", "-5"]])
def test_out_of_range_exits_1_and_changes_nothing(words, monkeypatch, capsys):
    assert refused(words, monkeypatch, capsys).startswith("agrconfig: agrwtr: bad value")


def test_plan_and_undo():
    model = agr(["re0"])
    assert said(plan("agr0", parse_words(["agrwtr", "10"]), model)) == ["agrconfig agr0 agrwtr 10"]
    assert said(provision.undo(parse_words(["agrport", "re0"]), model)) == ["agrconfig agr0 agrwtr 0"]


def test_the_stanza_option_is_agr_wtr():
    assert options.BY_KEY["wtr_time"].stanza_option() == "agr-wtr"


def test_lacp_hands_it_to_the_core():
    flags = options.defaults() | {"wtr_time": 30}
    agg = aggregation.create(flags, b"\x02\0\0\0\0\x01", 0.0, lambda out: None)
    assert agg.core.system.wtr_time == 30
    agg.configure(1.0, flags | {"wtr_time": 0})
    assert agg.core.system.wtr_time == 0


def port(index, carrier=True):
    return SimpleNamespace(index=index, carrier=carrier, up=carrier)   # up: carrier and agrlinkcheck


def test_link1_a_port_whose_carrier_comes_back_waits_and_a_flap_restarts_the_wait():
    told = []
    flags = options.defaults() | {"proto": "loadbalance", "wtr_time": 5}
    agg = aggregation.create(flags, b"\x02\0\0\0\0\x01", 0.0, told.append)
    ports = [port(1), port(2)]
    agg.add_port(0.0, ports[0])
    assert agg.sets(ports)[0] == {2}, "port 2 was never added through add_port: as after a restart"
    assert agg.get_timer() == 5.0 and agg.port_status(1) == {"static_wtr_left": 5.0}
    agg.handle_timer(4.9)
    assert agg.sets(ports)[0] == {2} and not told
    agg.handle_timer(5.0)
    assert agg.sets(ports)[0] == {1, 2} and agg.port_status(1) == {}
    assert [type(e) for out in told for e in out.events] == [DistributingChanged]
    # Carrier lost and back at 10, a flap at 12, back at 13: distributes at 18, not 15.
    ports[0].carrier = False
    agg.set_carrier(9.0, 1, False)
    ports[0].carrier = True
    agg.set_carrier(10.0, 1, True)
    ports[0].carrier = False
    agg.set_carrier(12.0, 1, False)
    assert agg.get_timer() is None
    ports[0].carrier = True
    agg.set_carrier(13.0, 1, True)
    agg.handle_timer(15.0)
    assert agg.sets(ports)[0] == {2}
    assert agg.port_status(1)["static_wtr_left"] == pytest.approx(3.0)
    agg.handle_timer(18.0)
    assert agg.sets(ports)[0] == {1, 2}


def test_link1_a_new_time_moves_the_wait_and_0_ends_it():
    flags = options.defaults() | {"proto": "loadbalance", "wtr_time": 5}
    agg = aggregation.create(flags, b"\x02\0\0\0\0\x01", 0.0, lambda out: None)
    agg.add_port(0.0, port(1))
    agg.configure(1.0, flags | {"wtr_time": 20})
    assert agg.get_timer() == 20.0
    agg.configure(1.0, flags | {"wtr_time": 0})
    assert agg.get_timer() is None and agg.sets([port(1)])[0] == {1}
    agg.add_port(2.0, port(3))
    assert agg.sets([port(3)])[0] == {3}, "no time: no wait"


def test_status_shows_the_time_left():
    w = ws(0, False)
    w["flags"]["wtr_time"] = 30
    w["ports"][0]["lacp"].update(selected="SELECTED", mux_state="ATTACHED", wtr_left=12.34)
    lines = render.agr_lines(aggregate(w))
    assert lines[0].endswith("; wtr 30 s")
    assert "\t\tselected, wait-to-restore 12.3 s left, mux ATTACHED" in "\n".join(lines)
    doc = render.json_doc({"ifname": "agr0", "agr": aggregate(w)})
    assert doc["agrports"][0]["wtr_left"] == 12.34 and doc["linkinfo"]["info_data"]["updelay"] == 30000
    # link1: no LACP lines, the wait on a line of its own.
    static = {"protocol": "static", "datapath": "relay", "flags": {**options.defaults(), "proto": "loadbalance"},
              "ports": [{"name": "re0", "index": 2, "flags": 0, "carrier": True, "original_mac": "02:00:00:00:00:09",
                         "counters": {}, "options": options.defaults("port"), "wtr_left": 4.0}]}
    assert render.agr_lines(aggregate(static))[1:] == ["\tagrport: re0, flags=0x0", "\t\twait-to-restore 4.0 s left"]
    assert render.json_doc({"ifname": "agr0", "agr": aggregate(static)})["agrports"][0]["wtr_left"] == 4.0


def test_completion_knows_the_word():
    assert "agrwtr" in complete("agr0", "")
    assert complete("agr0", "agrwtr", "") == []


def test_the_stanza_options_of_issue_13s_second_slice():
    from agrconfig.cli import ifupdown
    env = {"IF_AGR_PORTS": "re0 re1", "IF_AGR_MAX_PORTS": "1", "IF_AGR_MIN_PORTS": "2",
           "IF_AGR_LACP_FALLBACK": "yes", "IF_AGR_WTR": "30"}
    ports, words = ifupdown.stanza(env)
    assert ports == ["re0", "re1"]
    assert parse_words(words) == [SetOption("max_ports", 1, "agrmaxports"),
                                  SetOption("min_ports", 2, "agrminports"),
                                  SetOption("lacp_fallback", True, "lacpfallback"),
                                  SetOption("wtr_time", 30, "agrwtr")]
    _ports, words = ifupdown.stanza({"IF_AGR_LACP_FALLBACK": "no"})
    assert words == ["-lacpfallback"]
