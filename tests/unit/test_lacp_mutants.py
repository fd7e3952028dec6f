"""Behaviours of the LACP core that a mutation audit (and mutmut, tests/MUTATION.md) found
unchecked: each test here fails when the product is changed in the way its docstring names."""
import math
from agrconfig.record import replace

import pytest

from agrconfig.lacp import LacpCore, PartnerChanged, Transmit
from agrconfig.lacp.rx import Rx
from agrconfig.lacp import pdu as P
from agrconfig.lacp.port import Timer, port_key
from tests.unit.lacp_wire import mac
from tests.unit.test_lacp_timers import LIVE, Peer, assert_settled


def lacpdus(actions, pid=None):
    return [P.decode(P.parse_frame(x.frame)[1]) for x in actions
            if isinstance(x, Transmit) and (pid is None or x.port_id == pid)]


def converged(fast=True, ports=(1,), state=LIVE, strict=True):
    """A core whose ports have a live Peer answering every second until t=5."""
    a = LacpCore(mac(1), fast_timeout=fast, strict=strict)
    peer = Peer(a, state=state)
    for pid in ports:
        a.add_port(0.0, pid, mac(10 + pid), carrier=True)
    for t in range(6):
        a.handle_timer(float(t))
        assert_settled(a)
        for pid in ports:
            peer.say(float(t), pid)
            assert_settled(a)
    return a, peer


def test_the_peer_converges():
    a, _ = converged(ports=(1, 2))
    assert a.distributing() == (1, 2)


@pytest.mark.parametrize("field,value", [("port_priority", 0x8001), ("key", 0x0777)])
def test_update_ntt_answers_a_stale_identifier_at_once(field, value):
    """update_NTT removed from step_rx: a partner's stale copy of our port priority or key
    would wait for our next periodic LACPDU (30 s with the long timeout)."""
    # The peer is not in sync, so a stale copy changes nothing else (no mux move speaks for us).
    a, peer = converged(fast=False, state=LIVE & ~P.SYNC)
    assert a.port_status(1)["mux_state"] == "ATTACHED"
    assert a.collecting() == () and a.port_status(1)["collecting"] is False, "attached is not collecting"
    a.handle_timer(10.0)
    assert lacpdus(peer.say(10.0, 1)) == [], "a true copy of us asks for nothing"
    stale = replace(a.ports[1].actor_info(), **{field: value})
    (answer,) = lacpdus(peer.say(10.5, 1, view=stale))
    assert answer.actor == a.ports[1].actor_info()


def test_a_new_partner_on_a_port_is_selected_afresh():
    """update_Selected removed: a port whose partner changes would go on distributing to the
    new one without detaching and waiting out the aggregate wait again."""
    a, peer = converged()
    assert a.distributing() == (1,)
    other = Peer(a, system=mac(3))
    out = other.say(5.5, 1)
    mux = [(x.old, x.new) for x in out if type(x).__name__ == "Transition" and x.machine == "mux"]
    assert ("COLLECTING_DISTRIBUTING", "ATTACHED") in mux and ("ATTACHED", "DETACHED") in mux
    assert a.port_status(1)["mux_state"] == "WAITING" and a.distributing() == ()
    assert a.port_status(1)["partner_system"] == "02:00:00:00:00:03"


@pytest.mark.parametrize("field,value", [("port", 9), ("port_priority", 1), ("system_priority", 1)])
def test_the_same_partner_on_another_port_is_selected_afresh(field, value):
    """update_Selected compares all five identifiers, not only the system and key."""
    a, peer = converged()
    peer.say(5.5, 1, **{field: value})
    assert a.port_status(1)["mux_state"] == "WAITING" and a.distributing() == ()


def test_a_partner_turning_individual_is_selected_afresh():
    a, peer = converged()
    peer.say(5.5, 1, state=LIVE & ~P.AGGREGATION)
    assert a.port_status(1)["mux_state"] == "WAITING" and a.distributing() == ()


@pytest.mark.parametrize("field,value", [("port", 9), ("port_priority", 1), ("system", mac(7)),
                                         ("system_priority", 1), ("key", 0x0777)])
def test_a_partner_in_sync_with_someone_else_is_not_in_sync(field, value):
    """recordPDU: the partner's Synchronization counts only when its view of us matches
    (else a port would distribute to a partner that has not aggregated with us)."""
    a, peer = converged()
    stale = replace(a.ports[1].actor_info(), **{field: value})
    peer.say(5.5, 1, view=stale)
    st = a.port_status(1)
    assert not st["partner_state"] & P.SYNC
    assert st["mux_state"] == "ATTACHED" and a.distributing() == () and a.collecting() == ()


