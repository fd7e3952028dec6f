"""agrwtr (wait-to-restore) in the sans-IO core (issue 13): a port that comes back (carrier, or
the partner in sync again) waits wtr-time before it distributes, with our Synchronization bit off
meanwhile; a drop restarts the wait. Fake clock and wire."""
from agrconfig.lacp import LacpCore
from agrconfig.lacp import pdu as P
from tests.unit.lacp_wire import Wire, mac
from tests.unit.test_lacp_maxports import cut, mend, wired


def our_sync_bits(w, core, port, since):
    """The Synchronization bit of every LACPDU `core` sent on `port` since `since`."""
    return [bool(P.decode(P.parse_frame(f)[1]).actor.state & P.SYNC)
            for t, c, p, f in w.sent if c is core and p == port and t >= since]


def run_until(w, cores, predicate, limit):
    """Run the wire until `predicate()`; the time it took (None if it never held)."""
    start = w.now
    while w.now - start < limit:
        if predicate():
            return w.now - start
        w.run(0.05, cores)
    return None


def test_without_a_wait_nothing_changes():
    a, b, w = wired({}, {}, ports=(1, 2))
    took = run_until(w, [a, b], lambda: a.distributing() == (1, 2), 10)
    assert took is not None and took < 3.0
    assert a.port_status(1)["wtr_state"] == "RESTORED" and a.port_status(1)["wtr_left"] is None


def test_a_new_port_waits_with_our_sync_off_then_distributes():
    a, b, w = wired({"wtr_time": 5.0}, {}, ports=(1, 2))
    w.run(2.5, [a, b])
    st = a.port_status(1)
    assert st["wtr_state"] == "WAITING" and a.distributing() == () and b.distributing() == ()
    assert 2.0 < st["wtr_left"] <= 5.0
    assert not st["actor_state"] & P.SYNC, "our Synchronization is held off"
    assert not any(our_sync_bits(w, a, 1, 0.0)), "no LACPDU of ours said Sync yet"
    took = run_until(w, [a, b], lambda: a.distributing() == (1, 2), 10)
    assert took is not None and 5.0 - 2.5 <= took, "the wait is wtr-time from the first LACPDU"
    assert b.distributing() == (101, 102)
    assert a.port_status(1)["wtr_state"] == "RESTORED" and a.port_status(1)["wtr_left"] is None


def test_a_port_that_comes_back_waits_and_the_other_keeps_the_traffic():
    a, b, w = wired({"wtr_time": 4.0}, {}, ports=(1, 2))
    w.run(10, [a, b])
    assert a.distributing() == (1, 2)
    cut(w, a, b, 1)
    w.run(1, [a, b])
    assert a.distributing() == (2,)
    mend(w, a, b, 1)
    back = w.now
    took = run_until(w, [a, b], lambda: a.distributing() == (1, 2), 15)
    assert took is not None and took >= 4.0, took
    assert took < 4.0 + 4.0, "the partner's aggregate wait plus ours, not more"
    assert a.port_status(2)["distributing"], "port 2 carried on meanwhile"
    held = our_sync_bits(w, a, 1, back)
    assert held and not held[0] and held[-1], "Sync off while waiting, on once restored"


def test_a_flap_during_the_wait_starts_it_over():
    a, b, w = wired({"wtr_time": 4.0}, {}, ports=(1, 2))
    w.run(10, [a, b])
    cut(w, a, b, 1)
    w.run(1, [a, b])
    mend(w, a, b, 1)
    w.run(3.5, [a, b])
    assert a.port_status(1)["wtr_state"] == "WAITING", "still waiting"
    cut(w, a, b, 1)                        # the flap
    assert a.port_status(1)["wtr_state"] == "DOWN" and a.port_status(1)["wtr_left"] is None
    w.run(0.5, [a, b])
    mend(w, a, b, 1)
    took = run_until(w, [a, b], lambda: 1 in a.distributing(), 15)
    assert took is not None and took >= 4.0, "a full wait again after the flap"


def test_a_partner_that_timed_out_and_speaks_again_waits_too():
    a, b, w = wired({"wtr_time": 3.0}, {}, ports=(1, 2))
    w.run(10, [a, b])
    # b's LACPDUs on cable 1 are lost: the partner expires (no Sync), then comes back.
    w.up[(id(b), 101)] = False
    w.run(4, [a, b])
    assert a.port_status(1)["wtr_state"] == "DOWN" and 1 not in a.distributing()
    w.up[(id(b), 101)] = True
    took = run_until(w, [a, b], lambda: 1 in a.distributing(), 15)
    assert took is not None and took >= 3.0


