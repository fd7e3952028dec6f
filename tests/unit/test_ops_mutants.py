"""What mutation testing of the operations (cli/ops.py) and the interface model
(client/interface.py) found untested: the errors' ioctl names and texts, which interface a
call names, undo where the model lacks a port's settings or mixes address families, and the
queries' defaults. Each test kills mutants of `sh scripts/mutation ops` (tests/MUTATION.md)."""
import copy
import errno

import pytest

from agrconfig import options
from agrconfig.cli import ops
from agrconfig.cli.ops import (AddAddress, AddPort, DeleteAddress, Down, Monitor, RemovePort, SetMtu, SetOption,
                               SetPortOption, Up, WhichPort)
from agrconfig.client import interface, workers
from agrconfig.client.interface import Interface
from agrconfig.errors import AgrError, UsageError
from tests.unit.statuses import aggregate
from tests.unit.test_ops import Calls, agr, ip


# -- errors: the ioctl each names and its exact text ---------------------------------------------

def test_an_agr_word_on_another_interface_names_siocsetagr():
    for op in (AddPort("re1"), RemovePort("re0"), SetOption("lacp_fast", True, "lacptimeout")):
        with pytest.raises(AgrError) as err:
            op.apply_plain("eth0")
        assert (err.value.errno, err.value.ioctl, err.value.detail) == (
            errno.ENXIO, "SIOCSETAGR", "eth0: no such agr interface")


def test_a_port_setting_for_no_port_names_siocsetagr():
    with pytest.raises(AgrError) as err:
        SetPortOption("re9", "port_priority", 1, "agrportpri").plan(agr())
    assert (err.value.errno, err.value.ioctl, err.value.detail) == (
        errno.ENOENT, "SIOCSETAGR", "re9 is not a port of this interface")


def test_an_address_on_a_portless_agr_names_siocaifaddr(monkeypatch):
    Calls(monkeypatch, ports=())
    with pytest.raises(AgrError) as err:
        AddAddress(ip("192.0.2.9/24"), False).apply_agr("agr0")
    assert (err.value.errno, err.value.ioctl, err.value.detail) == (
        errno.EINVAL, "SIOCAIFADDR", "no way to configure agr interfaces without attaching physical interfaces")


# -- the interface each call asks about ----------------------------------------------------------

def test_only_a_port_is_refused_plain_words(monkeypatch):
    calls = Calls(monkeypatch)
    monkeypatch.setattr(ops.workers, "owner_of", lambda name: "agr0" if name == "re0" else None)
    SetMtu(1400).apply_plain("eth0")
    with pytest.raises(AgrError, match="re0 is a port of agr0"):
        SetMtu(1400).apply_plain("re0")
    assert calls.log == [("set_mtu", "eth0", 1400)]


def test_an_address_needs_the_ports_of_its_own_agr(monkeypatch):
    calls = Calls(monkeypatch)
    monkeypatch.setattr(ops, "attached_ports", lambda name: ["re0"] if name == "agr0" else [])
    AddAddress(ip("192.0.2.9/24"), True).apply_agr("agr0")
    assert calls.log == [("add_address", "agr0", ip("192.0.2.9/24"), ("alias", True))]


class _Link:
    index, mtu, up = 7, 9000, True


class _Addr:
    def __init__(self, text):
        self.interface = ip(text)


def test_the_model_asks_about_its_own_link_and_worker(monkeypatch):
    status = aggregate({"ports": [{"name": "re0"}]})
    monkeypatch.setattr(interface.rtnl, "link", lambda name: _Link() if name == "agr0" else None)
    monkeypatch.setattr(interface.rtnl, "addresses", lambda index: [_Addr("192.0.2.1/24")] if index == 7 else [])
    monkeypatch.setattr(workers, "exists", lambda name: name == "agr0")
    monkeypatch.setattr(workers, "worker_status", lambda name: status if name == "agr0" else None)
    asked = []
    monkeypatch.setattr(workers, "request", lambda name, what: asked.append((name, what)) or status.to_json())
    read = Interface.read("agr0")
    assert read.addrs == {ip("192.0.2.1/24")} and read.ports == ["re0"]
    assert interface.attached_ports("agr0") == ["re0"]
    assert asked == [("agr0", "status")]


