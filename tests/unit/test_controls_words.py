"""The words of issue 13's first slice (lacpmode, lacpsysprio, lacpsysid, agrportpri) outside the
LACP core: grammar and limits, the command line's exit status, provisioning plans and undo,
the control protocol, the state file and completion. No root, no namespaces."""
import copy
import json
import os
import subprocess

import pytest

from agrconfig import options
from agrconfig.cli import main as cli, provision
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import AddPort, SetOption, SetPortOption
from agrconfig.cli.provision import plan, undo
from agrconfig.client.interface import Interface
from agrconfig.errors import AgrError, UsageError
from agrconfig.ipc import protocol
from agrconfig.worker import statefile
from agrconfig.worker.port import Member

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- grammar and limits -------------------------------------------------------------------------

@pytest.mark.parametrize("words, arg", [
    (["lacpmode", "active"], ("lacp_active", True)),
    (["lacpmode", "passive"], ("lacp_active", False)),
    (["lacpsysprio", "0"], ("lacp_sysprio", 0)),
    (["lacpsysprio", "65535"], ("lacp_sysprio", 65535)),
    (["lacpsysprio", "0x8000"], ("lacp_sysprio", 0x8000)),
    (["lacpsysprio", "0XfFfF"], ("lacp_sysprio", 0xFFFF)),
    (["lacpsysprio", "007"], ("lacp_sysprio", 7)),
    (["lacpsysid", "02:00:5E:10:00:01"], ("lacp_sysid", "02:00:5e:10:00:01")),
    (["lacpsysid", "02-00-5e-10-00-01"], ("lacp_sysid", "02:00:5e:10:00:01")),
    (["-lacpsysid"], ("lacp_sysid", None)),
])
def test_agr_words_parse(words, arg):
    assert parse_words(words) == [SetOption(*arg, words[0])]


def test_agrportpri_names_a_port_then_a_number():
    assert parse_words(["agrportpri", "re0", "10"]) == [SetPortOption("re0", "port_priority", 10, "agrportpri")]
    assert parse_words(["agrport", "re0", "agrportpri", "re0", "0xffff", "lacpmode", "passive"]) == [
        AddPort("re0"), SetPortOption("re0", "port_priority", 0xFFFF, "agrportpri"),
        SetOption("lacp_active", False, "lacpmode")]


@pytest.mark.parametrize("words, message", [
    (["lacpmode", "Active"], "^lacpmode: 'Active' is neither active nor passive"),
    (["lacpmode"], "^lacpmode: missing active or passive"),
    (["lacpsysprio", "65536"], r"^lacpsysprio: bad value '65536' \(0-65535\)"),
    (["lacpsysprio", "0x10000"], "^lacpsysprio: bad value"),
    (["lacpsysprio", "-1"], "^lacpsysprio: bad value"),
    (["lacpsysprio", "1e3"], "^lacpsysprio: bad value"),
    (["lacpsysprio", "0x"], "^lacpsysprio: bad value"),
    (["lacpsysprio", "²"], "^lacpsysprio: bad value"),
    (["lacpsysprio", "1" * 11], "^lacpsysprio: bad value"),
    (["lacpsysprio", " 1"], "^lacpsysprio: bad value"),
    (["lacpsysprio"], "^lacpsysprio: missing a number 0-65535"),
    (["lacpsysid", "01:00:5e:00:00:01"], "^lacpsysid: .* multicast"),
    (["lacpsysid", "ff:ff:ff:ff:ff:ff"], "^lacpsysid: .* multicast"),
    (["lacpsysid", "00:00:00:00:00:00"], "^lacpsysid: .*all zeros"),
    (["lacpsysid", "02:00:00:00:00"], "^lacpsysid: bad MAC address"),
    (["lacpsysid", "02:00:00:00:00:0g"], "^lacpsysid: bad MAC address"),
    (["lacpsysid", "0200.0000.0001"], "^lacpsysid: bad MAC address"),
    (["lacpsysid"], "^lacpsysid: missing a MAC address"),
    (["-lacpsysid", "02:00:00:00:00:01"], "unknown word"),
    (["agrportpri", "re0", "65536"], r"^agrportpri: bad value '65536' \(0-65535\)"),
    (["agrportpri", "re0", "-5"], "^agrportpri: bad value"),
    (["agrportpri", "re0"], "^agrportpri: missing a number 0-65535"),
    (["agrportpri"], "^agrportpri: missing interface name"),
    (["agrportpri", "a" * 16, "1"], "^agrportpri: bad interface name"),
])
def test_bad_values_are_usage_errors(words, message):
    with pytest.raises(UsageError, match=message):
        parse_words(words)