def test_setting_the_time_to_0_ends_the_wait_at_once_and_a_longer_time_extends_it():
    a, b, w = wired({"wtr_time": 60.0}, {}, ports=(1,))
    w.run(4, [a, b])
    left = a.port_status(1)["wtr_left"]
    assert a.port_status(1)["wtr_state"] == "WAITING"
    w.deliver(a, a.set_wtr_time(w.now, 120.0))
    assert a.port_status(1)["wtr_left"] == left + 60.0
    w.deliver(a, a.set_wtr_time(w.now, 0))
    assert a.port_status(1)["wtr_state"] == "RESTORED"
    w.run(0.5, [a, b])
    assert a.distributing() == (1,) and b.distributing() == (101,)


def test_a_restarted_worker_does_not_wait_again():
    a, b, w = wired({"wtr_time": 2.0}, {}, ports=(1, 2))
    w.run(10, [a, b])
    snaps = a.snapshot()
    a2 = LacpCore(mac(1), fast_timeout=True, wtr_time=2.0, now=w.now)
    for p in (1, 2):
        a2.add_port(w.now, p, mac(10 + p), carrier=True, resume=snaps[p])
    assert a2.distributing() == (1, 2)
    assert a2.port_status(1)["actor_state"] & P.SYNC


def test_with_agrmaxports_a_better_port_waits_as_standby_while_the_other_carries():
    a, b, w = wired({"wtr_time": 4.0, "max_ports": 1}, {}, ports=(1, 2))
    w.run(10, [a, b])
    assert a.distributing() == (1,)
    cut(w, a, b, 1)
    w.run(0.5, [a, b])
    assert a.distributing() == (2,), "no wait for the standby: it was up all along"
    mend(w, a, b, 1)
    w.run(3.0, [a, b])
    assert a.distributing() == (2,), "port 1 (ranked first) waits; port 2 keeps the traffic"
    took = run_until(w, [a, b], lambda: a.distributing() == (1,), 10)
    assert took is not None


def flap_walk():
    """Every move of the wtr machine: a wait, a flap during it, a wait to the end (for
    test_lacp_core's table walk)."""
    a, b, w = wired({"wtr_time": 4.0}, {}, ports=(1,))
    w.run(8, [a, b])
    cut(w, a, b, 1)
    mend(w, a, b, 1)
    w.run(2.5, [a, b])
    cut(w, a, b, 1)
    mend(w, a, b, 1)
    w.run(8, [a, b])
    return w


def test_the_walk_takes_every_move():
    moves = {(x.old, x.new) for _c, x in flap_walk().actions if type(x).__name__ == "Transition"
             and x.machine == "wtr"}
    assert moves >= {("DOWN", "WAITING"), ("WAITING", "DOWN"), ("WAITING", "RESTORED"), ("RESTORED", "DOWN")}
    assert isinstance(Wire(), Wire)


def test_optimistic_mode_a_port_without_partner_waits_then_distributes():
    """-lacpstrict: a defaulted port distributes (its default partner is in sync), so with
    agrwtr it waits wtr-time and then distributes; it is not held for ever for want of a
    partner it does not need."""
    from tests.unit.lacp_wire import Wire
    a = LacpCore(mac(1), fast_timeout=True, strict=False, wtr_time=4.0)
    w = Wire()
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    took = run_until(w, [a], lambda: a.port_status(1)["rx_state"] == "DEFAULTED", 10)
    assert took is not None
    defaulted = w.now
    assert a.port_status(1)["wtr_state"] == "WAITING" and a.distributing() == ()
    took = run_until(w, [a], lambda: a.distributing() == (1,), 10)
    assert took is not None and w.now - defaulted >= 4.0 - 0.05, took
    assert a.port_status(1)["wtr_state"] == "RESTORED"
    # lacpstrict again: the defaulted port is down for wait-to-restore, and leaves.
    w.deliver(a, a.set_strict(w.now, True))
    w.run(1, [a])
    assert a.distributing() == () and a.port_status(1)["wtr_state"] == "DOWN"


def test_strict_mode_a_port_without_partner_never_waits():
    a = LacpCore(mac(1), fast_timeout=True, strict=True, wtr_time=4.0)
    from tests.unit.lacp_wire import Wire
    w = Wire()
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.run(10, [a])
    assert a.port_status(1)["rx_state"] == "DEFAULTED"
    assert a.port_status(1)["wtr_state"] == "DOWN" and a.distributing() == ()
