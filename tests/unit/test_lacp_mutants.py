"""Behaviours of the LACP core that a mutation audit (and mutmut, tests/MUTATION.md) found
unchecked: each test here fails when the product is changed in the way its docstring names."""
from dataclasses import replace

import pytest

from agrconfig.lacp import LacpCore, Transmit
from agrconfig.lacp import pdu as P
from tests.unit.lacp_wire import mac
from tests.unit.test_lacp_timers import LIVE, Peer


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
        for pid in ports:
            peer.say(float(t), pid)
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
    assert [x for x in out if type(x).__name__ == "DistributingChanged"][-1].ports == ()
    assert lacpdus(out, 1) and not lacpdus(out, 1)[0].actor.state & P.COLLECTING, "we tell it at once"
