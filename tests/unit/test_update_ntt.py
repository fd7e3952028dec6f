"""update_NTT (802.1AX-2014 6.4.9): a partner's stale copy of us is answered at once."""
from agrconfig.record import replace

import pytest

from agrconfig.lacp import Transmit
from agrconfig.lacp import pdu as P
from tests.unit.lacp_wire import pair


def converged_slow():
    """Two cores in step with the long timeout: nothing is due for many seconds."""
    a, b, w = pair(fast=False)
    w.run(40, [a, b], step=0.1)
    assert a.distributing() == (1, 2)
    return a, b, w


def lacpdu_from_b(a, b, seen_of_us):
    """The LACPDU b would send on its port 101, carrying `seen_of_us` as its copy of a's port 1."""
    pdu = P.Lacpdu(b.ports[101].actor_info(), seen_of_us, 0)
    return P.build_frame(b.ports[101].mac, P.encode(pdu))


def sent_on_1(actions):
    return [x for x in actions if isinstance(x, Transmit) and x.port_id == 1]


def test_an_exact_copy_of_us_asks_for_nothing():
    a, b, w = converged_slow()
    assert a.get_timer() - w.now > 5, "a periodic LACPDU is not about to leave anyway"
    assert sent_on_1(a.receive(w.now, 1, lacpdu_from_b(a, b, a.ports[1].actor_info()))) == []


@pytest.mark.parametrize("bit", ["ACTIVITY", "TIMEOUT", "SYNCHRONIZATION", "AGGREGATION"])
def test_a_stale_state_bit_is_answered_at_once(bit):
    a, b, w = converged_slow()
    me = a.ports[1].actor_info()
    stale = replace(me, state=me.state ^ getattr(P, bit))
    (frame,) = [x.frame for x in sent_on_1(a.receive(w.now, 1, lacpdu_from_b(a, b, stale)))]
    answer = P.decode(P.parse_frame(frame)[1])
    # Our true state (a stale Aggregation bit also unmatches the partner: we stop collecting).
    assert answer.actor == a.ports[1].actor_info()
    assert answer.actor.state & getattr(P, bit) == me.state & getattr(P, bit)


@pytest.mark.parametrize("field,value", [("port", 99), ("port_priority", 1), ("system", bytes(6)),
                                         ("system_priority", 1), ("key", 0x77)])
def test_a_stale_identifier_is_answered_at_once(field, value):
    a, b, w = converged_slow()
    stale = replace(a.ports[1].actor_info(), **{field: value})
    assert len(sent_on_1(a.receive(w.now, 1, lacpdu_from_b(a, b, stale)))) == 1


@pytest.mark.parametrize("bit", ["COLLECTING", "DISTRIBUTING", "DEFAULTED", "EXPIRED"])
def test_other_state_bits_are_not_compared(bit):
    # 6.4.9 names four bits; the others change with every mux step and would double our PDUs.
    a, b, w = converged_slow()
    me = a.ports[1].actor_info()
    stale = replace(me, state=me.state ^ getattr(P, bit))
    assert sent_on_1(a.receive(w.now, 1, lacpdu_from_b(a, b, stale))) == []
