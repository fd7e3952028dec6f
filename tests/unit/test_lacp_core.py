"""The sans-IO LACP core with a fake clock: convergence, every timer, selection, Marker.

Times are 802.1AX's numbers written out, never the product's constants (see test_lacp_timers).
"""
import pytest
from hypothesis import given, strategies as st

from agrconfig.lacp import LacpCore, Transmit
from agrconfig.lacp import core as lacp_core
from agrconfig.lacp.rx import Rx
from agrconfig.lacp.snapshot import PortSnapshot
from agrconfig.lacp import pdu as P
from agrconfig.lacp.port import port_key
from tests.unit.lacp_wire import Wire, mac, pair
from tests.unit.test_lacp_timers import Clock, clocked_pair
from tests.unit.test_prop_core import examples


def tx_times(w, core, port):
    return [t for t, c, p, _f in w.sent if c is core and p == port]


def test_two_cores_converge_on_both_ports():
    a, b, w = pair()
    w.run(5, [a, b])
    assert a.distributing() == (1, 2) and b.distributing() == (101, 102)
    st_ = a.port_status(1)
    assert st_["mux_state"] == "COLLECTING_DISTRIBUTING" and st_["rx_state"] == "CURRENT"
    assert {"ACTIVITY", "AGGREGATION", "SYNC", "COLLECTING", "DISTRIBUTING", "TIMEOUT"} == set(st_["actor_state_str"])
    assert st_["partner_system"] == "02:00:00:00:00:02" and st_["partner_port"] == 101
    assert st_["partner_system_priority"] == 0x8000 and st_["actor_port_priority"] == 0x8000


def test_first_lacpdu_leaves_at_once_from_the_port_mac():
    a = LacpCore(mac(1))
    actions = a.add_port(0.0, 7, mac(77), carrier=True)
    frames = [x.frame for x in actions if isinstance(x, Transmit)]
    assert frames, "we speak first: Open vSwitch waits 30 s otherwise"
    src, payload = P.parse_frame(frames[0])
    assert src == mac(77)
    pdu = P.decode(payload)
    assert pdu.actor.system == mac(1) and pdu.actor.port == 7 and pdu.actor.system_priority == 0x8000
    assert pdu.actor.state & P.ACTIVITY


def test_aggregate_wait_holds_attach_for_two_seconds():
    a, b, w = pair()
    w.run(1.7, [a, b])
    assert a.port_status(1)["mux_state"] == "WAITING"
    w.run(1.0, [a, b])
    assert a.port_status(1)["mux_state"] in ("ATTACHED", "COLLECTING_DISTRIBUTING")


def test_fast_periodic_every_second():
    a, b, w = pair(fast=True)
    w.run(10, [a, b])
    times = tx_times(w, a, 1)
    gaps = [y - x for x, y in zip(times, times[1:]) if y > 5]
    assert gaps and max(gaps) <= 1.05


def test_slow_periodic_every_thirty_seconds():
    a, b, w = pair(fast=False)
    w.run(100, [a, b], step=0.5)
    times = [t for t in tx_times(w, a, 1) if t > 10]
    gaps = [y - x for x, y in zip(times, times[1:])]
    assert gaps and all(abs(g - 30.0) < 0.6 for g in gaps), gaps
    assert a.distributing() == (1, 2)


def test_tx_limit_three_per_second():
    a, b, w = pair()
    w.run(3, [a, b])
    for _ in range(20):  # flood of reasons to send
        w.deliver(a, a.set_fast_timeout(w.now, False))
        w.deliver(a, a.set_fast_timeout(w.now, True))
    w.run(3, [a, b], step=0.01)
    times = tx_times(w, a, 1)
    for i in range(len(times) - 3):
        assert times[i + 3] - times[i] >= 1.0 - 1e-9, times[i:i + 4]


