"""agrselect outside the LACP core (test_lacp_select.py has the policies themselves): grammar,
exit status, provisioning, ifupdown, the worker's aggregation, status and completion; and
agrN's speed in status text, JSON and metrics."""
import pytest

from agrconfig import options
from agrconfig.cli import ifupdown, metrics, provision, render
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import SetOption
from agrconfig.cli.provision import plan
from agrconfig.errors import UsageError
from agrconfig.lacp import SelectPolicy
from agrconfig.worker import aggregation
from tests.unit.statuses import aggregate
from tests.unit.test_controls_words import agr, complete, refused, said
from tests.unit.test_maxports_words import ws


@pytest.mark.parametrize("name", ["stable", "bandwidth", "count"])
def test_agrselect_parses(name):
    assert parse_words(["agrselect", name]) == [SetOption("select", name, "agrselect")]


@pytest.mark.parametrize("words, message", [
    (["agrselect", "fastest"], r"^agrselect: .*'fastest' is not stable, bandwidth or count"),
    (["agrselect", "Stable"], "^agrselect: "),
    (["agrselect"], "^agrselect: "),
])
def test_bad_values_are_usage_errors(words, message):
    with pytest.raises(UsageError, match=message):
        parse_words(words)


@pytest.mark.parametrize("words", [["agr0", "agrselect", "most"], ["agr0", "create", "agrselect", "1"],
                                   ["-n", "agr0", "agrselect", ""]])
def test_bad_values_exit_1_and_change_nothing(words, monkeypatch, capsys):
    assert refused(words, monkeypatch, capsys).startswith("agrconfig: agrselect: ")


def test_plan_dry_run_and_undo():
    model = agr(["re0"])
    assert said(plan("agr0", parse_words(["agrselect", "bandwidth"]), model)) == [], "the default: no change"
    assert said(plan("agr0", parse_words(["agrselect", "stable"]), model)) == ["agrconfig agr0 agrselect stable"]
    assert model.flags["select"] == "stable"
    assert said(provision.undo(parse_words(["agrport", "re0"]), agr(["re0"], select="count"))) == \
        ["agrconfig agr0 agrselect bandwidth"]
    assert options.file_words("select", "count") == ["agrselect", "count"]


def test_the_stanza_option_is_agr_select():
    assert options.BY_KEY["select"].stanza_option() == "agr-select"
    ports, words = ifupdown.stanza({"IF_AGR_PORTS": "re0 re1", "IF_AGR_SELECT": "count"})
    assert ports == ["re0", "re1"] and parse_words(words) == [SetOption("select", "count", "agrselect")]


def test_lacp_hands_it_to_the_core():
    flags = options.defaults()
    agg = aggregation.create(flags, b"\x02\0\0\0\0\x01", 0.0, lambda out: None)
    assert agg.core.select_policy is SelectPolicy.BANDWIDTH
    agg = aggregation.create(flags | {"select": "stable"}, b"\x02\0\0\0\0\x01", 0.0, lambda out: None)
    assert agg.core.select_policy is SelectPolicy.STABLE
    agg.configure(1.0, flags | {"select": "count"})
    assert agg.core.select_policy is SelectPolicy.COUNT


def test_status_shows_a_policy_other_than_the_default():
    w = ws(0, False)
    assert not render.agr_lines(aggregate(w))[0].endswith("select bandwidth")
    w["flags"]["select"] = "stable"
    assert render.agr_lines(aggregate(w))[0].endswith("; select stable")
    doc = render.json_doc({"ifname": "agr0", "agr": aggregate(w)})
    assert doc["linkinfo"]["info_data"]["flags"]["select"] == "stable"


def test_completion_knows_the_word_and_its_values():
    assert "agrselect" in complete("agr0", "")
    assert complete("agr0", "agrselect", "") == ["stable", "bandwidth", "count"]


# -- agrN's speed -------------------------------------------------------------------------------

def with_speed(speed, port_speed=10000, duplex_full=True):
    w = ws(0, False)
    if speed is not None:
        w["speed"] = speed
    w["ports"][0].update(speed=port_speed, duplex_full=duplex_full)
    return aggregate(w)


def doc_of(st):
    return {"ifname": "agr0", "ifindex": 7, "flags": 0, "mtu": 1500, "address": "02:00:00:00:00:01",
            "carrier": True, "addr_info": [], "stats64": {}, "agr": st}


def test_the_media_line_before_status():
    lines = render.render_text(doc_of(with_speed(20000))).splitlines()
    at = lines.index("\tmedia: Ethernet 20000Mb/s full-duplex")
    assert lines[at - 1] == "\taddress: 02:00:00:00:00:01" and lines[at + 1] == "\tstatus: active"
    assert "\tmedia: Ethernet (speed unknown: no port distributing)" in render.render_text(doc_of(with_speed(None)))
    plain = render.render_text({**doc_of(None), "agr": None})
    assert "media" not in plain, "not for interfaces other than agr"


def test_json_has_the_speed_and_each_port_s():
    doc = render.json_doc(doc_of(with_speed(20000, 10000, True)))
    assert doc["linkinfo"]["info_data"]["speed"] == 20000
    assert (doc["agrports"][0]["speed"], doc["agrports"][0]["duplex"]) == (10000, "full")
    doc = render.json_doc(doc_of(with_speed(None, None, None)))
    assert doc["linkinfo"]["info_data"]["speed"] is None
    assert (doc["agrports"][0]["speed"], doc["agrports"][0]["duplex"]) == (None, None)
    assert render.json_doc(doc_of(with_speed(100, 100, False)))["agrports"][0]["duplex"] == "half"


def test_the_worker_reply_carries_the_speed_while_known():
    assert with_speed(20000).speed == 20000 and with_speed(20000).to_json()["speed"] == 20000
    assert "speed" not in with_speed(None).to_json()


def test_metrics_gauge_the_speed_in_bytes_per_second():
    text = metrics.text({"agr0": with_speed(20000)})
    assert 'agr_speed_bytes{agr="agr0"} 2.5e+09' in text
    assert 'agr_port_speed_bytes{agr="agr0",port="re1"} 1.25e+09' in text
    text = metrics.text({"agr0": with_speed(None, None)})
    assert "# TYPE agr_speed_bytes gauge" in text and 'agr_speed_bytes{' not in text, "unknown: no sample"
    assert "agr_port_speed_bytes{" not in text
