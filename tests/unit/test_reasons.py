"""Why a port is not distributing (worker/reasons.py), from states the LACP core reaches, and
the per-port history (worker/history.py) that feeds it."""
import pytest

from agrconfig.lacp import LacpCore, pdu as P
from agrconfig.lacp.events import Transition
from agrconfig.status import LacpStatus, PortStatus
from agrconfig.worker import history, reasons
from tests.unit import statuses
from tests.unit.lacp_wire import Wire, mac, pair


def port(fields):
    """A PortStatus with these JSON fields (a name and an index made up)."""
    return PortStatus.from_json({"name": "re0", "index": 1, **fields})


def agg(core):
    return LacpStatus.from_json(core.status())


def entry(core, pid, carrier=True, hist=None):
    """A port's status entry as the worker builds it."""
    lacp = core.port_status(pid)
    flags = (1 if lacp["collecting"] else 0) | (2 if pid in core.distributing() else 0)
    return port({"index": pid, "flags": flags, "carrier": carrier, "lacp": lacp, "history": hist or {}})


def why(core, pid, **kw):
    return reasons.reason(entry(core, pid, **kw), agg(core))


def test_distributing_has_no_reason():
    a, b, w = pair()
    w.run(5, [a, b])
    assert why(a, 1) is None and reasons.explain(entry(a, 1), agg(a)) == (None, None)


def test_no_carrier():
    a, b, w = pair()
    w.run(5, [a, b])
    w.deliver(a, a.set_carrier(w.now, 2, False))
    assert why(a, 2, carrier=False) == "no carrier"


def test_no_lacpdu_ever_received():
    a = LacpCore(mac(1), fast_timeout=True)
    w = Wire()
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.run(7, [a])
    assert a.port_status(1)["rx_state"] == "DEFAULTED"
    assert why(a, 1) == "no LACPDU ever received (defaulted)"


def test_a_new_port_has_heard_nothing_yet():
    """802.1AX starts a port in EXPIRED: it is not a partner falling silent."""
    a = LacpCore(mac(1), fast_timeout=True)
    w = Wire()
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.run(1, [a])
    assert a.port_status(1)["rx_state"] == "EXPIRED"
    assert why(a, 1) == "no LACPDU received yet (expired)"


def test_partner_silent_expired_then_defaulted():
    a, b, w = pair()
    w.run(5, [a, b])
    w.up[(id(b), 102)] = False          # b's LACPDUs on this link no longer reach a
    w.run(3.2, [a, b])
    assert a.port_status(2)["rx_state"] == "EXPIRED"
    assert why(a, 2, hist={"lacpdu_age": 3.04}) == "partner silent for 3.0 s (expired)"
    assert why(a, 2) == "partner silent (expired)"            # the worker restarted meanwhile
    w.run(3.2, [a, b])
    assert why(a, 2, hist={"lacpdu_age": 6.3}) == "partner silent for 6.3 s (defaulted)"


def test_loop():
    a = LacpCore(mac(1), fast_timeout=True)
    w = Wire()
    w.join(a, 1, a, 2)
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.deliver(a, a.add_port(0.0, 2, mac(12), carrier=True))
    w.run(3, [a])
    assert why(a, 1) == "loop: our own LACPDU came back"


def test_partner_individual():
    # b's port 101 is half duplex (individual); 102 and 103 aggregate, and win on bandwidth.
    a = LacpCore(mac(1), fast_timeout=True)
    b = LacpCore(mac(2), fast_timeout=True)
    w = Wire()
    for p in (1, 2, 3):
        w.join(a, p, b, 100 + p)
        w.deliver(a, a.add_port(0.0, p, mac(10 + p), carrier=True))
        w.deliver(b, b.add_port(0.0, 100 + p, mac(50 + p), carrier=True, duplex_full=p != 1))
    w.run(6, [a, b])
    assert not a.port_status(1)["partner_state"] & P.AGGREGATION
    assert a.distributing() == (2, 3)
    assert why(a, 1) == "partner individual"
    assert why(b, 101) == "individual: half duplex"


def three(b_speeds=(None, None), split=False):
    """a's ports 1 and 2 cabled to b (or port 2 to a third system c when split)."""
    a, b = LacpCore(mac(1), fast_timeout=True), LacpCore(mac(2), fast_timeout=True)
    c = LacpCore(mac(3), fast_timeout=True) if split else b
    w = Wire()
    w.join(a, 1, b, 101)
    w.join(a, 2, c, 102)
    for p in (1, 2):
        w.deliver(a, a.add_port(0.0, p, mac(10 + p), carrier=True))
    w.deliver(b, b.add_port(0.0, 101, mac(51), carrier=True, speed=b_speeds[0]))
    w.deliver(c, c.add_port(0.0, 102, mac(52), carrier=True, speed=b_speeds[1]))
    w.run(6, [a, b, c] if split else [a, b])
    return a


