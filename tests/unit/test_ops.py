"""The typed operations (cli/ops.py) one by one: how each is planned against the interface
model, carried out (with the client's calls replaced by recorders), undone when a later word
fails, and said again as words; the executor's dispatch and roll back (client/commands.py);
the model read once (client/interface.py); and the option schema growing without a change here."""
import ast
import copy
import errno
import ipaddress
import os

import pytest

from agrconfig import options
from agrconfig.cli import ops, provision
from agrconfig.cli.grammar import parse_query, parse_words
from agrconfig.cli.ops import (AddAddress, AddPort, Create, DeleteAddress, Destroy, Down, Monitor, RemovePort,
                               SetMtu, SetOption, SetPortOption, Up, WhichPort)
from agrconfig.client import commands, interface, workers
from agrconfig.client.interface import Interface
from agrconfig.errors import AgrError, UsageError
from tests.unit.statuses import aggregate

PORT_DEFAULTS = options.defaults("port")


def ip(text):
    return ipaddress.ip_interface(text)


def agr(ports=("re0",), addrs=("192.0.2.1/24",), up=True, mtu=1500, port_flags=None, **flags):
    return Interface(exists=True, agr=True, ports=list(ports), flags={**options.defaults(), **flags},
                     port_flags={p: {**options.defaults("port"), **(port_flags or {}).get(p, {})} for p in ports},
                     mtu=mtu, up=up, addrs={ip(a) for a in addrs})


def plain(addrs=("192.0.2.1/24",), up=True, mtu=1500):
    return Interface(exists=True, mtu=mtu, up=up, addrs={ip(a) for a in addrs})


class Calls:
    """The client's functions the operations call, replaced by one recorder."""

    def __init__(self, monkeypatch, owner=None, ports=("re0",)):
        self.log = []
        for module, names in ((ops.workers, ("create", "destroy", "request", "ensure_worker")),
                              (ops.ifconfig, ("set_up", "set_mtu", "add_address", "delete_address"))):
            for name in names:
                monkeypatch.setattr(module, name, self.recorder(name))
        monkeypatch.setattr(ops.workers, "owner_of", lambda name: owner)
        monkeypatch.setattr(ops, "attached_ports", lambda name: list(ports))

    def recorder(self, what):
        def record(*args, **kwargs):
            self.log.append((what, *args, *sorted(kwargs.items())))
        return record


# -- each operation: plan, apply, undo, words --------------------------------------------------

