"""The 802.1AX-2014 timers (6.4.4) and the transmit limit (6.4.16), against the standard.

Every number here is the standard's, written out: never one of the product's constants,
which a test relative to them could not check. The clock jumps from one deadline of the
cores to the next, so a time is exact, not a multiple of a polling step.
"""
import copy
from agrconfig.record import replace

from agrconfig.lacp import LacpCore, Transmit
from agrconfig.lacp import pdu as P
from agrconfig.lacp import port as product
from tests.unit.lacp_wire import Wire, mac, pair

# A live partner's own state: active, aggregatable, in sync, collecting, distributing.
LIVE = P.ACTIVITY | P.AGGREGATION | P.SYNC | P.COLLECTING | P.DISTRIBUTING


def assert_settled(core):
    """The core ran to a fixed point: running it again at the same time moves nothing."""
    twin = copy.deepcopy(core)
    again = [x for x in twin.handle_timer(core.now) if type(x).__name__ == "Transition"]
    assert not again, f"not settled at {core.now}: {again}"


class Clock(Wire):
    """The fake wire, driven from deadline to deadline, with the time of every action."""

    def __init__(self):
        super().__init__()
        self.log = []  # (time, core, action)

    def deliver(self, core, actions):
        n = len(self.actions)
        super().deliver(core, actions)
        self.log += [(self.now, c, a) for c, a in self.actions[n:]]

    def until(self, end, cores):
        """Run every deadline up to `end` (inclusive) at its own time; then the clock reads `end`."""
        for _ in range(100000):  # a core that never settles fails here instead of hanging
            due = [t for t in (c.get_timer() for c in cores) if t is not None]
            if not due or min(due) > end:
                self.now = end
                return
            self.now = max(self.now, min(due))
            for c in cores:
                t = c.get_timer()
                if t is not None and t <= self.now:
                    self.deliver(c, c.handle_timer(self.now))
                    assert_settled(c)
        raise AssertionError(f"the cores never settle before {end}")

    def tx(self, core, port, since=0.0):
        """(time, decoded LACPDU) of every LACPDU `core` sent on `port` since `since`."""
        out = []
        for t, c, a in self.log:
            if c is core and isinstance(a, Transmit) and a.port_id == port and t >= since:
                pdu = P.decode(P.parse_frame(a.frame)[1])
                if isinstance(pdu, P.Lacpdu):
                    out.append((t, pdu))
        return out


def clocked_pair(fast, ports=(1, 2), wire=Clock):
    a = LacpCore(mac(1), fast_timeout=fast)
    b = LacpCore(mac(2), fast_timeout=fast)
    w = wire()
    for p in ports:
        w.join(a, p, b, p + 100)
    for p in ports:
        w.deliver(a, a.add_port(0.0, p, mac(10 + p), carrier=True))
        w.deliver(b, b.add_port(0.0, p + 100, mac(50 + p), carrier=True))
    return a, b, w


class Peer:
    """A partner driven by hand: it speaks for one port of `core` only when told to."""

    def __init__(self, core, system=mac(2), key=0x0100, state=LIVE):
        self.core, self.system, self.key, self.state = core, system, key, state

    def actor(self, pid, **changes):
        return replace(P.LacpInfo(0x8000, self.system, self.key, 0x8000, 100 + pid, self.state), **changes)

    def say(self, now, pid, view=None, **changes):
        """Send a LACPDU to `pid` whose partner fields are `view` (default: us exactly as we are)."""
        view = view or self.core.ports[pid].actor_info()
        frame = P.build_frame(mac(60 + pid), P.encode(P.Lacpdu(self.actor(pid, **changes), view, 0)))
        return self.core.receive(now, pid, frame)


def rx_state(core, pid):
    return core.port_status(pid)["rx_state"]


def last_tx(w, core, port):
    return w.tx(core, port)[-1][0]


def test_the_product_constants_are_the_standards():
    # A direct check next to the behaviour below: a changed constant is named here at once.
    assert product.FAST_PERIODIC_TIME == 1
    assert product.SLOW_PERIODIC_TIME == 30
    assert product.SHORT_TIMEOUT_TIME == 3
    assert product.LONG_TIMEOUT_TIME == 90
    assert product.CHURN_DETECTION_TIME == 60
    assert product.AGGREGATE_WAIT_TIME == 2
    assert product.MAX_TX_PER_PERIOD == 3


