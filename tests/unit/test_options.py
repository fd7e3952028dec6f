"""The option schema (agrconfig/options.py) and everything held to it.

Every option is enumerated: its words parse to it, the control protocol accepts exactly its
values, the worker starts from its defaults, provisioning writes it back as words that parse
to the same value, status shows it, and completion and the man page know its words.
"""
import json
import os
import re

import pytest

from agrconfig import options
from agrconfig.cli import render as status
from agrconfig.ipc import protocol as control
from agrconfig.errors import AgrError, UsageError
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import SetOption, SetPortOption
from tests.unit.statuses import aggregate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = [(o, v) for o in options.OPTIONS for v in o.kind.values()]
IDS = [f"{o.key}={v}" for o, v in CASES]


def test_the_schema_is_whole():
    assert len(options.BY_KEY) == len(options.OPTIONS), "one key, one option"
    assert len(options.BY_WORD) == sum(len(o.words()) for o in options.OPTIONS), "a word names one option"
    for o in options.OPTIONS:
        assert o.scope in ("agr", "port")
        assert o.check(o.default), f"{o.key}: the default is a valid value"
        assert o.summary and o.kind.values()


def test_netbsd_defaults():
    # NetBSD agr: hash distribution, active LACP, slow timeout, priorities 0x8000, agr0's MAC as
    # the system id; plus our strict partner check and auto path.
    assert options.defaults() == {"link0": False, "proto": "lacp", "link2": False, "debug": False,
                                  "lacp_fast": False, "lacp_strict": True, "hash": 3, "datapath": "auto",
                                  "lacp_active": True, "lacp_sysprio": 0x8000, "lacp_sysid": None,
                                  "max_ports": 0, "min_ports": 1, "lacp_fallback": False,
                                  "wtr_time": 0, "linkcheck": None, "select": "bandwidth",
                                  "announce": {"count": 1, "interval": 100}, "down_delay": 0,
                                  "mac_policy": "same", "lladdr": None}
    assert options.defaults("port") == {"port_priority": 0x8000}
    assert [o.key for o in options.PORT_OPTIONS] == ["port_priority"]


def request_for(option, value, port="re0"):
    """The control request that sets `option` to `value` (a port option names its port)."""
    if option.scope == "port":
        return {"op": "setport", "port": port, "flags": {option.key: value}}
    return {"op": "setflags", "flags": {option.key: value}}


@pytest.mark.parametrize("option,value", CASES, ids=IDS)
def test_words_round_trip(option, value):
    """value -> file words -> grammar -> the same (key, value); and back to the same words."""
    if option.scope == "port":
        words = option.file_words(value, "re0")
        assert words[:2] == [option.kind.word, "re0"], "a port option names its port first"
        (op,) = parse_words(words)
        assert op == SetPortOption("re0", option.key, value, words[0])
        assert SetPortOption.of("re0", option.key, value).words() == words
    else:
        words = option.file_words(value)
        (op,) = parse_words(words)
        assert op == SetOption(option.key, value, words[0])
        assert SetOption.of(option.key, value).words() == words
    assert op.words() == words


@pytest.mark.parametrize("option,value", CASES, ids=IDS)
def test_the_control_protocol_takes_every_value(option, value):
    req = control.parse_request(json.dumps(request_for(option, value)).encode())
    assert req.flags == {option.key: value}
    # ... in its own request only: a port option is no flag of agrN, nor the reverse.
    other = dict(request_for(option, value), op="setflags" if option.scope == "port" else "setport",
                 port="re0")
    if other["op"] == "setflags":
        del other["port"]
    with pytest.raises(AgrError):
        control.parse_request(json.dumps(other).encode())


# What each option takes, written out (not asked of the product).
VALID = {"link0": [False, True], "proto": ["lacp", "loadbalance", "failover", "slb"], "link2": [False, True], "debug": [False, True],
         "lacp_strict": [False, True], "lacp_fast": [False, True], "hash": [1, 2, 3, 4, 5, 6, 7],
         "datapath": ["auto", "relay", "ebpf"], "lacp_active": [False, True],
         "lacp_sysprio": range(0, 0x10000), "port_priority": range(0, 0x10000),
         "lacp_sysid": [None, "02:00:00:00:13:01", "00:00:5e:00:53:01"],
         "max_ports": range(0, 1025), "min_ports": range(0, 1025), "lacp_fallback": [False, True],
         "wtr_time": range(0, 3601),
         "linkcheck": [None, {"targets": ["192.0.2.1"], "interval": 1000},
                       {"targets": ["192.0.2.1", "2001:db8::1"], "interval": 10},
                       {"targets": ["192.0.2.1"], "interval": 60000}],
         "select": ["stable", "bandwidth", "count"],
         "announce": [{"count": c, "interval": i} for c in range(0, 256) for i in (10, 100, 200, 60000)],
         "down_delay": range(0, 3600001),
         "mac_policy": ["same", "active", "follow"],
         "lladdr": [None, "02:00:00:00:13:01", "00:00:5e:00:53:01"]}