@pytest.mark.parametrize("words", [
    ["agr0", "lacpsysprio", "65536"], ["agr0", "create", "lacpsysprio", "70000"],
    ["agr0", "agrportpri", "re0", "65536"], ["agr0", "lacpsysid", "01:00:5e:00:00:01"],
    ["agr0", "lacpmode", "loud"], ["-n", "agr0", "lacpsysprio", "65536"],
])
def test_out_of_range_exits_1_and_changes_nothing(words, monkeypatch, capsys):
    """The words are all parsed before anything is done: not even `create` runs."""
    assert refused(words, monkeypatch, capsys).startswith("agrconfig: ")


def test_the_usage_text_names_the_new_words():
    from tests.unit.test_manpages import usage_words
    assert {"lacpmode", "lacpsysprio", "lacpsysid", "-lacpsysid", "agrportpri"} <= usage_words()


# -- provisioning: plan, undo, dry-run words ----------------------------------------------------

DEFAULTS = options.defaults()


def refused(words, monkeypatch, capsys):
    """Run the command line, which must exit 1 having applied and planned nothing; its stderr."""
    from agrconfig.client import commands

    def never(*args, **kwargs):
        raise AssertionError("something was applied or planned")

    monkeypatch.setattr(commands, "apply", never)
    monkeypatch.setattr(provision, "plan", never)
    assert cli.main(words) == 1
    return capsys.readouterr().err


def agr(ports=(), port_flags=None, **flags):
    return Interface(exists=True, agr=True, ports=list(ports), flags={**DEFAULTS, **flags},
                     port_flags={p: {**options.defaults("port"), **(port_flags or {}).get(p, {})} for p in ports},
                     mtu=1500, up=True)


def said(ops):
    return [" ".join(["agrconfig", "agr0", *op.words()]) for op in ops]


def test_plan_sets_only_what_changes():
    model = agr(["re0", "re1"], {"re1": {"port_priority": 10}}, lacp_sysprio=5)
    ops = parse_words(["lacpsysprio", "5", "lacpmode", "passive", "lacpsysid", "02:00:00:00:13:01",
                       "agrportpri", "re0", "0x8000", "agrportpri", "re1", "10", "agrportpri", "re0", "7"])
    assert said(plan("agr0", ops, model)) == ["agrconfig agr0 lacpmode passive",
                                              "agrconfig agr0 lacpsysid 02:00:00:00:13:01",
                                              "agrconfig agr0 agrportpri re0 7"]
    assert model.port_flags == {"re0": {"port_priority": 7}, "re1": {"port_priority": 10}}


def test_a_port_attached_in_the_plan_starts_from_the_default():
    model = agr(["re0"], {"re0": {"port_priority": 3}})
    ops = parse_words(["-agrport", "re0", "agrport", "re0", "agrportpri", "re0", "0x8000"])
    assert said(plan("agr0", ops, model)) == ["agrconfig agr0 -agrport re0", "agrconfig agr0 agrport re0"]


def test_agrportpri_of_a_port_not_attached_is_enoent():
    with pytest.raises(AgrError) as err:
        plan("agr0", parse_words(["agrportpri", "re9", "1"]), agr(["re0"]))
    assert err.value.errno == 2
    # In a file, after the port's agrport line, it is planned.
    model = agr([])
    assert said(plan("agr0", parse_words(["agrport", "re9", "agrportpri", "re9", "1"]), model)) == [
        "agrconfig agr0 agrport re9", "agrconfig agr0 agrportpri re9 1"]


def test_undo_resets_what_the_file_leaves_out_ports_included():
    model = agr(["re0", "re1", "re2"], {"re0": {"port_priority": 1}, "re1": {"port_priority": 2},
                                        "re2": {"port_priority": 3}},
                lacp_active=False, lacp_sysprio=9, lacp_sysid="02:00:00:00:13:01")
    file_ops = parse_words(["agrport", "re0", "agrport", "re1", "agrportpri", "re1", "2", "lacpsysprio", "9"])
    assert said(undo(file_ops, model)) == [
        "agrconfig agr0 -agrport re2",
        "agrconfig agr0 lacpmode active",
        "agrconfig agr0 -lacpsysid",
        "agrconfig agr0 agrportpri re0 32768",
    ]
    assert said(undo(file_ops, model)) == [], "once undone, nothing more"


def test_a_file_is_applied_line_by_line_and_twice_changes_nothing(tmp_path, monkeypatch):
    model = Interface(exists=False, agr=True)
    path = tmp_path / "ifconfig.agr0"
    path.write_text("create\nlacpmode passive\nlacpsysprio 100\nlacpsysid 02:00:00:00:13:01\n"
                    "agrport re0\nagrportpri re0 10\nagrport re1\n")
    applied = []

    def apply(name, ops):
        applied.append(said(ops))
        for op in ops:
            op.plan(model)

    monkeypatch.setattr(provision, "current", lambda name: copy.deepcopy(model))
    provision.apply_file(str(path), "agr0", apply)
    assert applied == [["agrconfig agr0 create"], ["agrconfig agr0 lacpmode passive"],
                       ["agrconfig agr0 lacpsysprio 100"], ["agrconfig agr0 lacpsysid 02:00:00:00:13:01"],
                       ["agrconfig agr0 agrport re0"], ["agrconfig agr0 agrportpri re0 10"],
                       ["agrconfig agr0 agrport re1"]]
    printed = []
    assert provision.apply_file(str(path), "agr0", apply, dry_run=True, out=printed.append) == []
    assert printed == []


