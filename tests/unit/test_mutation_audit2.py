"""Survivors of the mutmut run after the core was split into one module per machine
(tests/MUTATION.md, second run): each test fails when the product is changed in the way its
docstring names."""
import struct
from agrconfig.record import replace

import pytest

from agrconfig.lacp import LacpCore, Output, PortSnapshot, SelectionChanged, Transmit
from agrconfig.lacp import pdu as P
from agrconfig.lacp.events import DistributingChanged
from agrconfig.lacp.port import Timer
from tests.unit.lacp_wire import mac
from tests.unit.test_lacp_mutants import converged, lacpdus
from tests.unit.test_lacp_timers import LIVE, Peer


def test_the_default_core_is_slow_and_strict():
    """LacpCore's defaults: fast_timeout False (NetBSD's lacptimeout slow), strict."""
    status = LacpCore(mac(1)).status()
    assert status["fast_timeout"] is False and status["strict"] is True
    assert status["system_priority"] == 0x8000


def test_adding_a_port_twice_names_it():
    a = LacpCore(mac(1))
    a.add_port(0.0, 7, mac(17))
    with pytest.raises(KeyError, match="port 7 already added"):
        a.add_port(0.0, 7, mac(17))


def test_a_ports_priority_is_on_the_wire():
    a = LacpCore(mac(1))
    out = a.add_port(0.0, 1, mac(11), carrier=True, port_priority=0x0010)
    (pdu,) = lacpdus(out, 1)
    assert pdu.actor.port_priority == 0x0010


def test_a_resumed_port_keeps_its_aggregation_without_a_new_selection():
    """add_port(resume=...) records the LAG the port had; forgetting it makes Selection
    Logic announce a new aggregation that is the old one."""
    a, _ = converged()
    snap = a.snapshot()
    a2 = LacpCore(mac(1), fast_timeout=True)
    out = a2.add_port(10.0, 1, mac(11), carrier=True, resume=snap[1])
    assert not [e for e in out if isinstance(e, SelectionChanged)]
    assert a2.status()["aggregator"] == a.status()["aggregator"]


def test_distributing_changed_only_when_the_sets_change():
    a, peer = converged()
    assert not [e for e in peer.say(5.2, 1) if isinstance(e, DistributingChanged)], "nothing changed"
    assert not [e for e in a.handle_timer(5.3) if isinstance(e, DistributingChanged)]


def test_selection_changed_says_what_was_selected():
    a = LacpCore(mac(1), fast_timeout=True)
    peer = Peer(a)
    events = []
    for pid in (1, 2):
        events += a.add_port(0.0, pid, mac(10 + pid), carrier=True)
    # No partner yet: port 1 alone, individual (no aggregation to name); port 2 changes nothing.
    assert [e for e in events if isinstance(e, SelectionChanged)] == [SelectionChanged(None, None, None, (1,))]
    events = list(peer.say(0.5, 1))
    assert [e for e in events if isinstance(e, SelectionChanged)] == [
        SelectionChanged(0x0100, mac(2), 0x0100, (1,))]


def test_a_live_partner_beats_more_bandwidth_without_one():
    """Selection ranks a group with a live partner above a defaulted one, whatever the speed."""
    a = LacpCore(mac(1), fast_timeout=True)
    peer = Peer(a)
    a.add_port(0.0, 1, mac(11), speed=1000, carrier=True)
    a.add_port(0.0, 2, mac(12), speed=10000, carrier=True)      # nobody speaks on it
    for t in range(12):
        a.handle_timer(float(t))
        peer.say(float(t), 1)
    assert a.port_status(2)["rx_state"] == "DEFAULTED"
    assert a.distributing() == (1,) and a.port_status(2)["standby"]


