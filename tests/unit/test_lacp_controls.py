"""Operator controls in the sans-IO core (issue 13): lacpmode active|passive, lacpsysprio,
agrportpri and lacpsysid, on a fake clock and a fake wire."""
from agrconfig.record import replace

from agrconfig.lacp import LacpCore, Transmit
from agrconfig.lacp import pdu as P
from tests.unit.lacp_wire import Wire, mac
from tests.unit.test_lacp_timers import LIVE, Peer, assert_settled


def lacpdus(actions, pid=None):
    return [P.decode(P.parse_frame(x.frame)[1]) for x in actions
            if isinstance(x, Transmit) and (pid is None or x.port_id == pid)]


def run_clock(core, until, out=None):
    """Step `core` from deadline to deadline up to `until`; returns every action with its time."""
    out = [] if out is None else out
    while True:
        t = core.get_timer()
        if t is None or t > until:
            return out
        out += [(t, x) for x in core.handle_timer(t)]
        assert_settled(core)


def wired(a_kw, b_kw, ports=(1, 2)):
    """Two cores cabled port to port (p <-> p + 100), every port with carrier."""
    a = LacpCore(mac(1), **a_kw)
    b = LacpCore(mac(2), **b_kw)
    w = Wire()
    for p in ports:
        w.join(a, p, b, p + 100)
    for p in ports:
        w.deliver(a, a.add_port(0.0, p, mac(10 + p), carrier=True))
        w.deliver(b, b.add_port(0.0, p + 100, mac(50 + p), carrier=True))
    return a, b, w


def sent_by(w, core):
    return [(t, P.decode(P.parse_frame(f)[1])) for t, c, _p, f in w.sent if c is core]


# -- lacpmode ---------------------------------------------------------------------------------

def test_a_passive_port_says_nothing_until_its_partner_speaks_then_follows_the_periodic_rules():
    a = LacpCore(mac(1), fast_timeout=True, active=False)
    out = [(0.0, x) for x in a.add_port(0.0, 1, mac(11), carrier=True)]
    run_clock(a, 100.0, out)
    assert lacpdus(x for _t, x in out) == [], "passive and a partner never heard: silent"
    assert a.port_status(1)["periodic_state"] == "NO_PERIODIC"
    assert a.port_status(1)["rx_state"] == "DEFAULTED"
    assert a.get_timer() is None, "nothing to wake up for"

    peer = Peer(a, state=LIVE | P.TIMEOUT)          # an active partner asking for fast LACPDUs
    (answer,) = lacpdus(peer.say(100.0, 1))
    assert not answer.actor.state & P.ACTIVITY, "we answer, passive"
    assert answer.partner.system == mac(2)
    assert a.port_status(1)["periodic_state"] == "FAST_PERIODIC"
    # While the partner speaks, we send every second (fast periodic: it asked for the short timeout).
    out = []
    for t in range(101, 111):
        run_clock(a, float(t), out)
        peer.say(float(t), 1)
    times = sorted({t for t, x in out if isinstance(x, Transmit)})
    assert [round(y - x, 6) for x, y in zip(times, times[1:])] == [1.0] * (len(times) - 1)
    assert len(times) >= 9
    # It asks for the long timeout: our periodic rate follows (slow: 30 s).
    peer.state = LIVE
    peer.say(110.5, 1)
    assert a.port_status(1)["periodic_state"] == "SLOW_PERIODIC"
    # The partner falls silent: expired (we still ask for fast LACPDUs), then defaulted
    # (3 s each with our short timeout); a defaulted partner is passive, so we fall silent.
    out = run_clock(a, 400.0)
    times = [t for t, x in out if isinstance(x, Transmit)]
    assert a.port_status(1)["rx_state"] == "DEFAULTED"
    assert times and max(times) <= 110.5 + 6.0, times
    assert a.port_status(1)["periodic_state"] == "NO_PERIODIC"


def test_two_passive_ends_stay_silent_forever():
    a, b, w = wired({"fast_timeout": True, "active": False}, {"fast_timeout": True, "active": False})
    w.run(300, [a, b], step=0.5)
    assert w.sent == []
    assert a.distributing() == b.distributing() == ()
    for core, pid in ((a, 1), (b, 101)):
        assert core.port_status(pid)["periodic_state"] == "NO_PERIODIC"
        assert not core.port_status(pid)["collecting"]


