"""The core's shape that the redesign promised: a run that does not settle raises, frames are
kept apart from notifications, and the resume snapshot is a typed record validated in one
place (agrconfig.lacp.snapshot), reading what release 0.1.0 wrote."""
import itertools

import pytest

from agrconfig.lacp import LacpCore, NotSettled, Output, PortSnapshot, Transmit
from agrconfig.lacp import core as lacp_core
from agrconfig.lacp import pdu as P
from agrconfig.lacp.machine import IllegalTransition, Machine
from agrconfig.lacp.mux import MuxState


def mac(n):
    return bytes([2, 0, 0, 0, 0, n])


# What 0.1.0's worker wrote in its state file for one distributing port.
OLD_ENTRY = {"partner": [0x8000, "020000000002", 0x0100, 0x8000, 101, 0x3D], "mux": "COLLECTING_DISTRIBUTING"}


class Restless(Machine):
    """A buggy machine: `moves` says, call by call, whether it moves (logs a transition)."""
    NAME, ATTR = "restless", "rx_state"
    moves = None

    @classmethod
    def step(cls, port, core, now, log):
        if next(cls.moves):
            log.append((port.port_id, cls.NAME, "A", "B", "restless"))


def test_a_machine_that_never_stops_raises(monkeypatch):
    a = LacpCore(mac(1))
    a.add_port(0.0, 1, mac(11), carrier=True)
    monkeypatch.setattr(Restless, "moves", itertools.repeat(True))
    monkeypatch.setattr(lacp_core, "MACHINES", (Restless,))
    with pytest.raises(NotSettled, match="restless machine of port 1 moved 16 times"):
        a.handle_timer(1.0)


def test_a_run_that_does_not_settle_raises(monkeypatch):
    a = LacpCore(mac(1))
    a.add_port(0.0, 1, mac(11), carrier=True)
    monkeypatch.setattr(Restless, "moves", itertools.cycle((True, False)))   # one move a round
    monkeypatch.setattr(lacp_core, "MACHINES", (Restless,))
    with pytest.raises(NotSettled, match="did not settle in 64 rounds"):
        a.handle_timer(1.0)


def test_frames_are_apart_from_notifications():
    a = LacpCore(mac(1))
    out = a.add_port(0.0, 1, mac(11), carrier=True)
    assert isinstance(out, Output)
    assert [type(f) for f in out.frames] == [Transmit]
    assert out.events and not any(isinstance(e, Transmit) for e in out.events)
    assert list(out) == out.events + out.frames, "events first, then frames"


def test_the_states_are_the_standards_enums():
    a = LacpCore(mac(1))
    a.add_port(0.0, 1, mac(11), carrier=True)
    port = a.ports[1]
    for machine in lacp_core.MACHINES:
        state = getattr(port, machine.ATTR)
        assert isinstance(state, machine.State), (machine.NAME, state)
        assert {s for pair in machine.TRANSITIONS for s in pair} <= set(machine.State)
    with pytest.raises(IllegalTransition):
        lacp_core.Mux.enter(port, MuxState.COLLECTING_DISTRIBUTING, [])


def test_an_old_releases_snapshot_is_read_and_written_back_the_same():
    snap = PortSnapshot.from_json(OLD_ENTRY)
    assert snap == PortSnapshot(P.LacpInfo(0x8000, mac(2), 0x0100, 0x8000, 101, 0x3D),
                                MuxState.COLLECTING_DISTRIBUTING)
    assert snap.to_json() == OLD_ENTRY


@pytest.mark.parametrize("entry", [
    None, {}, [], "x", {"partner": OLD_ENTRY["partner"]}, {"mux": "ATTACHED"},
    dict(OLD_ENTRY, mux="WAITING"), dict(OLD_ENTRY, mux="DETACHED"), dict(OLD_ENTRY, mux="nonsense"),
    dict(OLD_ENTRY, partner=OLD_ENTRY["partner"][:5]),
    dict(OLD_ENTRY, partner=[0x8000, "0200000000", 0x100, 0x8000, 101, 0x3D]),     # 5-byte MAC
    dict(OLD_ENTRY, partner=[0x8000, "zz0000000002", 0x100, 0x8000, 101, 0x3D]),
    dict(OLD_ENTRY, partner=[0x10000, "020000000002", 0x100, 0x8000, 101, 0x3D]),
    dict(OLD_ENTRY, partner=[0x8000, "020000000002", -1, 0x8000, 101, 0x3D]),
    dict(OLD_ENTRY, partner=[0x8000, "020000000002", 0x100, 0x8000, 101, 0x100]),  # state is 8 bits
    dict(OLD_ENTRY, partner=[0x8000, "020000000002", 0x100, 0x8000, "101", 0x3D]),
    dict(OLD_ENTRY, rx="EXPIRED"), dict(OLD_ENTRY, rx="PORT_DISABLED"), dict(OLD_ENTRY, rx="nonsense"),
    dict(OLD_ENTRY, rx=None), dict(OLD_ENTRY, rx=["DEFAULTED"]),
])
def test_a_damaged_snapshot_is_refused(entry):
    assert PortSnapshot.from_json(entry) is None


def test_a_defaulted_ports_snapshot_says_so_and_reads_back():
    entry = dict(OLD_ENTRY, mux="ATTACHED", rx="DEFAULTED")
    snap = PortSnapshot.from_json(entry)
    assert snap.rx == "DEFAULTED" and snap.mux == MuxState.ATTACHED
    assert snap.to_json() == entry
    assert "rx" not in PortSnapshot.from_json(dict(OLD_ENTRY, rx="CURRENT")).to_json(), \
        "a CURRENT port's entry is as release 0.1.0 wrote it"


def test_a_snapshot_resumes_a_port_where_it_was():
    a = LacpCore(mac(1))
    out = a.add_port(5.0, 1, mac(11), carrier=True, resume=PortSnapshot.from_json(OLD_ENTRY))
    assert a.port_status(1)["mux_state"] == "COLLECTING_DISTRIBUTING"
    assert a.distributing() == (1,)
    assert a.snapshot() == {1: PortSnapshot.from_json(OLD_ENTRY)}
    (frame,) = out.frames
    pdu = P.decode(P.parse_frame(frame.frame)[1])
    assert pdu.actor.state & P.SYNC and pdu.partner.system == mac(2)
