"""agrmacpolicy same|active|follow and lladdr / link MAC active / -lladdr: the words, the pure
plan (worker/macpolicy.py), and the worker carrying it out on failover's moves against a fake
rtnetlink (the announcements after a move carry agrN's new MAC)."""
import errno
import types

import pytest

from agrconfig import options
from agrconfig.cli import ifupdown, render
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import SetOption
from agrconfig.errors import AgrError, UsageError
from agrconfig.worker import failover, loop
from agrconfig.worker.macpolicy import MacPolicy, effective, fixed, plan, unfixed
from agrconfig.worker.port import Member
from tests.unit.statuses import aggregate
from tests.unit.test_controls_words import complete, refused
from tests.unit.test_provision_plan import Host, agr

AGR, A, B, C, FIX = ("02:00:00:00:0a:00", "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c",
                     "02:00:00:00:99:01")
OWN = ((3, A), (5, B), (7, C))

# -- the words --------------------------------------------------------------------------------


@pytest.mark.parametrize("words, key, value", [
    (["agrmacpolicy", "same"], "mac_policy", "same"), (["agrmacpolicy", "active"], "mac_policy", "active"),
    (["agrmacpolicy", "follow"], "mac_policy", "follow"),
    (["lladdr", "02:00:00:00:99:01"], "lladdr", FIX), (["lladdr", "02-00-00-00-99-01"], "lladdr", FIX),
    (["lladdr", "02:00:00:00:99:01".upper()], "lladdr", FIX),
    (["link", "02:00:00:00:99:01", "active"], "lladdr", FIX), (["-lladdr"], "lladdr", None),
])
def test_the_words(words, key, value):
    (op,) = parse_words(words)
    assert (op.key, op.value) == (key, value)
    assert op.words() == options.file_words(key, value), "files and -n say it one way"


def test_link_mac_active_goes_on_with_the_next_word():
    ops = parse_words(["link", FIX, "active", "up"])
    assert ops[0] == SetOption("lladdr", FIX, "link") and len(ops) == 2


@pytest.mark.parametrize("words, message", [
    (["agrmacpolicy"], "^agrmacpolicy: missing same, active or follow"),
    (["agrmacpolicy", "none"], "^agrmacpolicy: 'none' is not same, active or follow"),
    (["agrmacpolicy", "SAME"], "^agrmacpolicy: 'SAME' is not"),
    (["lladdr"], "^lladdr: missing a MAC address"),
    (["lladdr", "01:00:5e:00:00:01"], "multicast address: the address must be unicast"),
    (["lladdr", "ff:ff:ff:ff:ff:ff"], "multicast"),
    (["lladdr", "00:00:00:00:00:00"], "must not be all zeros"),
    (["lladdr", "02:00:00:00:99"], "bad MAC address"), (["lladdr", "02:00:00:00:99:0g"], "bad MAC address"),
    (["link", FIX], "^link: say `link MAC active`"), (["link", FIX, "up"], "^link: say"),
    (["-lladdr", FIX], "unknown word"),
    (["lladdr", FIX, "agrmacpolicy", "active"], "exclude each other"),
    (["agrmacpolicy", "active", "link", FIX, "active"], "^link and agrmacpolicy active exclude each other"),
])
def test_bad_words_are_usage_errors(words, message):
    with pytest.raises(UsageError, match=message):
        parse_words(words)


def test_the_last_word_of_a_command_counts_for_the_exclusion():
    parse_words(["lladdr", FIX, "-lladdr", "agrmacpolicy", "active"])
    parse_words(["agrmacpolicy", "active", "agrmacpolicy", "follow", "lladdr", FIX])


@pytest.mark.parametrize("words", [["agr0", "lladdr", "01:00:00:00:00:01"], ["agr0", "agrmacpolicy", "none"],
                                   ["-n", "agr0", "link", FIX], ["agr0", "lladdr", FIX, "agrmacpolicy", "active"]])
def test_bad_values_exit_1_and_change_nothing(words, monkeypatch, capsys):
    assert refused(words, monkeypatch, capsys).startswith("agrconfig: ")


def test_ifupdown_stanza_options():
    assert ifupdown.stanza({"IFACE": "agr0", "IF_AGR_MAC_POLICY": "follow", "IF_AGR_LLADDR": FIX})[1] \
        == ["agrmacpolicy", "follow", "lladdr", FIX]
    assert ifupdown.stanza({"IFACE": "agr0", "IF_AGR_LLADDR": "default"})[1] == ["-lladdr"]