def test_active_and_passive_aggregate():
    a, b, w = wired({"fast_timeout": True}, {"fast_timeout": True, "active": False})
    w.run(6, [a, b])
    assert a.distributing() == (1, 2) and b.distributing() == (101, 102)
    theirs = sent_by(w, b)
    assert theirs and all(not pdu.actor.state & P.ACTIVITY for _t, pdu in theirs)
    assert all(pdu.actor.state & P.ACTIVITY for _t, pdu in sent_by(w, a))
    assert "ACTIVITY" not in a.port_status(1)["partner_state_str"]
    assert "ACTIVITY" in b.port_status(101)["partner_state_str"]
    # The passive end keeps sending every second while its active partner does.
    later = [t for t, _ in sent_by(w, b) if t > 3]
    w.run(5, [a, b])
    assert len([t for t, _ in sent_by(w, b) if t > 6]) >= 4, later


def test_the_active_end_speaks_first():
    a, b, w = wired({"fast_timeout": True}, {"fast_timeout": True, "active": False})
    first = w.sent[0]
    assert first[1] is a, "the passive end waited"


def test_going_passive_with_a_passive_partner_falls_silent_and_going_active_speaks_at_once():
    a, b, w = wired({"fast_timeout": True}, {"fast_timeout": True, "active": False}, ports=(1,))
    w.run(6, [a, b])
    assert a.distributing() == (1,)
    w.deliver(a, a.set_active(w.now, False))
    w.run(20, [a, b])
    assert a.port_status(1)["periodic_state"] == b.port_status(101)["periodic_state"] == "NO_PERIODIC"
    assert a.distributing() == () and b.distributing() == ()
    quiet = len(w.sent)
    w.run(60, [a, b], step=0.5)
    assert len(w.sent) == quiet, "both passive: nothing more on the wire"
    out = a.set_active(w.now, True)
    (pdu,) = lacpdus(out, 1)
    assert pdu.actor.state & P.ACTIVITY
    w.deliver(a, out)
    w.run(6, [a, b])
    assert a.distributing() == (1,) and b.distributing() == (101,)
    assert lacpdus(a.set_active(w.now, True)) == [], "no change, nothing sent"


def test_a_partner_in_sync_counts_only_if_one_end_is_active():
    """recordPDU: with both ends passive a partner's Synchronization is not taken."""
    a = LacpCore(mac(1), fast_timeout=True, active=False)
    a.add_port(0.0, 1, mac(11), carrier=True)
    peer = Peer(a, state=LIVE & ~P.ACTIVITY)
    me = a.ports[1].actor_info()
    peer.say(0.5, 1, view=me)
    assert not a.port_status(1)["partner_state"] & P.SYNC, "passive, and it saw us passive"
    # The same PDU from an active partner: in sync.
    peer.state = LIVE
    peer.say(0.6, 1, view=me)
    assert a.port_status(1)["partner_state"] & P.SYNC
    # We are active and the partner's copy of us says so: in sync although it is passive.
    b = LacpCore(mac(1), fast_timeout=True)
    b.add_port(0.0, 1, mac(11), carrier=True)
    Peer(b, state=LIVE & ~P.ACTIVITY).say(0.5, 1)
    assert b.port_status(1)["partner_state"] & P.SYNC
    # ... but a stale copy of us as passive does not.
    Peer(b, state=LIVE & ~P.ACTIVITY).say(0.7, 1, view=replace(b.ports[1].actor_info(),
                                                                state=b.ports[1].actor_state & ~P.ACTIVITY))
    assert not b.port_status(1)["partner_state"] & P.SYNC


# -- priorities -------------------------------------------------------------------------------

