"""The join hand-over machine (worker/join.py) alone: no BPF maps, no relay, no clock but the
`now` each test passes in. Every transition, each deadline to the instant, the answers that
must be ignored, and a random walk that checks what must always hold."""
import random

import pytest

from agrconfig.lacp.machine import IllegalTransition
from agrconfig.worker import join
from agrconfig.worker.join import (DRAIN_TIMEOUT, DUE, JOIN_QUIET, JOIN_TIMEOUT, DrainTimedOut, JoinHandOver,
                                   JoinTimedOut, Mode, Rebase, RequestDrain, SetMode)

HOLD = 0.02
T0 = 500.0                     # the loop's time at the turn a port joins
EPS = 1e-6
A, B, C = 3, 5, 7              # port indexes


def machine(drains=True):
    return JoinHandOver(drains, HOLD)


def joined(m, now=T0, hold_until=0.0):
    """B joins A (both with carrier); the loop's turn ends at `now`. The actions of the join."""
    out = m.ports_changed({A}, {A, B}, {A, B}, hold_until)
    assert m.state is Mode.PASS
    assert m.deadline() == DUE and DUE < now, "the join's deadlines wait for the loop's time"
    assert m.tick(now) == ()
    return out


def draining(m, number=1, now=T0):
    """Joined at `now` and past the hold: DRAIN, waiting for request `number`."""
    joined(m, now)
    assert m.tick(now + HOLD) == (SetMode(Mode.DRAIN), RequestDrain(JOIN_QUIET))
    m.requested(number)
    return m


def test_the_documented_timings():
    # agr(4): a 20 ms hold (the relay's), 250 ms for the relay to catch up; 1 ms of quiet
    # before a step on (bench/RESULTS.md); a hand-over ends within a second whatever happens.
    assert (JOIN_QUIET, DRAIN_TIMEOUT, JOIN_TIMEOUT) == (0.001, 0.25, 1.0)
    assert DUE == float("-inf")
    assert [m.value for m in Mode] == ["normal", "pass", "drain", "drop"]


def test_at_rest_nothing_is_due():
    m = machine()
    assert m.state is Mode.NORMAL and m.deadline() is None
    assert m.tick(T0) == () and m.tick(T0 + 100) == ()
    assert m.drained(1, (0, 0)) == () and m.state is Mode.NORMAL


@pytest.mark.parametrize("old, new, carrier", [
    (set(), {A}, {A}),                 # the first port: nothing was distributing
    (set(), {A, B}, {A, B}),
    ({A, B}, {A}, {A, B}),             # a port leaves
    ({A, B}, set(), {A, B}),           # every port leaves
    ({A, B}, {B, A}, {A, B}),          # the same set
    ({A}, {A, B}, {B}),                # the port that distributed lost its carrier: its queue is gone
    ({A}, {B}, {B}),                   # failover's move after a carrier loss
    ({A}, {A, B}, set()),
])
def test_no_hand_over_where_nothing_can_be_overtaken(old, new, carrier):
    m = machine()
    assert m.ports_changed(old, new, carrier, T0 + 1) == ()
    assert m.state is Mode.NORMAL and m.deadline() is None and m.tick(T0) == ()


@pytest.mark.parametrize("old, new, carrier", [
    ({A}, {A, B}, {A, B}),             # a port joins
    ({A}, {B}, {A, B}),                # failover's move to a better port while the old one lives
    ({A, C}, {A, B}, {C}),             # one of the ports that distributed still has carrier
    ([A], [A, B], [A]),                # any iterables of indexes
])
def test_a_join_while_a_port_that_distributed_lives_hands_over(old, new, carrier):
    m = machine()
    assert m.ports_changed(old, new, carrier, 0.0) == (Rebase(), SetMode(Mode.PASS))
    assert m.state is Mode.PASS