def test_a_malformed_status_names_the_interface(monkeypatch):
    monkeypatch.setattr(workers, "request", lambda name, what: {"ports": "no"})
    with pytest.raises(AgrError, match="worker for agr0 sent a malformed status"):
        interface.attached_ports("agr0")


def test_an_interface_is_down_unless_said():
    assert Interface(exists=False).up is False
    assert Interface(exists=True, agr=True).up is False


# -- the operations as files say them ------------------------------------------------------------

def test_of_names_the_word_a_file_says():
    assert SetOption.of("lacp_fast", True) == SetOption("lacp_fast", True, "lacptimeout")
    assert SetOption.of("proto", "loadbalance").word == "agrproto"
    assert SetPortOption.of("re0", "port_priority", 7) == SetPortOption("re0", "port_priority", 7, "agrportpri")


def test_of_a_port_flag_names_its_on_or_off_word(monkeypatch):
    """A port option that is a flag (none yet: the schema may grow one) is named by the word
    for its value, as the agr flags are."""
    frob = options.Option("frob_up", options.Switch("agrfrob", "-agrfrob"), False, "a port flag", scope="port")
    monkeypatch.setattr(options, "BY_KEY", {**options.BY_KEY, "frob_up": frob})
    assert SetPortOption.of("re0", "frob_up", True).word == "agrfrob"
    assert SetPortOption.of("re0", "frob_up", False).word == "-agrfrob"
    assert SetPortOption.of("re0", "frob_up", False).words() == ["-agrfrob", "re0"]


# -- planning a port's setting -------------------------------------------------------------------

def test_a_default_setting_of_a_port_to_come_changes_nothing():
    """In a file, agrportpri follows the agrport line: a port not yet there starts from the
    defaults, so setting one to its default is no change."""
    model = Interface(exists=False, agr=True)
    default = options.defaults("port")["port_priority"]
    assert SetPortOption("re9", "port_priority", default, "agrportpri").plan(model) is False
    assert model.port_flags == {"re9": options.defaults("port")}


# -- undo where the model lacks a port's settings ------------------------------------------------

def test_undo_of_a_detach_without_known_settings_attaches_only():
    before = agr()
    del before.port_flags["re0"]
    now = copy.deepcopy(before)
    RemovePort("re0").plan(now)
    assert RemovePort("re0").undo(before, now) == [AddPort("re0")]


def test_undo_of_a_port_setting_leaves_a_port_detached_later():
    """A later word of the same command detached the port: RemovePort's undo attaches it again
    with its settings; the setting's own undo adds nothing."""
    before = agr()
    now = copy.deepcopy(before)
    SetPortOption("re0", "port_priority", 1, "agrportpri").plan(now)
    RemovePort("re0").plan(now)
    assert SetPortOption("re0", "port_priority", 1, "agrportpri").undo(before, now) == []


def test_undo_of_a_port_setting_with_settings_unknown():
    op = SetPortOption("re0", "port_priority", 1, "agrportpri")
    before, now = agr(), agr(port_flags={"re0": {"port_priority": 1}})
    del before.port_flags["re0"]
    assert op.undo(before, now) == [], "nothing known before: nothing to put back"
    before, now = agr(), agr()
    del now.port_flags["re0"]
    assert op.undo(before, now) == [SetPortOption.of("re0", "port_priority", options.defaults("port")["port_priority"])]


# -- undo of addresses ---------------------------------------------------------------------------

def test_undo_deletes_an_added_address_by_its_prefix():
    before = agr()
    now = copy.deepcopy(before)
    AddAddress(ip("198.51.100.1/24"), True).plan(now)
    assert AddAddress(ip("198.51.100.1/24"), True).undo(before, now) == [DeleteAddress(ip("198.51.100.1/24"), True)]