# (operation, its words, the model before, would it change it, its call on agr0, on eth0)
CASES = [
    (Create(), ["create"], Interface(exists=False, agr=True), True, [("create", "agr0")], None),
    (Destroy(), ["destroy"], agr(), True, [("destroy", "agr0")], None),
    (Up(), ["up"], agr(up=False), True, [("ensure_worker", "agr0"), ("set_up", "agr0", True)],
     [("set_up", "eth0", True)]),
    (Down(), ["down"], agr(), True, [("ensure_worker", "agr0"), ("set_up", "agr0", False)],
     [("set_up", "eth0", False)]),
    (SetMtu(9000), ["mtu", "9000"], agr(), True, [("request", "agr0", "setmtu", ("mtu", 9000))],
     [("set_mtu", "eth0", 9000)]),
    (AddPort("re1"), ["agrport", "re1"], agr(), True, [("request", "agr0", "addport", ("port", "re1"))], None),
    (RemovePort("re0"), ["-agrport", "re0"], agr(port_flags={"re0": {"port_priority": 5}}), True,
     [("request", "agr0", "delport", ("port", "re0"))], None),
    (SetOption("lacp_fast", True, "lacptimeout"), ["lacptimeout", "fast"], agr(), True,
     [("request", "agr0", "setflags", ("flags", {"lacp_fast": True}))], None),
    (SetOption("proto", "loadbalance", "link1"), ["agrproto", "loadbalance"], agr(), True,
     [("request", "agr0", "setflags", ("flags", {"proto": "loadbalance"}))], None),
    (SetPortOption("re0", "port_priority", 7, "agrportpri"), ["agrportpri", "re0", "7"], agr(), True,
     [("request", "agr0", "setport", ("flags", {"port_priority": 7}), ("port", "re0"))], None),
    (AddAddress(ip("198.51.100.1/24"), False), ["inet", "198.51.100.1/24"], agr(up=False), True,
     [("add_address", "agr0", ip("198.51.100.1/24"), ("alias", False))],
     [("add_address", "eth0", ip("198.51.100.1/24"), ("alias", False))]),
    (AddAddress(ip("198.51.100.1/24"), True), ["inet", "198.51.100.1/24", "alias"], agr(), True,
     [("add_address", "agr0", ip("198.51.100.1/24"), ("alias", True))],
     [("add_address", "eth0", ip("198.51.100.1/24"), ("alias", True))]),
    (AddAddress(ip("2001:db8::1/64"), False), ["inet6", "2001:db8::1/64"], agr(), True,
     [("add_address", "agr0", ip("2001:db8::1/64"), ("alias", True))],     # inet6 always adds
     [("add_address", "eth0", ip("2001:db8::1/64"), ("alias", True))]),
    (DeleteAddress(ip("192.0.2.1/24"), True), ["inet", "192.0.2.1/24", "delete"], agr(), True,
     [("delete_address", "agr0", ip("192.0.2.1/24"), True)],
     [("delete_address", "eth0", ip("192.0.2.1/24"), True)]),
]
IDS = [" ".join(case[1]) for case in CASES]


@pytest.mark.parametrize("op, words, before, changes, on_agr, on_plain", CASES, ids=IDS)
def test_words_parse_back_to_the_operation(op, words, before, changes, on_agr, on_plain):
    assert op.words() == words
    (again,) = parse_words(words)
    assert again == (op.replace(word=again.word) if hasattr(op, "key") else op)


@pytest.mark.parametrize("op, words, before, changes, on_agr, on_plain", CASES, ids=IDS)
def test_plan_changes_the_model_once(op, words, before, changes, on_agr, on_plain):
    model = copy.deepcopy(before)
    assert op.plan(model) is changes
    assert (model != before) is changes
    after = copy.deepcopy(model)
    assert op.plan(model) is False, "planned again, it changes nothing"
    assert model == after


@pytest.mark.parametrize("op, words, before, changes, on_agr, on_plain", CASES, ids=IDS)
def test_apply_calls_the_worker_or_rtnetlink(op, words, before, changes, on_agr, on_plain, monkeypatch):
    calls = Calls(monkeypatch)
    op.apply_agr("agr0")
    assert calls.log == on_agr
    calls.log.clear()
    if on_plain is None:
        with pytest.raises(AgrError) as err:
            op.apply_plain("eth0")
        assert err.value.errno == errno.ENXIO and "eth0: no such agr interface" in str(err.value)
        assert not op.plain
    else:
        op.apply_plain("eth0")
        assert op.plain and calls.log == on_plain


@pytest.mark.parametrize("op, words, before, changes, on_agr, on_plain", CASES, ids=IDS)
def test_undo_plans_back_to_the_model_before(op, words, before, changes, on_agr, on_plain):
    now = copy.deepcopy(before)
    op.plan(now)
    steps = op.undo(before, now)
    assert all(isinstance(step, ops.Operation) for step in steps)
    back = copy.deepcopy(now)
    for step in steps:
        step.plan(back)
    if isinstance(op, Create):
        assert steps == [Destroy()] and not back.exists
    elif isinstance(op, Destroy):
        assert steps == [], "destroy is a command's only word"
    else:
        assert back == before, steps
    assert op.undo(before, copy.deepcopy(before)) == [], "nothing changed, nothing to undo"


