"""LACPDU and Marker PDU codec, checked by hand, by scapy and by tshark."""
import json
import shutil
import subprocess

import pytest
from hypothesis import example, given, strategies as st
from scapy.contrib.lacp import LACP, MarkerProtocol, SlowProtocol
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from agrconfig.lacp import pdu as P
from tests.unit.test_prop_core import MUTATION, examples

A = P.LacpInfo(0x8000, bytes.fromhex("020000000001"), 0x0100, 0x8000, 7, 0x3D)
B = P.LacpInfo(0xFFFE, bytes.fromhex("020000000002"), 0x0005, 0xFFFF, 3, 0x3F)


def test_lacpdu_layout_by_hand():
    raw = P.encode(P.Lacpdu(A, B, 0))
    assert len(raw) == 110
    assert raw[:2] == b"\x01\x01"
    assert raw[2:22] == bytes.fromhex("0114" "8000" "020000000001" "0100" "8000" "0007" "3d" "000000")
    assert raw[22:42] == bytes.fromhex("0214" "fffe" "020000000002" "0005" "ffff" "0003" "3f" "000000")
    assert raw[42:58] == bytes.fromhex("0310" "0000") + bytes(12)
    assert raw[58:60] == b"\x00\x00" and raw[60:] == bytes(50)


def test_marker_layout_by_hand():
    raw = P.encode(P.MarkerPdu(False, 5, bytes.fromhex("020000000009"), 0x01020304))
    assert len(raw) == 110
    assert raw[:18] == bytes.fromhex("0201" "0110" "0005" "020000000009" "01020304" "0000")
    assert raw[18:20] == b"\x00\x00" and raw[20:] == bytes(90)


def test_round_trips_and_frames():
    for pdu in (P.Lacpdu(A, B, 3), P.MarkerPdu(True, 9, bytes(6), 77), P.MarkerPdu(False, 0, bytes(6), 0)):
        assert P.decode(P.encode(pdu)) == pdu
        frame = P.build_frame(bytes.fromhex("0a0000000001"), P.encode(pdu))
        assert len(frame) == 124 and frame[:6] == P.SLOW_PROTOCOLS_MAC and frame[12:14] == b"\x88\x09"
        src, payload = P.parse_frame(frame)
        assert src == bytes.fromhex("0a0000000001") and P.decode(payload) == pdu


def test_reserved_fields_ignored_on_receive():
    raw = bytearray(P.encode(P.Lacpdu(A, B, 0)))
    raw[19:22] = b"\xff\xff\xff"   # actor reserved
    raw[46:58] = b"\xee" * 12       # collector reserved
    raw[60:110] = b"\xdd" * 50      # trailing reserved
    assert P.decode(bytes(raw)) == P.Lacpdu(A, B, 0)


@pytest.mark.parametrize("mutate", [
    lambda r: r[:109],                          # short
    lambda r: r[:1] + b"\x00" + r[2:],          # version 0
    lambda r: r[:2] + b"\x05" + r[3:],          # actor TLV type
    lambda r: r[:3] + b"\x13" + r[4:],          # actor TLV length
    lambda r: r[:22] + b"\x01" + r[23:],        # partner TLV type
    lambda r: r[:43] + b"\x0f" + r[44:],        # collector length
    lambda r: r[:58] + b"\x04" + r[59:],        # terminator
    lambda r: b"\x09" + r[1:],                  # unknown subtype
    lambda r: b"",
])
def test_malformed_raises_pdu_error(mutate):
    with pytest.raises(P.PduError):
        P.decode(mutate(P.encode(P.Lacpdu(A, B, 0))))