SAMPLED = {"lacp_sysprio": [0, 1, 0x8000, 0xFFFF], "port_priority": [0, 1, 0x8000, 0xFFFF],
           "lacp_sysid": [None, "02:00:00:00:13:01"],
           "max_ports": [0, 1, 2, 1024], "min_ports": [0, 1, 2, 1024], "wtr_time": [0, 1, 30, 3600],
           "linkcheck": [None, {"targets": ["192.0.2.1"], "interval": 1000},
                         {"targets": ["192.0.2.1", "2001:db8::1"], "interval": 10}],
           "announce": [{"count": 1, "interval": 100}, {"count": 0, "interval": 10},
                        {"count": 3, "interval": 200}, {"count": 255, "interval": 60000}],
           "down_delay": [0, 1, 200, 3600000],
           "lladdr": [None, "02:00:00:00:13:01"]}
CANDIDATES = [None, "", "yes", "fast", "slow", "AUTO", "stable", "bandwidth", "count", "Count", 1.5, [], {}, -1, 0, 1, 7, 8, 0xFFFF, 0x10000, True,
              False, "auto", "relay", "ebpf", "active", "passive", "0x8000", 32768.0,
              "lacp", "loadbalance", "failover", "LACP", "static", "link1",
              {"targets": ["192.0.2.1"], "interval": 1000}, {"targets": ["192.0.2.1"], "interval": 60000},
              {"targets": ["192.0.2.1", "2001:db8::1"], "interval": 10},
              {"targets": ["192.0.2.1"], "interval": 9}, {"targets": ["192.0.2.1"], "interval": 60001},
              {"targets": ["192.0.2.1"], "interval": 1000.0}, {"targets": ["192.0.2.1"], "interval": True},
              {"targets": [], "interval": 1000}, {"targets": ["192.0.2.1", "192.0.2.1"], "interval": 1000},
              {"targets": ["224.0.0.1"], "interval": 1000}, {"targets": ["2001:DB8::1"], "interval": 1000},
              {"targets": ["/etc/passwd"], "interval": 1000}, {"targets": "192.0.2.1", "interval": 1000},
              {"targets": ["192.0.2.1"], "interval": 1000, "x": 1}, {"targets": ["192.0.2.1"]},
              {"targets": [f"192.0.2.{n}" for n in range(1, 18)], "interval": 1000},
              "02:00:00:00:13:01", "00:00:5e:00:53:01", "02:00:00:00:13:01".upper(), "02-00-00-00-13-01",
              "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "02:00:00:00:13", "02:00:00:00:13:0g",
              1024, 1025, 3600, 3601,
              {"count": 1, "interval": 100}, {"count": 0, "interval": 10}, {"count": 255, "interval": 60000},
              {"count": 256, "interval": 100}, {"count": -1, "interval": 100}, {"count": 1, "interval": 9},
              {"count": 1, "interval": 60001}, {"count": 1.0, "interval": 100}, {"count": True, "interval": 100},
              {"count": 1}, {"count": 1, "interval": 100, "x": 0}, 3600000, 3600001, 200,
              "same", "follow", "none", "SAME"]


def same(a, b):
    # json.dumps tells 1000 from 1000.0 and True inside a value (agrlinkcheck's dict).
    return a == b and type(a) is type(b) and json.dumps(a) == json.dumps(b)


def valid(key, value):
    if isinstance(VALID[key], range):
        return type(value) is int and value in VALID[key]
    return any(same(value, v) for v in VALID[key])


@pytest.mark.parametrize("option", options.OPTIONS, ids=lambda o: o.key)
def test_the_control_protocol_takes_exactly_the_valid_values(option):
    want = SAMPLED.get(option.key, VALID[option.key])
    assert sorted(option.kind.values(), key=repr) == sorted(want, key=repr)
    for value in CANDIDATES:
        raw = json.dumps(request_for(option, value)).encode()
        if valid(option.key, value):
            assert control.parse_request(raw).flags == {option.key: value}
        else:
            with pytest.raises(AgrError):
                control.parse_request(raw)
    with pytest.raises(AgrError):
        control.parse_request(b'{"op": "setflags", "flags": {"no_such_option": true}}')


