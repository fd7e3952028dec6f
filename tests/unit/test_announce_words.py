"""agrannounce and agrdowndelay as words: grammar and limits, exit status, provisioning and
undo, ifupdown, the state file, status text and JSON, completion. No root, no namespaces."""
import pytest

from agrconfig import options
from agrconfig.cli import ifupdown, provision, render
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import SetOption
from agrconfig.cli.provision import plan
from agrconfig.errors import UsageError
from agrconfig.worker import statefile
from tests.unit.statuses import aggregate
from tests.unit.test_controls_words import agr, complete, refused, said, state


@pytest.mark.parametrize("words, value", [
    (["agrannounce", "3"], {"count": 3, "interval": 100}),
    (["agrannounce", "0"], {"count": 0, "interval": 100}),
    (["agrannounce", "255", "interval", "60000"], {"count": 255, "interval": 60000}),
    (["agrannounce", "2", "interval", "10"], {"count": 2, "interval": 10}),
])
def test_agrannounce_parses(words, value):
    assert parse_words(words) == [SetOption("announce", value, "agrannounce")]


def test_interval_is_optional_and_the_next_word_is_not_taken():
    assert parse_words(["agrannounce", "2", "up"])[0] == SetOption("announce", {"count": 2, "interval": 100},
                                                                    "agrannounce")
    assert len(parse_words(["agrannounce", "2", "up"])) == 2


@pytest.mark.parametrize("words, n", [(["agrdowndelay", "0"], 0), (["agrdowndelay", "200"], 200),
                                      (["agrdowndelay", "3600000"], 3600000)])
def test_agrdowndelay_parses(words, n):
    assert parse_words(words) == [SetOption("down_delay", n, "agrdowndelay")]


@pytest.mark.parametrize("words, message", [
    (["agrannounce", "256"], r"^agrannounce: bad value '256' \(0-255\)"),
    (["agrannounce", "-1"], "^agrannounce: bad value"),
    (["agrannounce", "x"], "^agrannounce: bad value"),
    (["agrannounce"], "^agrannounce: missing a number 0-255"),
    (["agrannounce", "2", "interval", "9"], r"^agrannounce: interval: bad value '9' \(10-60000\)"),
    (["agrannounce", "2", "interval", "60001"], "^agrannounce: interval: bad value"),
    (["agrannounce", "2", "interval"], "^interval: missing a value"),   # the grammar's, as agrlinkcheck's
    (["agrdowndelay", "3600001"], r"^agrdowndelay: bad value '3600001' \(0-3600000\)"),
    (["agrdowndelay", "-1"], "^agrdowndelay: bad value"),
    (["agrdowndelay", "1.5"], "^agrdowndelay: bad value"),
    (["agrdowndelay"], "^agrdowndelay: missing a number 0-3600000"),
])
def test_bad_values_are_usage_errors(words, message):
    with pytest.raises(UsageError, match=message):
        parse_words(words)


@pytest.mark.parametrize("words", [["agr0", "agrannounce", "256"], ["agr0", "create", "agrannounce", "1", "interval", "1"],
                                   ["-n", "agr0", "agrdowndelay", "-5"], ["agr0", "up", "agrdowndelay", "soon"]])
def test_bad_values_exit_1_and_change_nothing(words, monkeypatch, capsys):
    err = refused(words, monkeypatch, capsys)
    assert err.startswith(("agrconfig: agrannounce: ", "agrconfig: agrdowndelay: ")), err


def test_plan_and_undo():
    model = agr(["re0"])
    ops = parse_words(["agrannounce", "3", "interval", "200", "agrdowndelay", "500"])
    assert said(plan("agr0", ops, model)) == ["agrconfig agr0 agrannounce 3 interval 200",
                                              "agrconfig agr0 agrdowndelay 500"]
    assert said(plan("agr0", parse_words(["agrannounce", "1"]), agr(["re0"]))) == [], "the default already holds"
    changed = agr(["re0"], announce={"count": 3, "interval": 200}, down_delay=500)
    assert said(plan("agr0", ops, changed)) == [], "-n: nothing to do when both hold"
    assert said(provision.undo(parse_words(["agrport", "re0"]), changed)) == [
        "agrconfig agr0 agrannounce 1 interval 100", "agrconfig agr0 agrdowndelay 0"]