# -- the control protocol and the state file ----------------------------------------------------

def request(**req):
    return protocol.parse_request(json.dumps(req).encode())


def test_setport_takes_a_port_and_port_settings_only():
    assert request(op="setport", port="re0", flags={"port_priority": 7}).flags == {"port_priority": 7}
    for bad in ({"port_priority": 0x10000}, {"port_priority": True}, {"lacp_sysprio": 7}, {}, [],
                {"port_priority": "7"}):
        with pytest.raises(AgrError):
            request(op="setport", port="re0", flags=bad)
    with pytest.raises(AgrError):
        request(op="setport", port="../x", flags={"port_priority": 7})
    with pytest.raises(AgrError):
        request(op="setport", flags={"port_priority": 7})
    with pytest.raises(AgrError):
        request(op="setflags", flags={"port_priority": 7})


def test_the_protocol_version_says_the_new_requests_are_there():
    assert protocol.PROTOCOL_VERSION >= 2


ORIG = {"name": "re0", "index": 4, "mac": "02:00:00:00:00:04", "mtu": 1500, "up": True, "promisc": False,
        "sysctl": {"ipv6/disable_ipv6": "0"}}


def state(ports, flags=None):
    return {"name": "agr0", "ifindex": 9, "pid": 10, "flags": flags or {}, "ports": ports}


def test_a_ports_settings_go_through_the_state_file():
    port = Member(dict(ORIG))
    assert port.options == {"port_priority": 0x8000}
    port.options["port_priority"] = 12
    saved = json.loads(json.dumps(port.to_state()))
    statefile.validate(state([saved], {"lacp_sysprio": 5, "lacp_active": False,
                                       "lacp_sysid": "02:00:00:00:13:01"}), "agr0")
    again = Member(saved)
    assert again.options == {"port_priority": 12}
    assert again.orig == ORIG, "the original state stays what it was"
    # A state file of an older release has no options: the defaults.
    statefile.validate(state([dict(ORIG)]), "agr0")
    assert Member(dict(ORIG)).options == {"port_priority": 0x8000}


@pytest.mark.parametrize("bad", [{"port_priority": 0x10000}, {"lacp_sysprio": 1}, {"nope": 1}, [], "x"])
def test_a_state_file_with_bad_port_settings_is_refused(bad):
    with pytest.raises(statefile.BadState):
        statefile.validate(state([dict(ORIG, options=bad)]), "agr0")


@pytest.mark.parametrize("flags", [{"lacp_sysid": "01:00:5e:00:00:01"}, {"lacp_sysprio": -1},
                                   {"lacp_active": "passive"}, {"port_priority": 1}])
def test_a_state_file_with_bad_agr_settings_is_refused(flags):
    with pytest.raises(statefile.BadState):
        statefile.validate(state([], flags), "agr0")


# -- completion ----------------------------------------------------------------------------------

STATUS = "agr0: flags=0x8843<UP> mtu 1500\n\tagrport: re0, flags=0x3<COLLECTING,DISTRIBUTING>\n" \
         "\tagrport: re1, flags=0x0\n"


def complete(*words):
    """Run the completion function on `agrconfig WORDS...`, with `agrconfig` itself faked."""
    import shlex
    fake = "agrconfig() { printf %s " + shlex.quote(STATUS) + "; }"
    quoted = " ".join(shlex.quote(w) for w in words)
    script = (f"{fake}\nsource {ROOT}/completion/agrconfig.bash\n"
              f"COMP_WORDS=(agrconfig {quoted}); COMP_CWORD={len(words)}; _agrconfig; "
              "echo ${COMPREPLY[@]}")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_completion_offers_the_new_words_and_their_values():
    assert {"lacpmode", "lacpsysprio", "lacpsysid", "-lacpsysid", "agrportpri"} <= set(complete("agr0", ""))
    assert complete("agr0", "lacpmode", "") == ["active", "passive"]
    assert complete("agr0", "agrportpri", "") == ["re0", "re1"], "an attached port"
    assert complete("agr0", "agrportpri", "re0", "") == [], "the number is the user's"
    assert complete("agr0", "lacpsysprio", "") == []
    assert complete("agr0", "lacpsysid", "") == []


def test_completion_of_pre_flight():
    assert complete("-l", "") == ["--free"]
    assert complete("-l", "--free", "") == ["-v", "--json", "listen"]
    assert complete("-l", "--free", "-v", "") == ["-v", "--json", "listen"]
    assert complete("-l", "--free", "listen", "") == [], "the seconds are the user's"