def test_a_partner_that_sees_us_individual_is_not_in_sync():
    a, peer = converged()
    me = a.ports[1].actor_info()
    peer.say(5.5, 1, view=replace(me, state=me.state & ~P.AGGREGATION))
    assert not a.port_status(1)["partner_state"] & P.SYNC and a.distributing() == ()


def test_an_individual_partner_is_in_sync_whatever_it_says_of_us():
    """An individual partner is its own aggregation: its Synchronization stands as sent."""
    a, peer = converged(state=LIVE & ~P.AGGREGATION)
    assert a.port_status(1)["partner_state"] & P.SYNC and a.distributing() == (1,)
    peer.say(5.5, 1, view=replace(a.ports[1].actor_info(), key=0x0777), state=LIVE & ~P.AGGREGATION)
    assert a.port_status(1)["partner_state"] & P.SYNC and a.distributing() == (1,)


def test_distributing_waits_for_the_partner_collecting():
    """Coupled control collects and distributes together, but frames leave only once the
    partner collects too: distributing() must not list a port whose partner does not."""
    a, peer = converged(state=LIVE & ~P.COLLECTING & ~P.DISTRIBUTING)
    assert a.port_status(1)["mux_state"] == "COLLECTING_DISTRIBUTING"
    assert a.collecting() == (1,) and a.distributing() == ()
    assert not a.port_status(1)["distributing"]
    peer.say(5.5, 1, state=LIVE)
    assert a.distributing() == (1,) and a.port_status(1)["distributing"]


def test_a_partner_out_of_sync_stops_distributing_at_once():
    a, peer = converged()
    out = peer.say(5.5, 1, state=LIVE & ~P.SYNC)
    assert a.distributing() == () and a.collecting() == ()
    assert a.port_status(1)["collecting"] is False and a.port_status(1)["distributing"] is False
    assert [x for x in out if type(x).__name__ == "DistributingChanged"][-1].ports == ()
    assert lacpdus(out, 1) and not lacpdus(out, 1)[0].actor.state & P.COLLECTING, "we tell it at once"


def test_status_is_the_whole_picture():
    """status() and port_status() are what `agrconfig agr0` shows: every field, by value."""
    a, peer = converged()
    assert a.status() == {
        "system": "02:00:00:00:00:01", "system_priority": 0x8000, "fast_timeout": True, "strict": True,
        "active": True, "fallback_port": None,
        "aggregator": {"actor_key": 0x0100, "partner_system": "02:00:00:00:00:02", "partner_key": 0x0100,
                       "ports": [1]},
        "ports": [{
            "port_id": 1, "actor_state": 0x3F,
            "actor_state_str": ["ACTIVITY", "TIMEOUT", "AGGREGATION", "SYNC", "COLLECTING", "DISTRIBUTING"],
            "partner_state": 0x3D,
            "partner_state_str": ["ACTIVITY", "AGGREGATION", "SYNC", "COLLECTING", "DISTRIBUTING"],
            "actor_key": 0x0100, "actor_port_priority": 0x8000,
            "partner_system": "02:00:00:00:00:02", "partner_system_priority": 0x8000, "partner_key": 0x0100,
            "partner_port": 101, "partner_port_priority": 0x8000, "selected": "SELECTED",
            "mux_state": "COLLECTING_DISTRIBUTING", "rx_state": "CURRENT", "periodic_state": "SLOW_PERIODIC",
            "actor_churn_state": "NO_ACTOR_CHURN", "partner_churn_state": "NO_PARTNER_CHURN",
            "carrier": True, "collecting": True, "distributing": True, "standby": False, "limited": False,
            "fallback": False, "wtr_state": "RESTORED", "wtr_left": None, "aggregatable": True,
            "looped": False,
            "counters": {"lacpdu_rx": 6, "lacpdu_tx": 3, "lacpdu_err": 0, "marker_rx": 0, "marker_tx": 0,
                         "marker_resp_rx": 0, "loop": 0},
        }],
    }


