"""Property tests of the sans-IO LACP core: any sequence of operations keeps its invariants.

One LacpCore is driven with a fake monotonic clock by operations drawn by hypothesis:
LACPDUs from random partners (some of them answering us correctly, so ports do reach
distributing), our own LACPDUs looped back, Marker PDUs, garbage, carrier changes, ports
added and removed, flag changes, the core's own timer and clock jumps of up to 10000 s (and
a few enormous ones). After every step the invariants below must hold.
"""
import copy
import os

from hypothesis import Phase, given, settings, strategies as st

from agrconfig.lacp import LacpCore, Output, Transmit
from agrconfig.lacp import core as lacp_core
from agrconfig.lacp import pdu as P
from agrconfig.lacp.events import DistributingChanged, Transition
from agrconfig.lacp.port import FAST_PERIODIC_TIME, MAX_TX_PER_PERIOD, SELECTED

# scripts/mutation sets AGRCONFIG_MUTATION: a few fixed examples per mutant and no shrinking
# (a mutant only needs to fail), so that a run ends in minutes and its verdicts do not depend
# on luck; the example-based tests do most of the killing.
MUTATION = bool(os.environ.get("AGRCONFIG_MUTATION"))


def examples(n):
    if not MUTATION:
        return settings(max_examples=n, deadline=None)
    return settings(max_examples=max(5, n // 20), deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate])


OUR_MAC = bytes.fromhex("020000000001")
PORTS = (1, 2, 3, 4)
PARTNERS = (bytes.fromhex("02000000aa01"), bytes.fromhex("02000000aa02"), OUR_MAC)

u8, u16 = st.integers(0, 0xFF), st.integers(0, 0xFFFF)
port_ids = st.sampled_from(PORTS)
# Partner state: mostly the bits a live partner sends, sometimes anything.
good_state = st.sets(st.sampled_from([P.ACTIVITY, P.TIMEOUT, P.AGGREGATION, P.SYNC, P.COLLECTING,
                                      P.DISTRIBUTING])).map(sum) | st.just(0x3D) | st.just(0x3F)
partner_state = good_state | u8
partner_info = st.builds(P.LacpInfo, st.sampled_from([0x8000, 1]) | u16,
                         st.sampled_from(PARTNERS) | st.binary(min_size=6, max_size=6),
                         st.sampled_from([1, 2]) | u16, st.just(0x8000) | u16, u16, partner_state)

ops = st.one_of(
    # A LACPDU whose Partner field is our port as we describe it now (so it can sync) ...
    st.tuples(st.just("reply"), port_ids, partner_info),
    # ... or with any Partner field at all.
    st.tuples(st.just("lacpdu"), port_ids, partner_info, st.builds(P.LacpInfo, u16, st.binary(min_size=6, max_size=6),
                                                                   u16, u16, u16, u8)),
    st.tuples(st.just("echo"), port_ids),                   # our own LACPDU came back: a loop
    st.tuples(st.just("marker"), port_ids, st.booleans(), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("garbage"), port_ids, st.binary(max_size=140), st.booleans()),
    st.tuples(st.just("carrier"), port_ids, st.booleans()),
    st.tuples(st.just("add"), port_ids, st.sampled_from([None, 0, -1, 10, 1000, 10000, 12345]),
              st.sampled_from([None, True, False]), st.booleans()),
    st.tuples(st.just("remove"), port_ids),
    st.tuples(st.just("fast"), st.booleans()),
    st.tuples(st.just("strict"), st.booleans()),
    st.tuples(st.just("sysmac"), st.sampled_from([OUR_MAC, bytes.fromhex("020000000009")])),
    st.tuples(st.just("start_marker"), port_ids),
    st.tuples(st.just("timer")),                            # handle_timer at get_timer()
    st.tuples(st.just("timer")),
    st.tuples(st.just("jump"), st.floats(0, 10000, allow_nan=False) | st.floats(0, 5)),
    st.tuples(st.just("huge_jump"), st.sampled_from([1e6, 1e9, 2.0 ** 52])),
    st.tuples(st.just("stale"), st.floats(0, 100)),         # a caller passes an older now
    # A live partner on every port for a few seconds: gets ports to distributing.
    st.tuples(st.just("settle"), st.sampled_from(PARTNERS[:2]), st.sampled_from([1, 2]),
              st.sampled_from([0x3D, 0x3F, 0x3F & ~P.TIMEOUT]), st.integers(1, 4)),
)


class Driver:
    """Runs operations on one core, keeps the fake clock, and checks every returned action."""

    def __init__(self):
        self.core = LacpCore(OUR_MAC)
        self.now = 0.0
        self.mac = OUR_MAC
        self.tx = {}            # port -> times of LACPDUs sent since it was (re-)added
        self.last_dist = ((), ())
        self.states = {}        # port -> {machine: state}, as told by the Transitions alone

    def frame(self, actor, partner):
        return P.build_frame(actor.system, P.encode(P.Lacpdu(actor, partner, 0)))

    def step(self, op):
        c, kind = self.core, op[0]
        if kind == "reply":
            _, pid, actor = op
            port = c.ports.get(pid)
            us = port.actor_info() if port else P.LacpInfo(0, bytes(6), 0, 0, 0, 0)
            out = c.receive(self.now, pid, self.frame(actor, us))
        elif kind == "lacpdu":
            _, pid, actor, partner = op
            out = c.receive(self.now, pid, self.frame(actor, partner))
        elif kind == "echo":
            port = c.ports.get(op[1])
            me = port.actor_info() if port else P.LacpInfo(0x8000, self.mac, 1, 1, 1, 0x3D)
            out = c.receive(self.now, op[1], self.frame(me, me))
        elif kind == "marker":
            _, pid, resp, tid = op
            raw = P.encode(P.MarkerPdu(resp, 7, PARTNERS[0], tid))
            out = c.receive(self.now, pid, P.build_frame(PARTNERS[0], raw))
        elif kind == "garbage":
            _, pid, data, framed = op
            frame = P.SLOW_PROTOCOLS_MAC + PARTNERS[0] + b"\x88\x09" + data if framed else data
            out = c.receive(self.now, pid, frame)
        elif kind == "carrier":
            out = c.set_carrier(self.now, op[1], op[2])
        elif kind == "add":
            _, pid, speed, duplex, carrier = op
            if pid in c.ports:
                before = c.status()
                try:
                    c.add_port(self.now, pid, bytes([2, 0, 0, 0, 1, pid]), speed=speed,
                               duplex_full=duplex, carrier=carrier)
                except KeyError:
                    pass
                else:
                    raise AssertionError("adding a port twice must be refused")
                assert c.status() == before, "a refused add_port changes nothing"
                out = Output()
            else:
                self.tx[pid] = []
                # the core's BEGIN puts every machine in its initial state without a Transition.
                self.states[pid] = {"rx": "INITIALIZE", "periodic": "NO_PERIODIC", "mux": "DETACHED",
                                    "actor_churn": "NO_ACTOR_CHURN", "partner_churn": "NO_PARTNER_CHURN", "wtr": "DOWN"}
                out = c.add_port(self.now, pid, bytes([2, 0, 0, 0, 1, pid]), speed=speed,
                                 duplex_full=duplex, carrier=carrier)
        elif kind == "remove":
            self.tx.pop(op[1], None)
            out = c.remove_port(self.now, op[1])
        elif kind == "fast":
            out = c.set_fast_timeout(self.now, op[1])
        elif kind == "strict":
            out = c.set_strict(self.now, op[1])
        elif kind == "sysmac":
            self.mac = op[1]
            out = c.set_system_mac(self.now, op[1])
        elif kind == "start_marker":
            out = c.start_marker(self.now, op[1])
        elif kind == "timer":
            t = c.get_timer()
            if t is not None:
                assert t >= self.now
                self.now = t
            out = c.handle_timer(self.now)
        elif kind == "jump":
            self.now += op[1]
            out = c.handle_timer(self.now)
        elif kind == "huge_jump":
            self.now = max(self.now, op[1])
            out = c.handle_timer(self.now)
        elif kind == "settle":
            _, system, key, state, rounds = op
            for _ in range(rounds):
                for pid in list(c.ports):
                    actor = P.LacpInfo(0x8000, system, key, 0x8000, 100 + pid, state)
                    self.step(("reply", pid, actor))
                self.step(("jump", 1.0))
            return
        elif kind == "stale":
            out = c.handle_timer(self.now - op[1])
        else:
            raise AssertionError(kind)
        self.check_actions(out)
        self.check_invariants()

    def check_actions(self, out):
        assert isinstance(out, Output)
        assert all(isinstance(f, Transmit) for f in out.frames), "frames apart from notifications"
        assert not any(isinstance(e, Transmit) for e in out.events)
        for action in out:
            if isinstance(action, Transmit):
                assert action.port_id in self.core.ports
                src, payload = P.parse_frame(action.frame)
                pdu = P.decode(payload)
                assert src == self.core.ports[action.port_id].mac
                if isinstance(pdu, P.Lacpdu):
                    assert pdu.actor.system == self.mac and pdu.actor.port == action.port_id
                    self.tx[action.port_id].append(self.now)
            elif isinstance(action, Transition):
                # The log is the machines' true history: each step starts where the last one
                # ended and gives the table's reason (checked against the ports below).
                states = self.states[action.port_id]
                assert action.old == states[action.machine], (action, states)
                assert action.reason == lacp_core.TABLES[action.machine][(action.old, action.new)]
                states[action.machine] = action.new
            elif isinstance(action, DistributingChanged):
                self.last_dist = (action.ports, action.collecting)
        # The last DistributingChanged (ever) tells the driver the current sets.
        assert self.last_dist == (self.core.distributing(), self.core.collecting())

    def check_invariants(self):
        c = self.core
        for pid in list(self.states):
            if pid not in c.ports:
                del self.states[pid]
        for pid, states in self.states.items():
            p = c.ports[pid]
            assert states == {m: getattr(p, {M.NAME: M.ATTR for M in lacp_core.MACHINES}[m]) for m in states}, "a move without a Transition"
        assert c.now == self.now or c.now >= self.now
        dist = c.distributing()
        lags = set()
        for pid in dist:
            p = c.ports[pid]
            assert p.collecting and p.selected == SELECTED and p.enabled, c.port_status(pid)
            assert p.mux_state == "COLLECTING_DISTRIBUTING"
            assert not p.looped(c.now)
            lags.add((p.selected_lag, p.partner.system, p.partner.key, p.key))
        assert len(lags) <= 1, f"one aggregation distributes at most: {lags}"
        if dist:
            (lag, _, _, _), = lags
            assert lag == c.selected_lag
        for pid, p in c.ports.items():
            assert not (p.distributing and not p.collecting)
            if p.collecting:
                assert p.selected == SELECTED and p.enabled
            if p.selected == SELECTED:
                assert p.selected_lag == c.selected_lag, "selected ports are of the selected aggregation"
            if not p.enabled or p.looped(c.now):
                assert p.mux_state == "DETACHED" and p.selected != SELECTED, c.port_status(pid)
            if c.system.strict and pid in dist:
                assert not p.defaulted, "strict: only a live partner makes a port distribute"
        # Timers never go backwards: once the core has run for `now`, nothing it asks
        # for is already due.
        timer = c.get_timer()
        assert timer is None or timer > c.now, (timer, c.now)
        # The core ran to a fixed point: running it again at the same time moves nothing.
        twin = copy.deepcopy(c)
        again = twin.handle_timer(c.now)
        assert not [a for a in again if isinstance(a, Transition)], again
        # At most three LACPDUs in any Fast_Periodic_Time on a port.
        for pid, times in self.tx.items():
            for a, b in zip(times, times[MAX_TX_PER_PERIOD:]):
                assert b - a >= FAST_PERIODIC_TIME - 1e-9, (pid, times)


@examples(250)
@given(st.lists(st.sampled_from(PORTS), min_size=0, max_size=4, unique=True),
       st.lists(ops, max_size=40))
def test_core_invariants_under_any_operations(initial, seq):
    d = Driver()
    for pid in initial:
        d.step(("add", pid, None, None, True))
    for op in seq:
        d.step(op)


def converge_ops():
    """Operations that favour a partner answering correctly, so distributing is reached."""
    partner = st.builds(P.LacpInfo, st.just(0x8000), st.sampled_from(PARTNERS[:2]), st.sampled_from([1, 2]),
                        st.just(0x8000), st.integers(1, 4), good_state)
    return st.one_of(st.tuples(st.just("reply"), port_ids, partner),
                     st.tuples(st.just("jump"), st.floats(0, 3)),
                     st.tuples(st.just("timer")),
                     st.tuples(st.just("carrier"), port_ids, st.booleans()),
                     ops)


@examples(200)
@given(st.lists(converge_ops(), max_size=60))
def test_core_invariants_while_partners_answer(seq):
    d = Driver()
    for pid in PORTS:
        d.step(("add", pid, None, None, True))
    for op in seq:
        d.step(op)


def test_a_partner_answering_reaches_distributing():
    """The driver can reach distributing at all (else the properties above prove little)."""
    d = Driver()
    partner = P.LacpInfo(0x8000, PARTNERS[0], 1, 0x8000, 1, 0x3D)
    for pid in (1, 2):
        d.step(("add", pid, None, None, True))
    for _ in range(5):
        for pid in (1, 2):
            d.step(("reply", pid, partner))
        d.step(("jump", 1.0))
    assert d.core.distributing() == (1, 2)