def test_undo_of_addresses_among_both_families():
    """The addresses a command changed may be of both families (inet6 ... inet ...)."""
    before, now = agr(), agr(addrs=("192.0.2.1/24", "198.51.100.1/24", "2001:db8::1/64"))
    assert AddAddress(ip("198.51.100.1/24"), True).undo(before, now) == [DeleteAddress(ip("198.51.100.1/24"), True)]
    assert AddAddress(ip("2001:db8::1/64"), False).undo(before, now) == [DeleteAddress(ip("2001:db8::1/64"), True)]
    before, now = agr(addrs=("192.0.2.1/24", "2001:db8::1/64")), agr(addrs=())
    assert DeleteAddress(ip("192.0.2.1/24"), True).undo(before, now) == [AddAddress(ip("192.0.2.1/24"), True)]
    assert DeleteAddress(ip("2001:db8::1/64"), True).undo(before, now) == [AddAddress(ip("2001:db8::1/64"), True)]


def test_undo_gives_back_only_the_ipv4_address_its_own_word_replaced():
    """Only inet without alias replaces an IPv4 address; an address another word deleted is
    that word's to give back."""
    before, now = agr(addrs=("192.0.2.1/24",)), agr(addrs=("198.51.100.1/24",))
    assert AddAddress(ip("198.51.100.1/24"), True).undo(before, now) == [DeleteAddress(ip("198.51.100.1/24"), True)]
    assert AddAddress(ip("198.51.100.1/24"), False).undo(before, now) == [
        DeleteAddress(ip("198.51.100.1/24"), True), AddAddress(ip("192.0.2.1/24"), True)]
    before, now = agr(addrs=("192.0.2.1/24", "198.51.100.1/24")), agr(addrs=())
    assert DeleteAddress(ip("192.0.2.1/24"), True).undo(before, now) == [AddAddress(ip("192.0.2.1/24"), True)]


def test_undo_of_an_address_puts_the_link_back_as_it_was():
    before, now = agr(up=True), agr(up=False, addrs=("192.0.2.1/24", "198.51.100.1/24"))
    assert AddAddress(ip("198.51.100.1/24"), True).undo(before, now) == [
        DeleteAddress(ip("198.51.100.1/24"), True), Up()]
    before, now = agr(up=False), agr(up=True, addrs=("192.0.2.1/24", "198.51.100.1/24"))
    assert AddAddress(ip("198.51.100.1/24"), True).undo(before, now) == [
        DeleteAddress(ip("198.51.100.1/24"), True), Down()]


# -- the queries' defaults ----------------------------------------------------------------------

def test_queries_print_text_unless_asked_for_json(monkeypatch):
    from agrconfig.cli import monitor, whichport
    ran = []
    monkeypatch.setattr(monitor, "run", lambda name, words, as_json: ran.append(("monitor", as_json)) or 0)
    monkeypatch.setattr(whichport, "run", lambda name, words, as_json: ran.append(("whichport", as_json)) or 0)
    Monitor(()).run("agr0")
    WhichPort(("192.0.2.9",)).run("agr0")
    WhichPort(("192.0.2.9",)).run("agr0", as_json=True)
    assert ran == [("monitor", False), ("whichport", False), ("whichport", True)]
    with pytest.raises(UsageError) as err:
        WhichPort(()).run("agr0", dry_run=True)
    assert str(err.value) == "whichport is a query: it takes no -n"


def test_the_model_shows_every_field_in_a_failed_assertion():
    assert repr(agr(addrs=("192.0.2.1/24",), lacp_fast=True)).startswith(
        "Interface(exists=True, agr=True, ports=['re0'], flags={")
    assert repr(Interface(exists=False)) == (
        "Interface(exists=False, agr=False, ports=[], flags={}, port_flags={}, mtu=None, up=False, addrs=set())")