def test_deferred_ntt_is_sent_later():
    # Long timeout: no periodic LACPDU is near, so only the deferred one can be.
    a, b, w = pair(fast=False)
    w.run(40, [a, b], step=0.1)
    start = len(tx_times(w, a, 1))
    for _ in range(5):
        w.deliver(a, a.set_fast_timeout(w.now, not a.system.fast_timeout))
    assert len(tx_times(w, a, 1)) == start + 3, "three at once, the rest deferred"
    assert a.get_timer() <= w.now + 1.0, "the core asks to be woken for the deferred LACPDU"
    w.run(1.5, [a, b], step=0.01)
    assert len(tx_times(w, a, 1)) == start + 4
    last = P.decode(P.parse_frame([f for _t, c, p, f in w.sent if c is a and p == 1][-1])[1])
    assert last.actor.state & P.TIMEOUT, "it carries the newest state"


def silence(w, core, port):
    w.up[(id(core), port)] = False


def test_short_timeout_expires_then_defaults_strict():
    a, b, w = pair(fast=True)
    w.run(5, [a, b])
    silence(w, b, 102)
    w.run(2.8, [a, b])
    assert a.port_status(2)["rx_state"] == "CURRENT"
    w.run(0.5, [a, b])
    assert a.port_status(2)["rx_state"] == "EXPIRED"
    assert 2 not in a.distributing() and 1 in a.distributing()
    w.run(3.0, [a, b])
    assert a.port_status(2)["rx_state"] == "DEFAULTED"
    assert a.distributing() == (1,)


def test_long_timeout():
    a, b, w = pair(fast=False)
    w.run(5, [a, b], step=0.1)
    silence(w, b, 102)
    w.run(55, [a, b], step=0.5)          # 90 s after its last LACPDU, at most 30 s before
    assert a.port_status(2)["rx_state"] == "CURRENT"
    w.run(40, [a, b], step=0.5)
    assert a.port_status(2)["rx_state"] in ("EXPIRED", "DEFAULTED")
    assert 2 not in a.distributing()


def test_optimistic_mode_distributes_without_partner():
    a = LacpCore(mac(1), fast_timeout=True, strict=False)
    w = Wire()
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.run(10, [a])
    assert a.port_status(1)["rx_state"] == "DEFAULTED"
    assert a.distributing() == (1,)
    w.deliver(a, a.set_strict(w.now, True))
    w.run(1, [a])
    assert a.distributing() == ()


def test_carrier_loss_leaves_at_once():
    a, b, w = pair()
    w.run(5, [a, b])
    actions = a.set_carrier(w.now, 2, False)
    assert a.distributing() == (1,)
    assert any(type(x).__name__ == "DistributingChanged" and x.ports == (1,) for x in actions)
    w.deliver(a, a.set_carrier(w.now, 2, True))
    w.run(5, [a, b])
    assert a.distributing() == (1, 2)


def test_own_lacpdus_are_a_loop():
    a = LacpCore(mac(1), fast_timeout=True)
    w = Wire()
    w.join(a, 1, a, 2)
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.deliver(a, a.add_port(0.0, 2, mac(12), carrier=True))
    w.run(10, [a])
    assert a.distributing() == ()
    assert a.port_status(1)["counters"]["loop"] > 0
    assert a.port_status(1)["selected"] == "UNSELECTED"


def test_two_partners_most_bandwidth_wins_and_ties_keep_current():
    a = LacpCore(mac(1), fast_timeout=True)
    b = LacpCore(mac(2), fast_timeout=True)
    c = LacpCore(mac(3), fast_timeout=True)
    w = Wire()
    w.join(a, 1, b, 1)
    w.join(a, 2, c, 1)
    w.join(a, 3, c, 2)
    for pid in (1, 2, 3):
        w.deliver(a, a.add_port(0.0, pid, mac(10 + pid), carrier=True))
    w.deliver(b, b.add_port(0.0, 1, mac(21), carrier=True))
    w.deliver(c, c.add_port(0.0, 1, mac(31), carrier=True))
    w.deliver(c, c.add_port(0.0, 2, mac(32), carrier=True))
    w.run(6, [a, b, c])
    assert a.distributing() == (2, 3), "two ports to c beat one port to b"
    assert a.port_status(1)["standby"] and not a.port_status(1)["distributing"]
    # One of c's links fails: 1 port each, a tie: the current aggregation (c) stays.
    w.deliver(a, a.set_carrier(w.now, 3, False))
    w.run(4, [a, b, c])
    assert a.distributing() == (2,)
    assert a.port_status(1)["standby"]