def test_partner_key_differs():
    # b's links differ in speed, so in key: a selects one (equal bandwidth to a, whose veth
    # speed is unknown), b the faster; a's selected port then waits for a partner in sync.
    a = three(b_speeds=(1000, 10000))
    (standby,) = [p for p in (1, 2) if a.port_status(p)["selected"] == "STANDBY"]
    (chosen,) = {1, 2} - {standby}
    agg_key = a.status()["aggregator"]["partner_key"]
    other = a.port_status(standby)["partner_key"]
    assert why(a, standby) == f"partner key {other:#x} differs from the aggregation's {agg_key:#x}"
    assert why(a, chosen) == "partner not in sync"


def test_partner_system_differs():
    a = three(split=True)
    (p,) = [p for p in (1, 2) if why(a, p)]
    chosen = a.status()["aggregator"]["partner_system"]
    assert why(a, p) == f"partner system {a.port_status(p)['partner_system']} differs from the aggregation's {chosen}"


def test_partner_not_collecting_or_not_in_sync():
    a, b, w = pair()
    w.run(5, [a, b])
    e = entry(a, 1).replace(flags=1)
    e = e.replace(lacp=e.lacp.replace(partner_state=e.lacp.partner_state & ~P.COLLECTING))
    assert reasons.reason(e, agg(a)) == "partner not collecting"
    e = e.replace(lacp=e.lacp.replace(partner_state=e.lacp.partner_state & ~P.SYNC))
    assert reasons.reason(e, agg(a)) == "partner not in sync"


def test_rules_are_extensible_and_fall_back_to_the_mux():
    a, b, w = pair()
    w.run(5, [a, b])
    e = entry(a, 1).replace(flags=0)
    standby = lambda port, agg: "standby (agrmaxports)"  # noqa: E731
    assert reasons.reason(e, agg(a), rules=[reasons.no_carrier, standby]) == "standby (agrmaxports)"
    assert reasons.reason(e, agg(a), rules=[]) == "mux COLLECTING_DISTRIBUTING"
    assert reasons.explain(port({"flags": 0, "carrier": True}), None) == ("other", "not distributing")


def test_history_counts_keeps_the_last_transitions_and_the_last_lacpdu():
    clock = [100.0]
    h = history.History(clock=lambda: clock[0], wall=lambda: 1e9 + clock[0])
    h.record(Transition(1, "rx", "PORT_DISABLED", "EXPIRED", "port enabled, LACP enabled"))
    h.record(Transition(1, "rx", "EXPIRED", "CURRENT", "LACPDU received"))
    h.record(Transition(1, "periodic", "FAST_PERIODIC", "PERIODIC_TX", "periodic expired"))  # not kept
    clock[0] = 103.5
    h.record(Transition(1, "rx", "CURRENT", "CURRENT", "LACPDU received"))                    # not kept
    clock[0] = 105.0
    h.record(Transition(1, "rx", "CURRENT", "EXPIRED", "current_while expired"))
    v = h.view(1)
    assert v["counts"] == {"expired": 2, "defaulted": 0, "actor_churn": 0, "partner_churn": 0}
    assert v["lacpdu_age"] == 1.5 and v["last_change"] == 1e9 + 105.0
    assert [(t["old"], t["new"], t["cause"]) for t in v["transitions"]] == [
        ("PORT_DISABLED", "EXPIRED", "port enabled, LACP enabled"), ("EXPIRED", "CURRENT", "LACPDU received"),
        ("CURRENT", "EXPIRED", "current_while expired")]
    for i in range(20):
        h.record(Transition(1, "mux", "A", f"B{i}", "x"))
    assert len(h.view(1)["transitions"]) == history.KEEP
    h.forget(1)
    assert h.view(1)["counts"]["expired"] == 0 and h.view(1)["lacpdu_age"] is None


def test_standby_by_agrmaxports():
    from tests.unit.test_lacp_maxports import wired
    a, b, w = wired({"max_ports": 1}, {})
    w.run(6, [a, b])
    assert why(a, 1) is None
    assert why(a, 2) == why(a, 3) == "standby (agrmaxports)"


def test_waiting_to_restore_counts_down():
    a = LacpCore(mac(1), fast_timeout=True, wtr_time=10.0)
    b = LacpCore(mac(2), fast_timeout=True)
    w = Wire()
    w.join(a, 1, b, 101)
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.deliver(b, b.add_port(0.0, 101, mac(51), carrier=True))
    w.run(4, [a, b])
    assert why(a, 1).startswith("waiting to restore, ") and why(a, 1).endswith(" s left")
    left = float(why(a, 1).split(", ")[1].split()[0])
    w.run(2, [a, b])
    assert float(why(a, 1).split(", ")[1].split()[0]) == pytest.approx(left - 2, abs=0.11)
    w.run(10, [a, b])
    assert why(a, 1) is None
    # link1 keeps its wait at the port's top level (no LACP)
    assert reasons.reason(port({"flags": 0, "carrier": True, "wtr_left": 1.25})) == "waiting to restore, 1.2 s left"


