"""lacpfallback in the sans-IO core (issue 13; Open vSwitch's lacp-fallback-ab): while every port
with carrier is DEFAULTED, exactly one carries traffic as a plain link (best priority, then the
lowest port number); LACPDUs keep going out on every port; a valid LACPDU ends it. Fake clock."""
from agrconfig.lacp import LacpCore, Transmit
from agrconfig.lacp import pdu as P
from agrconfig.lacp.events import DistributingChanged
from agrconfig.lacp.snapshot import PortSnapshot
from tests.unit.lacp_wire import Wire, mac
from tests.unit.test_lacp_controls import run_clock
from tests.unit.test_lacp_timers import Peer, assert_settled


def alone(ports=(1, 2, 3), **kw):
    """A core whose ports have carrier and nobody speaking LACP at the far end."""
    a = LacpCore(mac(1), fallback=True, **kw)
    for p in ports:
        a.add_port(0.0, p, mac(10 + p), carrier=True)
    return a


def test_no_lacpdu_on_any_port_one_port_carries_traffic_after_the_timeout():
    a = alone()
    run_clock(a, 2.9)
    assert a.distributing() == () and a.fallback_port() is None, "expired, not yet defaulted"
    out = run_clock(a, 3.1)
    assert a.distributing() == (1,) and a.collecting() == (1,), "the lowest port number, and it alone"
    assert [x for _t, x in out if isinstance(x, DistributingChanged)] == [DistributingChanged((1,), (1,))]
    st = {p: a.port_status(p) for p in (1, 2, 3)}
    assert st[1]["fallback"] and not st[2]["fallback"] and not st[3]["fallback"]
    assert not st[2]["distributing"] and not st[2]["collecting"], "idle ports: no data either way"
    assert a.status()["fallback_port"] == 1
    # LACPDUs keep going out on every port (fast: a defaulted partner asks for short timeouts).
    out = run_clock(a, 10.0)
    assert {x.port_id for _t, x in out if isinstance(x, Transmit)} == {1, 2, 3}
    assert_settled(a)


def test_the_best_priority_wins_then_the_lowest_number():
    a = alone()
    a.set_port_priority(0.0, 3, 0x10)
    run_clock(a, 4.0)
    assert a.distributing() == (3,)
    a.set_port_priority(4.0, 2, 0x10)
    assert a.distributing() == (2,), "equal priorities: the lower number"


def test_carrier_loss_moves_the_traffic_to_the_next_port_and_back():
    a = alone()
    run_clock(a, 4.0)
    out = a.set_carrier(4.0, 1, False)
    assert a.distributing() == (2,)
    assert [x for x in out if isinstance(x, DistributingChanged)] == [DistributingChanged((2,), (2,))]
    # Port 1 comes back: EXPIRED for the short timeout (it may hear LACP yet), fallback stays
    # on port 2 meanwhile; once port 1 defaults too it is the best again.
    a.set_carrier(5.0, 1, True)
    assert a.distributing() == (2,)
    run_clock(a, 7.9)
    assert a.distributing() == (2,)
    run_clock(a, 8.1)
    assert a.distributing() == (1,)


def test_a_valid_lacpdu_ends_fallback_and_a_silent_partner_brings_it_back():
    a = alone(fast_timeout=True)
    run_clock(a, 4.0)
    assert a.distributing() == (1,)
    peer = Peer(a)
    peer.say(4.0, 2)
    assert a.fallback_port() is None and 1 not in a.distributing(), "LACP again: the fallback port stops"
    assert not a.port_status(1)["fallback"]
    for t in (4.5, 5.0, 5.5, 6.0, 6.5, 7.0):     # the partner speaks on port 2: it aggregates there
        run_clock(a, t)
        peer.say(t, 2)
    assert a.distributing() == (2,)
    run_clock(a, 7.0 + 3.0 + 3.0 + 0.1)          # silent: expired, then defaulted
    assert a.distributing() == (1,) and a.fallback_port() == 1


def test_an_lacpdu_that_is_our_own_does_not_end_fallback():
    # A loop is not a partner: our own LACPDUs are ignored and the port stays out of it.
    a = LacpCore(mac(1), fallback=True)
    w = Wire()
    w.join(a, 1, a, 2)
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.deliver(a, a.add_port(0.0, 2, mac(12), carrier=True))
    w.deliver(a, a.add_port(0.0, 3, mac(13), carrier=True))
    w.run(5, [a])
    assert a.fallback_port() == 3, "ports 1 and 2 see their own LACPDUs: looped, not candidates"


def test_off_nothing_distributes_and_turning_it_on_and_off_acts_at_once():
    a = LacpCore(mac(1))
    for p in (1, 2):
        a.add_port(0.0, p, mac(10 + p), carrier=True)
    run_clock(a, 10.0)
    assert a.distributing() == () and a.fallback_port() is None
    out = a.set_fallback(10.0, True)
    assert a.distributing() == (1,)
    assert [x for x in out if isinstance(x, DistributingChanged)] == [DistributingChanged((1,), (1,))]
    a.set_fallback(10.0, False)
    assert a.distributing() == () and a.collecting() == ()


def test_with_lacpstrict_off_fallback_still_means_one_port():
    # -lacpstrict alone uses every defaulted port (can loop on a switch without a LAG);
    # lacpfallback keeps it to one.
    a = alone(ports=(1, 2), strict=False)
    run_clock(a, 4.0)
    assert a.distributing() == (1,)
    a.set_fallback(4.0, False)
    run_clock(a, 8.0)
    assert a.distributing() == (1, 2)