def test_status_of_an_individual_aggregation_and_of_none():
    a = LacpCore(mac(1), system_priority=7, fast_timeout=False, strict=False, active=False)
    assert a.status() == {"system": "02:00:00:00:00:01", "system_priority": 7, "fast_timeout": False,
                          "strict": False, "active": False, "fallback_port": None, "ports": [],
                          "aggregator": {"actor_key": None, "partner_system": None, "partner_key": None,
                                         "ports": []}}
    a.add_port(0.0, 3, mac(13), speed=100, duplex_full=False, carrier=True)   # half duplex: individual
    assert a.status()["aggregator"] == {"actor_key": 0x8102, "partner_system": "00:00:00:00:00:00",
                                        "partner_key": 0, "ports": [3]}
    st = a.port_status(3)
    assert st["actor_key"] == 0x8102 and not st["aggregatable"] and st["selected"] == "SELECTED"


def test_a_port_of_another_aggregation_is_standby_in_status():
    a, peer = converged(ports=(1, 2))
    Peer(a, system=mac(3)).say(5.5, 2)
    assert a.port_status(2)["standby"] and a.port_status(2)["selected"] == "STANDBY"
    assert not a.port_status(1)["standby"] and a.status()["aggregator"]["ports"] == [1]


def test_marker_generator_and_responses():
    """start_marker: a Marker Information from our port, numbered 1, 2, ...; its Response
    (same number) settles it; counters count each PDU once."""
    a = LacpCore(mac(1))
    a.add_port(0.0, 4, mac(44), carrier=True)
    sent = []
    for t in (1.0, 2.0):
        (x,) = a.start_marker(t, 4)
        assert x.port_id == 4
        src, payload = P.parse_frame(x.frame)
        assert src == mac(44)
        sent.append(P.decode(payload))
    assert sent == [P.MarkerPdu(False, 4, mac(1), 1), P.MarkerPdu(False, 4, mac(1), 2)]
    assert a.ports[4].marker_pending == {1: 1.0, 2: 2.0}
    assert a.start_marker(3.0, 99) == [], "no such port"
    a.receive(3.0, 4, P.build_frame(mac(99), P.encode(P.MarkerPdu(True, 4, mac(1), 2))))
    assert a.ports[4].marker_pending == {1: 1.0}
    a.receive(3.0, 4, P.build_frame(mac(99), P.encode(P.MarkerPdu(True, 4, mac(1), 1))))
    assert a.ports[4].marker_pending == {}
    for tid in (5, 6):
        a.receive(3.0, 4, P.build_frame(mac(99), P.encode(P.MarkerPdu(False, 7, mac(9), tid))))
    c = a.port_status(4)["counters"]
    assert (c["marker_tx"], c["marker_rx"], c["marker_resp_rx"]) == (4, 2, 2)
    a.ports[4].marker_tid = 0xFFFFFFFF
    (x,) = a.start_marker(4.0, 4)
    assert P.decode(P.parse_frame(x.frame)[1]).transaction_id == 0, "the number wraps at 32 bits"


def test_defaulting_drops_the_partner_and_selects_afresh():
    """recordDefault: the partner becomes the administrative default (a PartnerChanged), the
    port is selected afresh (it detaches), and it says DEFAULTED, no longer EXPIRED."""
    a, peer = converged(strict=False)
    out = a.handle_timer(8.0) + a.handle_timer(11.0)   # the peer fell silent after t=5
    assert a.port_status(1)["rx_state"] == "DEFAULTED"
    changed = [x for x in out if type(x).__name__ == "PartnerChanged"]
    assert [(x.port_id, x.system, x.key) for x in changed] == [(1, bytes(6), 0)]
    mux = [(x.old, x.new) for x in out if type(x).__name__ == "Transition" and x.machine == "mux"]
    assert ("ATTACHED", "DETACHED") in mux
    state = a.port_status(1)["actor_state"]
    assert state & P.DEFAULTED and not state & P.EXPIRED
    # Partner_Admin_*: nobody, all zero, in sync and collecting (optimistic), short timeout.
    (pdu,) = lacpdus(a.handle_timer(12.0), 1)
    assert pdu.partner == P.LacpInfo(0, bytes(6), 0, 0, 0, 0x3E)
    # Defaulted again later (the default partner stays): no new PartnerChanged, no detaching.
    a.handle_timer(13.0)
    peer.say(13.0, 1, system=bytes(6), key=0, state=P.ACTIVITY)    # a partner that looks like the default
    out = a.handle_timer(16.0) + a.handle_timer(19.0)
    assert a.port_status(1)["rx_state"] == "DEFAULTED"
    assert not [x for x in out if type(x).__name__ == "PartnerChanged"]