def test_undo_of_each_kind_in_words():
    def undo(words, before):
        (op,) = parse_words(words)
        now = copy.deepcopy(before)
        op.plan(now)
        return [" ".join(step.words()) for step in op.undo(before, now)]

    assert undo(["agrport", "re1"], agr()) == ["-agrport re1"]
    # A detached port comes back with the settings it had.
    assert undo(["-agrport", "re0"], agr(port_flags={"re0": {"port_priority": 5}})) == ["agrport re0", "agrportpri re0 5"]
    assert undo(["-agrport", "re0"], agr()) == ["agrport re0"]
    assert undo(["link1"], agr()) == ["agrproto lacp"]
    assert undo(["agrportpri", "re0", "1"], agr()) == ["agrportpri re0 32768"]
    assert undo(["mtu", "9000"], agr()) == ["mtu 1500"]
    assert undo(["down"], agr()) == ["up"]
    # inet replaces the first IPv4 address (given back as an alias) and brings the interface up.
    assert undo(["inet", "198.51.100.1/24"], agr(up=False)) == [
        "inet 198.51.100.1/24 delete", "inet 192.0.2.1/24 alias", "down"]
    assert undo(["inet", "198.51.100.1/24", "alias"], agr()) == ["inet 198.51.100.1/24 delete"]
    assert undo(["inet", "192.0.2.1", "delete"], agr()) == ["inet 192.0.2.1/24 alias"]
    # An interface the command created goes away whole; the other words have nothing to undo.
    fresh = Interface(exists=False, agr=True)
    assert undo(["create"], fresh) == ["destroy"]
    assert undo(["agrport", "re1"], fresh) == []


def test_an_attached_port_starts_from_the_defaults():
    model = Interface(exists=False, agr=True, port_flags={"re1": {"port_priority": 5}})
    assert AddPort("re1").plan(model) and model.port_flags == {"re1": options.defaults("port")}


def test_undo_puts_back_only_settings_it_knew():
    """A worker that did not report a setting (an older release) leaves nothing to put back."""
    before, now = agr(), agr(lacp_fast=True, port_flags={"re0": {"port_priority": 1}})
    del before.flags["lacp_fast"], before.port_flags["re0"]["port_priority"]
    assert SetOption("lacp_fast", True, "lacptimeout").undo(before, now) == []
    assert SetPortOption("re0", "port_priority", 1, "agrportpri").undo(before, now) == []


def test_undo_leaves_what_the_words_did_not_name():
    """The kernel's own addresses (a link-local that came with `up`) are not the words' to take."""
    before, now = agr(up=False), agr(addrs=("192.0.2.1/24", "fe80::1/64"))
    assert Up().undo(before, now) == [Down()]
    assert AddAddress(ip("2001:db8::1/64"), False).undo(before, now) == [Down()]


def test_address_words_on_a_port_or_a_portless_agr_are_refused(monkeypatch):
    calls = Calls(monkeypatch, owner="agr0")
    for op, ioctl in ((SetMtu(1400), "SIOCSIFMTU"), (AddAddress(ip("192.0.2.9/24"), False), "SIOCAIFADDR"),
                      (DeleteAddress(ip("192.0.2.9/24"), True), "SIOCAIFADDR")):
        with pytest.raises(AgrError) as err:
            op.apply_plain("re0")
        assert err.value.errno == errno.EBUSY and str(err.value).startswith(ioctl)
        assert "re0 is a port of agr0; configure agr0 instead" in str(err.value)
    Up().apply_plain("re0")   # up and down are fine on a port
    assert calls.log == [("set_up", "re0", True)]
    Calls(monkeypatch, ports=())
    for op in (AddAddress(ip("192.0.2.9/24"), False), DeleteAddress(ip("192.0.2.9/24"), True)):
        with pytest.raises(AgrError, match="without attaching physical interfaces") as err:
            op.apply_agr("agr0")
        assert err.value.errno == errno.EINVAL