def test_bools_are_not_numbers():
    # JSON true is not 1: a switch takes only true/false, the hash only 1..7.
    assert options.check("link0", True) and not options.check("link0", 1)
    assert options.check("hash", 7) and not options.check("hash", True) and not options.check("hash", 8)
    assert options.check("lacp_fast", False) and not options.check("lacp_fast", 0)


@pytest.mark.parametrize("option", [o for o in options.OPTIONS if o.kind.takes_arg(None)], ids=lambda o: o.key)
def test_a_word_with_a_bad_or_missing_value_is_a_usage_error(option):
    word = option.kind.word
    port = ["re0"] if option.scope == "port" else []
    with pytest.raises(UsageError, match=f"^{word}: "):
        parse_words([word, *port, "nonsense"])
    with pytest.raises(UsageError, match=f"^{word}: missing "):
        parse_words([word, *port])
    if port:
        with pytest.raises(UsageError, match=f"^{word}: missing interface name"):
            parse_words([word])
        with pytest.raises(UsageError, match=f"^{word}: bad interface name"):
            parse_words([word, "a/b", "1"])


def test_the_worker_starts_from_the_schema_defaults():
    from agrconfig.worker import loop
    assert loop.default_flags() == options.defaults()


def ws_json(**flags):
    kind = {"loadbalance": "static"}.get(flags.get("proto", "lacp"), flags.get("proto", "lacp"))
    return {"protocol": kind, "datapath": "relay",
            "flags": {**options.defaults(), **flags}, "ports": []}


def ws(**flags):
    return aggregate(ws_json(**flags))


def ws_port(key, value):
    """agr0 with one LACP port whose setting `key` is `value` (the core reports it as in force)."""
    lacp = {"actor_state": 0x3D, "actor_key": 0x100, "actor_port_priority": value,
            "partner_state": 0x3D, "partner_system_priority": 0x8000, "partner_system": "02:00:00:00:00:02",
            "partner_key": 0x100, "partner_port_priority": 0x8000, "partner_port": 3, "selected": "SELECTED",
            "mux_state": "COLLECTING_DISTRIBUTING", "rx_state": "CURRENT", "counters": {},
            "actor_state_str": [], "partner_state_str": []}
    port = {"name": "re0", "index": 2, "flags": 3, "carrier": True, "original_mac": "02:00:00:00:00:09",
            "counters": {}, "options": {**options.defaults("port"), key: value}, "lacp": lacp}
    return aggregate(dict(ws_json(), ports=[port]))


@pytest.mark.parametrize("option,value", CASES, ids=IDS)
def test_status_shows_every_setting(option, value):
    """Text status tells every value apart: by an interface flag or in the agr line, a port's
    setting in its port's lines. (The datapath setting shows as the path in force; JSON carries
    the setting itself.)"""
    if option.scope == "port":
        text = status.agr_lines(ws_port(option.key, value))
        others = {tuple(status.agr_lines(ws_port(option.key, v))) for v in option.kind.values() if v != value}
        assert tuple(text) not in others
        doc = status.json_doc({"ifname": "agr0", "agr": ws_port(option.key, value)})
        assert doc["agrports"][0]["options"][option.key] == value
        return
    link = type("Link", (), {"flags": 0, "type": 1})()
    text = (status.bsd_flags(link, ws(**{option.key: value})), status.agr_lines(ws(**{option.key: value})))
    others = {(status.bsd_flags(link, ws(**{option.key: v})), tuple(status.agr_lines(ws(**{option.key: v}))))
              for v in option.kind.values() if v != value}
    if option.key == "datapath":
        return
    assert (text[0], tuple(text[1])) not in others
    doc = status.json_doc({"ifname": "agr0", "agr": ws(**{option.key: value})})
    assert doc["linkinfo"]["info_data"]["flags"][option.key] == value


def test_bash_completion_knows_every_word():
    text = open(os.path.join(ROOT, "completion", "agrconfig.bash")).read()
    known = set(re.search(r'agr_words="([^"]*)"', text).group(1).split())
    assert set(options.BY_WORD) <= known, set(options.BY_WORD) - known
    for o in options.OPTIONS:
        if isinstance(o.kind, options.Choice):
            values = re.search(rf"^\s*{o.kind.word}\) COMPREPLY=\(\$\(compgen -W \"([^\"]*)\"", text, re.M)
            assert values and values.group(1).split() == [n for n, _v in o.kind.names], o.key


def test_the_manual_lists_every_word():
    text = open(os.path.join(ROOT, "man", "agrconfig.8")).read()
    listed = set(re.findall(r"^\.It Cm (-?[a-z0-9]+)", text, re.M))
    listed |= set(re.findall(r"^\.It Cm [a-z0-9]+ , (-[a-z0-9]+)", text, re.M))
    assert set(options.BY_WORD) <= listed, set(options.BY_WORD) - listed