def test_fallback_idle_ports_say_another_carries_the_traffic():
    from tests.unit.test_lacp_fallback import alone
    from tests.unit.test_lacp_controls import run_clock
    a = alone()
    run_clock(a, 4.0)
    assert a.distributing() == (1,)
    assert why(a, 2) == why(a, 3) == "idle: lacpfallback carries the traffic on another port"


def test_failover_and_linkcheck_reasons():
    standby = {"flags": 0, "carrier": True, "failover": {"role": "standby", "wtr_left": 0.0}}
    assert reasons.reason(port(standby)) == "standby (agrproto failover): another port is active"
    waiting = {"flags": 0, "carrier": True, "failover": {"role": "standby", "wtr_left": 4.25}}
    assert reasons.reason(port(waiting)) == "waiting to restore, 4.2 s left"
    silent = {"flags": 0, "carrier": True, "linkcheck": {"up": False, "heard_ago": 3.5},
              "failover": {"role": "down", "wtr_left": 0.0}}
    assert reasons.reason(port(silent)) == "link check: no target heard for 3.5 s"
    assert reasons.reason(port({**silent, "linkcheck": {"up": False, "heard_ago": None}})) == "link check: no target heard yet"
    assert reasons.reason(port({**silent, "carrier": False})) == "no carrier"
    assert reasons.reason(port({**standby, "flags": 2})) is None


def test_the_mux_and_our_own_key_in_words():
    chosen = LacpStatus.from_json({"system": "02:00:00:00:00:01", "system_priority": 1, "fast_timeout": True,
                                   "strict": True, "active": True,
                                   "aggregator": {"actor_key": 0x100, "partner_system": "02:00:00:00:00:02",
                                                  "partner_key": 0x100, "ports": [2]}})
    slower = statuses.port({"lacp": {"selected": "UNSELECTED", "actor_key": 0x200}})
    assert reasons.reason(slower, chosen) == "our key 0x200 (link speed) differs from the aggregation's 0x100"
    assert reasons.other_aggregation(slower, None) is None, "no aggregation chosen: nothing differs"
    same = statuses.port({"lacp": {"selected": "UNSELECTED"}})
    assert reasons.other_aggregation(same, chosen) is None
    waiting = statuses.port({"lacp": {"mux_state": "WAITING"}})
    assert reasons.mux_waiting(waiting, None) == "waiting for the other ports (aggregate wait)"
    detached = statuses.port({"lacp": {"mux_state": "DETACHED"}})
    assert reasons.mux_waiting(detached, None) == "not selected"
    assert reasons.mux_waiting(statuses.port({"lacp": {}}), None) is None
    assert reasons.mux_waiting(statuses.port({}), None) is None, "no LACP, no mux"


def test_history_keeps_lacpdu_intervals_mux_age_and_flaps_for_diagnose():
    clock = [100.0]
    h = history.History(clock=lambda: clock[0], wall=lambda: 1e9 + clock[0])
    for t in (100.0, 101.0, 103.5, 104.5):
        clock[0] = t
        h.record(Transition(1, "rx", "CURRENT", "CURRENT", "LACPDU received"))
    assert h.view(1)["lacpdu_intervals"] == [1.0, 2.5, 1.0]
    # A disabled port lost nothing while its link was down: no interval across it.
    clock[0] = 105.0
    h.record(Transition(1, "rx", "CURRENT", "PORT_DISABLED", "port disabled"))
    clock[0] = 130.0
    h.record(Transition(1, "rx", "PORT_DISABLED", "EXPIRED", "port enabled, LACP enabled"))
    h.record(Transition(1, "rx", "EXPIRED", "CURRENT", "LACPDU received"))
    clock[0] = 131.0
    h.record(Transition(1, "rx", "CURRENT", "CURRENT", "LACPDU received"))
    assert h.view(1)["lacpdu_intervals"] == [1.0, 2.5, 1.0, 1.0]
    assert h.view(1)["mux_age"] is None and h.view(1)["flap_ages"] == []
    clock[0] = 140.0
    h.record(Transition(1, "mux", "ATTACHED", "COLLECTING_DISTRIBUTING", "partner in sync"))
    clock[0] = 150.0
    h.record(Transition(1, "mux", "COLLECTING_DISTRIBUTING", "ATTACHED", "partner out of sync"))
    clock[0] = 160.0
    v = h.view(1)
    assert v["mux_age"] == 10.0 and v["flap_ages"] == [10.0]
    for i in range(50):
        h.record(Transition(1, "rx", "CURRENT", "CURRENT", "LACPDU received"))
    assert len(h.view(1)["lacpdu_intervals"]) == history.KEEP_INTERVALS