def test_a_port_setting_names_an_attached_port():
    with pytest.raises(AgrError) as err:
        SetPortOption("re9", "port_priority", 1, "agrportpri").plan(agr())
    assert err.value.errno == errno.ENOENT and "re9 is not a port of this interface" in str(err.value)
    model = Interface(exists=False, agr=True)   # a file's agrport line comes first: planned
    assert SetPortOption("re9", "port_priority", 1, "agrportpri").plan(model)


def test_the_word_named_in_messages_is_the_word_typed():
    assert [op.word for op in parse_words(["link1", "agrportpri", "re0", "1", "agrport", "re0", "create",
                                           "inet6", "::1", "192.0.2.1"])] == [
        "link1", "agrportpri", "agrport", "create", "inet6", "inet"]


# -- queries ----------------------------------------------------------------------------------

def test_queries_take_the_rest_of_the_line(monkeypatch):
    assert parse_query(["monitor", "interval", "1"]) == Monitor(("interval", "1"))
    assert parse_query(["whichport", "192.0.2.9"]) == WhichPort(("192.0.2.9",))
    assert parse_query(["up", "monitor"]) is None and parse_query([]) is None
    with pytest.raises(UsageError, match="^monitor: unknown word"):
        parse_words(["up", "monitor"])   # a query is a command of its own
    from agrconfig.cli import monitor, whichport
    ran = []
    monkeypatch.setattr(monitor, "run", lambda name, words, as_json: ran.append(("monitor", name, words, as_json)) or 0)
    monkeypatch.setattr(whichport, "run", lambda name, words, as_json: ran.append(("whichport", name, words)) or 0)
    assert Monitor(("interval", "1")).run("agr0", as_json=True, dry_run=True) == 0
    assert WhichPort(("192.0.2.9",)).run("agr0") == 0
    with pytest.raises(UsageError, match="whichport is a query: it takes no -n"):
        WhichPort(("192.0.2.9",)).run("agr0", dry_run=True)
    assert ran == [("monitor", "agr0", ["interval", "1"], True), ("whichport", "agr0", ["192.0.2.9"])]
    assert Monitor(("interval", "1")).words() == ["monitor", "interval", "1"]


# -- the executor: dispatch and roll back ---------------------------------------------------------

class World:
    """commands.apply with the interface read from models and each operation's effect recorded
    (and planned on the model, so that roll back reads what the words did)."""

    def __init__(self, monkeypatch, model, fail_on=None, ours=True):
        self.model, self.applied, self.fail_on = model, [], fail_on or []
        monkeypatch.setattr(commands, "Namespace", _Nothing)
        monkeypatch.setattr(commands.Interface, "read", classmethod(lambda cls, name: copy.deepcopy(self.model)))
        monkeypatch.setattr(workers, "manages", lambda name, op: ours or op.creates)
        for cls in (Create, Destroy, Up, Down, SetMtu, AddPort, RemovePort, SetOption, SetPortOption,
                    AddAddress, DeleteAddress):
            monkeypatch.setattr(cls, "apply_agr", self.doer("agr"))
            monkeypatch.setattr(cls, "apply_plain", self.doer("plain"))

    def doer(self, how):
        world = self

        def do(op, name):
            if op in world.fail_on:
                raise AgrError(errno.EBUSY, "SIOCSETAGR", f"{' '.join(op.words())} refused")
            world.applied.append((how, " ".join(op.words())))
            op.plan(world.model)
        return do


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_failing_word_undoes_the_words_before_it_last_first(monkeypatch):
    w = World(monkeypatch, agr(), fail_on=[AddPort("re9")])
    ops_ = parse_words(["lacptimeout", "fast", "mtu", "9000", "down", "agrport", "re1", "agrport", "re9"])
    with pytest.raises(AgrError) as err:
        commands.apply("agr0", ops_)
    assert err.value.detail == "agrport re9 refused"
    assert w.applied == [("agr", "lacptimeout fast"), ("agr", "mtu 9000"), ("agr", "down"), ("agr", "agrport re1"),
                         ("agr", "-agrport re1"), ("agr", "up"), ("agr", "mtu 1500"), ("agr", "lacptimeout slow")]
    assert w.model == agr()


