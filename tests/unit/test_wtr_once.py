"""Wait-to-restore is one implementation (agrconfig.lacp.wtr.WaitToRestore, `now` passed in)
behind LACP, agrproto loadbalance and agrproto failover: the same rule, the same time left.
Each reports the time left where its status always did: LACP in the port's lacp part
(LacpPortStatus.wtr_left), loadbalance at the port's own level (static_wtr_left, JSON key wtr_left),
failover in the port's failover part (FailoverPortStatus.wtr_left); PortStatus.wtr_left reads
whichever there is."""
import pytest

from agrconfig import options
from agrconfig.lacp import LacpCore
from agrconfig.lacp.wtr import WaitToRestore, WtrState
from agrconfig.status import FailoverPortStatus, Role
from agrconfig.worker import aggregation
from agrconfig.worker.failover import Failover
from tests.unit.test_lacp_controls import wired
from tests.unit.test_wtr_words import port as static_port
from tests.unit.test_failover import FakePort


# -- the rule itself ------------------------------------------------------------------------------

def test_a_port_that_comes_back_waits_then_is_restored():
    w = WaitToRestore(5.0)
    assert w.state(1) == WtrState.DOWN and w.wtr_left(0.0, 1) is None
    assert w.update(10.0, 1, True) == (WtrState.DOWN, WtrState.WAITING)
    assert w.waiting(1) and w.wtr_left(12.0, 1) == 3.0 and w.deadline() == 15.0
    assert w.update(14.9, 1, True) is None and w.due(14.9) == []
    assert w.due(15.0) == [1]
    assert w.update(15.0, 1, True) == (WtrState.WAITING, WtrState.RESTORED)
    assert w.wtr_left(15.0, 1) is None and w.deadline() is None
    assert w.update(16.0, 1, True) is None, "up and up again is no flap"


def test_a_flap_during_the_wait_starts_it_over():
    w = WaitToRestore(5.0)
    w.update(10.0, 1, True)
    assert w.update(12.0, 1, False) == (WtrState.WAITING, WtrState.DOWN)
    assert w.deadline() is None and w.wtr_left(12.0, 1) is None
    w.update(13.0, 1, True)
    assert w.restore_due(15.0) == (), "the first wait would have ended here"
    assert w.restore_due(18.0) == (1,)


def test_no_time_no_wait():
    w = WaitToRestore(0)
    assert w.update(1.0, 1, True) == (WtrState.DOWN, WtrState.RESTORED)
    assert WaitToRestore().update(1.0, 1, True) == (WtrState.DOWN, WtrState.RESTORED), "0 s by default"


def test_a_wait_below_one_second_is_a_wait():
    w = WaitToRestore(0.5)
    w.update(1.0, 1, True)
    assert w.due(1.4) == [] and w.restore_due(1.4) == () and w.waiting(1)
    assert w.restore_due(1.5) == (1,)


def test_what_restore_due_restores_is_restored():
    w = WaitToRestore(1.0)
    w.update(0.0, 1, True)
    w.update(0.0, 2, True)
    assert w.restore_due(1.0) == (1, 2)
    assert w.state(1) == w.state(2) == WtrState.RESTORED


def test_a_port_forgotten_while_waiting_leaves_no_wait_behind():
    w = WaitToRestore(5.0)
    w.update(0.0, 1, True)
    w.update(1.0, 2, True)
    w.forget(1)
    assert w.deadline() == 6.0 and w.wtr_left(2.0, 1) is None and w.due(5.5) == []


def test_a_new_time_counts_from_the_start_of_the_wait_and_0_ends_it():
    w = WaitToRestore(5.0)
    w.update(10.0, 1, True)
    w.set_time(20.0)
    assert w.deadline() == 30.0 and w.wtr_left(11.0, 1) == 19.0
    w.set_time(2.0)
    assert w.restore_due(11.0) == () and w.restore_due(12.0) == (1,)
    w.update(13.0, 2, False)
    w.update(14.0, 2, True)
    w.set_time(0)
    assert w.restore_due(14.0) == (2,)