def test_completion_offers_the_policies_and_active_after_link():
    assert complete("agr0", "agrmacpolicy", "") == ["same", "active", "follow"]
    assert complete("agr0", "link", FIX, "") == ["active"]
    assert complete("agr0", "lladdr", "") == []
    assert {"agrmacpolicy", "lladdr", "-lladdr", "link"} <= set(complete("agr0", ""))


def test_status_text_says_the_policy_and_where_it_applies():
    def line(**flags):
        ws = aggregate({"flags": {**options.defaults(), **flags}})
        return render.agr_lines(ws)[0]
    assert "macpolicy" not in line(proto="failover") and "lladdr" not in line()
    assert line(proto="failover", mac_policy="active").endswith("; macpolicy active")
    assert line(mac_policy="follow").endswith("; macpolicy follow (failover only)")
    assert line(lladdr=FIX).endswith(f"; lladdr {FIX}")
    doc = render.json_doc({"ifname": "agr0", "agr": aggregate({"flags": {**options.defaults(), "lladdr": FIX}})})
    assert doc["linkinfo"]["info_data"]["flags"]["lladdr"] == FIX
    for policy, bonding in (("same", "none"), ("active", "active"), ("follow", "follow")):
        ws = aggregate({"flags": {**options.defaults(), "mac_policy": policy}})
        assert render.json_doc({"ifname": "agr0", "agr": ws})["linkinfo"]["info_data"]["fail_over_mac"] == bonding


# -- the plan (pure) --------------------------------------------------------------------------

def test_same_gives_every_port_agrs_mac():
    p = plan(MacPolicy.SAME, AGR, None, 5, OWN)
    assert p.agr == AGR and p.ports == ((3, AGR), (5, AGR), (7, AGR))


def test_active_leaves_the_ports_their_own_and_agr_takes_the_active_ones():
    p = plan(MacPolicy.ACTIVE, AGR, None, 5, OWN)
    assert p.agr == B and p.ports == OWN
    assert plan(MacPolicy.ACTIVE, AGR, None, 7, OWN).agr == C
    assert plan(MacPolicy.ACTIVE, AGR, None, None, OWN).agr == AGR, "no active port: agr keeps its MAC"


def test_follow_gives_only_the_active_port_agrs_mac():
    assert plan(MacPolicy.FOLLOW, AGR, None, 5, OWN).ports == ((3, A), (5, AGR), (7, C))
    assert plan(MacPolicy.FOLLOW, AGR, None, 3, OWN).ports == ((3, AGR), (5, B), (7, C))
    assert plan(MacPolicy.FOLLOW, AGR, None, None, OWN).ports == OWN
    assert plan(MacPolicy.FOLLOW, AGR, None, 5, OWN).agr == AGR


def test_lladdr_fixes_agrs_mac_and_the_ports_that_carry_it():
    assert plan(MacPolicy.SAME, AGR, FIX, 5, OWN) == plan(MacPolicy.SAME, FIX, None, 5, OWN)
    assert plan(MacPolicy.SAME, AGR, FIX, 5, OWN).agr == FIX
    assert plan(MacPolicy.FOLLOW, AGR, FIX, 3, OWN).ports == ((3, FIX), (5, B), (7, C))


def test_the_policy_is_failovers_only():
    assert effective("follow", "failover") is MacPolicy.FOLLOW
    assert effective("active", "failover") is MacPolicy.ACTIVE
    for proto in ("lacp", "loadbalance", "slb"):
        assert effective("active", proto) is effective("follow", proto) is MacPolicy.SAME


def test_minus_lladdr_goes_back_to_the_first_ports_own_mac():
    assert unfixed(FIX, OWN) == A
    assert unfixed(FIX, ()) == FIX, "no port: kept until a first port comes"


def test_what_another_tools_change_of_agrs_mac_meets():
    assert fixed(MacPolicy.SAME, FIX, None) and fixed(MacPolicy.ACTIVE, None, 3)
    assert not fixed(MacPolicy.SAME, None, 3) and not fixed(MacPolicy.FOLLOW, None, 3)
    assert not fixed(MacPolicy.ACTIVE, None, None)


# -- the worker carries it out ----------------------------------------------------------------