def test_a_join_passes_for_the_hold_then_drains_then_redirects():
    m = machine()
    assert joined(m) == (Rebase(), SetMode(Mode.PASS))   # counters rebased before the program counts
    assert m.deadline() == T0 + HOLD
    assert m.tick(T0 + HOLD - EPS) == () and m.state is Mode.PASS
    assert m.drained(0, (0, 0)) == (), "no drain asked for while the relay holds"
    assert m.tick(T0 + HOLD) == (SetMode(Mode.DRAIN), RequestDrain(JOIN_QUIET))
    assert m.state is Mode.DRAIN and m.deadline() == T0 + HOLD + DRAIN_TIMEOUT
    m.requested(4)
    assert m.drained(4, (9, 9)) == (SetMode(Mode.NORMAL),)
    assert m.state is Mode.NORMAL and m.deadline() is None and m.tick(T0 + 10) == ()


def test_the_pass_stage_lasts_until_the_relays_hold_is_over():
    m = machine()
    joined(m, T0, hold_until=T0 + 0.5)             # the relay holds longer than HOLD from now
    assert m.deadline() == T0 + 0.5
    assert m.tick(T0 + 0.5 - EPS) == ()
    assert m.tick(T0 + 0.5)[0] == SetMode(Mode.DRAIN)
    n = machine()
    joined(n, T0, hold_until=T0 + HOLD / 2)        # its hold began earlier: HOLD from now all the same
    assert n.deadline() == T0 + HOLD


def test_the_deadlines_come_from_the_first_tick_after_the_join():
    m = machine()
    m.ports_changed({A}, {A, B}, {A, B}, 0.0)
    assert m.deadline() == DUE
    assert m.tick(T0 + 3) == ()                    # a late turn: everything counts from it
    assert m.deadline() == T0 + 3 + HOLD
    assert m.tick(T0 + 3 + JOIN_TIMEOUT - EPS)[0] == SetMode(Mode.DRAIN)
    assert m.tick(T0 + 3 + JOIN_TIMEOUT) == (JoinTimedOut(), SetMode(Mode.NORMAL))


def test_a_frame_on_its_way_into_the_queue_is_waited_for():
    m = draining(machine(), 1)
    assert m.drained(1, (5, 3)) == (RequestDrain(JOIN_QUIET),)   # apart: look again after a quiet time
    assert m.state is Mode.DRAIN
    m.requested(2)
    assert m.drained(2, (6, 6)) == (SetMode(Mode.NORMAL),)


def test_counters_apart_and_unchanged_over_two_quiet_times_were_lost_before_the_queue():
    m = draining(machine(), 1)
    assert m.drained(1, (5, 3)) == (RequestDrain(JOIN_QUIET),)
    m.requested(2)
    assert m.drained(2, (5, 4)) == (RequestDrain(JOIN_QUIET),), "still moving: the relay sent one more"
    m.requested(3)
    assert m.drained(3, (6, 4)) == (RequestDrain(JOIN_QUIET),), "still moving: the program handed one more"
    m.requested(4)
    assert m.drained(4, (6, 4)) == (SetMode(Mode.NORMAL),), "two frames lost on the way into agrN's queue"


def test_counters_seen_in_an_earlier_drain_do_not_count_as_unchanged():
    m = draining(machine(), 1)
    assert m.drained(1, (5, 3)) == (RequestDrain(JOIN_QUIET),)
    m.requested(2)
    m.ports_changed({A, B}, {A, B, C}, {A, B, C}, 0.0)  # another join, then a new drain
    m.tick(T0 + 0.1)
    assert m.tick(T0 + 0.1 + HOLD) == (SetMode(Mode.DRAIN), RequestDrain(JOIN_QUIET))
    m.requested(3)
    assert m.drained(3, (5, 3)) == (RequestDrain(JOIN_QUIET),), "first look of this drain"