def test_restore_ends_a_wait_and_forget_forgets():
    w = WaitToRestore(5.0)
    w.update(0.0, 1, True)
    assert w.restore(1) == (WtrState.WAITING, WtrState.RESTORED) and w.deadline() is None
    assert w.restore(1) is None
    w.forget(1)
    assert w.state(1) == WtrState.DOWN


def test_huge_clocks_never_give_a_wait_already_over():
    w = WaitToRestore(1e-300)
    w.update(1e18, 1, True)
    assert w.waiting(1) and w.deadline() > 1e18


# -- one rule, one time left, in the three protocols -------------------------------------------------

def lacp_left(a, port):
    return a.port_status(port)["wtr_left"]


def test_the_three_protocols_report_the_same_wait():
    """A port comes back at 10 with agrwtr 5; each protocol says 2 s left at 13, and none at 15.
    (LACP's "back" is carrier and a partner heard: the partner is there from the start here.)"""
    flags = options.defaults() | {"wtr_time": 5}
    static = aggregation.create(flags | {"proto": "loadbalance"}, b"\x02\0\0\0\0\x01", 0.0, lambda out: None)
    static.add_port(0.0, static_port(1, carrier=False))
    static.set_carrier(10.0, 1, True)
    fo = Failover(lambda out: None, lambda port: None)
    fo.start(0.0, [FakePort(1, carrier=False, prio=1), FakePort(2)], {})
    fo.configure(0.0, flags)
    fo.set_carrier(10.0, 1, True)
    static.handle_timer(13.0)
    fo.handle_timer(13.0)
    assert static.port_status(1) == {"static_wtr_left": 2.0}
    assert fo.port_status(1) == {"failover": FailoverPortStatus(Role.STANDBY, 2.0)}
    static.handle_timer(15.0)
    fo.handle_timer(15.0)
    assert static.port_status(1) == {} and static.sets([static_port(1)])[0] == {1}
    assert fo.port_status(1) == {"failover": FailoverPortStatus(Role.ACTIVE, 0.0)}
    # LACP: the same object answers, through the core's status.
    a, b, w = wired({"wtr_time": 5.0}, {}, ports=(1,))
    w.run(1, [a, b])
    assert a.port_status(1)["wtr_state"] == "WAITING"
    left = lacp_left(a, 1)
    assert left == pytest.approx(a.wtr.wtr_left(a.now, 1)) and 0.0 < left <= 5.0
    w.run(6, [a, b])
    assert a.port_status(1)["wtr_state"] == "RESTORED" and lacp_left(a, 1) is None


def test_failover_reads_no_clock_for_its_status():
    """The time left is from the time the loop passed last (every turn), not a clock of its own."""
    fo = Failover(lambda out: None, lambda port: None)
    fo.start(100.0, [FakePort(1, carrier=False, prio=1), FakePort(2)], {})
    fo.configure(100.0, options.defaults() | {"wtr_time": 30})
    fo.set_carrier(100.0, 1, True)
    assert fo.port_status(1)["failover"].wtr_left == 30.0
    fo.handle_timer(110.5)
    assert fo.port_status(1)["failover"].wtr_left == 19.5


def test_failover_a_new_time_counts_from_the_start_of_the_wait_as_elsewhere():
    fo = Failover(lambda out: None, lambda port: None)
    fo.start(0.0, [FakePort(1, carrier=False, prio=1), FakePort(2)], {})
    fo.configure(0.0, options.defaults() | {"wtr_time": 30})
    fo.set_carrier(10.0, 1, True)
    fo.configure(12.0, options.defaults() | {"wtr_time": 10})
    assert fo.get_timer() == 20.0
    fo.configure(13.0, options.defaults() | {"wtr_time": 0})
    assert fo.sets([])[0] == {1} and fo.get_timer() is None


def test_the_lacp_core_waits_through_the_one_implementation():
    a = LacpCore(b"\x02\0\0\0\0\x01", wtr_time=5.0)
    assert isinstance(a.wtr, WaitToRestore) and a.wtr.time == 5.0
    a.set_wtr_time(0.0, 7.0)
    assert a.wtr.time == 7.0
