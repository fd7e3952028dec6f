"""Provisioning plans without root or namespaces: the interface's current state is an Interface we
build (provision.current is replaced), and the executor apply_file is given records instead of doing."""
import copy
import ipaddress
import os

import pytest

from agrconfig.cli import provision
from agrconfig.errors import AgrError, UsageError
from agrconfig.cli.provision import plan, undo
from agrconfig.cli.ops import AddAddress, AddPort, Create, SetMtu, SetOption
from agrconfig.client.interface import Interface
from agrconfig.cli.grammar import parse_words
from agrconfig.worker.flowhash import L2, L3, L4

# The defaults as the manual states them, written out: a changed default must show here.
DEFAULTS = {"link0": False, "proto": "lacp", "link2": False, "debug": False, "lacp_fast": False,
            "lacp_strict": True, "hash": L2 | L3, "datapath": "auto", "lacp_active": True,
            "lacp_sysprio": 0x8000, "lacp_sysid": None,
            "max_ports": 0, "min_ports": 1, "lacp_fallback": False, "wtr_time": 0, "linkcheck": None,
            "select": "bandwidth", "announce": {"count": 1, "interval": 100}, "down_delay": 0}


def ip(text):
    return ipaddress.ip_interface(text)


def agr(ports=(), addrs=(), up=True, mtu=1500, **flags):
    """agr0 as it is now: a live agr interface."""
    return Interface(exists=True, agr=True, ports=list(ports), flags={**DEFAULTS, **flags},
                     mtu=mtu, up=up, addrs={ip(a) for a in addrs})


def plain(addrs=(), up=True, mtu=1500):
    """A plain interface (a future port, say)."""
    return Interface(exists=True, mtu=mtu, up=up, addrs={ip(a) for a in addrs})


def said(ops, name="agr0"):
    """The -n lines for `ops`."""
    return [" ".join(["agrconfig", name, *op.words()]) for op in ops]


def planned(model, *words):
    return said(plan("agr0", parse_words(list(words)), model))


class Host:
    """apply_file against an Interface model: what -n prints and what would be applied. Each run
    reads a fresh copy of the model, as each run asks netlink afresh."""

    def __init__(self, tmp_path, monkeypatch, model, name="agr0"):
        self.path, self.name, self.model = tmp_path / f"ifconfig.{name}", name, model
        self.printed, self.applied = [], []

        def current(asked):
            assert asked == name
            return copy.deepcopy(self.model)

        monkeypatch.setattr(provision, "current", current)

    def run(self, text, dry_run=False, mode=0o644):
        self.path.write_text(text)
        os.chmod(self.path, mode)
        return provision.apply_file(str(self.path), self.name, self.apply, dry_run=dry_run, out=self.printed.append)

    def apply(self, name, ops):
        """The executor apply_file is given: recorded, not done."""
        self.applied.append((name, said(ops, name)))


@pytest.fixture
def host(tmp_path, monkeypatch):
    return lambda model, name="agr0": Host(tmp_path, monkeypatch, model, name)


MANUAL = "create\nlacptimeout fast\nagrport re0\nagrport re1\ninet 192.0.2.10/24\n"


# -- idempotence ---------------------------------------------------------------------------

@pytest.mark.parametrize("extra, model", [
    ("", agr(["re0", "re1"], ["192.0.2.10/24", "fe80::1/64"], lacp_fast=True)),
    ("mtu 9000\nup\nlink0\n", agr(["re0", "re1"], ["192.0.2.10/24"], lacp_fast=True, mtu=9000, link0=True)),
    ("down\n", agr(["re0", "re1"], ["192.0.2.10/24"], lacp_fast=True, up=False)),
])
def test_a_file_that_says_what_is_there_plans_nothing(host, extra, model):
    h = host(model)
    assert h.run(MANUAL + extra, dry_run=True) == []
    assert h.printed == []
    assert h.run(MANUAL + extra) == [] and h.applied == []


# -- from nothing: every word, in the file's order -------------------------------------------