def test_a_relay_that_never_catches_up_ends_in_a_short_drop_after_250_ms():
    m = draining(machine(), 1)
    assert m.drained(1, (5, 3)) == (RequestDrain(JOIN_QUIET),)
    m.requested(2)
    limit = T0 + HOLD + DRAIN_TIMEOUT
    assert m.deadline() == limit
    assert m.tick(limit - EPS) == () and m.state is Mode.DRAIN
    assert m.tick(limit) == (DrainTimedOut(), SetMode(Mode.DROP), RequestDrain(JOIN_QUIET))
    assert m.state is Mode.DROP
    assert m.deadline() == T0 + JOIN_TIMEOUT, "only the join's own limit is left"
    assert m.drained(2, (5, 4)) == (), "the drain's request is no longer awaited"
    m.requested(3)
    assert m.drained(3, None) == (SetMode(Mode.NORMAL),)   # agrN's queue emptied
    assert m.state is Mode.NORMAL and m.deadline() is None


@pytest.mark.parametrize("stage", ["pass", "drain", "drop", "pass without a join map", "drop without a join map"])
def test_the_join_timeout_ends_every_stage(stage):
    m = machine(drains="without" not in stage)
    joined(m, hold_until=T0 + 5 if stage == "pass" else 0.0)   # pass: a hold that outlasts the join's limit
    if stage == "drain":
        m.tick(T0 + JOIN_TIMEOUT - 0.1)            # a late turn: the drain's own limit is after the join's
    elif stage == "drop":
        m.tick(T0 + HOLD)
        m.tick(T0 + HOLD + DRAIN_TIMEOUT)
    elif stage == "drop without a join map":
        m.requested(1)
        m.drained(1, None)
    assert m.state.value == stage.split()[0]
    assert m.deadline() == T0 + JOIN_TIMEOUT
    assert m.tick(T0 + JOIN_TIMEOUT - EPS) == ()
    assert m.tick(T0 + JOIN_TIMEOUT) == (JoinTimedOut(), SetMode(Mode.NORMAL))
    assert m.state is Mode.NORMAL and m.deadline() is None and m.tick(T0 + 2 * JOIN_TIMEOUT) == ()


def test_the_join_timeout_goes_before_a_stage_deadline_passed_at_the_same_turn():
    m = machine()
    joined(m)
    assert m.tick(T0 + 5) == (JoinTimedOut(), SetMode(Mode.NORMAL))


def test_without_a_join_map_a_join_passes_until_the_relay_caught_up_then_drops():
    m = machine(drains=False)
    assert joined(m) == (SetMode(Mode.PASS), RequestDrain(0.0))   # no counters to rebase
    assert m.deadline() == T0 + JOIN_TIMEOUT, "no hold deadline: the relay's answer ends PASS"
    assert m.tick(T0 + HOLD + DRAIN_TIMEOUT) == () and m.state is Mode.PASS
    m.requested(1)
    assert m.drained(1, None) == (SetMode(Mode.DROP), RequestDrain(JOIN_QUIET))
    m.requested(2)
    assert m.drained(2, None) == (SetMode(Mode.NORMAL),)


def test_without_a_join_map_the_answer_may_come_before_the_loops_time():
    m = machine(drains=False)
    m.ports_changed({A}, {A, B}, {A, B}, 0.0)
    m.requested(1)
    assert m.drained(1, None) == (SetMode(Mode.DROP), RequestDrain(JOIN_QUIET))
    assert m.deadline() == DUE
    assert m.tick(T0) == ()
    assert m.state is Mode.DROP and m.deadline() == T0 + JOIN_TIMEOUT


def test_without_a_join_map_there_is_never_a_drain():
    m = machine(drains=False)
    joined(m)
    for t in (T0 + HOLD, T0 + HOLD + DRAIN_TIMEOUT, T0 + 0.9):
        assert m.tick(t) == () and m.state is Mode.PASS


def test_answers_are_taken_only_for_the_request_awaited():
    m = draining(machine(), 7)
    assert m.drained(6, (1, 1)) == (), "an earlier request's answer"
    assert m.drained(8, (1, 1)) == ()
    assert m.state is Mode.DRAIN
    assert m.drained(7, (1, 1)) == (SetMode(Mode.NORMAL),)
    assert m.drained(7, (1, 1)) == (), "answered twice: the hand-over is over"


