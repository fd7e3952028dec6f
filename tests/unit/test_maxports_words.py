"""agrmaxports outside the LACP core: grammar and limits, the command line's exit status,
provisioning, the control protocol, the state file, the worker's aggregation, status and
completion. No root, no namespaces."""
import pytest

from agrconfig import options
from agrconfig.cli import provision, render
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import SetOption
from agrconfig.cli.provision import plan
from agrconfig.errors import UsageError
from agrconfig.worker import aggregation, statefile
from tests.unit.test_controls_words import agr, complete, refused, said, state
from tests.unit.statuses import aggregate


@pytest.mark.parametrize("words, n", [(["agrmaxports", "0"], 0), (["agrmaxports", "1"], 1),
                                      (["agrmaxports", "1024"], 1024), (["agrmaxports", "0x10"], 16)])
def test_agrmaxports_parses(words, n):
    assert parse_words(words) == [SetOption("max_ports", n, "agrmaxports")]


@pytest.mark.parametrize("words, message", [
    (["agrmaxports", "1025"], r"^agrmaxports: bad value '1025' \(0-1024\)"),
    (["agrmaxports", "-1"], "^agrmaxports: bad value"),
    (["agrmaxports", "two"], "^agrmaxports: bad value"),
    (["agrmaxports"], "^agrmaxports: missing a number 0-1024"),
    (["-agrmaxports"], "^-agrmaxports: "),   # no '-' form: 0 is no limit
])
def test_bad_values_are_usage_errors(words, message):
    with pytest.raises(UsageError, match=message):
        parse_words(words)


@pytest.mark.parametrize("words", [["agr0", "agrmaxports", "1025"], ["agr0", "create", "agrmaxports", "-1"],
                                   ["-n", "agr0", "agrmaxports", "2000"]])
def test_out_of_range_exits_1_and_changes_nothing(words, monkeypatch, capsys):
    assert refused(words, monkeypatch, capsys).startswith("agrconfig: agrmaxports: bad value")


def test_plan_and_undo():
    model = agr(["re0", "re1"])
    assert said(plan("agr0", parse_words(["agrmaxports", "1"]), model)) == ["agrconfig agr0 agrmaxports 1"]
    assert said(plan("agr0", parse_words(["agrmaxports", "1"]), model)) == [], "already so"
    # A file without agrmaxports puts the default back.
    assert said(provision.undo(parse_words(["agrport", "re0", "agrport", "re1"]), model)) == \
        ["agrconfig agr0 agrmaxports 0"]


def test_the_state_file_keeps_it_and_refuses_bad_values():
    statefile.validate(state([], {"max_ports": 2}), "agr0")
    for bad in (-1, 1025, "1", True):
        with pytest.raises(statefile.BadState):
            statefile.validate(state([], {"max_ports": bad}), "agr0")


def test_the_worker_hands_the_limit_to_the_core_at_start_and_on_change():
    flags = options.defaults() | {"max_ports": 2}
    acts = []
    agg = aggregation.create(flags, b"\x02\0\0\0\0\x01", 0.0, acts.append)
    assert agg.core.max_ports == 2
    agg.configure(1.0, flags | {"max_ports": 0})
    assert agg.core.max_ports == 0


def ws(max_ports, limited):
    lacp = {"actor_state": 0x07, "actor_key": 0x100, "actor_port_priority": 0x8000,
            "partner_state": 0x3D, "partner_system_priority": 0x8000, "partner_system": "02:00:00:00:00:02",
            "partner_key": 0x100, "partner_port_priority": 0x8000, "partner_port": 3,
            "selected": "STANDBY", "limited": limited, "mux_state": "WAITING", "rx_state": "CURRENT",
            "counters": {}, "actor_state_str": [], "partner_state_str": []}
    port = {"name": "re1", "index": 3, "flags": 0, "carrier": True, "original_mac": "02:00:00:00:00:09",
            "counters": {}, "options": options.defaults("port"), "lacp": lacp}
    return {"protocol": "lacp", "datapath": "relay", "flags": {**options.defaults(), "max_ports": max_ports},
            "ports": [port]}


def test_status_says_the_limit_and_which_standby_it_is():
    text = "\n".join(render.agr_lines(aggregate(ws(1, True))))
    assert text.split("\n")[0].endswith("; datapath relay; maxports 1")
    assert "\t\tstandby (agrmaxports), mux WAITING" in text
    plain = "\n".join(render.agr_lines(aggregate(ws(0, False))))
    assert "maxports" not in plain and "\t\tstandby, mux WAITING" in plain
    doc = render.json_doc({"ifname": "agr0", "agr": aggregate(ws(1, True))})
    assert doc["linkinfo"]["info_data"]["flags"]["max_ports"] == 1
    assert doc["agrports"][0]["standby_maxports"] is True
    doc = render.json_doc({"ifname": "agr0", "agr": aggregate(ws(0, False))})
    assert doc["agrports"][0]["standby_maxports"] is False


def test_completion_knows_the_word_and_leaves_the_number():
    assert "agrmaxports" in complete("agr0", "")
    assert complete("agr0", "agrmaxports", "") == []