def test_ifupdown_stanza_options():
    assert options.BY_KEY["announce"].stanza_option() == "agr-announce"
    assert options.BY_KEY["down_delay"].stanza_option() == "agr-downdelay"
    _ports, words = ifupdown.stanza({"IF_AGR_ANNOUNCE": "3 interval 200", "IF_AGR_DOWNDELAY": "500"})
    assert set(map(tuple, [op.words() for op in parse_words(words)])) == {
        ("agrannounce", "3", "interval", "200"), ("agrdowndelay", "500")}
    _ports, words = ifupdown.stanza({"IF_AGR_ANNOUNCE": "2"})
    assert parse_words(words) == [SetOption("announce", {"count": 2, "interval": 100}, "agrannounce")]


def test_the_state_file_keeps_them_and_refuses_bad_values():
    statefile.validate(state([], {"announce": {"count": 3, "interval": 200}, "down_delay": 500}), "agr0")
    statefile.validate(state([], {}), "agr0"), "0.2.0's files have neither"
    for bad in ({"announce": {"count": 3}}, {"announce": 3}, {"announce": {"count": 1, "interval": 5}},
                {"down_delay": -1}, {"down_delay": 1.5}, {"down_delay": True}):
        with pytest.raises(statefile.BadState):
            statefile.validate(state([], bad), "agr0")


def ws(**flags):
    return aggregate({"protocol": "failover", "datapath": "relay", "flags": {**options.defaults(), **flags},
                      "ports": []})


def test_status_text_and_json():
    text = "\n".join(render.agr_lines(ws()))
    assert "announce" not in text and "downdelay" not in text, "the defaults say nothing"
    text = "\n".join(render.agr_lines(ws(announce={"count": 3, "interval": 200}, down_delay=500)))
    assert "; announce 3 interval 200 ms; downdelay 500 ms" in text
    info = render.json_doc({"ifname": "agr0", "agr": ws(announce={"count": 3, "interval": 200},
                                                          down_delay=500)})["linkinfo"]["info_data"]
    assert (info["num_grat_arp"], info["num_unsol_na"], info["peer_notif_delay"], info["downdelay"]) == \
        (3, 3, 200, 500)
    assert info["flags"]["announce"] == {"count": 3, "interval": 200} and info["flags"]["down_delay"] == 500


def test_completion_offers_the_words_and_leaves_the_numbers():
    assert {"agrannounce", "agrdowndelay"} <= set(complete("agr0", ""))
    assert complete("agr0", "agrannounce", "") == []
    assert complete("agr0", "agrdowndelay", "") == []


def test_a_held_loss_and_the_announcements_in_status_and_metrics():
    from agrconfig.cli import metrics
    port = {"name": "re0", "index": 3, "flags": 3, "carrier": True, "original_mac": "02:00:00:00:00:09",
            "counters": {}, "options": options.defaults("port"), "down_delay_left": 1.5}
    st = aggregate({"protocol": "loadbalance", "datapath": "relay", "flags": {**options.defaults(), "down_delay": 500},
                    "ports": [port], "announced": 7})
    assert st.ports[0].down_delay_left == 1.5 and st.announced == 7
    assert "\t\tlink lost, leaves in 1.5 s unless it returns (agrdowndelay)" in render.agr_lines(st)
    doc = render.json_doc({"ifname": "agr0", "agr": st})
    assert doc["agrports"][0]["down_delay_left"] == 1.5
    assert "agr_announcements_total{agr=\"agr0\"} 7.0" in metrics.text({"agr0": st})
    quiet = aggregate({"protocol": "loadbalance", "datapath": "relay", "flags": options.defaults(),
                       "ports": [dict(port, down_delay_left=None)]})
    assert "down_delay_left" not in quiet.ports[0].to_json() and "announced" not in quiet.to_json()
    assert not any("agrdowndelay" in line for line in render.agr_lines(quiet))
    assert "agr_announcements_total{" not in metrics.text({"agr0": quiet}), "a 0.2.0 worker: no sample"
