"""ifupdown's agr-* stanza options (agrconfig/cli/ifupdown.py) without root: every option of the
schema has one, every value of it says the same as agrconfig's words, and agr(4) lists them."""
import os
import re

import pytest

from agrconfig import options
from agrconfig.cli import ifupdown, provision
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import AddPort, Create, SetOption, SetPortOption
from agrconfig.client.interface import Interface
from agrconfig.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def env(**opts):
    return {"IFACE": "agr0", "PHASE": "pre-up", **{ifupdown.env_name(k.replace("_", "-")): v for k, v in opts.items()}}


def stanza_value(option, value):
    """How a stanza says `value` of `option`."""
    if isinstance(option.kind, options.Switch):
        return "yes" if value else "no"
    if option.scope == "port":
        return " ".join(option.file_words(value, "re0")[1:])
    if isinstance(option.kind, options.LinkCheck):   # `192.0.2.1,2001:db8::1 interval 10` or none
        return " ".join(option.file_words(value)[1:]) or "none"
    if isinstance(option.kind, options.Announce):    # `3 interval 200`
        return " ".join(option.file_words(value)[1:])
    return (option.file_words(value) + ["default"])[1]


def test_every_schema_option_has_a_stanza_option():
    names = ifupdown.stanza_options()
    assert set(names.values()) == set(options.OPTIONS)
    assert len(names) == len(options.OPTIONS), "two options share a stanza name"
    assert all(re.fullmatch(r"agr-[a-z0-9-]+", n) for n in names)
    assert "agr-lacp-timeout" in names   # the issue's example stanza
    assert ifupdown.PORTS not in names


@pytest.mark.parametrize("option", options.OPTIONS, ids=lambda o: o.key)
def test_every_value_means_what_the_words_mean(option):
    for value in option.kind.values():
        _ports, words = ifupdown.stanza({ifupdown.env_name(option.stanza_option()): stanza_value(option, value)})
        [op] = parse_words(words)
        if option.scope == "port":
            assert op == SetPortOption("re0", option.key, value, option.kind.word), (words, op)
        else:
            assert (type(op), op.key, op.value) == (SetOption, option.key, value), (words, op)


def test_switch_spellings_and_hash_lists():
    link0 = ifupdown.env_name("agr-link0")
    for text, words in (("yes", ["link0"]), ("On", ["link0"]), ("1", ["link0"]), ("no", ["-link0"]),
                        ("off", ["-link0"]), ("-link0", ["-link0"]), ("link0", ["link0"])):
        assert ifupdown.stanza({link0: text}) == ([], words), text
    with pytest.raises(UsageError, match="agr-link0"):
        ifupdown.stanza({link0: "maybe"})
    for text in ("l2 l3 l4", "l2,l3,l4", " l2,l3,l4 "):
        assert ifupdown.stanza({"IF_AGR_HASH": text}) == ([], ["agrhash", "l2,l3,l4"])


def test_port_settings_come_in_pairs_after_the_ports():
    name = ifupdown.env_name("agr-port-priority")
    assert ifupdown.stanza({name: "re0 100  re1 200"}) == ([], ["agrportpri", "re0", "100", "agrportpri", "re1", "200"])
    with pytest.raises(UsageError, match="PORT VALUE pairs"):
        ifupdown.stanza({name: "re0"})
    planned = []
    ifupdown.provision.plan, saved = (lambda name, ops: ops), ifupdown.provision.plan
    try:
        ifupdown._strip_port, strip = (lambda port: None), ifupdown._strip_port
        ifupdown.up("agr0", ["re0"], ["agrportpri", "re0", "9", "lacptimeout", "fast"],
                    lambda name, ops: planned.extend(ops))
    finally:
        ifupdown.provision.plan, ifupdown._strip_port = saved, strip
    assert [type(op) for op in planned] == [Create, SetOption, AddPort, SetPortOption]


def test_the_issue_stanza():
    ports, words = ifupdown.stanza(env(agr_ports="re0 re1", agr_lacp_timeout="fast"))
    assert (ports, words) == (["re0", "re1"], ["lacptimeout", "fast"])
    assert ifupdown.stanza(env(agr_ports="none")) == ([], [])


def test_no_agr_option_is_not_ours_and_unknown_ones_are_refused():
    assert ifupdown.stanza({"IFACE": "eth0", "IF_ADDRESS": "192.0.2.1/24"}) is None
    with pytest.raises(UsageError, match="agr-lacp-timout"):
        ifupdown.stanza(env(agr_ports="re0", agr_lacp_timout="fast"))
    assert ifupdown.main({"IFACE": "agr0", "PHASE": "pre-up", "IF_AGR_FROB": "1"}) == 1
    assert ifupdown.main({"IFACE": "eth0", "PHASE": "pre-up", "IF_AGR_PORTS": "re0"}) == 1
    assert ifupdown.main({"IFACE": "eth0", "PHASE": "pre-up"}) == 0


def test_up_plans_against_what_is_there(monkeypatch):
    """pre-up of a second (inet6) stanza for the same interface changes nothing; ports are
    stripped of their addresses only when they are about to be attached."""
    model = Interface(exists=True, agr=True, ports=["re0", "re1"], flags=options.defaults() | {"lacp_fast": True})
    monkeypatch.setattr(provision, "current", lambda name: model)
    stripped, applied = [], []
    monkeypatch.setattr(ifupdown, "_strip_port", stripped.append)
    ifupdown.up("agr0", ["re0", "re1"], ["lacptimeout", "fast"], lambda n, ops: applied.append(ops))
    assert stripped == [] and applied == []
    model.ports = ["re0"]
    applied.clear()
    ifupdown.up("agr0", ["re0", "re1"], ["lacptimeout", "fast"], lambda n, ops: applied.append(ops))
    assert stripped == ["re1"] and [op.words() for op in applied[0]] == [["agrport", "re1"]]


def test_agr4_lists_every_stanza_option():
    text = open(os.path.join(ROOT, "man", "agr.4")).read()
    for name in [ifupdown.PORTS, *ifupdown.stanza_options()]:
        assert f".It Ic {name} " in text, name


def test_hook_runs_the_module_in_isolated_mode():
    hook = open(os.path.join(ROOT, "ifupdown", "agrconfig")).read()
    assert "/usr/bin/python3 -I -m agrconfig.cli.ifupdown" in hook
    assert os.access(os.path.join(ROOT, "ifupdown", "agrconfig"), os.X_OK)