def test_speed_counts_in_bandwidth():
    a = LacpCore(mac(1), fast_timeout=True)
    b = LacpCore(mac(2), fast_timeout=True)
    c = LacpCore(mac(3), fast_timeout=True)
    w = Wire()
    w.join(a, 1, b, 1)
    w.join(a, 2, c, 1)
    w.deliver(a, a.add_port(0.0, 1, mac(11), speed=10000, duplex_full=True, carrier=True))
    w.deliver(a, a.add_port(0.0, 2, mac(12), speed=1000, duplex_full=True, carrier=True))
    w.deliver(b, b.add_port(0.0, 1, mac(21), speed=10000, duplex_full=True, carrier=True))
    w.deliver(c, c.add_port(0.0, 1, mac(31), speed=1000, duplex_full=True, carrier=True))
    w.run(6, [a, b, c])
    assert a.distributing() == (1,)


def test_half_duplex_is_individual():
    assert port_key(1000, False) != port_key(1000, True)
    assert port_key(1000, True) == 0x0103 and port_key(1000, False) == 0x8103
    # Unknown speeds (veth) share one key, so such ports aggregate with each other.
    assert port_key(None, None) == port_key(0, None) == port_key(-1, True) == 0x0100
    a = LacpCore(mac(1))
    a.add_port(0.0, 1, mac(11), speed=100, duplex_full=False, carrier=True)
    assert not a.port_status(1)["aggregatable"]
    assert not a.port_status(1)["actor_state"] & P.AGGREGATION


def test_churn_detected_after_sixty_seconds_out_of_sync():
    a = LacpCore(mac(1), fast_timeout=True)
    w = Wire()
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.run(59, [a], step=0.5)
    assert a.port_status(1)["partner_churn_state"] == "PARTNER_CHURN_MONITOR"
    w.run(2, [a], step=0.5)
    assert a.port_status(1)["partner_churn_state"] == "PARTNER_CHURN"


def test_marker_responder():
    a = LacpCore(mac(1))
    a.add_port(0.0, 4, mac(44), carrier=True)
    info = P.MarkerPdu(False, 0x1234, mac(9), 0xDEADBEEF)
    actions = a.receive(1.0, 4, P.build_frame(mac(99), P.encode(info)))
    (reply,) = [x for x in actions if isinstance(x, Transmit) and x.frame[14] == P.SUBTYPE_MARKER]
    assert reply.port_id == 4
    src, payload = P.parse_frame(reply.frame)
    assert src == mac(44)
    assert P.decode(payload) == P.MarkerPdu(True, 0x1234, mac(9), 0xDEADBEEF)
    resp = P.build_frame(mac(99), P.encode(P.MarkerPdu(True, 4, mac(1), 1)))
    assert not [x for x in a.receive(1.0, 4, resp) if isinstance(x, Transmit) and x.frame[14] == P.SUBTYPE_MARKER], \
        "never answer a Response"
    c = a.port_status(4)["counters"]
    assert c["marker_rx"] == 1 and c["marker_tx"] == 1 and c["marker_resp_rx"] == 1


def test_garbage_is_counted_not_raised():
    a = LacpCore(mac(1))
    a.add_port(0.0, 1, mac(11), carrier=True)
    for frame in (b"", b"\x01" * 10, P.SLOW_PROTOCOLS_MAC + mac(5) + b"\x88\x09" + b"\x07" * 110):
        assert a.receive(1.0, 1, frame) == []
    assert a.port_status(1)["counters"]["lacpdu_err"] == 3
    assert a.receive(1.0, 99, b"junk") == []


def test_clock_going_backwards_is_harmless():
    """A clock that steps back stands still: a timer started then counts from the later time."""
    a, b, w = pair()
    w.run(5, [a, b])
    assert not [x for x in a.handle_timer(1.0) if type(x).__name__ == "Transition"]
    assert a.now == 5.0
    # b's LACPDU, handed over with the stale time: current_while runs 3 s from 5.0, not from 1.0.
    frame = P.build_frame(mac(51), P.encode(P.Lacpdu(b.ports[101].actor_info(), a.ports[1].actor_info(), 0)))
    a.receive(1.0, 1, frame)
    assert a.ports[1].timers["current_while"].deadline == 8.0
    a.handle_timer(7.9)
    assert a.port_status(1)["rx_state"] == "CURRENT"


