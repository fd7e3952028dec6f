"""agrproto lacp|loadbalance|failover: the word and its link1/-link1 aliases (one setting), its
limits, the state file of releases before it, ifupdown; failover's selection of the active port
on a fake clock; the Failover aggregation's actions; the gratuitous ARP and unsolicited NA."""
import ipaddress
import json

import pytest

from agrconfig import options
from agrconfig.cli import ifupdown, render
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import SetOption
from agrconfig.errors import UsageError
from agrconfig.lacp import DistributingChanged
from agrconfig.worker import announce, statefile
from agrconfig.worker.failover import Failover, Selector
from agrconfig.worker.port import Member
from agrconfig.status import FailoverPortStatus, FailoverStatus, Role
from tests.unit.statuses import aggregate
from tests.unit.test_controls_words import ORIG, complete, refused, state

# -- the word ------------------------------------------------------------------------------------


@pytest.mark.parametrize("words, value", [
    (["agrproto", "lacp"], "lacp"), (["agrproto", "loadbalance"], "loadbalance"),
    (["agrproto", "failover"], "failover"), (["link1"], "loadbalance"), (["-link1"], "lacp"),
])
def test_agrproto_and_its_aliases_are_one_setting(words, value):
    (op,) = parse_words(words)
    assert op == SetOption("proto", value, words[0])
    # Files and -n say it one way, whichever word set it.
    assert op.words() == ["agrproto", value]


@pytest.mark.parametrize("words, message", [
    (["agrproto"], "^agrproto: missing lacp, loadbalance, failover or slb"),
    (["agrproto", "roundrobin"], "^agrproto: 'roundrobin' is not lacp, loadbalance, failover or slb"),
    (["agrproto", "LACP"], "^agrproto: 'LACP' is not"),
    (["link1", "yes"], "^yes: unknown word"),
])
def test_bad_agrproto_is_a_usage_error(words, message):
    with pytest.raises(UsageError, match=message):
        parse_words(words)


@pytest.mark.parametrize("words", [["agr0", "agrproto", "active-backup"], ["agr0", "create", "agrproto"],
                                   ["-n", "agr0", "agrproto", "static"]])
def test_bad_agrproto_exits_1_and_changes_nothing(words, monkeypatch, capsys):
    assert refused(words, monkeypatch, capsys).startswith("agrconfig: agrproto: ")


def test_the_link1_flag_shows_loadbalance_only():
    link = type("Link", (), {"flags": 0, "type": 1})()
    for proto, shown in (("lacp", 0), ("loadbalance", 0x2000), ("failover", 0)):
        ws = aggregate({"flags": {**options.defaults(), "proto": proto}})
        assert render.bsd_flags(link, ws) & 0x2000 == shown, proto


def test_a_state_file_from_before_agrproto_is_read():
    for link1, proto in ((True, "loadbalance"), (False, "lacp")):
        saved = state([], {"link1": link1, "link0": True})
        statefile.validate(saved, "agr0")
        assert saved["flags"] == {"proto": proto, "link0": True}
    with pytest.raises(statefile.BadState):
        statefile.validate(state([], {"link1": "yes"}), "agr0")
    with pytest.raises(statefile.BadState):
        statefile.validate(state([], {"proto": "static"}), "agr0")


def test_ifupdown_reads_agr_proto_and_the_old_agr_link1():
    assert ifupdown.stanza({"IF_AGR_PROTO": "failover"}) == ([], ["agrproto", "failover"])
    assert ifupdown.stanza({"IF_AGR_LINK1": "yes"}) == ([], ["link1"])
    assert ifupdown.stanza({"IF_AGR_LINK1": "no"}) == ([], ["-link1"])
    with pytest.raises(UsageError):
        ifupdown.stanza({"IF_AGR_LINK1": "maybe"})


def test_completion_offers_agrproto_and_its_values():
    assert "agrproto" in complete("agr0", "")
    assert complete("agr0", "agrproto", "") == ["lacp", "loadbalance", "failover", "slb"]


# -- selection on a fake clock -------------------------------------------------------------------

def selector(*ports, wtr=0.0, now=0.0):
    """ports: (number, priority, up)."""
    s = Selector(wtr)
    s.start(now, ports)
    return s