def test_fast_periodic_time_is_one_second():
    a, b, w = clocked_pair(fast=True)
    w.until(12, [a, b])
    times = [t for t, _ in w.tx(a, 1, since=4)]
    assert len(times) >= 7
    assert all(abs((y - x) - 1.0) < 1e-9 for x, y in zip(times, times[1:])), times


def test_slow_periodic_time_is_thirty_seconds():
    a, b, w = clocked_pair(fast=False)
    w.until(130, [a, b])
    times = [t for t, _ in w.tx(a, 1, since=10)]
    gaps = [y - x for x, y in zip(times, times[1:])]
    assert len(gaps) >= 3 and all(abs(g - 30.0) < 1e-9 for g in gaps), gaps
    assert a.distributing() == (1, 2), "a long-timeout partner speaking every 30 s stays current"


def silence_after_next_pdu(w, a, b, port):
    """Run until b's next LACPDU on `port` has reached a, then cut it: returns that time."""
    before = len(w.tx(b, port))
    while len(w.tx(b, port)) == before:
        w.until(min(c.get_timer() for c in (a, b)), [a, b])
    w.up[(id(b), port)] = False
    return last_tx(w, b, port)


def test_short_timeout_is_three_seconds_then_three_more_to_default():
    a, b, w = clocked_pair(fast=True)
    w.until(6, [a, b])
    t0 = silence_after_next_pdu(w, a, b, 102)
    w.until(t0 + 2.9, [a, b])
    assert rx_state(a, 2) == "CURRENT" and a.distributing() == (1, 2)
    w.until(t0 + 3.1, [a, b])
    assert rx_state(a, 2) == "EXPIRED" and a.distributing() == (1,)
    w.until(t0 + 5.9, [a, b])
    assert rx_state(a, 2) == "EXPIRED"
    w.until(t0 + 6.1, [a, b])
    assert rx_state(a, 2) == "DEFAULTED"
    assert rx_state(a, 1) == "CURRENT"


def test_long_timeout_is_ninety_seconds_then_a_short_one_to_default():
    a, b, w = clocked_pair(fast=False)
    w.until(40, [a, b])
    t0 = silence_after_next_pdu(w, a, b, 102)
    w.until(t0 + 89.9, [a, b])
    assert rx_state(a, 2) == "CURRENT" and a.distributing() == (1, 2)
    w.until(t0 + 90.1, [a, b])
    assert rx_state(a, 2) == "EXPIRED" and a.distributing() == (1,)
    # EXPIRED waits the short timeout, whatever our own timeout is.
    w.until(t0 + 92.9, [a, b])
    assert rx_state(a, 2) == "EXPIRED"
    w.until(t0 + 93.1, [a, b])
    assert rx_state(a, 2) == "DEFAULTED"


def test_expired_asks_the_partner_for_the_short_timeout():
    """EXPIRED sets the partner's LACP_Timeout to short (6.4.12): we poll it every second
    from then on, and say so in the partner fields of our LACPDUs."""
    a, b, w = clocked_pair(fast=False)
    w.until(40, [a, b])
    t0 = silence_after_next_pdu(w, a, b, 102)
    w.until(t0 + 89.9, [a, b])
    assert [t for t, _ in w.tx(a, 2, since=t0 + 60.5)] == [], "slow periodic while the partner is current"
    w.until(t0 + 92.5, [a, b])
    sent = w.tx(a, 2, since=t0 + 89.95)
    assert [round(t - t0, 6) for t, _ in sent] == [90.0, 91.0, 92.0]
    first = sent[0][1]
    assert first.partner.state & P.TIMEOUT and not first.partner.state & P.SYNC
    assert first.actor.state & P.EXPIRED
    live = [t for t, _ in w.tx(a, 1, since=t0 + 0.5)]
    assert len(live) == 3 and all(abs(y - x - 30.0) < 1e-9 for x, y in zip(live, live[1:])), \
        "the live port keeps its slow rate"


def test_aggregate_wait_is_two_seconds_from_selection():
    a = LacpCore(mac(1), fast_timeout=True)
    peer = Peer(a)
    a.add_port(0.0, 1, mac(11), carrier=True)
    a.handle_timer(0.5)
    peer.say(0.5, 1)                      # a partner: the port is selected for it now
    a.handle_timer(1.0)
    peer.say(1.0, 1)
    a.handle_timer(2.4)
    assert a.port_status(1)["mux_state"] == "WAITING" and a.distributing() == ()
    a.handle_timer(2.6)
    assert a.port_status(1)["mux_state"] == "COLLECTING_DISTRIBUTING" and a.distributing() == (1,)