def test_a_port_without_carrier_takes_no_part_in_selection():
    """A disabled port keeps its partner's record, but its group must not be chosen."""
    a = LacpCore(mac(1), fast_timeout=True)
    slow, fast = Peer(a, system=mac(2)), Peer(a, system=mac(3))
    a.add_port(0.0, 1, mac(11), speed=1000, carrier=True)
    a.add_port(0.0, 2, mac(12), speed=10000, carrier=True)
    for t in range(6):
        a.handle_timer(float(t))
        slow.say(float(t), 1)
        fast.say(float(t), 2)
    assert a.distributing() == (2,), "more bandwidth wins while both are up"
    a.set_carrier(6.0, 2, False)
    for t in range(6, 12):
        a.handle_timer(float(t))
        slow.say(float(t), 1)
    assert a.distributing() == (1,)


def test_unknown_speeds_count_one_each():
    """Bandwidth counts a port of unknown speed as 1 Mbit/s: two such ports lose to one 3 Mbit/s port."""
    a = LacpCore(mac(1), fast_timeout=True)
    unknown, known = Peer(a, system=mac(2)), Peer(a, system=mac(3))
    a.add_port(0.0, 1, mac(11), carrier=True)
    a.add_port(0.0, 2, mac(12), carrier=True)
    a.add_port(0.0, 3, mac(13), speed=3, carrier=True)
    for t in range(6):
        a.handle_timer(float(t))
        unknown.say(float(t), 1)
        unknown.say(float(t), 2)
        known.say(float(t), 3, key=a.ports[3].key)
    assert a.distributing() == (3,)


def test_a_stopped_timer_is_idle():
    t = Timer()
    t.start(0.0, 1.0)
    assert t.advance(2.0) and t.expired
    t.stop()
    assert t.idle and not t.expired and not t.running


def test_output_counts_adds_and_compares():
    f = Transmit(1, b"x")
    e = DistributingChanged((1,), (1,))
    out = Output([e], [f])
    assert len(out) == 2 and list(out) == [e, f]
    both = out + Output([e], [f])
    assert isinstance(both, Output) and both.events == [e, e] and both.frames == [f, f]
    assert out + [f] == [e, f, f] and [f] + out == [f, e, f]


@pytest.mark.parametrize("values", [(0, 0, 0, 0, 0), (0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFF)])
def test_a_snapshot_takes_every_value_in_range(values):
    prio, key, pprio, pnum, state = values
    entry = {"partner": [prio, "020000000002", key, pprio, pnum, state], "mux": "ATTACHED"}
    snap = PortSnapshot.from_json(entry)
    assert snap is not None and snap.to_json() == entry


INFO = P.LacpInfo(0x8000, mac(2), 0x0100, 0x8000, 1, 0x3D)


@pytest.mark.parametrize("field,bits", [("system_priority", 16), ("key", 16), ("port_priority", 16),
                                        ("port", 16), ("state", 8)])
def test_every_field_is_range_checked_by_name(field, bits):
    """encode refuses a value that does not fit its field with a PduError naming the field
    (not struct.error), and takes the largest one that fits."""
    P.encode(P.Lacpdu(replace(INFO, **{field: (1 << bits) - 1}), INFO))
    for bad in (1 << bits, -1):
        with pytest.raises(P.PduError, match=f"^{field} out of range: {bad}$"):
            P.encode(P.Lacpdu(replace(INFO, **{field: bad}), INFO))


def test_pdu_wide_fields_are_range_checked_by_name():
    with pytest.raises(P.PduError, match="^collector_max_delay out of range: 65536$"):
        P.encode(P.Lacpdu(INFO, INFO, 1 << 16))
    with pytest.raises(P.PduError, match="^requester_port out of range: 65536$"):
        P.encode(P.MarkerPdu(False, 1 << 16, mac(2), 1))
    with pytest.raises(P.PduError, match="^transaction_id out of range: 4294967296$"):
        P.encode(P.MarkerPdu(False, 1, mac(2), 1 << 32))
    P.encode(P.MarkerPdu(False, 0xFFFF, mac(2), 0xFFFFFFFF))
    with pytest.raises(P.PduError, match="^system must be 6 octets"):
        P.encode(P.Lacpdu(replace(INFO, system=b"12345"), INFO))
    with pytest.raises(P.PduError, match="^requester_system must be 6 octets"):
        P.encode(P.MarkerPdu(False, 1, b"1234567", 1))
    with pytest.raises(P.PduError, match="^src_mac must be 6 octets"):
        P.build_frame(b"12345", b"")