def test_what_could_not_be_undone_is_told(monkeypatch):
    w = World(monkeypatch, agr(), fail_on=[AddPort("re9"), SetMtu(1500)])
    with pytest.raises(AgrError) as err:
        commands.apply("agr0", parse_words(["mtu", "9000", "up", "agrport", "re9"]))
    assert err.value.detail == ("agrport re9 refused; the words before it could not all be undone: "
                                "mtu 1500: mtu 1500 refused")
    assert w.applied == [("agr", "mtu 9000"), ("agr", "up")], "up changed nothing: nothing to undo"


def test_each_thing_is_put_back_once(monkeypatch):
    w = World(monkeypatch, agr(up=False), fail_on=[AddPort("re9")])
    with pytest.raises(AgrError):
        commands.apply("agr0", parse_words(["mtu", "9000", "up", "mtu", "9001", "inet", "198.51.100.1/24", "alias",
                                            "agrport", "re9"]))
    assert w.applied[4:] == [("agr", "inet 198.51.100.1/24 delete"), ("agr", "down"), ("agr", "mtu 1500")]
    assert w.model == agr(up=False)


def test_a_created_interface_goes_away_whole(monkeypatch):
    w = World(monkeypatch, Interface(exists=False, agr=True), fail_on=[AddPort("re9")])
    with pytest.raises(AgrError):
        commands.apply("agr0", parse_words(["create", "agrport", "re0", "up", "agrport", "re9"]))
    assert w.applied[-1] == ("agr", "destroy") and len(w.applied) == 4
    assert not w.model.exists


def test_a_failing_first_word_reads_nothing(monkeypatch):
    w = World(monkeypatch, agr(), fail_on=[AddPort("re9")])
    monkeypatch.setattr(commands.Interface, "read", classmethod(lambda cls, name: pytest.fail("read")))
    with pytest.raises(AgrError):
        commands.apply("agr0", [AddPort("re9")])
    assert w.applied == []


def test_agr_words_on_other_interfaces_are_refused_before_anything(monkeypatch):
    w = World(monkeypatch, plain(), ours=False)
    with pytest.raises(AgrError, match="^SIOCIFCREATE: .*'eth0': only agr<N> interfaces can be created"):
        commands.apply("eth0", parse_words(["lacpmode", "passive", "create"]))
    with pytest.raises(AgrError, match="^SIOCSETAGR: .*lacpmode: valid only with agr\\(4\\) interfaces"):
        commands.apply("eth0", parse_words(["up", "lacpmode", "passive", "agrport", "re0"]))
    assert w.applied == []
    commands.apply("eth0", parse_words(["mtu", "9000", "up"]))
    assert w.applied == [("plain", "mtu 9000"), ("plain", "up")]


def test_manages_asks_what_the_operation_says_of_itself(monkeypatch):
    ours, links = set(), set()
    monkeypatch.setattr(workers, "exists", lambda name: name in ours)
    monkeypatch.setattr(workers.rtnl, "link", lambda name: object() if name in links else None)
    assert not workers.manages("eth0", Up()) and not workers.manages("eth0", AddPort("re0"))
    assert workers.manages("agr0", Create())
    assert workers.manages("agr0", Up()), "no such link: the worker's answer (ENXIO) is the one"
    links.add("agr0")   # an agr-looking interface that is not ours: plain words work on it
    assert not workers.manages("agr0", Up()) and not workers.manages("agr0", SetMtu(9000))
    assert workers.manages("agr0", AddPort("re0"))
    ours.add("agr0")
    assert workers.manages("agr0", Up()) and workers.manages("agr0", AddAddress(ip("192.0.2.1/24"), False))


# -- the model, read once ---------------------------------------------------------------------

class _Link:
    index, mtu, up = 7, 9000, True


class _Addr:
    def __init__(self, text):
        self.interface = ip(text)