def test_from_nothing_the_file_is_planned_in_its_order(host):
    h = host(Interface(exists=False, agr=True))
    changes = h.run(MANUAL + "link0\nmtu 9000\nup\n", dry_run=True)
    assert h.printed == [
        "agrconfig agr0 create",
        "agrconfig agr0 lacptimeout fast",
        "agrconfig agr0 agrport re0",
        "agrconfig agr0 agrport re1",
        "agrconfig agr0 inet 192.0.2.10/24",
        "agrconfig agr0 link0",
        "agrconfig agr0 mtu 9000",
        # no `up`: an address brings the interface up, as ifconfig does
    ]
    assert [type(op) for _name, op in changes] == [Create, SetOption, AddPort, AddPort, AddAddress,
                                                   SetOption, SetMtu]
    assert h.applied == [], "a dry run applies nothing"


def test_words_are_applied_line_by_line(host):
    h = host(Interface(exists=False, agr=True))
    h.run("create agrport re0\n# a comment\nagrport re1 link0\n")
    assert h.applied == [("agr0", ["agrconfig agr0 create", "agrconfig agr0 agrport re0"]),
                         ("agr0", ["agrconfig agr0 agrport re1", "agrconfig agr0 link0"])]


def test_create_gives_default_flags_and_mtu():
    model = Interface(exists=False, agr=True)
    assert planned(model, "create", "-link0", "lacptimeout", "slow", "lacpstrict", "agrhash", "l2,l3",
                   "datapath", "auto", "mtu", "1500", "down") == ["agrconfig agr0 create"]
    assert model.exists and model.agr and model.flags == DEFAULTS


# -- each word against what is there ----------------------------------------------------------

@pytest.mark.parametrize("words, model, want", [
    (["create"], agr(), []),
    (["destroy"], agr(["re0"]), ["destroy"]),
    (["destroy"], Interface(exists=False, agr=True), []),
    (["agrport", "re0"], agr(["re0"]), []),
    (["agrport", "re1"], agr(["re0"]), ["agrport re1"]),
    (["-agrport", "re0"], agr(["re0"]), ["-agrport re0"]),
    (["-agrport", "re1"], agr(["re0"]), []),
    (["link0"], agr(), ["link0"]),
    (["link0"], agr(link0=True), []),
    (["-link0"], agr(), []),
    (["-link0"], agr(link0=True), ["-link0"]),
    (["link1"], agr(), ["agrproto loadbalance"]),   # one setting: files say it one way
    (["-link1"], agr(), []),
    (["agrproto", "failover"], agr(), ["agrproto failover"]),
    (["-lacpstrict"], agr(), ["-lacpstrict"]),
    (["lacpstrict"], agr(), []),
    (["debug"], agr(), ["debug"]),
    (["lacptimeout", "fast"], agr(), ["lacptimeout fast"]),
    (["lacptimeout", "slow"], agr(lacp_fast=True), ["lacptimeout slow"]),
    (["lacptimeout", "fast"], agr(lacp_fast=True), []),
    (["agrhash", "l2,l3,l4"], agr(), ["agrhash l2,l3,l4"]),
    (["agrhash", "l3,l2"], agr(), []),
    (["datapath", "relay"], agr(), ["datapath relay"]),
    (["datapath", "auto"], agr(), []),
    (["mtu", "1500"], agr(), []),
    (["mtu", "9000"], agr(), ["mtu 9000"]),
    (["up"], agr(up=True), []),
    (["up"], agr(up=False), ["up"]),
    (["down"], agr(up=True), ["down"]),
    (["down"], agr(up=False), []),
])
def test_each_word_plans_only_a_change(words, model, want):
    # A copy: planning updates the model, and the parameters outlive one run of the tests
    # (mutmut runs them again in the same process).
    assert planned(copy.deepcopy(model), *words) == [f"agrconfig agr0 {w}" for w in want]


def test_the_model_follows_each_planned_word():
    """A word already planned on the line is not planned again."""
    model = agr(up=False)
    assert planned(model, "mtu", "9000", "mtu", "9000", "up", "up", "down", "down", "link0", "link0",
                   "agrport", "re0", "agrport", "re0", "-agrport", "re0", "-agrport", "re0") == [
        "agrconfig agr0 mtu 9000", "agrconfig agr0 up", "agrconfig agr0 down", "agrconfig agr0 link0",
        "agrconfig agr0 agrport re0", "agrconfig agr0 -agrport re0"]
    assert (model.mtu, model.up, model.flags["link0"], model.ports) == (9000, False, True, [])


