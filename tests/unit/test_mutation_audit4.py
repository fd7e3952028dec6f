"""Tests for the survivors of the core's mutation run after issue 20 (tests/MUTATION.md,
2026-12-06): wait-to-restore once (the core's WaitToRestore) and the resume of DEFAULTED ports.
Fake clock and wire."""
from agrconfig.lacp import LacpCore, Transition
from agrconfig.lacp import pdu as P
from tests.unit.lacp_wire import mac
from tests.unit.test_lacp_controls import run_clock
from tests.unit.test_lacp_maxports import cut, mend, wired


def wtr_moves(out):
    return [(x.old, x.new) for x in out if isinstance(x, Transition) and x.machine == "wtr"]


def test_a_resumed_port_that_was_only_attached_waits_again():
    # Port 1 was waiting to restore (ATTACHED, partner heard) when the worker died: only a
    # port that distributed skips the wait; this one waits the whole time afresh.
    a, b, w = wired({"wtr_time": 5.0}, {}, ports=(1, 2))
    w.run(10, [a, b])
    cut(w, a, b, 1)
    mend(w, a, b, 1)
    w.run(3.0, [a, b])   # past the Mux machine's wait_while (2 s), within the 5 s wait
    snaps = a.snapshot()
    assert (snaps[1].mux, snaps[1].rx, snaps[2].mux) == ("ATTACHED", "CURRENT", "COLLECTING_DISTRIBUTING")
    a2 = LacpCore(mac(1), fast_timeout=True, wtr_time=5.0, now=w.now)
    for p in (1, 2):
        a2.add_port(w.now, p, mac(10 + p), carrier=True, resume=snaps[p])
    st = a2.port_status(1)
    assert (st["wtr_state"], st["wtr_left"]) == ("WAITING", 5.0)
    assert not st["actor_state"] & P.SYNC and a2.distributing() == (2,)
    assert a2.port_status(2)["wtr_state"] == "RESTORED"


def test_a_resumed_defaulted_port_that_distributed_does_not_wait_again():
    # Distributing but defaulted (-lacpstrict): up for wait-to-restore (its default partner is
    # in sync), so the resume restores it at once, as a port that heard its partner: one move.
    a = LacpCore(mac(1), strict=False, wtr_time=5.0)
    a.add_port(0.0, 1, mac(11), carrier=True)
    run_clock(a, 10.0)
    snap = a.snapshot()[1]
    assert (snap.rx, snap.mux) == ("DEFAULTED", "COLLECTING_DISTRIBUTING")
    b = LacpCore(mac(1), strict=False, wtr_time=5.0, now=20.0)
    out = b.add_port(20.0, 1, mac(11), carrier=True, resume=snap)
    assert wtr_moves(out) == [("DOWN", "RESTORED")] and b.port_status(1)["wtr_state"] == "RESTORED"
    assert b.distributing() == (1,) and b.port_status(1)["wtr_left"] is None


def test_a_resumed_defaulted_port_in_strict_mode_makes_no_wtr_move():
    # lacpstrict: a defaulted port is not up for wait-to-restore; the resume leaves it DOWN.
    a = LacpCore(mac(1), strict=False, wtr_time=5.0)
    a.add_port(0.0, 1, mac(11), carrier=True)
    run_clock(a, 10.0)
    snap = a.snapshot()[1]
    b = LacpCore(mac(1), strict=True, wtr_time=5.0, now=20.0)
    out = b.add_port(20.0, 1, mac(11), carrier=True, resume=snap)
    assert wtr_moves(out) == [] and b.port_status(1)["wtr_state"] == "DOWN"


def test_a_port_removed_while_waiting_leaves_no_wait_behind():
    a, b, w = wired({"wtr_time": 60.0}, {}, ports=(1,))
    w.run(2, [a, b])
    assert a.port_status(1)["wtr_state"] == "WAITING"
    a.remove_port(w.now, 1)
    assert a.get_timer() is None, "no deadline of the removed port's wait"
    # Added again, it starts from DOWN and waits the whole time once it hears its partner.
    w.deliver(a, a.add_port(w.now, 1, mac(11), carrier=True))
    w.run(2, [a, b])
    st = a.port_status(1)
    assert st["wtr_state"] == "WAITING" and 57.0 < st["wtr_left"] <= 60.0