class FakeRtnl:
    """The links' MACs, and every change made to them, in order."""
    mac_bytes = staticmethod(lambda mac: bytes.fromhex(mac.replace(":", "")))

    def __init__(self, macs, refuse=()):
        self.macs = dict(macs)
        self.changes = []
        self.refuse = set(refuse)

    def link(self, name=None, index=None):
        return types.SimpleNamespace(index=index, name=f"if{index}", mac=self.macs[index]) \
            if index in self.macs else None

    def set_mac(self, index, mac):
        if index in self.refuse:
            raise AgrError(errno.EBUSY, "SIOCALIFADDR", "refused")
        self.changes.append((index, mac))
        self.macs[index] = mac

    def addresses(self, index):
        return [types.SimpleNamespace(address="192.0.2.7")]


TAP = 9


def worker(monkeypatch, policy, lladdr=None, carrier=(True, True, True), refuse=()):
    """A worker with ports 3, 5, 7 (own MACs A, B, C) under agrproto failover, started as a
    worker resumed from its state file is: agrN has AGR, the ports as a 'same' worker left them."""
    rt = FakeRtnl({TAP: AGR, 3: AGR, 5: AGR, 7: AGR}, refuse)
    monkeypatch.setattr(loop, "rtnl", rt)
    w = loop.Worker("agr0")
    w.tap_index, w.mac = TAP, AGR
    w.flags.update(proto="failover", mac_policy=policy, lladdr=lladdr)
    sent = []
    for (index, mac), up in zip(OWN, carrier):
        port = Member({"name": f"if{index}", "index": index, "mac": mac, "mtu": 1500, "up": True,
                       "promisc": False, "sysctl": {}})
        port.carrier = up
        w.members.add(port)

    # The worker's own Announcer, reading agrN's MAC and address as KernelFacts would, sending here.
    w.announcer.facts = types.SimpleNamespace(mac=lambda: bytes.fromhex(w.mac.replace(":", "")),
                                              addresses=lambda: ["192.0.2.7"], learned=lambda: [],
                                              listeners=lambda: [])
    w.announcer.send = lambda port, frame: sent.append(frame)
    w.agg.current = failover.Failover(lambda out: None, w.announcer.moved, moving=lambda active: w.apply_macs(0.0))
    w.aggregation.start(0.0, list(w.members), {})
    w.announcer.on_timer(0.0)
    return w, rt, sent


def move(w, now, index, up):
    """Port `index`'s carrier, and the announcements' first round."""
    w.aggregation.set_carrier(now, index, up)
    w.announcer.on_timer(now)


def macs(rt):
    return rt.macs[TAP], rt.macs[3], rt.macs[5], rt.macs[7]


def announced_from(frame):
    return ":".join(f"{b:02x}" for b in frame[6:12]), ":".join(f"{b:02x}" for b in frame[22:28])


def test_same_under_failover(monkeypatch):
    w, rt, sent = worker(monkeypatch, "same")
    assert macs(rt) == (AGR, AGR, AGR, AGR) and rt.changes == []
    move(w, 1.0, 3, False)
    assert w.aggregation.active == 5 and rt.changes == [] and announced_from(sent[-1]) == (AGR, AGR)


def test_active_moves_agrs_mac_before_the_announcement(monkeypatch):
    w, rt, sent = worker(monkeypatch, "active")
    assert w.aggregation.active == 3
    assert macs(rt) == (A, A, B, C), "a restarted worker gives every port its own MAC back"
    assert w.mac == A and announced_from(sent[-1]) == (A, A)
    w.flags["announce"] = {"count": 3, "interval": 100}
    move(w, 1.0, 3, False)
    assert w.aggregation.active == 5 and macs(rt) == (B, A, B, C) and w.mac == B
    # the gratuitous ARP after the move: Ethernet source and ARP sender are the new MAC, in
    # every round agrannounce asks for
    assert announced_from(sent[-1]) == (B, B)
    del sent[:]
    w.announcer.on_timer(1.1)
    w.announcer.on_timer(1.25)
    assert [announced_from(f) for f in sent] == [(B, B), (B, B)]


def test_follow_moves_agrs_mac_with_the_active_port(monkeypatch):
    w, rt, sent = worker(monkeypatch, "follow")
    assert macs(rt) == (AGR, AGR, B, C), "standby ports get their own back on a restart"
    move(w, 1.0, 3, False)
    assert macs(rt) == (AGR, A, AGR, C), "the old active its own, the new one agr's"
    assert announced_from(sent[-1]) == (AGR, AGR)
    w.aggregation.remove_port(2.0, 5)
    w.members.remove(w.members.find(5))
    assert w.aggregation.active == 7 and macs(rt)[3] == AGR