def test_an_answer_before_the_request_was_numbered_is_not_taken():
    m = machine()
    joined(m)
    assert m.tick(T0 + HOLD) == (SetMode(Mode.DRAIN), RequestDrain(JOIN_QUIET))
    assert m.drained(0, (1, 1)) == () and m.drained(None, (1, 1)) == ()
    assert m.state is Mode.DRAIN


def test_a_second_join_during_the_pass_stage_begins_the_hold_again():
    m = machine()
    joined(m)
    m.tick(T0 + HOLD / 2)
    assert m.ports_changed({A, B}, {A, B, C}, {A, B, C}, 0.0) == (SetMode(Mode.PASS),)   # no rebase
    assert m.deadline() == DUE
    assert m.tick(T0 + HOLD / 2) == ()
    assert m.deadline() == T0 + HOLD / 2 + HOLD
    assert m.tick(T0 + HOLD) == () and m.state is Mode.PASS
    assert m.tick(T0 + JOIN_TIMEOUT)[0] == SetMode(Mode.DRAIN), "the join's limit begins again too"
    assert m.tick(T0 + HOLD / 2 + JOIN_TIMEOUT)[0] == JoinTimedOut()


def test_a_second_join_during_a_drain_passes_again_without_rebasing_and_ignores_the_old_answer():
    m = draining(machine(), 3)
    assert m.ports_changed({A}, {A, C}, {A}, 0.0) == (SetMode(Mode.PASS),)
    assert m.state is Mode.PASS
    assert m.drained(3, (2, 2)) == (), "the earlier request's answer"
    assert m.state is Mode.PASS
    m.tick(T0 + 0.1)
    assert m.deadline() == T0 + 0.1 + HOLD, "the drain's limit is gone with it"
    assert m.tick(T0 + 0.1 + HOLD) == (SetMode(Mode.DRAIN), RequestDrain(JOIN_QUIET))
    m.requested(4)
    assert m.drained(4, (2, 2)) == (SetMode(Mode.NORMAL),)


def test_a_second_join_during_the_drop_passes_again_without_rebasing():
    m = draining(machine(), 1)
    m.tick(T0 + HOLD + DRAIN_TIMEOUT)
    m.requested(2)
    assert m.state is Mode.DROP
    assert m.ports_changed({A}, {A, C}, {A}, 0.0) == (SetMode(Mode.PASS),)
    assert m.drained(2, (1, 1)) == () and m.state is Mode.PASS
    m.tick(T0 + 0.5)
    assert m.deadline() == T0 + 0.5 + HOLD


def test_a_second_join_without_a_join_map_asks_the_relay_again():
    m = machine(drains=False)
    joined(m)
    m.requested(1)
    assert m.ports_changed({A, B}, {A, B, C}, {A}, 0.0) == (SetMode(Mode.PASS), RequestDrain(0.0))
    assert m.drained(1, None) == (), "the answer to the first join's request"
    m.requested(2)
    assert m.drained(2, None) == (SetMode(Mode.DROP), RequestDrain(JOIN_QUIET))


@pytest.mark.parametrize("stage", ["pass", "drain", "drop"])
def test_a_port_leaving_mid_join_changes_nothing(stage):
    m = draining(machine(), 1) if stage != "pass" else machine()
    if stage == "pass":
        joined(m)
    elif stage == "drop":
        m.tick(T0 + HOLD + DRAIN_TIMEOUT)
        m.requested(2)
    before = (m.state, m.deadline())
    assert m.ports_changed({A, B}, {A}, {A, B}, T0 + 9) == ()
    assert m.ports_changed({A}, set(), {A, B}, T0 + 9) == ()          # and the last one
    assert (m.state, m.deadline()) == before
    if stage == "pass":
        assert m.tick(T0 + HOLD) == (SetMode(Mode.DRAIN), RequestDrain(JOIN_QUIET))
        m.requested(1)
    assert m.drained(1 if stage != "drop" else 2, (4, 4)) == (SetMode(Mode.NORMAL),)