class _Jumping(Clock):
    """The fake wire with the clock jumping from deadline to deadline: the same scenario,
    a fraction of the steps (this test runs for nearly every mutant in scripts/mutation)."""

    def run(self, seconds, cores, step=None):
        self.until(round(self.now + seconds, 6), cores)


def _walk(fast):
    """Scenarios that between them take every transition of the tables."""
    a, b, w = clocked_pair(fast, wire=_Jumping)
    w.run(5, [a, b])                                       # converge
    silence(w, b, 102)
    w.run(100 if not fast else 8, [a, b], step=0.5)        # CURRENT -> EXPIRED -> DEFAULTED
    w.up[(id(b), 102)] = True
    w.deliver(b, b.set_carrier(w.now, 102, False))
    w.deliver(b, b.set_carrier(w.now, 102, True))          # b speaks again: DEFAULTED -> CURRENT
    w.run(5, [a, b])
    for pid in (1, 2):                                     # carrier loss in CURRENT
        w.deliver(a, a.set_carrier(w.now, pid, False))
    w.run(1, [a, b])
    silence(w, b, 101)
    w.deliver(a, a.set_carrier(w.now, 1, True))
    w.run(0.5, [a, b])
    w.deliver(a, a.set_carrier(w.now, 1, False))           # ... in EXPIRED (and WAITING)
    w.up[(id(b), 101)] = True
    w.deliver(a, a.set_carrier(w.now, 2, True))
    silence(w, b, 102)
    w.run(70, [a, b], step=0.5)                            # churn on a lonely port
    w.deliver(a, a.set_carrier(w.now, 2, False))           # ... in DEFAULTED and churn
    w.up[(id(b), 102)] = True
    w.deliver(a, a.set_carrier(w.now, 2, True))
    w.run(70, [a, b], step=0.5)
    # A port cabled back to ourselves is never selected: actor churn; then the loop is undone.
    c = LacpCore(mac(3), fast_timeout=True)
    w.join(c, 1, c, 2)
    w.deliver(c, c.add_port(w.now, 1, mac(31), carrier=True))
    w.deliver(c, c.add_port(w.now, 2, mac(32), carrier=True))
    w.run(65, [c], step=0.5)
    w.up[(id(c), 1)] = w.up[(id(c), 2)] = False
    w.deliver(c, c.set_strict(w.now, False))
    w.run(15, [c], step=0.5)
    _resume_scenario(w)
    a3 = LacpCore(mac(1), fast_timeout=True)
    w.deliver(a3, a3.add_port(w.now, 1, mac(11), carrier=True,
                              resume=PortSnapshot.from_json(
                                  {"partner": [0x8000, "020000000002", 0x100, 0x8000, 101, 0x3D],
                                   "mux": "ATTACHED"})))
    # A port that heard no partner resumes defaulted (lacpfallback's plain link goes on).
    w.deliver(a3, a3.add_port(w.now, 2, mac(12), carrier=True,
                              resume=PortSnapshot.from_json(
                                  {"partner": [0, "000000000000", 0, 0, 0, 0x06],
                                   "mux": "ATTACHED", "rx": "DEFAULTED"})))
    return w


def _resume_scenario(w=None):
    """A worker dies and a new core takes over from snapshot(): the partner sees nothing."""
    a, b, w0 = pair(fast=True)
    w = w or w0
    w0.run(5, [a, b])
    snap = a.snapshot()
    a2 = LacpCore(mac(1), fast_timeout=True)
    w0.join(a2, 1, b, 101)
    w0.join(a2, 2, b, 102)
    mark = len(w0.actions)
    for pid in (1, 2):
        w0.deliver(a2, a2.add_port(w0.now, pid, mac(10 + pid), carrier=True, resume=snap[pid]))
    immediate = a2.distributing()
    w0.run(5, [a2, b])
    if w is not w0:
        w.actions += w0.actions
    return a2, b, w0, mark, immediate, snap