def test_the_best_priority_then_the_lowest_number_is_active():
    assert selector((5, 0x8000, True), (3, 0x8000, True)).active == 3
    assert selector((5, 10, True), (3, 0x8000, True)).active == 5
    assert selector((5, 10, False), (3, 0x8000, True)).active == 3
    assert selector((5, 10, False), (3, 0x8000, False)).active is None


def test_the_next_takes_over_on_carrier_loss_and_nothing_moves_back_on_equal_priority():
    s = selector((3, 0x8000, True), (5, 0x8000, True), (7, 0x8000, True))
    assert s.set_up(1.0, 3, False) == (3, 5)
    assert s.role(3) == "down" and s.role(5) == "active" and s.role(7) == "standby"
    assert s.set_up(2.0, 3, True) is None, "sticky: the port with the lower number does not take it back"
    assert s.active == 5
    assert s.set_up(3.0, 5, False) == (5, 3)
    assert s.set_up(4.0, 3, False) == (3, 7)
    assert s.set_up(5.0, 7, False) == (7, None)
    assert s.active is None


def test_a_better_port_takes_back_at_once_without_wtr():
    s = selector((3, 10, True), (5, 20, True))
    assert s.set_up(1.0, 3, False) == (3, 5)
    assert s.set_up(2.0, 3, True) == (5, 3)
    assert s.next_deadline() is None


def test_a_better_port_takes_back_after_its_wait_to_restore():
    s = selector((3, 10, True), (5, 20, True), wtr=30.0)
    s.set_up(1.0, 3, False)
    assert s.set_up(2.0, 3, True) is None and s.active == 5
    assert s.next_deadline() == 32.0 and s.wait_left(12.0, 3) == 20.0
    assert s.select(31.9) is None
    assert s.select(32.0) == (5, 3)
    assert s.next_deadline() is None and s.wait_left(33.0, 3) == 0.0


def test_a_flap_restarts_the_wait():
    s = selector((3, 10, True), (5, 20, True), wtr=30.0)
    s.set_up(1.0, 3, False)
    s.set_up(2.0, 3, True)
    s.set_up(20.0, 3, False)
    assert s.next_deadline() is None, "down: nothing to wait for"
    s.set_up(25.0, 3, True)
    assert s.select(32.0) is None, "the first wait would have ended here"
    assert s.next_deadline() == 55.0
    assert s.select(55.0) == (5, 3)


def test_with_no_port_ready_a_waiting_port_is_used_at_once():
    s = selector((3, 10, True), (5, 20, True), wtr=30.0)
    s.set_up(1.0, 3, False)
    s.set_up(1.0, 5, False)
    assert s.active is None
    assert s.set_up(2.0, 5, True) == (None, 5), "an outage is not made longer"
    assert s.set_up(3.0, 3, True) is None, "the better port waits: one is carrying"
    assert s.select(33.0) == (5, 3)


def test_a_port_attached_later_is_sticky_too():
    s = selector((5, 100, True))
    assert s.add(1.0, 3, 100, True) is None and s.active == 5
    assert s.add(1.0, 7, 99, True) == (5, 7)
    assert s.add(1.0, 9, 1, False) is None


def test_a_priority_change_moves_only_to_a_strictly_better_port():
    s = selector((3, 100, True), (5, 100, True))
    assert s.set_priority(1.0, 5, 100) is None
    assert s.set_priority(1.0, 3, 200) == (3, 5)
    assert s.set_priority(1.0, 3, 100) is None, "equal again: sticky"
    assert s.remove(2.0, 5) == (5, 3)
    assert s.remove(2.0, 3) == (3, None)


# -- the aggregation's actions -------------------------------------------------------------------

class FakePort:
    def __init__(self, index, carrier=True, prio=0x8000):
        self.index, self.carrier, self.options = index, carrier, {"port_priority": prio}
        self.up = carrier


def failover(*ports):
    """The aggregation, the Outputs it gave, and the moves it announced (the ports)."""
    outs, moves = [], []
    agg = Failover(outs.append, moves.append)
    agg.start(0.0, list(ports), {})
    return agg, outs, moves