def _lacp(**patch):
    data = bytearray(P.encode(P.Lacpdu(INFO, INFO)))
    for offset, value in patch.items():
        data[int(offset[1:])] = value
    return bytes(data)


@pytest.mark.parametrize("payload,message", [
    (b"\x01", "^too short for a Slow Protocols PDU$"),
    (_lacp(o2=9), "^bad Actor Information TLV: type 9 length 20$"),
    (_lacp(o23=19), "^bad Partner Information TLV: type 2 length 19$"),
    (_lacp(o58=1), "^bad Terminator TLV: type 1 length 0$"),
    (_lacp(o59=5), "^bad Terminator TLV: type 0 length 5$"),
])
def test_decode_errors_say_what_is_wrong(payload, message):
    with pytest.raises(P.PduError, match=message):
        P.decode(payload)


def _marker(tlv=1, length=16, term=0, term_len=0, version=1):
    data = bytearray(P.encode(P.MarkerPdu(False, 1, mac(2), 7)))
    data[1], data[2], data[3] = version, tlv, length
    data[18], data[19] = term, term_len
    return bytes(data)


def test_marker_tlvs_are_checked():
    assert P.decode(_marker()) == P.MarkerPdu(False, 1, mac(2), 7)
    assert P.decode(_marker(tlv=2)).response is True
    for bad in (_marker(tlv=3), _marker(length=15), _marker(tlv=3, length=15)):
        with pytest.raises(P.PduError, match="^bad Marker TLV"):
            P.decode(bad)
    with pytest.raises(P.PduError, match="^bad Terminator TLV: type 1 length 0$"):
        P.decode(_marker(term=1))
    assert P.decode(_marker(term=1, version=2)).transaction_id == 7, "a later version may add TLVs"


@pytest.mark.parametrize("frame,message", [
    (b"\x01" * 13, "^frame shorter than an Ethernet header$"),
    (P.SLOW_PROTOCOLS_MAC + mac(2) + b"\x08\x00" + bytes(46), "^EtherType 0800 is not Slow Protocols$"),
    (mac(9) + mac(2) + b"\x88\x09" + bytes(46), "^destination 02:00:00:00:00:09 is not the Slow Protocols address$"),
])
def test_frame_errors_say_what_is_wrong(frame, message):
    with pytest.raises(P.PduError, match=message):
        P.parse_frame(frame)


@pytest.mark.parametrize("payload,message", [
    (None, "^not bytes: "),
    (bytes([3, 1]) + bytes(108), "^unknown Slow Protocols subtype 3$"),
    (bytes([1, 1]) + bytes(50), "^short PDU: 52 octets, need 110$"),
    (_lacp(o1=0), "^bad version 0$"),
    (_lacp(o42=9), "^bad Collector Information TLV: type 9 length 16$"),
])
def test_more_decode_errors_say_what_is_wrong(payload, message):
    with pytest.raises(P.PduError, match=message):
        P.decode(payload)


def test_encode_and_parse_frame_name_what_they_refuse():
    with pytest.raises(TypeError, match="^not a PDU: 'x'$"):
        P.encode("x")
    with pytest.raises(P.PduError, match="^not bytes: "):
        P.parse_frame(None)


def test_a_carrier_loss_clears_only_the_partners_sync():
    """port_disabled clears the partner's Synchronization and leaves its other bits (a passive
    partner stays passive)."""
    a, peer = converged(state=LIVE & ~P.ACTIVITY)
    before = a.port_status(1)["partner_state"]
    assert not before & P.ACTIVITY
    a.set_carrier(6.0, 1, False)
    assert a.port_status(1)["partner_state"] == before & ~P.SYNC