def test_a_move_the_table_does_not_draw_is_refused():
    m = machine()
    with pytest.raises(IllegalTransition):
        m._enter(Mode.DRAIN)
    with pytest.raises(IllegalTransition):
        m._enter(Mode.NORMAL)
    assert m.state is Mode.NORMAL
    assert (Mode.NORMAL, Mode.DRAIN) not in JoinHandOver.TRANSITIONS
    assert (Mode.NORMAL, Mode.DROP) not in JoinHandOver.TRANSITIONS
    assert (Mode.DROP, Mode.DRAIN) not in JoinHandOver.TRANSITIONS


def test_a_refused_move_names_it():
    # The traceback of a bug says which move the table does not draw.
    m = draining(machine(), 1)
    with pytest.raises(IllegalTransition, match=r"^illegal join hand-over transition drain -> drain$"):
        m._enter(Mode.DRAIN)
    assert m.state is Mode.DRAIN


def test_the_actions_are_values():
    assert SetMode(Mode.PASS) == SetMode("pass") and SetMode(Mode.PASS) != SetMode(Mode.DRAIN)
    assert RequestDrain(0.0) != RequestDrain(JOIN_QUIET) and Rebase() == Rebase()
    assert len({DrainTimedOut(), JoinTimedOut(), Rebase()}) == 3


# -- what always holds ---------------------------------------------------------------------
def walk(seed, drains, steps=300):
    """Random events, as the edge would feed them (the relay numbering requests in turn and
    answering any of the recent ones); checks every step; returns the moves seen."""
    rnd = random.Random(seed)
    m = JoinHandOver(drains, HOLD)
    now, number, awaited, counts = T0, 0, None, [0, 0]
    seen = set()
    mode = Mode.NORMAL
    for _ in range(steps):
        old = m.state
        kind = rnd.choice(["join", "leave", "tick", "tick", "answer", "answer", "frames"])
        if kind == "join":
            out = m.ports_changed({A}, {A, B}, {A}, now + HOLD)
        elif kind == "leave":
            out = m.ports_changed({A, B}, {A}, {A, B}, now)
        elif kind == "tick":
            now += rnd.choice([0.0, 0.0005, HOLD / 2, HOLD, 0.1, DRAIN_TIMEOUT, 0.6])
            out = m.tick(now)
        elif kind == "answer":
            out = m.drained(rnd.choice([awaited, number, number - 1]), tuple(counts) if drains else None)
        else:
            counts[rnd.choice([0, 1])] += rnd.choice([0, 1])
            out = ()
        modes = [a.mode for a in out if isinstance(a, SetMode)]
        assert len(modes) <= 1 and (modes == [m.state]) == (m.state != old or (kind == "join" and bool(out)))
        if modes:
            mode = modes[0]
            seen.add((old, m.state))
        assert mode is m.state, "the program's mode is the machine's state"
        if Rebase() in out:
            assert drains and old is Mode.NORMAL and out.index(Rebase()) < out.index(SetMode(Mode.PASS))
        for a in out:
            if isinstance(a, RequestDrain):
                number += 1
                m.requested(number)
                awaited = number
        assert drains or m.state is not Mode.DRAIN
        if m.state is Mode.NORMAL:
            assert m.deadline() is None and m.request is None and m.anchor is None
        else:
            assert m.deadline() is not None, "a hand-over always has a limit"
            if m.anchor is None:
                assert m.join_deadline is not None and now < m.join_deadline <= now + JOIN_TIMEOUT
                assert m.deadline() > now
        if m.state is Mode.DRAIN:
            assert m.stage_deadline is not None and m.request is not None
        if m.state is Mode.DROP:
            assert m.stage_deadline is None
    return seen


def test_a_random_walk_keeps_the_machine_sound_and_reaches_every_move():
    seen = set()
    for seed in range(40):
        seen |= walk(seed, drains=seed % 2 == 0)
    table = set(JoinHandOver.TRANSITIONS)
    assert seen <= table
    assert seen == table, f"never seen: {table - seen}"
    assert join.Mode is Mode
