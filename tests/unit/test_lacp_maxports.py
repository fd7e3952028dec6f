"""agrmaxports in the sans-IO core (issue 13): at most N ports of the chosen aggregation are
SELECTED, the others STANDBY, ranked by port priority then port number; a standby port takes
over when a distributing one fails. Fake clock and wire."""
from agrconfig.lacp import LacpCore
from agrconfig.lacp.snapshot import PortSnapshot
from tests.unit.lacp_wire import Wire, mac
from tests.unit.test_lacp_timers import assert_settled


def wired(a_kw, b_kw, ports=(1, 2, 3)):
    a = LacpCore(mac(1), fast_timeout=True, **a_kw)
    b = LacpCore(mac(2), fast_timeout=True, **b_kw)
    w = Wire()
    for p in ports:
        w.join(a, p, b, p + 100)
    for p in ports:
        w.deliver(a, a.add_port(0.0, p, mac(10 + p), carrier=True))
        w.deliver(b, b.add_port(0.0, p + 100, mac(50 + p), carrier=True))
    return a, b, w


def cut(w, a, b, p):
    """Carrier loss on cable p <-> p + 100, seen by both ends."""
    w.up[(id(a), p)] = w.up[(id(b), p + 100)] = False
    w.deliver(a, a.set_carrier(w.now, p, False))
    w.deliver(b, b.set_carrier(w.now, p + 100, False))


def mend(w, a, b, p):
    w.up[(id(a), p)] = w.up[(id(b), p + 100)] = True
    w.deliver(a, a.set_carrier(w.now, p, True))
    w.deliver(b, b.set_carrier(w.now, p + 100, True))


def test_without_a_limit_every_port_distributes():
    a, b, w = wired({}, {})
    w.run(6, [a, b])
    assert a.distributing() == (1, 2, 3) and b.distributing() == (101, 102, 103)


def test_one_port_distributes_the_others_are_standby_on_both_ends():
    a, b, w = wired({"max_ports": 1}, {})
    w.run(6, [a, b])
    assert a.distributing() == (1,), "the lowest port number, all priorities equal"
    assert b.distributing() == (101,), "the partner does not send into our standby ports"
    for pid in (2, 3):
        st = a.port_status(pid)
        assert st["selected"] == "STANDBY" and st["standby"] and st["limited"]
        assert st["mux_state"] == "WAITING", "not attached"
        assert not st["actor_state"] & 0x08, "our Synchronization bit is off"
    assert not a.port_status(1)["limited"]
    assert a.status()["aggregator"]["ports"] == [1]
    assert_settled(a)


def test_port_priority_ranks_before_port_number():
    a, b, w = wired({"max_ports": 2}, {})
    w.deliver(a, a.set_port_priority(w.now, 3, 0x10))
    w.run(6, [a, b])
    assert a.distributing() == (1, 3)
    # A better priority for port 2 moves it in, and port 1 (now worst: 0x8000, lower number
    # than nothing) out.
    w.deliver(a, a.set_port_priority(w.now, 2, 0x20))
    w.deliver(a, a.set_port_priority(w.now, 1, 0x9000))
    w.run(6, [a, b])
    assert a.distributing() == (2, 3)
    assert a.port_status(1)["limited"]
    assert b.distributing() == (102, 103)


def test_a_standby_port_takes_over_on_carrier_loss_and_gives_back_when_it_returns():
    a, b, w = wired({"max_ports": 1}, {})
    w.run(6, [a, b])
    assert a.distributing() == (1,)
    start = w.now
    cut(w, a, b, 1)
    assert a.port_status(2)["selected"] == "SELECTED", "selected at once"
    w.run(0.1, [a, b])
    # The standby waited out aggregate_wait already: it attaches at once, and distributes
    # as soon as the partner answers our Synchronization (delivered at once on this wire).
    assert a.distributing() == (2,) and b.distributing() == (102,), w.now - start
    assert a.port_status(3)["limited"]
    mend(w, a, b, 1)
    w.run(6, [a, b])
    assert a.distributing() == (1,), "ranked first again: back on port 1"
    assert a.port_status(2)["limited"] and b.distributing() == (101,)


def test_a_silent_partner_on_the_distributing_port_hands_over_to_the_standby():
    a, b, w = wired({"max_ports": 1}, {})
    w.run(6, [a, b])
    w.up[(id(b), 101)] = False        # b's LACPDUs on cable 1 are lost; carrier stays
    w.run(10, [a, b])
    assert a.distributing() == (2,)


def test_both_ends_limited_pick_the_same_links_the_better_system_decides():
    # a prefers port 3, b prefers its port 101 (cabled to a's port 1); a's System ID is better
    # (same priority, lower MAC), so both follow a's ranking. Ranking each by its own
    # priorities would leave no link in sync on both ends.
    a, b, w = wired({"max_ports": 1}, {"max_ports": 1})
    w.deliver(a, a.set_port_priority(w.now, 3, 1))
    w.deliver(b, b.set_port_priority(w.now, 101, 1))
    w.run(8, [a, b])
    assert a.distributing() == (3,) and b.distributing() == (103,)
    # b's better system priority hands the decision to b.
    w.deliver(b, b.set_system_priority(w.now, 1))
    w.run(8, [a, b])
    assert a.distributing() == (1,) and b.distributing() == (101,)


def test_a_new_limit_takes_effect_at_once_and_zero_lifts_it():
    a, b, w = wired({}, {})
    w.run(6, [a, b])
    w.deliver(a, a.set_max_ports(w.now, 2))
    assert a.distributing() == (1, 2)
    assert a.port_status(3)["mux_state"] == "WAITING"
    w.run(3, [a, b])
    assert b.distributing() == (101, 102)
    w.deliver(a, a.set_max_ports(w.now, 0))
    w.run(6, [a, b])
    assert a.distributing() == (1, 2, 3) and not any(a.port_status(p)["limited"] for p in (1, 2, 3))


def test_a_limit_above_the_number_of_ports_changes_nothing():
    a, b, w = wired({"max_ports": 3}, {})
    w.run(6, [a, b])
    assert a.distributing() == (1, 2, 3)


def test_a_restarted_worker_resumes_within_the_limit():
    # Snapshots of three distributing ports, a new core limited to one: the two worst ranked
    # leave the aggregator at once.
    a, b, w = wired({}, {})
    w.run(6, [a, b])
    snaps = a.snapshot()
    a2 = LacpCore(mac(1), fast_timeout=True, max_ports=1, now=w.now)
    for p in (1, 2, 3):
        a2.add_port(w.now, p, mac(10 + p), carrier=True, resume=snaps[p])
    assert a2.distributing() == (1,)
    assert [a2.port_status(p)["selected"] for p in (1, 2, 3)] == ["SELECTED", "STANDBY", "STANDBY"]
    assert isinstance(snaps[1], PortSnapshot)
