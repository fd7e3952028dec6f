"""Tests for the survivors of the third mutation run of the core (tests/MUTATION.md, 2026-12-02):
agrwtr (set_wtr_time, the Wtr machine, wtr_left), agrmaxports (over_limit with no group,
port_rank on a tie, aggregate wait and standby ports). Fake clock and wire."""

from agrconfig.lacp import LacpCore, Transmit
from agrconfig.lacp import pdu as P
from agrconfig.lacp import selection
from tests.unit.lacp_wire import Wire, mac
from tests.unit.test_lacp_maxports import cut, mend, wired


def sync_sent(out, port):
    """Our Synchronization bit in each LACPDU of `out` on `port`."""
    return [bool(P.decode(P.parse_frame(f.frame)[1]).actor.state & P.SYNC)
            for f in out.frames if isinstance(f, Transmit) and f.port_id == port]


def lonely(**kw):
    """One port with carrier and no partner: DEFAULTED, SELECTED and ATTACHED (strict), in sync."""
    a = LacpCore(mac(1), fast_timeout=True, **kw)
    w = Wire()
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.run(10, [a])
    st = a.port_status(1)
    assert (st["rx_state"], st["mux_state"], st["selected"]) == ("DEFAULTED", "ATTACHED", "SELECTED")
    return a, w


def test_a_wait_time_set_on_a_port_not_yet_restored_drops_our_sync_at_once():
    # The port is DOWN for wtr (no partner heard): a time above 0 holds its Synchronization,
    # and the partner is told in the same call, not at the next periodic LACPDU.
    a, w = lonely()
    assert a.port_status(1)["actor_state"] & P.SYNC
    out = a.set_wtr_time(w.now, 0.5)
    assert sync_sent(out, 1) == [False]


def test_a_wait_time_set_to_0_gives_our_sync_back_at_once():
    a, w = lonely(wtr_time=0.5)
    assert not a.port_status(1)["actor_state"] & P.SYNC
    out = a.set_wtr_time(w.now, 0)
    assert sync_sent(out, 1) == [True]


def test_a_new_wait_time_while_no_port_waits_changes_no_timer():
    # Ports restored (no wtr timer running): the new time is for the next wait only.
    a, b, w = wired({"wtr_time": 0.5}, {}, ports=(1,))
    w.run(5, [a, b])
    assert a.port_status(1)["wtr_state"] == "RESTORED"
    out = a.set_wtr_time(w.now, 3.0)
    assert a.port_status(1)["wtr_state"] == "RESTORED" and a.distributing() == (1,)
    assert not sync_sent(out, 1), "nothing changed for the partner"
    assert a.get_timer() is not None and a.get_timer() <= w.now + 1.0


def test_a_shorter_wait_below_a_second_counts_from_the_start_of_the_wait():
    a, b, w = wired({"wtr_time": 60.0}, {}, ports=(1,))
    w.run(2, [a, b])
    left = a.port_status(1)["wtr_left"]
    assert a.port_status(1)["wtr_state"] == "WAITING" and 57.0 < left < 60.0
    w.deliver(a, a.set_wtr_time(w.now, 30.5))
    assert abs(a.port_status(1)["wtr_left"] - (left - 29.5)) < 1e-6
    w.deliver(a, a.set_wtr_time(w.now, 2.5))
    assert a.port_status(1)["wtr_state"] == "WAITING"
    assert abs(a.port_status(1)["wtr_left"] - (left - 57.5)) < 1e-6


def test_a_wait_below_a_second_is_a_wait():
    a, b, w = wired({"wtr_time": 0.5}, {}, ports=(1,))
    w.run(0.1, [a, b])
    st = a.port_status(1)
    assert st["wtr_state"] == "WAITING" and not st["actor_state"] & P.SYNC
    assert 0.0 < st["wtr_left"] <= 0.5, "the time left, not rounded up to a second"
    w.run(0.5, [a, b])
    assert a.port_status(1)["wtr_state"] == "RESTORED"