def test_the_model_reads_link_addresses_and_worker_once(monkeypatch):
    status = aggregate({"flags": {"lacp_fast": True}, "ports": [{"name": "re0", "options": {"port_priority": 5}},
                                                                {"name": "re1", "index": 2}]})
    monkeypatch.setattr(interface.rtnl, "link", lambda name: _Link() if name in ("agr0", "eth0") else None)
    monkeypatch.setattr(interface.rtnl, "addresses", lambda index: [_Addr("192.0.2.1/24")])
    def exists(name):
        assert name.startswith("agr"), "no worker is asked about a plain interface"
        return name == "agr0"
    monkeypatch.setattr(workers, "exists", exists)
    monkeypatch.setattr(workers, "worker_status", lambda name: status)
    monkeypatch.setattr(workers, "request", lambda name, what: status.to_json())
    assert Interface.read("agr0") == Interface(
        exists=True, agr=True, ports=["re0", "re1"], flags={**options.defaults(), "lacp_fast": True},
        port_flags={"re0": {**PORT_DEFAULTS, "port_priority": 5}, "re1": PORT_DEFAULTS},
        mtu=9000, up=True, addrs={ip("192.0.2.1/24")})
    assert Interface.read("eth0") == Interface(exists=True, mtu=9000, up=True, addrs={ip("192.0.2.1/24")})
    assert Interface.read("agr1") == Interface(exists=False, agr=True)
    assert Interface.read("eth1") == Interface(exists=False, agr=False)
    assert interface.attached_ports("agr0") == ["re0", "re1"]


# -- the option schema grows: nothing changes here --------------------------------------------------

def test_a_new_option_needs_no_change_in_the_operations(monkeypatch):
    frob = options.Option("frob", options.Number("agrfrob", 0, 9), 3, "a new setting")
    frobpri = options.Option("frob_pri", options.Number("agrfrobpri", 0, 9), 0, "a new port setting", scope="port")
    monkeypatch.setattr(options, "OPTIONS", options.OPTIONS + (frob, frobpri))
    monkeypatch.setattr(options, "BY_KEY", {**options.BY_KEY, "frob": frob, "frob_pri": frobpri})
    monkeypatch.setattr(options, "BY_WORD", {**options.BY_WORD, "agrfrob": frob, "agrfrobpri": frobpri})
    model = agr()
    assert model.flags["frob"] == 3 and model.port_flags["re0"]["frob_pri"] == 0
    parsed = parse_words(["agrfrob", "7", "agrfrobpri", "re0", "9"])
    assert parsed == [SetOption("frob", 7, "agrfrob"), SetPortOption("re0", "frob_pri", 9, "agrfrobpri")]
    before = copy.deepcopy(model)
    assert [" ".join(op.words()) for op in provision.plan("agr0", parsed, model)] == ["agrfrob 7", "agrfrobpri re0 9"]
    calls = Calls(monkeypatch)
    for op in parsed:
        op.apply_agr("agr0")
    assert calls.log == [("request", "agr0", "setflags", ("flags", {"frob": 7})),
                         ("request", "agr0", "setport", ("flags", {"frob_pri": 9}), ("port", "re0"))]
    assert [" ".join(s.words()) for op in parsed for s in op.undo(before, model)] == ["agrfrob 3", "agrfrobpri re0 0"]
    # A file that no longer says them puts them back to their defaults.
    assert [" ".join(op.words()) for op in provision.undo(parse_words(["agrport", "re0"]), model)] == [
        "agrfrob 3", "agrfrobpri re0 0"]


def test_the_operations_module_names_no_option():
    """Options are known from the schema alone: no key or word of one is spelt in ops.py."""
    names = {o.key for o in options.OPTIONS} | set(options.BY_WORD)
    source = open(os.path.join(os.path.dirname(ops.__file__), "ops.py")).read()
    spelt = {node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant)
             and isinstance(node.value, str)}
    assert not spelt & names, spelt & names