def test_snapshot_keeps_attached_and_distributing_current_ports_not_expired_ones():
    a, peer = converged(ports=(1, 2, 3), state=LIVE)
    peer.say(5.5, 2, state=LIVE & ~P.SYNC)              # 2: attached, the partner not in sync
    a.handle_timer(8.4)                                 # 3: silent since 5: EXPIRED, attached
    peer.say(8.4, 1)
    peer.say(8.4, 2, state=LIVE & ~P.SYNC)
    assert [a.port_status(p)["mux_state"] for p in (1, 2, 3)] == ["COLLECTING_DISTRIBUTING", "ATTACHED", "ATTACHED"]
    assert a.port_status(3)["rx_state"] == "EXPIRED"
    snap = a.snapshot()
    assert set(snap) == {1, 2}
    assert snap[1].to_json() == {"partner": [0x8000, "020000000002", 0x0100, 0x8000, 101, 0x3D],
                         "mux": "COLLECTING_DISTRIBUTING"}
    assert snap[2].mux == "ATTACHED"
    b = LacpCore(mac(1))
    b.add_port(0.0, 4, mac(14), carrier=True)           # WAITING: nothing to keep
    assert b.snapshot() == {}


def test_a_resumed_port_says_it_is_current_at_once():
    a, peer = converged()
    snap = a.snapshot()
    a2 = LacpCore(mac(1), fast_timeout=True)
    out = a2.add_port(10.0, 1, mac(11), carrier=True, resume=snap[1])
    (pdu,) = lacpdus(out, 1)
    assert pdu.actor.state == LIVE | P.TIMEOUT, "in sync, collecting, distributing; not defaulted or expired"
    assert pdu.partner == P.LacpInfo(0x8000, mac(2), 0x0100, 0x8000, 101, 0x3D)


def test_a_new_system_mac_is_announced_and_selects_every_port_afresh():
    a, peer = converged(ports=(1, 2))
    out = a.set_system_mac(5.5, mac(9))
    assert sorted(x.port_id for x in out if isinstance(x, Transmit)) == [1, 2]
    assert all(p.actor.system == mac(9) for p in lacpdus(out))
    for pid in (1, 2):
        peer.say(5.5, pid)                               # the peer knows us by the new id at once
    assert a.distributing() == (), "selected afresh: the aggregate wait again"
    for t in (6.0, 7.0):
        a.handle_timer(t)
        for pid in (1, 2):
            peer.say(t, pid)
    a.handle_timer(7.4)
    assert a.distributing() == ()
    a.handle_timer(7.6)
    assert a.distributing() == (1, 2)


def test_a_new_system_mac_is_announced_on_detached_ports_too():
    a = LacpCore(mac(1), fast_timeout=True)
    a.add_port(0.0, 1, mac(11), carrier=True)
    a.handle_timer(0.5)
    a.receive(0.5, 1, P.build_frame(mac(11), P.encode(P.Lacpdu(a.ports[1].actor_info(), a.ports[1].actor_info()))))
    assert a.port_status(1)["looped"] and a.port_status(1)["mux_state"] == "DETACHED"
    out = a.set_system_mac(0.6, mac(9))
    assert [p.actor.system for p in lacpdus(out, 1)] == [mac(9)]


def test_optimistic_default_partner_is_one_aggregatable_fast_partner():
    """-lacpstrict: every silent port distributes, all in one aggregation, and is polled fast."""
    a = LacpCore(mac(1), fast_timeout=False, strict=False)
    for pid in (1, 2):
        a.add_port(0.0, pid, mac(10 + pid), carrier=True)
    out = []
    for t in range(1, 100):
        out += a.handle_timer(float(t))
    assert a.distributing() == (1, 2)
    assert a.port_status(1)["partner_state"] == P.TIMEOUT | P.AGGREGATION | P.SYNC | P.COLLECTING | P.DISTRIBUTING
    assert len(lacpdus(out, 1)) >= 98, "polled every second"


def test_an_illegal_transition_is_named():
    a = LacpCore(mac(1))
    a.add_port(0.0, 1, mac(11))
    with pytest.raises(AssertionError, match="illegal rx transition PORT_DISABLED -> INITIALIZE"):
        Rx.enter(a.ports[1], "INITIALIZE", [])


