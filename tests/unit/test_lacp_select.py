"""agrselect (bonding's ad_select) in the sans-IO core, with a fake clock: ports towards two
partner systems, b and c, with different counts and speeds; and the ports' speeds as input
(set_port_speed), which are part of the operational key (802.1AX 6.3.5: only like links
aggregate)."""
import pytest

from agrconfig.lacp import DistributingChanged, LacpCore, SelectPolicy, Transition
from agrconfig.lacp import pdu as P
from agrconfig.lacp.selection import rank_key
from tests.unit.lacp_wire import Wire, mac

TEN_G, ONE_G = 10000, 1000


class Lab:
    """Our core `a`: port 1 to partner b (10 Gbit/s), ports 2 and 3 to partner c (1 Gbit/s
    each). Ports are added when a test says so, so that it chooses who comes first."""

    def __init__(self, policy):
        self.a = LacpCore(mac(1), fast_timeout=True, select_policy=policy)
        self.b = LacpCore(mac(2), fast_timeout=True)
        self.c = LacpCore(mac(3), fast_timeout=True)
        self.w = Wire()
        self.w.join(self.a, 1, self.b, 1)
        self.w.join(self.a, 2, self.c, 1)
        self.w.join(self.a, 3, self.c, 2)

    def add_b(self):
        self.w.deliver(self.b, self.b.add_port(self.w.now, 1, mac(21), speed=TEN_G, duplex_full=True, carrier=True))
        self.w.deliver(self.a, self.a.add_port(self.w.now, 1, mac(11), speed=TEN_G, duplex_full=True, carrier=True))

    def add_c(self):
        for pid in (1, 2):
            self.w.deliver(self.c, self.c.add_port(self.w.now, pid, mac(30 + pid), speed=ONE_G, duplex_full=True,
                                                   carrier=True))
        for pid in (2, 3):
            self.w.deliver(self.a, self.a.add_port(self.w.now, pid, mac(10 + pid), speed=ONE_G, duplex_full=True,
                                                   carrier=True))

    def run(self, seconds=6):
        self.w.run(seconds, [self.a, self.b, self.c])
        return self.a.distributing()

    def carrier(self, pid, up):
        self.w.deliver(self.a, self.a.set_carrier(self.w.now, pid, up))


# b (one 10G port) first, then c (two 1G ports): only count moves to c.
@pytest.mark.parametrize("policy, chosen", [(SelectPolicy.STABLE, (1,)), (SelectPolicy.BANDWIDTH, (1,)),
                                            (SelectPolicy.COUNT, (2, 3))])
def test_the_fast_partner_first(policy, chosen):
    lab = Lab(policy)
    lab.add_b()
    assert lab.run() == (1,)
    lab.add_c()
    assert lab.run() == chosen
    standby = {1, 2, 3} - set(chosen)
    assert all(lab.a.port_status(p)["standby"] for p in standby)


# c (two 1G ports) first, then b (one 10G port): only bandwidth moves to b.
@pytest.mark.parametrize("policy, chosen", [(SelectPolicy.STABLE, (2, 3)), (SelectPolicy.BANDWIDTH, (1,)),
                                            (SelectPolicy.COUNT, (2, 3))])
def test_the_many_ports_first(policy, chosen):
    lab = Lab(policy)
    lab.add_c()
    assert lab.run() == (2, 3)
    lab.add_b()
    assert lab.run() == chosen


def test_the_default_is_bandwidth_todays_policy():
    assert LacpCore(mac(1)).select_policy is SelectPolicy.BANDWIDTH
    lab = Lab(SelectPolicy.BANDWIDTH)
    lab.a = LacpCore(mac(1), fast_timeout=True)   # no policy given
    lab.w = Wire()
    lab.w.join(lab.a, 1, lab.b, 1)
    lab.w.join(lab.a, 2, lab.c, 1)
    lab.w.join(lab.a, 3, lab.c, 2)
    lab.add_c()
    lab.run()
    lab.add_b()
    assert lab.run() == (1,)


def test_stable_keeps_the_aggregator_while_any_port_is_up_then_moves_and_stays():
    lab = Lab(SelectPolicy.STABLE)
    lab.add_c()
    lab.run()
    lab.add_b()
    assert lab.run() == (2, 3)
    lab.carrier(2, False)
    assert lab.run() == (3,), "one port of c is still up: stable stays"
    lab.carrier(3, False)
    assert lab.run() == (1,), "none of c's ports is up: the best other one (b)"
    lab.carrier(2, True)
    lab.carrier(3, True)
    assert lab.run() == (1,), "c back with more ports: stable stays on b"
    assert lab.a.port_status(2)["standby"] and lab.a.port_status(3)["standby"]


def test_bandwidth_and_count_reselect_when_a_port_goes():
    lab = Lab(SelectPolicy.COUNT)
    lab.add_b()
    lab.add_c()
    assert lab.run() == (2, 3)
    lab.carrier(3, False)
    assert lab.run() == (1,), "one port each: count's tie goes to the most bandwidth"
    lab.carrier(3, True)
    assert lab.run() == (2, 3)


