"""lacpfallback / -lacpfallback outside the LACP core: grammar, provisioning, the worker's
aggregation, status and completion. No root, no namespaces."""
import pytest

from agrconfig import options
from agrconfig.cli import provision, render
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import SetOption
from agrconfig.cli.provision import plan
from agrconfig.errors import UsageError
from agrconfig.worker import aggregation
from tests.unit.test_controls_words import agr, complete, refused, said
from tests.unit.test_maxports_words import ws
from tests.unit.statuses import aggregate


def test_the_words_parse():
    assert parse_words(["lacpfallback"]) == [SetOption("lacp_fallback", True, "lacpfallback")]
    assert parse_words(["-lacpfallback"]) == [SetOption("lacp_fallback", False, "-lacpfallback")]
    with pytest.raises(UsageError):
        parse_words(["lacpfallback", "on"])


def test_a_bad_word_after_it_exits_1_and_changes_nothing(monkeypatch, capsys):
    assert refused(["agr0", "lacpfallback", "agrmaxports", "2000"], monkeypatch, capsys).startswith("agrconfig: ")


def test_plan_and_undo():
    model = agr(["re0"])
    assert said(plan("agr0", parse_words(["lacpfallback"]), model)) == ["agrconfig agr0 lacpfallback"]
    assert said(provision.undo(parse_words(["agrport", "re0"]), model)) == ["agrconfig agr0 -lacpfallback"]


def test_the_worker_hands_it_to_the_core():
    flags = options.defaults() | {"lacp_fallback": True}
    agg = aggregation.create(flags, b"\x02\0\0\0\0\x01", 0.0, lambda out: None)
    assert agg.core.fallback is True
    agg.configure(1.0, flags | {"lacp_fallback": False})
    assert agg.core.fallback is False


def test_status_shows_the_setting_and_the_port_in_use():
    w = ws(0, False)
    w["flags"]["lacp_fallback"] = True
    w["ports"][0]["lacp"].update(selected="SELECTED", mux_state="ATTACHED", rx_state="DEFAULTED", fallback=True)
    lines = render.agr_lines(aggregate(w))
    assert lines[0].endswith("datapath relay; lacpfallback")
    assert "\t\tselected, fallback, mux ATTACHED, receive DEFAULTED;" in "\n".join(lines)
    doc = render.json_doc({"ifname": "agr0", "agr": aggregate(w)})
    assert doc["linkinfo"]["info_data"]["fallback_port"] == "re1"
    assert doc["agrports"][0]["fallback"] is True
    w["ports"][0]["lacp"]["fallback"] = False
    assert render.json_doc({"ifname": "agr0", "agr": aggregate(w)})["linkinfo"]["info_data"]["fallback_port"] is None
    assert "fallback," not in "\n".join(render.agr_lines(aggregate(w)))


def test_completion_knows_both_words():
    assert {"lacpfallback", "-lacpfallback"} <= set(complete("agr0", ""))
