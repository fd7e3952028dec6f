"""The relay's paths that the third mutation audit (tests/MUTATION.md, relay section, 2026-12-02)
found unchecked. Called in this thread, as in test_relay_mutants2.py: each outcome is exact."""
from tests.unit.test_relay import VNET, frame
from tests.unit.test_relay_mutants2 import ScriptedSock, n, tap_frames  # noqa: F401 (fixture)


def test_receive_counts_each_frame_a_port_not_collecting_discards(n):
    """rx_discarded: one per frame, per port, from 0."""
    n.set({0, 1, 2}, collecting={0})
    sock = n.ports[1].sock = ScriptedSock(n.ports[1].sock, [VNET + frame(1, seq) for seq in range(3)])
    assert n.relay._receive(sock.fileno(), 11, sock) is True
    assert n.relay.rx_discarded == {11: 3}
    sock = n.ports[2].sock = ScriptedSock(n.ports[2].sock, [VNET + frame(2)])
    assert n.relay._receive(sock.fileno(), 12, sock) is True
    assert n.relay.rx_discarded == {11: 3, 12: 1}
    assert tap_frames(n) == []