@examples(100)
@given(st.binary(max_size=200))
@example(P.encode(P.Lacpdu(A, B, 0)) + b"\xff" * 14)     # decodes: padding and FCS are ignored
@example(P.encode(P.MarkerPdu(True, 5, bytes(6), 42)))
def test_any_bytes_decode_or_pdu_error(data):
    try:
        pdu = P.decode(data)
    except P.PduError as exc:
        assert str(exc), "the error says what is wrong"
        return
    # Whatever decodes is a whole PDU of ours that encodes back to itself.
    assert len(data) >= 110 and data[0] in (P.SUBTYPE_LACP, P.SUBTYPE_MARKER)
    assert isinstance(pdu, (P.Lacpdu, P.MarkerPdu)) and P.decode(P.encode(pdu)) == pdu


def test_scapy_frames_decode():
    pkt = Ether(src="0a:00:00:00:00:01", dst="01:80:c2:00:00:02") / SlowProtocol() / LACP(
        actor_system_priority=0x8000, actor_system="02:00:00:00:00:01", actor_key=0x100,
        actor_port_priority=0x8000, actor_port_number=7, actor_state=0x3D,
        partner_system_priority=0xFFFE, partner_system="02:00:00:00:00:02", partner_key=5,
        partner_port_priority=0xFFFF, partner_port_number=3, partner_state=0x3F)
    _src, payload = P.parse_frame(bytes(pkt))
    assert P.decode(payload) == P.Lacpdu(A, B, 0)
    mk = Ether(src="0a:00:00:00:00:01", dst="01:80:c2:00:00:02") / SlowProtocol() / MarkerProtocol(
        marker_type=1, requester_port=5, requester_system="02:00:00:00:00:09", requester_transaction_id=42)
    _src, payload = P.parse_frame(bytes(mk))
    assert P.decode(payload) == P.MarkerPdu(False, 5, bytes.fromhex("020000000009"), 42)


def test_scapy_reads_our_frames():
    pkt = Ether(P.build_frame(bytes.fromhex("0a0000000001"), P.encode(P.Lacpdu(A, B, 0))))
    lacp = pkt[LACP]
    assert lacp.actor_system == "02:00:00:00:00:01" and lacp.actor_port_number == 7 and lacp.actor_state == 0x3D
    assert lacp.partner_key == 5 and lacp.partner_system_priority == 0xFFFE
    mk = Ether(P.build_frame(bytes(6), P.encode(P.MarkerPdu(True, 5, bytes.fromhex("020000000009"), 42))))
    assert mk[MarkerProtocol].marker_type == 2 and mk[MarkerProtocol].requester_transaction_id == 42


@pytest.mark.skipif(MUTATION, reason="an outside oracle, 2 s a run: the layout tests above kill codec mutants")
def test_tshark_decodes_our_frames_cleanly(tmp_path):
    tshark = shutil.which("tshark")
    assert tshark, "tshark is required (apt install tshark)"
    pcap = tmp_path / "ours.pcap"
    frames = [P.build_frame(bytes.fromhex("0a0000000001"), P.encode(P.Lacpdu(A, B, 0))),
              P.build_frame(bytes.fromhex("0a0000000001"), P.encode(P.MarkerPdu(False, 5, bytes(6), 42))),
              P.build_frame(bytes.fromhex("0a0000000001"), P.encode(P.MarkerPdu(True, 5, bytes(6), 42)))]
    wrpcap(str(pcap), [Ether(f) for f in frames])
    out = subprocess.run([tshark, "-r", str(pcap), "-T", "json"], capture_output=True, text=True, check=True).stdout
    layers = [p["_source"]["layers"] for p in json.loads(out)]
    assert "lacp" in layers[0] and "marker" in layers[1] and "marker" in layers[2]
    fields = subprocess.run([tshark, "-r", str(pcap), "-Y", "lacp", "-T", "fields", "-e", "lacp.actor.port",
                             "-e", "lacp.partner.key", "-e", "lacp.actor.sysid"], capture_output=True, text=True,
                            check=True).stdout.split()
    assert fields == ["7", "5", "02:00:00:00:00:01"]
    bad = subprocess.run([tshark, "-r", str(pcap), "-Y", "_ws.malformed || _ws.expert.severity >= warning"],
                         capture_output=True, text=True, check=True).stdout
    assert bad.strip() == "", bad