def test_a_shorter_wait_moves_a_running_timer_below_one_second():
    a, b, w = wired({"wtr_time": 60.0}, {}, ports=(1,))
    w.run(0.2, [a, b])
    assert a.port_status(1)["wtr_state"] == "WAITING"
    w.deliver(a, a.set_wtr_time(w.now, 0.5))
    st = a.port_status(1)
    assert st["wtr_state"] == "WAITING" and 0.0 < st["wtr_left"] <= 0.3 + 1e-9
    w.run(0.35, [a, b])
    assert a.port_status(1)["wtr_state"] == "RESTORED"


def test_restored_while_the_partner_is_not_in_sync_tells_it_at_once():
    # b limits its ports: our port 2 is b's standby, so b's Synchronization stays off on it and
    # our Mux machine stays ATTACHED. When our wait ends, only our Synchronization bit changes;
    # the LACPDU that says so goes out in that very call.
    a, b, w = wired({"wtr_time": 3.5}, {"max_ports": 1}, ports=(1, 2))   # not on a periodic tick
    while a.port_status(2)["wtr_state"] != "RESTORED":
        t = a.get_timer()
        assert t is not None and t < 10
        w.now = t
        out = a.handle_timer(t)
        if a.port_status(2)["wtr_state"] == "RESTORED":
            assert a.port_status(2)["mux_state"] == "ATTACHED", "no Mux move to set NTT"
            assert [str(e) for e in out.events if str(e).startswith("port 2 ")] == \
                ["port 2 wtr: WAITING -> RESTORED (wtr timer expired (or the time set to 0))"]
            assert sync_sent(out, 2) == [True]
        w.deliver(a, out)


def test_a_limit_with_no_port_up_selects_nothing():
    a = LacpCore(mac(1), max_ports=1)
    out = a.add_port(0.0, 1, mac(11), carrier=False)
    assert a.status()["aggregator"]["ports"] == [] and not out.frames
    a.set_carrier(1.0, 1, True)
    assert a.port_status(1)["selected"] == "SELECTED"


def test_port_rank_on_a_tie_of_system_ids_is_ours():
    # Neither end is better: each ranks by its own port priority and number.
    a = LacpCore(mac(1))
    a.add_port(0.0, 1, mac(11), carrier=True)
    port = a.ports[1]
    port.partner = port.partner.replace(system=mac(1), system_priority=a.system.priority,
                                       port_priority=7, port=9)
    assert selection.port_rank(a, port) == (port.port_priority, 1)
    port.partner = port.partner.replace(system=mac(0))
    assert selection.port_rank(a, port) == (7, 9, port.port_priority, 1)


def test_a_selected_port_does_not_wait_for_a_standby_ports_aggregate_wait():
    # max_ports 1: port 2 joins a second later and waits in STANDBY; port 1's aggregate wait
    # ends first, and port 1 attaches then, whatever port 2's wait.
    a = LacpCore(mac(1), fast_timeout=True, max_ports=1)
    b = LacpCore(mac(2), fast_timeout=True, max_ports=1)
    w = Wire()
    for p in (1, 2):
        w.join(a, p, b, p + 100)
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.deliver(b, b.add_port(0.0, 101, mac(51), carrier=True))
    w.run(1.0, [a, b])
    w.deliver(a, a.add_port(w.now, 2, mac(12), carrier=True))
    w.deliver(b, b.add_port(w.now, 102, mac(52), carrier=True))
    assert a.port_status(2)["standby"] and a.port_status(2)["mux_state"] == "WAITING"
    w.run(1.3, [a, b])
    assert a.port_status(2)["mux_state"] == "WAITING"
    assert a.port_status(1)["mux_state"] in ("ATTACHED", "COLLECTING_DISTRIBUTING")
    assert a.distributing() == (1,)