def test_stable_leaves_a_silent_partner_for_a_live_one():
    lab = Lab(SelectPolicy.STABLE)
    lab.add_c()
    lab.run()
    lab.add_b()
    assert lab.run() == (2, 3)
    for pid in (1, 2):   # c goes silent: its LACPDUs no longer reach us
        lab.w.up[(id(lab.c), pid)] = False
    assert lab.run(8) == (1,)


def test_the_policy_changes_at_run_time():
    lab = Lab(SelectPolicy.STABLE)
    lab.add_c()
    lab.run()
    lab.add_b()
    assert lab.run() == (2, 3)
    lab.w.deliver(lab.a, lab.a.set_select_policy(lab.w.now, "bandwidth"))
    assert lab.a.select_policy is SelectPolicy.BANDWIDTH
    assert lab.run() == (1,)
    lab.w.deliver(lab.a, lab.a.set_select_policy(lab.w.now, SelectPolicy.COUNT))
    assert lab.run() == (2, 3)
    with pytest.raises(ValueError):
        lab.a.set_select_policy(lab.w.now, "fastest")


def test_rank_keys():
    class Port:
        def __init__(self, speed):
            self.known_speed = speed
    fast, slow = [Port(TEN_G)], [Port(ONE_G), Port(ONE_G)]
    unknown = [Port(None), Port(None), Port(None)]
    for policy in SelectPolicy:   # a live partner first, whatever the policy
        assert rank_key(policy, slow, True, False) > rank_key(policy, fast, False, True)
    assert rank_key(SelectPolicy.BANDWIDTH, fast, True, False) > rank_key(SelectPolicy.BANDWIDTH, slow, True, True)
    assert rank_key(SelectPolicy.BANDWIDTH, slow, True, True) > rank_key(SelectPolicy.BANDWIDTH, slow, True, False)
    assert rank_key(SelectPolicy.COUNT, slow, True, False) > rank_key(SelectPolicy.COUNT, fast, True, True)
    assert rank_key(SelectPolicy.COUNT, fast, True, False) > rank_key(SelectPolicy.COUNT, [Port(ONE_G)], True, True)
    assert rank_key(SelectPolicy.COUNT, fast, True, True) > rank_key(SelectPolicy.COUNT, fast, True, False)
    assert rank_key(SelectPolicy.STABLE, slow, True, True) > rank_key(SelectPolicy.STABLE, fast, True, False)
    assert rank_key(SelectPolicy.STABLE, fast, True, False) > rank_key(SelectPolicy.STABLE, slow, True, False)
    # Ports of unknown speed count one each, so they still compare by number.
    assert rank_key(SelectPolicy.BANDWIDTH, unknown, True, False) > rank_key(SelectPolicy.BANDWIDTH, unknown[:2], True, True)


# -- speeds as input -----------------------------------------------------------------------------

def pair_to_b(speeds, policy=SelectPolicy.BANDWIDTH):
    a = LacpCore(mac(1), fast_timeout=True, select_policy=policy)
    b = LacpCore(mac(2), fast_timeout=True, select_policy=policy)
    w = Wire()
    for pid, speed in enumerate(speeds, 1):
        w.join(a, pid, b, pid)
        w.deliver(b, b.add_port(0.0, pid, mac(20 + pid), speed=speed, duplex_full=True, carrier=True))
        w.deliver(a, a.add_port(0.0, pid, mac(10 + pid), speed=speed, duplex_full=True, carrier=True))
    return a, b, w


def test_ports_of_different_speeds_to_one_partner_do_not_aggregate():
    a, b, w = pair_to_b([TEN_G, ONE_G, ONE_G])
    w.run(6, [a, b])
    assert a.port_status(1)["actor_key"] != a.port_status(2)["actor_key"] == a.port_status(3)["actor_key"]
    assert a.distributing() == (1,), "10G alone beats 2 x 1G"
    assert a.port_status(2)["standby"] and a.port_status(3)["standby"]
    a, b, w = pair_to_b([TEN_G, ONE_G, ONE_G], SelectPolicy.COUNT)
    w.run(6, [a, b])
    assert a.distributing() == (2, 3)
    # Both ends choose: where they choose differently, nothing distributes.
    a, b, w = pair_to_b([TEN_G, ONE_G, ONE_G], SelectPolicy.COUNT)
    b.select_policy = SelectPolicy.BANDWIDTH
    w.run(6, [a, b])
    assert a.distributing() == () == b.distributing()