def test_every_transition_in_the_tables_is_taken():
    taken = set()
    for fast in (True, False):
        for _c, action in _walk(fast).actions:
            if type(action).__name__ == "Transition":
                taken.add((action.machine, action.old, action.new))
    from tests.unit.test_lacp_wtr import flap_walk   # agrwtr's waits, which need a wtr time
    taken |= {(x.machine, x.old, x.new) for _c, x in flap_walk().actions if type(x).__name__ == "Transition"}
    table = {(m, o, n) for m, t in lacp_core.TABLES.items() for (o, n) in t}
    assert taken <= table
    # agr always runs LACP: LACP_DISABLED is in the table for completeness only.
    untaken = {t for t in table - taken if "LACP_DISABLED" not in t}
    assert not untaken, sorted(untaken)


def test_resume_from_snapshot_needs_no_renegotiation():
    a2, b, w, mark, immediate, snap = _resume_scenario()
    assert set(snap) == {1, 2} and snap[1].mux == "COLLECTING_DISTRIBUTING"
    assert immediate == (1, 2), "distributing again at once"
    assert a2.distributing() == (1, 2) and b.distributing() == (101, 102)
    b_mux = [x for c, x in w.actions[mark:] if c is b and type(x).__name__ == "Transition" and x.machine == "mux"]
    assert b_mux == [], f"the partner renegotiated: {b_mux}"


def test_stale_snapshot_is_corrected_by_the_partner():
    a, b, w = pair(fast=True)
    w.run(5, [a, b])
    snap = a.snapshot()
    entry = snap[1].to_json()
    entry["partner"][1] = "02000000aaaa"  # someone else, as far as we remember
    silence(w, a, 1)
    silence(w, a, 2)  # the dead worker says nothing more
    a2 = LacpCore(mac(1), fast_timeout=True)
    w.join(a2, 1, b, 101)
    w.deliver(a2, a2.add_port(w.now, 1, mac(11), carrier=True, resume=PortSnapshot.from_json(entry)))
    w.run(10, [a2, b])
    assert a2.port_status(1)["partner_system"] == "02:00:00:00:00:02"
    assert a2.distributing() == (1,)


def test_illegal_transition_is_refused():
    a = LacpCore(mac(1))
    a.add_port(0.0, 1, mac(11), carrier=False)
    port = a.ports[1]
    log = []
    with pytest.raises(AssertionError):
        Rx.enter(port, "INITIALIZE", log)   # (PORT_DISABLED -> DEFAULTED is a resume's now)
    assert port.rx_state == "PORT_DISABLED" and log == [], "refused: nothing changed"


events = st.one_of(
    st.tuples(st.just("time"), st.floats(min_value=-5, max_value=40)),
    st.tuples(st.just("carrier"), st.integers(1, 2), st.booleans()),
    st.tuples(st.just("garbage"), st.integers(1, 2), st.binary(max_size=140)),
    st.tuples(st.just("silence"), st.integers(1, 2), st.booleans()),
    st.tuples(st.just("flag"), st.booleans(), st.booleans()),
)


@examples(60)
@given(st.lists(events, max_size=30))
def test_invariants_hold_under_any_sequence(seq):
    a, b, w = pair(strict=True)
    for ev in seq:
        if ev[0] == "time":
            if ev[1] < 0:
                w.deliver(a, a.handle_timer(w.now + ev[1]))  # a clock jump backwards
            else:
                w.run(ev[1], [a, b], step=0.25)
        elif ev[0] == "carrier":
            w.deliver(a, a.set_carrier(w.now, ev[1], ev[2]))
        elif ev[0] == "garbage":
            w.deliver(a, a.receive(w.now, ev[1], P.SLOW_PROTOCOLS_MAC + mac(7) + b"\x88\x09" + ev[2]))
        elif ev[0] == "silence":
            w.up[(id(b), ev[1] + 100)] = ev[2]
        else:
            w.deliver(a, a.set_fast_timeout(w.now, ev[1]))
            w.deliver(a, a.set_strict(w.now, ev[2]))
        dist = a.distributing()
        lags = set()
        for pid in dist:
            s = a.port_status(pid)
            assert s["collecting"] and s["selected"] == "SELECTED" and s["carrier"]
            lags.add((s["partner_system"], s["partner_key"], s["actor_key"]))
        assert len(lags) <= 1, "one aggregation distributes at most"
        timer = a.get_timer()
        assert timer is None or timer > a.now, "nothing is overdue after the core has run"