def test_system_and_port_priorities_are_in_our_lacpdus_and_in_the_partners_view():
    a = LacpCore(mac(1), system_priority=0x1234, fast_timeout=True)
    b = LacpCore(mac(2), fast_timeout=True)
    w = Wire()
    w.join(a, 1, b, 101)
    w.join(a, 2, b, 102)
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True, port_priority=0x0042))
    w.deliver(a, a.add_port(0.0, 2, mac(12), carrier=True))
    for p in (101, 102):
        w.deliver(b, b.add_port(0.0, p, mac(50 + p % 100), carrier=True))
    w.run(6, [a, b])
    assert a.distributing() == (1, 2) and b.distributing() == (101, 102)
    ours = {}
    for t, c, pid, f in w.sent:
        if c is a:
            ours[pid] = P.decode(P.parse_frame(f)[1])
    assert ours[1].actor.system_priority == ours[2].actor.system_priority == 0x1234
    assert (ours[1].actor.port_priority, ours[2].actor.port_priority) == (0x0042, 0x8000)
    assert [b.port_status(p)["partner_system_priority"] for p in (101, 102)] == [0x1234, 0x1234]
    assert [b.port_status(p)["partner_port_priority"] for p in (101, 102)] == [0x0042, 0x8000]
    assert a.status()["system_priority"] == 0x1234
    assert a.port_status(1)["actor_port_priority"] == 0x0042
    assert b.port_status(101)["partner_state"] & P.SYNC, "the partner's copy of us matches"


def test_a_new_port_priority_is_sent_at_once_and_the_partner_takes_it():
    a, b, w = wired({"fast_timeout": False}, {"fast_timeout": False})
    w.run(6, [a, b])
    assert a.distributing() == (1, 2)
    out = a.set_port_priority(w.now, 2, 7)
    (pdu,) = lacpdus(out)
    assert pdu.actor.port_priority == 7 and pdu.actor.port == 2
    w.deliver(a, out)
    assert b.port_status(102)["partner_port_priority"] == 7
    assert b.port_status(101)["partner_port_priority"] == 0x8000
    w.run(6, [a, b])
    assert a.distributing() == (1, 2) and b.distributing() == (101, 102), "back in one aggregation"
    assert a.set_port_priority(w.now, 2, 7) == [], "the same value changes nothing"
    assert a.set_port_priority(w.now, 99, 7) == [], "no such port: nothing"


def test_an_individual_ports_priority_is_part_of_its_lag_id():
    a = LacpCore(mac(1), fast_timeout=True)
    a.add_port(0.0, 1, mac(11), carrier=True)
    peer = Peer(a, state=LIVE & ~P.AGGREGATION)
    for t in range(6):
        a.handle_timer(float(t))
        peer.say(float(t), 1)
    assert a.distributing() == (1,)
    a.set_port_priority(6.0, 1, 9)
    assert a.port_status(1)["mux_state"] == "WAITING", "selected afresh: detached, waiting again"
    assert a.distributing() == ()


def test_a_new_system_priority_is_sent_at_once_and_both_ends_select_afresh():
    a, b, w = wired({"fast_timeout": True}, {"fast_timeout": True})
    w.run(6, [a, b])
    out = a.set_system_priority(w.now, 0x0001)
    assert sorted(x.port_id for x in out if isinstance(x, Transmit)) == [1, 2]
    assert all(p.actor.system_priority == 1 for p in lacpdus(out))
    w.deliver(a, out)
    assert a.distributing() == () and b.distributing() == ()
    assert [b.port_status(p)["partner_system_priority"] for p in (101, 102)] == [1, 1]
    w.run(6, [a, b])
    assert a.distributing() == (1, 2) and b.distributing() == (101, 102)
    assert a.set_system_priority(w.now, 1) == [], "the same value changes nothing"


def test_lacpsysid_is_the_system_in_our_lacpdus_and_both_ends_select_afresh():
    a, b, w = wired({"fast_timeout": True}, {"fast_timeout": True})
    w.run(6, [a, b])
    sysid = bytes.fromhex("020000abcdef")
    out = a.set_system_mac(w.now, sysid)
    assert {p.actor.system for p in lacpdus(out)} == {sysid}
    w.deliver(a, out)
    assert a.distributing() == () and b.distributing() == ()
    assert all(b.port_status(p)["partner_system"] == "02:00:00:ab:cd:ef" for p in (101, 102))
    w.run(6, [a, b])
    assert a.distributing() == (1, 2) and b.distributing() == (101, 102)
    assert a.status()["system"] == "02:00:00:ab:cd:ef"