def test_destroy_forgets_the_ports():
    model = agr(["re0"])
    planned(model, "destroy")
    assert not model.exists and model.ports == []
    assert planned(model, "create", "agrport", "re0") == ["agrconfig agr0 create", "agrconfig agr0 agrport re0"]


def test_ports_keep_the_order_of_the_file():
    model = agr()
    assert planned(model, "agrport", "re1", "agrport", "re0", "agrport", "re1") == [
        "agrconfig agr0 agrport re1", "agrconfig agr0 agrport re0"]
    assert model.ports == ["re1", "re0"]


# -- addresses ---------------------------------------------------------------------------------

def test_inet_replaces_the_first_ipv4_address_and_brings_the_interface_up():
    model = agr(addrs=["10.0.0.1/8", "192.0.2.1/24", "2001:db8::1/64"], up=False)
    assert planned(model, "inet", "198.51.100.1/24", "up") == ["agrconfig agr0 inet 198.51.100.1/24"]
    assert model.addrs == {ip("192.0.2.1/24"), ip("198.51.100.1/24"), ip("2001:db8::1/64")}
    assert model.up


def test_inet_alias_and_inet6_add_beside_the_others():
    model = agr(addrs=["192.0.2.1/24"])
    assert planned(model, "inet", "192.0.2.2/24", "alias", "inet6", "2001:db8::2/64") == [
        "agrconfig agr0 inet 192.0.2.2/24 alias", "agrconfig agr0 inet6 2001:db8::2/64"]
    assert model.addrs == {ip("192.0.2.1/24"), ip("192.0.2.2/24"), ip("2001:db8::2/64")}


def test_an_address_already_there_plans_nothing():
    model = agr(addrs=["192.0.2.1/24"], up=False)
    assert planned(model, "inet", "192.0.2.1/24") == []
    assert planned(model, "inet", "192.0.2.1/24", "alias") == []
    assert not model.up


@pytest.mark.parametrize("there, words, want", [
    ("192.0.2.1/26", ["inet", "192.0.2.1", "delete"], ["inet 192.0.2.1/24 delete"]),  # no prefix: any
    ("192.0.2.1/24", ["inet", "192.0.2.1/25", "delete"], []),                        # a prefix: that one
    ("192.0.2.1/26", ["inet", "192.0.2.1/26", "-alias"], ["inet 192.0.2.1/26 delete"]),
    ("192.0.2.1/24", ["inet", "192.0.2.9", "delete"], []),
])
def test_delete_removes_only_an_address_that_is_there(there, words, want):
    model = agr(addrs=[there, "2001:db8::1/64"])
    assert planned(model, *words) == [f"agrconfig agr0 {w}" for w in want]
    assert model.addrs == {ip("2001:db8::1/64")} | (set() if want else {ip(there)})


# -- what the file no longer says is undone ------------------------------------------------------

def test_undo_detaches_resets_and_deletes_what_the_file_leaves_out():
    model = agr(["re0", "re1", "re2"], ["192.0.2.1/24", "192.0.2.2/24", "2001:db8::1/64", "fe80::1/64"],
                link0=True, lacp_fast=True, hash=L2 | L3 | L4, datapath="relay", debug=True, lacp_strict=False)
    file_ops = parse_words(["agrport", "re1", "inet", "192.0.2.2/24", "alias", "debug"])
    assert said(undo(file_ops, model)) == [
        "agrconfig agr0 -agrport re0",          # ports first, in the order they were added
        "agrconfig agr0 -agrport re2",
        "agrconfig agr0 -link0",                # then the flags, back to their defaults
        "agrconfig agr0 lacptimeout slow",
        "agrconfig agr0 lacpstrict",
        "agrconfig agr0 agrhash l2,l3",
        "agrconfig agr0 datapath auto",
        "agrconfig agr0 inet 192.0.2.1/24 delete",   # then addresses; link-local ones stay
        "agrconfig agr0 inet6 2001:db8::1/64 delete",
    ]
    assert model.ports == ["re1"] and model.flags == {**DEFAULTS, "debug": True}
    assert model.addrs == {ip("192.0.2.2/24"), ip("fe80::1/64")}
    assert undo(file_ops, model) == [], "undone once, nothing left to undo"