def test_an_individual_port_matches_a_partner_that_sees_it_individual():
    """A half-duplex port is individual: a partner in sync that sees it so is in sync."""
    a = LacpCore(mac(1), fast_timeout=True)
    peer = Peer(a)
    a.add_port(0.0, 1, mac(11), speed=100, duplex_full=False, carrier=True)
    for t in range(6):
        a.handle_timer(float(t))
        peer.say(float(t), 1)
    assert not a.ports[1].actor_info().state & P.AGGREGATION
    assert a.port_status(1)["partner_state"] & P.SYNC and a.distributing() == (1,)


def test_flags_are_false_not_just_falsy_in_status():
    a, peer = converged()
    a.set_carrier(5.5, 1, False)
    st = a.port_status(1)
    assert st["collecting"] is False and st["distributing"] is False and st["carrier"] is False


def test_unknown_ports_are_ignored():
    a = LacpCore(mac(1))
    assert a.set_carrier(1.0, 9, True) == [] and a.remove_port(1.0, 9) == []
    assert a.receive(1.0, 9, b"") == [] and a.start_marker(1.0, 9) == []


def test_counters_count_each_lacpdu_and_each_echo_once():
    a, peer = converged()                                  # six LACPDUs from the peer
    assert a.port_status(1)["counters"]["lacpdu_rx"] == 6
    me = a.ports[1].actor_info()
    echo = P.build_frame(mac(11), P.encode(P.Lacpdu(me, me)))
    for _ in range(3):
        a.receive(5.5, 1, echo)
    c = a.port_status(1)["counters"]
    assert (c["lacpdu_rx"], c["loop"], c["lacpdu_err"]) == (9, 3, 0)


def test_partner_changed_names_the_port_and_the_new_partner():
    a = LacpCore(mac(1), fast_timeout=True)
    a.add_port(0.0, 2, mac(12), carrier=True)
    peer = Peer(a, system=mac(5), key=0x0123)
    out = peer.say(0.5, 2)
    assert [x for x in out if type(x).__name__ == "PartnerChanged"] == [PartnerChanged(2, mac(5), 0x0123)]
    out = peer.say(0.7, 2, port=7, state=LIVE & ~P.SYNC)   # same system and key: no news
    assert not [x for x in out if type(x).__name__ == "PartnerChanged"]


def test_ports_to_an_individual_partner_do_not_aggregate():
    """A partner that says it is individual is an aggregation of one link each: of two such
    links to the same partner only one distributes (both would, as one aggregation, if the
    Aggregation bit were ignored)."""
    a, peer = converged(ports=(1, 2), state=LIVE & ~P.AGGREGATION)
    assert len(a.distributing()) == 1
    assert sorted(a.port_status(p)["selected"] for p in (1, 2)) == ["SELECTED", "STANDBY"]


@pytest.mark.parametrize("speed,duplex,key", [
    (None, None, 0x0100), (0, True, 0x0100), (-1, True, 0x0100), (0xFFFFFFFF, True, 0x0100),   # unknown
    (1000.0, True, 0x0100), ("1000", True, 0x0100),       # not an integer: unknown too
    (10, True, 0x0101), (1000, None, 0x0103), (100000, True, 0x010C), (800000, True, 0x010F),
    (1, True, 0x4201), (12346, True, 0x723A), (16383, True, 0x4200), (16383, False, 0xC200),  # unusual
])
def test_port_keys(speed, duplex, key):
    assert port_key(speed, duplex) == key


def test_a_timer_started_at_a_huge_time_is_not_due_at_once():
    t = Timer()
    t.start(2.0 ** 53, 1.0)           # 2**53 + 1.0 == 2**53 in floating point
    assert t.deadline == math.nextafter(2.0 ** 53, math.inf) and not t.expired
    assert not t.advance(2.0 ** 53) and t.advance(t.deadline) and t.expired


def test_a_new_system_mac_restarts_the_aggregate_wait():
    a = LacpCore(mac(1), fast_timeout=True)
    peer = Peer(a)
    a.add_port(0.0, 1, mac(11), carrier=True)
    peer.say(0.0, 1)                                     # WAITING from 0: attached at 2 ...
    a.set_system_mac(1.0, mac(9))
    peer.say(1.0, 1)                                     # ... but a new id: waiting again from 1
    a.handle_timer(2.5)
    assert a.port_status(1)["mux_state"] == "WAITING"
    peer.say(2.5, 1)
    a.handle_timer(3.1)
    assert a.port_status(1)["mux_state"] == "COLLECTING_DISTRIBUTING"
