"""The relay loop's behaviours that mutation testing (scripts/mutation, tests/MUTATION.md)
found unchecked by test_relay.py; the same socketpair Net stands in for agrN and its ports."""
import time

from tests.unit.test_relay import VNET, frame, net  # noqa: F401  (net is a fixture)


def test_counters_count_frames_and_bytes_without_the_vnet_header(net):
    net.set({0}, collecting={0})
    net.relay.start()
    net.tap_far.send(VNET + frame(1))
    net.far[0].send(VNET + frame(2) + bytes(10))
    net.tap_far.settimeout(1)
    assert net.tap_far.recv(70000) == VNET + frame(2) + bytes(10)
    assert net.received(0) == [VNET + frame(1)]
    deadline = time.monotonic() + 1
    while net.relay.port_counters[10] != [1, len(frame(1)), 1, len(frame(2)) + 10] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert net.relay.port_counters[10] == [1, len(frame(1)), 1, len(frame(2)) + 10]