def test_addresses_stay_when_the_file_names_none():
    model = agr(["re0"], ["192.0.2.1/24"])
    assert undo(parse_words(["agrport", "re0"]), model) == []
    # An address the file deletes is not one it names.
    assert undo(parse_words(["agrport", "re0", "inet", "192.0.2.9", "delete"]), model) == []


def test_nothing_is_undone_on_a_plain_interface_or_a_destroyed_agr():
    model = plain(["192.0.2.1/24", "192.0.2.2/24"])
    assert undo(parse_words(["inet", "192.0.2.1/24"]), model) == []
    assert undo(parse_words(["destroy"]), Interface(exists=False, agr=True)) == []


def test_a_file_that_destroys_undoes_nothing(host):
    h = host(agr(["re0"], ["192.0.2.1/24"], link0=True))
    h.run("destroy\n", dry_run=True)
    assert h.printed == ["agrconfig agr0 destroy"]


def test_the_undo_words_come_after_every_line(host):
    """The manual's change: a port and link0 left out, a new address."""
    h = host(agr(["re0", "re1"], ["192.0.2.1/24"], link0=True))
    h.run("create\nagrport re0\ninet 192.0.2.5/24\n", dry_run=True)
    assert h.printed == ["agrconfig agr0 inet 192.0.2.5/24",
                         "agrconfig agr0 -agrport re1",
                         "agrconfig agr0 -link0"]
    assert h.applied == []
    h.printed.clear()
    h.run("create\nagrport re0\ninet 192.0.2.5/24\n")
    assert h.applied == [("agr0", ["agrconfig agr0 inet 192.0.2.5/24"]),
                         ("agr0", ["agrconfig agr0 -agrport re1", "agrconfig agr0 -link0"])]
    assert h.printed == [], "only a dry run prints"


# -- the file: comments, blank lines, shell lines, errors ------------------------------------------

def test_comments_and_blank_lines_are_nothing(host):
    h = host(Interface(exists=False, agr=True))
    h.run("# agr0\n\n   \ncreate   # make it\n\t# indented comment\nagrport re0#no space\n", dry_run=True)
    assert h.printed == ["agrconfig agr0 create", "agrconfig agr0 agrport re0"]


def test_shell_lines_print_where_they_stand_in_a_dry_run(host, tmp_path):
    h = host(Interface(exists=False, agr=True))
    marker = tmp_path / "ran"
    changes = h.run(f"create\n! touch {marker} # kept: a shell comment\nagrport re0\n", dry_run=True)
    assert h.printed == ["agrconfig agr0 create", f"!touch {marker} # kept: a shell comment",
                         "agrconfig agr0 agrport re0"]
    assert ("!", f"touch {marker} # kept: a shell comment") in changes
    assert not marker.exists()


def test_a_shell_line_from_a_file_others_may_write_is_refused(host, tmp_path):
    h = host(plain())
    marker = tmp_path / "ran"
    with pytest.raises(AgrError) as exc:
        h.run(f"!touch {marker}\n", mode=0o666)
    assert exc.value.errno == 1 and not marker.exists()
    h.run(f"!touch {marker}\n")
    assert marker.exists()


@pytest.mark.parametrize("text, line", [
    ("create\nagrport re0\nfrobnicate\n", 3),
    ("create\n\n# two\nmtu 5\n", 4),
    ("create\nagrport\n", 2),
    ("destroy up\n", 1),
    ("create\ninet 192.0.2.300/24\n", 2),
    ("lacptimeout medium\n", 1),
    ("agrport 're0 x'\n", 1),
    ("agrport 're0\n", 1),
])
def test_a_bad_line_is_named_and_nothing_changes(host, text, line):
    h = host(Interface(exists=False, agr=True))
    for dry_run in (True, False):
        with pytest.raises(UsageError, match=f"ifconfig.agr0:{line}: "):
            h.run(text, dry_run=dry_run)
    assert h.printed == [] and h.applied == []