def test_failover_distributes_and_collects_on_the_active_port_only():
    agg, outs, moves = failover(FakePort(3), FakePort(5))
    assert agg.sets([]) == (frozenset({3}), frozenset({3}))
    assert outs[-1].events == [DistributingChanged((3,), (3,))] and outs[-1].frames == []
    assert moves == [3], "announced when the first port becomes active"
    agg.set_carrier(1.0, 3, False)
    assert agg.sets([]) == (frozenset({5}), frozenset({5}))
    assert moves == [3, 5], "announced from the new port"
    n = len(outs)
    agg.set_carrier(2.0, 3, True)
    assert len(outs) == n and moves == [3, 5], "no move, nothing to do"
    agg.set_carrier(3.0, 5, False)
    agg.set_carrier(3.0, 3, False)
    assert agg.sets([]) == (frozenset(), frozenset())
    assert outs[-1].frames == [] and outs[-1].events == [DistributingChanged((), ())]
    assert moves == [3, 5, 3], "back to 3, then no port to announce from"


def test_failover_wait_to_restore_through_the_timer():
    agg, outs, _moves = failover(FakePort(3, prio=1), FakePort(5, prio=2))
    agg.configure(0.0, {**options.defaults(), "wtr_time": 10})
    agg.set_carrier(1.0, 3, False)
    agg.set_carrier(2.0, 3, True)
    assert agg.get_timer() == 12.0 and agg.sets([])[0] == {5}
    agg.handle_timer(11.0)
    assert agg.sets([])[0] == {5}
    agg.handle_timer(12.0)
    assert agg.sets([])[0] == {3} and agg.get_timer() is None
    assert agg.port_status(5) == {"failover": FailoverPortStatus(Role.STANDBY, 0.0)}
    assert agg.status_extra() == {"failover": FailoverStatus(active=3, wtr=10)}
    assert agg.port_status(5)["failover"].to_json() == {"role": "standby", "wtr_left": 0.0}
    assert agg.status_extra()["failover"].to_json() == {"active": 3, "wtr": 10}


def test_status_text_and_json_of_failover():
    ws = {"protocol": "failover", "datapath": "relay", "flags": {**options.defaults(), "proto": "failover"},
          "failover": {"active": 5, "wtr": 0},
          "ports": [{"name": name, "index": index, "flags": bits, "carrier": True,
                     "original_mac": "02:00:00:00:00:09", "counters": {},
                     "options": {"port_priority": 0x8000}, "failover": {"role": role, "wtr_left": 0.0}}
                    for name, index, bits, role in (("re0", 3, 0, "standby"), ("re1", 5, 3, "active"))]}
    ws = aggregate(ws)
    text = render.agr_lines(ws)
    assert text[0].startswith("\tagr: failover (no LACP), active re1;")
    assert text[2] == "\t\tstandby, priority 0x8000,3" and text[4] == "\t\tactive, priority 0x8000,5"
    doc = render.json_doc({"ifname": "agr0", "agr": ws})
    assert doc["linkinfo"]["info_data"]["mode"] == "active-backup"
    assert doc["linkinfo"]["info_data"]["active_slave"] == "re1"
    assert [p["state"] for p in doc["agrports"]] == ["backup", "active"]


# -- announcements -------------------------------------------------------------------------------

MAC = bytes.fromhex("020000000a01")


def test_gratuitous_arp_and_unsolicited_na_decode_as_such():
    import scapy.all as scapy   # in the test extra: missing, the test fails
    garp, na = announce.frames(MAC, ["192.0.2.10", "2001:db8::10", "fe80::1%agr0"])[:2]
    p = scapy.Ether(garp)
    assert p.dst == "ff:ff:ff:ff:ff:ff" and p.src == "02:00:00:00:0a:01"
    assert p[scapy.ARP].op == 1 and p[scapy.ARP].psrc == p[scapy.ARP].pdst == "192.0.2.10"
    assert p[scapy.ARP].hwsrc == "02:00:00:00:0a:01"
    q = scapy.Ether(na)
    assert q.dst == "33:33:00:00:00:01" and q[scapy.IPv6].dst == "ff02::1" and q[scapy.IPv6].hlim == 255
    adv = q[scapy.ICMPv6ND_NA]
    assert adv.tgt == "2001:db8::10" and adv.O == 1 and adv.S == 0 and adv.R == 0
    assert q[scapy.ICMPv6NDOptDstLLAddr].lladdr == "02:00:00:00:0a:01"
    # The checksum scapy computes is the one we sent.
    sent = adv.cksum
    del adv.cksum
    assert scapy.Ether(bytes(q))[scapy.ICMPv6ND_NA].cksum == sent


