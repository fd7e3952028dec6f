"""lacpfallback in the sans-IO core (issue 13; Open vSwitch's lacp-fallback-ab): while every port
with carrier is DEFAULTED, exactly one carries traffic as a plain link (best priority, then the
lowest port number); LACPDUs keep going out on every port; a valid LACPDU ends it. Fake clock."""
from agrconfig.lacp import LacpCore, Transmit
from agrconfig.lacp.events import DistributingChanged
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