def test_lladdr_is_what_the_same_ports_carry(monkeypatch):
    w, rt, _sent = worker(monkeypatch, "same", lladdr=FIX)
    assert macs(rt) == (FIX, FIX, FIX, FIX) and w.mac == FIX
    assert w.system_mac() == bytes.fromhex(FIX.replace(":", "")), "the LACP system id follows"
    w.flags["lacp_sysid"] = "02:00:00:00:13:01"
    assert w.system_mac() == bytes.fromhex("020000001301"), "unless lacpsysid is set"


def test_a_port_carries_the_mac_the_policy_gives_it(monkeypatch):
    w, rt, _sent = worker(monkeypatch, "follow")
    assert [w.port_mac(p) for p in w.members] == [AGR, B, C]
    newcomer = Member({"name": "if11", "index": 11, "mac": "02:00:00:00:00:11", "mtu": 1500, "up": True,
                       "promisc": False, "sysctl": {}})
    assert w.port_mac(newcomer) == "02:00:00:00:00:11"
    w.flags["mac_policy"] = "same"
    assert w.port_mac(newcomer) == AGR


def test_another_tools_change_of_agrs_mac_is_set_back_while_fixed(monkeypatch):
    w, rt, _sent = worker(monkeypatch, "active")
    rt.macs[TAP] = FIX
    w.link_address_changed(0.0, FIX)
    assert rt.macs[TAP] == A and w.mac == A
    w, rt, _sent = worker(monkeypatch, "follow")
    rt.macs[TAP] = FIX
    w.link_address_changed(0.0, FIX)
    assert w.mac == FIX and macs(rt) == (FIX, FIX, B, C), "followed: the active port follows too"


def test_a_refused_port_change_is_logged_not_fatal(monkeypatch, caplog):
    w, rt, _sent = worker(monkeypatch, "follow", refuse=(5,))
    w.aggregation.set_carrier(1.0, 3, False)
    assert w.aggregation.active == 5 and rt.macs[3] == A
    assert "cannot give port if5 address" in caplog.text


def test_lladdr_and_active_are_refused_together_by_the_worker(monkeypatch):
    w, rt, _sent = worker(monkeypatch, "active")
    before = dict(w.flags)
    with pytest.raises(AgrError, match="exclude each other") as exc:
        w.set_flags(0.0, {"lladdr": FIX})
    assert exc.value.errno == errno.EINVAL
    assert w.flags == before and rt.macs[TAP] == A
    w, rt, _sent = worker(monkeypatch, "same", lladdr=FIX)
    with pytest.raises(AgrError, match="exclude each other"):
        w.set_flags(0.0, {"mac_policy": "active"})
    assert w.flags["mac_policy"] == "same"


# -- configuration files: the exclusion over the whole file, and in an order that works -------

FILE = "create\nagrproto failover\nagrport re0\nagrport re1\n"


@pytest.fixture
def host(tmp_path, monkeypatch):
    return lambda model: Host(tmp_path, monkeypatch, model)


def test_a_file_that_says_both_is_refused_whole(host):
    h = host(agr(["re0", "re1"], proto="failover"))
    with pytest.raises(UsageError, match=r"ifconfig.agr0: lladdr and agrmacpolicy active exclude each other"):
        h.run(FILE + f"lladdr {FIX}\nagrmacpolicy active\n", dry_run=True)
    assert h.printed == [] and h.applied == []


def test_a_file_leaving_lladdr_for_active_drops_lladdr_first(host):
    h = host(agr(["re0", "re1"], proto="failover", lladdr=FIX))
    h.run(FILE + "agrmacpolicy active\n", dry_run=True)
    assert h.printed == ["agrconfig agr0 -lladdr", "agrconfig agr0 agrmacpolicy active"]
    h = host(agr(["re0", "re1"], proto="failover", mac_policy="active"))
    h.run(FILE + f"lladdr {FIX}\n", dry_run=True)
    assert h.printed == ["agrconfig agr0 agrmacpolicy same", f"agrconfig agr0 lladdr {FIX}"]
    h = host(agr(["re0", "re1"], proto="failover", lladdr=FIX))
    h.run(FILE + "agrmacpolicy follow\n", dry_run=True)
    assert h.printed == ["agrconfig agr0 agrmacpolicy follow", "agrconfig agr0 -lladdr"], "no hurry otherwise"