def test_one_announcement_per_address():
    out = announce.frames(MAC, ["192.0.2.10", "192.0.2.11", "fe80::1"])
    assert [f[12:14] for f in out] == [b"\x08\x06", b"\x08\x06", b"\x86\xdd"]
    assert announce.frames(MAC, []) == []
    assert ipaddress.ip_address("192.0.2.11").packed in out[1]


def test_a_port_option_reaches_the_failover_rank():
    port = Member(dict(ORIG))
    port.options["port_priority"] = 1
    agg, _outs, _moves = failover(FakePort(3))
    port.carrier = True
    agg.add_port(0.0, port)
    assert agg.selector.active == ORIG["index"]
    json.dumps(agg.status_extra()["failover"].to_json())


def test_monitor_until_distributing_counts_a_standby_port():
    from agrconfig.cli.monitor import satisfied
    def st(*ports):
        return aggregate({"ports": ports})
    active, standby = {"role": "active", "wtr_left": 0.0}, {"role": "standby", "wtr_left": 0.0}
    assert satisfied(st({"flags": 3, "failover": active}, {"flags": 0, "failover": standby}), "distributing")
    assert satisfied(st({"flags": 3, "failover": active}, {"flags": 0, "failover": standby}), "collecting")
    assert not satisfied(st({"flags": 3, "failover": active}, {"flags": 0, "failover": {**standby, "role": "down"}}),
                         "distributing")
    assert not satisfied(st({"flags": 3}, {"flags": 0}), "distributing")
    # agrmaxports' standby port, too (selected STANDBY, limited); not one that is merely waiting
    assert satisfied(st({"flags": 3}, {"flags": 0, "lacp": {"limited": True}}), "distributing")
    assert not satisfied(st({"flags": 3}, {"flags": 0, "lacp": {"limited": False}}), "distributing")
    assert not satisfied(st(), "distributing"), "no port at all"


# -- the eBPF path's hand-over on a move ---------------------------------------------------------

class FakeFast:
    drains, no_drain = False, "fake"         # no join map: a join passes, then drops

    def __init__(self):
        self.distributing, self.collecting, self.modes, self.mode = [], set(), [], "normal"

    def set_ports(self, indexes):
        self.distributing = list(indexes)

    def set_collecting(self, indexes):
        self.collecting = set(indexes)

    def set_mode(self, mode):
        self.modes.append(mode)
        self.mode = mode

    unsettled = False                        # no port attached here: no tcx step left

    def settle(self):
        pass


class FakeRelay:
    hold_until = 0.0                         # its hold (of a join) ends then

    def set_ports(self, *args):
        pass

    def request_drain(self, quiet=0.0):
        return 1


def test_a_move_after_carrier_loss_needs_no_hand_over_but_one_to_a_live_port_does():
    from agrconfig.worker.datapath import EbpfPath
    path = EbpfPath("agr0", FakeRelay(), FakeFast())
    p0, p1 = FakePort(3), FakePort(5)
    path.set_ports([p0, p1], {3}, {3})
    assert path.fast.modes == [], "the first port: nothing to hand over"
    p0.carrier = False                       # failover moves because p0's cable is cut
    path.set_ports([p0, p1], {5}, {5})
    assert path.fast.modes == [] and path.fast.distributing == [5], "p0's queue is gone: redirect at once"
    p0.carrier = True                        # p0 back with a better priority: p1 may hold older frames
    path.set_ports([p0, p1], {3}, {3})
    assert path.fast.modes == ["pass"]
    path.handle_timer(10.0)                  # the loop's turn: the hand-over's timeout is set
    assert path.get_timer() == 10.0 + path.JOIN_TIMEOUT


def test_the_carrier_poll_reads_the_link_now():
    from agrconfig.worker.carrierpoll import POLL, CarrierPoll
    poll = CarrierPoll()
    try:
        assert poll.link_ok("lo") is True
        assert poll.link_ok("nosuchif0") is None, "not asked: netlink decides"
        assert poll.due(5.0) and not poll.due(5.0 + POLL / 2) and poll.due(5.0 + POLL)
    finally:
        poll.close()