def test_partner_churn_is_detected_after_sixty_seconds():
    a = LacpCore(mac(1), fast_timeout=True)
    w = Clock()
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))   # nobody answers
    w.until(59.9, [a])
    assert a.port_status(1)["partner_churn_state"] == "PARTNER_CHURN_MONITOR"
    w.until(60.1, [a])
    assert a.port_status(1)["partner_churn_state"] == "PARTNER_CHURN"
    assert a.port_status(1)["actor_churn_state"] == "NO_ACTOR_CHURN", "we attached after 2 s: in sync"


def test_actor_churn_is_detected_after_sixty_seconds():
    a = LacpCore(mac(1), fast_timeout=True)
    w = Clock()
    w.join(a, 1, a, 2)                   # cabled to ourselves: never selected, never in sync
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=True))
    w.deliver(a, a.add_port(0.0, 2, mac(12), carrier=True))
    w.until(59.9, [a])
    assert a.port_status(1)["actor_churn_state"] == "ACTOR_CHURN_MONITOR"
    w.until(60.1, [a])
    assert a.port_status(1)["actor_churn_state"] == "ACTOR_CHURN"


def test_three_lacpdus_per_second_and_a_fourth_reason_waits_for_its_slot():
    a, b, w = clocked_pair(fast=False, ports=(1,))
    w.until(50, [a, b])
    assert max(t for t, _ in w.tx(a, 1)) < 49, "no LACPDU in the last second: three slots free"
    start = len(w.tx(a, 1))
    for i in range(5):                     # five reasons to speak at once; the last says "fast"
        w.deliver(a, a.set_fast_timeout(50.0, i % 2 == 0))
    sent = w.tx(a, 1)[start:]
    assert [t for t, _ in sent] == [50.0, 50.0, 50.0]
    assert a.ports[1].ntt, "the fourth and fifth wait, as one"
    # The deferred one is due exactly when the first of the three leaves the window.
    assert a.get_timer() == 51.0
    w.until(50.999, [a, b])
    assert len(w.tx(a, 1)) == start + 3
    w.until(51.0, [a, b])
    (t, late), = w.tx(a, 1)[start + 3:]
    assert t == 51.0 and late.actor.state & P.TIMEOUT, "the newest state, a second later"


def test_carrier_return_speaks_at_once():
    a, b, w = clocked_pair(fast=False, ports=(1,))
    w.until(40, [a, b])
    w.deliver(a, a.set_carrier(40.0, 1, False))
    w.up[(id(b), 101)] = False             # no carrier: nothing reaches a meanwhile
    w.until(45, [a, b])
    start = len(w.tx(a, 1))
    w.up[(id(b), 101)] = True
    w.deliver(a, a.set_carrier(45.0, 1, True))
    assert [t for t, _ in w.tx(a, 1)[start:]] == [45.0], "not a second later with the periodic timer"


def test_first_carrier_speaks_at_once():
    """A port added without carrier has never spoken: carrier is its reason to (NTT)."""
    a, b, w = clocked_pair(fast=False, ports=())
    w.join(a, 1, b, 101)
    w.up[(id(b), 101)] = False             # no carrier: nothing reaches a (else b's LACPDU would
    w.deliver(b, b.add_port(0.0, 101, mac(51), carrier=True))   # be a reason to speak too)
    w.deliver(a, a.add_port(0.0, 1, mac(11), carrier=False))
    w.until(10, [a, b])
    assert w.tx(a, 1) == []
    w.up[(id(b), 101)] = True
    w.deliver(a, a.set_carrier(10.0, 1, True))
    assert w.tx(a, 1) and w.tx(a, 1)[0][0] == 10.0


def test_a_full_window_alone_is_no_reason_to_wake():
    a, b, w = clocked_pair(fast=False, ports=(1,))
    w.until(50, [a, b])
    start = len(w.tx(a, 1))
    for fast in (True, False, True):       # exactly three reasons: all sent, nothing waits
        w.deliver(a, a.set_fast_timeout(50.0, fast))
    assert len(w.tx(a, 1)) == start + 3 and not a.ports[1].ntt
    assert a.get_timer() > 51.0, "no wake-up for a slot nobody needs"