def test_a_renegotiated_speed_changes_the_key_and_the_aggregation():
    a, b, w = pair_to_b([ONE_G, ONE_G])
    w.run(6, [a, b])
    assert a.distributing() == (1, 2)
    key_1g = a.port_status(2)["actor_key"]
    # The link comes back at 10G on both ends (each end reads its own port's speed).
    w.deliver(b, b.set_port_speed(w.now, 2, TEN_G, True))
    sent = len(w.sent)
    w.deliver(a, a.set_port_speed(w.now, 2, TEN_G, True))
    told = [f for t, c, p, f in w.sent[sent:] if c is a and p == 2]
    assert told and P.decode(P.parse_frame(told[0])[1]).actor.key != key_1g, "the partner hears the new key at once"
    w.run(6, [a, b])
    assert a.port_status(2)["actor_key"] != a.port_status(1)["actor_key"]
    assert a.distributing() == (2,), "the 10G port alone: most bandwidth"
    # Back to 1G: the two aggregate again.
    w.deliver(b, b.set_port_speed(w.now, 2, ONE_G, True))
    w.deliver(a, a.set_port_speed(w.now, 2, ONE_G, True))
    w.run(6, [a, b])
    assert a.distributing() == (1, 2)


def test_the_same_speed_again_changes_nothing():
    a, b, w = pair_to_b([ONE_G, ONE_G])
    w.run(6, [a, b])
    out = a.set_port_speed(w.now, 1, ONE_G, True)
    assert not out.frames and not out.events
    assert a.set_port_speed(w.now, 99, ONE_G, True).frames == []   # no such port: nothing


def test_a_slower_link_loses_the_bandwidth_choice():
    lab = Lab(SelectPolicy.BANDWIDTH)
    lab.add_c()
    lab.add_b()
    assert lab.run() == (1,)
    # b's link renegotiates down to 1G (both ends): 1 x 1G against 2 x 1G, c wins.
    lab.w.deliver(lab.b, lab.b.set_port_speed(lab.w.now, 1, ONE_G, True))
    lab.w.deliver(lab.a, lab.a.set_port_speed(lab.w.now, 1, ONE_G, True))
    assert lab.run() == (2, 3)


def test_half_duplex_after_renegotiation_makes_the_port_individual():
    a, b, w = pair_to_b([ONE_G, ONE_G])
    w.run(6, [a, b])
    w.deliver(a, a.set_port_speed(w.now, 2, ONE_G, False))
    assert not a.port_status(2)["aggregatable"]
    w.run(6, [a, b])
    assert 2 not in a.distributing() and 1 in a.distributing()


def test_a_new_key_detaches_the_port_first_and_the_partner_hears_it():
    a, b, w = pair_to_b([ONE_G])
    w.run(6, [a, b])
    assert a.distributing() == (1,)
    out = a.set_port_speed(w.now, 1, TEN_G, True)
    mux = [(e.old, e.new) for e in out.events if isinstance(e, Transition) and e.machine == "mux"]
    assert ("ATTACHED", "DETACHED") in mux, "a new key: Selected = UNSELECTED, the mux detaches (6.4.15)"
    assert any(isinstance(e, DistributingChanged) for e in out.events) and a.distributing() == ()
    assert out.frames, "our new key goes out at once"
    w.deliver(a, out)
    w.deliver(b, b.set_port_speed(w.now, 1, TEN_G, True))
    w.run(6, [a, b])
    assert a.distributing() == (1,) and a.port_status(1)["actor_key"] == 0x0106


@pytest.mark.parametrize("speed, duplex", [(0, True), (None, None), (-1, True)])
def test_a_change_that_keeps_the_key_leaves_the_port_alone(speed, duplex):
    # Unknown speed (None, 0, -1) is one key; unknown duplex counts as full.
    a, b, w = pair_to_b([None])
    w.run(6, [a, b])
    assert a.distributing() == (1,)
    out = a.set_port_speed(w.now, 1, speed, duplex)
    assert not out.events and not out.frames, "the same key: nothing detaches, nothing to tell"
    assert a.distributing() == (1,) and a.ports[1].speed == speed


def test_the_duplex_alone_may_change_aggregatability():
    a, b, w = pair_to_b([ONE_G])
    w.run(6, [a, b])
    out = a.set_port_speed(w.now, 1, ONE_G, None)
    assert not out.events and not out.frames, "unknown duplex counts as full: the same key"
    out = a.set_port_speed(w.now, 1, ONE_G, False)
    assert any(isinstance(e, Transition) and e.machine == "mux" and e.new == "DETACHED" for e in out.events)


def test_a_new_key_while_waiting_starts_the_aggregate_wait_over():
    a, b, w = pair_to_b([ONE_G])
    w.run(1.0, [a, b])
    assert a.port_status(1)["mux_state"] == "WAITING"
    out = a.set_port_speed(w.now, 1, TEN_G, True)
    mux = [(e.old, e.new) for e in out.events if isinstance(e, Transition) and e.machine == "mux"]
    assert mux == [("WAITING", "DETACHED"), ("DETACHED", "WAITING")]
    w.deliver(a, out)
    w.run(1.5, [a, b])   # 2.5 s after the first wait began, 1.5 s into the new one
    assert a.port_status(1)["mux_state"] == "WAITING"
    w.run(1.0, [a, b])
    assert a.distributing() == (1,)