def test_no_port_with_carrier_no_fallback():
    a = alone(ports=(1,))
    run_clock(a, 4.0)
    a.set_carrier(4.0, 1, False)
    assert a.fallback_port() is None and a.distributing() == ()


def restarted(a, now, ports=(1, 2, 3), through_json=True, **kw):
    """A new core (a restarted worker) that resumes a's ports from a's snapshot, as the state
    file carries it."""
    snap = a.snapshot()
    if through_json:
        snap = {p: PortSnapshot.from_json(s.to_json()) for p, s in snap.items()}
    b = LacpCore(mac(1), fallback=True, **kw)
    outs = [b.add_port(now, p, mac(10 + p), carrier=True, resume=snap.get(p)) for p in ports]
    return b, outs


def test_a_restarted_worker_carries_fallback_on_at_once():
    """The snapshot carries DEFAULTED ports: the plain link goes on carrying traffic, instead of
    waiting out the expiry (3 s) again."""
    a = alone()
    run_clock(a, 4.0)
    assert a.distributing() == (1,)
    snap = a.snapshot()
    assert set(snap) == {1, 2, 3}
    assert snap[1].to_json()["rx"] == "DEFAULTED" and snap[1].to_json()["mux"] == "ATTACHED"
    b, outs = restarted(a, 10.0)
    assert b.distributing() == (1,) and b.collecting() == (1,) and b.fallback_port() == 1
    assert [b.port_status(p)["rx_state"] for p in (1, 2, 3)] == ["DEFAULTED"] * 3
    # It never stops: no change of the distributing set while the clock runs on.
    changes = [x for _t, x in run_clock(b, 30.0) if isinstance(x, DistributingChanged)]
    assert changes == [] and b.distributing() == (1,)
    # And it still speaks LACP on every port, saying it is defaulted, from the first instant.
    sent = {x.port_id: P.decode(P.parse_frame(x.frame)[1]) for out in outs for x in out.frames}
    assert set(sent) == {1, 2, 3}
    assert all(pdu.actor.state & P.DEFAULTED and not pdu.actor.state & P.EXPIRED for pdu in sent.values())
    assert "DEFAULTED" in b.port_status(1)["actor_state_str"]
    assert_settled(b)


def test_without_the_defaulted_ports_a_restart_would_wait_the_timeouts_again():
    """What the snapshot spares: the same restart from no snapshot has no traffic for 3 s."""
    a = alone()
    run_clock(a, 4.0)
    b = LacpCore(mac(1), fallback=True)
    for p in (1, 2, 3):
        b.add_port(10.0, p, mac(10 + p), carrier=True)
    assert b.distributing() == ()
    run_clock(b, 12.9)
    assert b.distributing() == ()
    run_clock(b, 13.1)
    assert b.distributing() == (1,)


def test_a_partner_heard_after_the_restart_ends_fallback_as_before():
    a = alone(fast_timeout=True)
    run_clock(a, 4.0)
    b, _outs = restarted(a, 10.0, fast_timeout=True)
    Peer(b).say(10.5, 2)
    assert b.fallback_port() is None and 1 not in b.distributing()
    assert b.port_status(2)["rx_state"] == "CURRENT"


def test_optimistic_defaulted_ports_resume_distributing():
    """-lacpstrict without fallback: every defaulted port distributes, and goes on doing so."""
    a = LacpCore(mac(1), strict=False)
    for p in (1, 2):
        a.add_port(0.0, p, mac(10 + p), carrier=True)
    run_clock(a, 4.0)
    assert a.distributing() == (1, 2)
    snap = {p: PortSnapshot.from_json(s.to_json()) for p, s in a.snapshot().items()}
    assert {p: (s.rx, s.mux) for p, s in snap.items()} == {p: ("DEFAULTED", "COLLECTING_DISTRIBUTING") for p in (1, 2)}
    b = LacpCore(mac(1), strict=False)
    for p in (1, 2):
        b.add_port(10.0, p, mac(10 + p), carrier=True, resume=snap[p])
    assert b.distributing() == (1, 2)
    assert [x for _t, x in run_clock(b, 30.0) if isinstance(x, DistributingChanged)] == []
    assert_settled(b)


def test_a_defaulted_port_resumes_with_todays_administrative_partner():
    """The saved partner of a defaulted port is the defaults of its day: a restart with
    lacpstrict changed meanwhile takes the new ones, as recordDefault would."""
    a = LacpCore(mac(1), strict=False)
    a.add_port(0.0, 1, mac(11), carrier=True)
    run_clock(a, 4.0)
    b = LacpCore(mac(1), strict=True, fallback=True)
    b.add_port(10.0, 1, mac(11), carrier=True, resume=a.snapshot()[1])
    assert b.ports[1].partner == b.system.partner_admin()
    assert b.fallback_port() == 1


def test_a_port_without_carrier_at_the_restart_starts_afresh():
    a = alone()
    run_clock(a, 4.0)
    b = LacpCore(mac(1), fallback=True)
    b.add_port(10.0, 1, mac(11), carrier=False, resume=a.snapshot()[1])
    b.add_port(10.0, 2, mac(12), carrier=True, resume=a.snapshot()[2])
    assert b.port_status(1)["rx_state"] == "PORT_DISABLED"
    assert b.distributing() == (2,)
