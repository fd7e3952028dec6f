"""Property tests of the PDU codec: any bytes decode or raise PduError; valid PDUs round-trip."""
import struct

import pytest
from hypothesis import example, given, strategies as st

from agrconfig.lacp import pdu as P
from tests.unit.test_prop_core import examples

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
macs = st.binary(min_size=6, max_size=6)

infos = st.builds(P.LacpInfo, u16, macs, u16, u16, u16, u8)
lacpdus = st.builds(P.Lacpdu, infos, infos, u16)
markers = st.builds(P.MarkerPdu, st.booleans(), u16, macs, u32)
pdus = st.one_of(lacpdus, markers)

SETTINGS = examples(300)


def decode_or_pdu_error(data):
    """The contract: a PDU, or PduError; nothing else may escape."""
    try:
        out = P.decode(data)
    except P.PduError as exc:
        assert str(exc), "the error says what is wrong"
        return None
    assert isinstance(out, (P.Lacpdu, P.MarkerPdu))
    return out


@SETTINGS
@given(st.binary(max_size=300))
@example(b"")
@example(b"\x01")
@example(b"\x01\x01")
@example(b"\x02\x00" + bytes(108))
@example(b"\x01\xff" + bytes(108))
def test_any_bytes_decode_or_raise_pdu_error(data):
    decode_or_pdu_error(data)


@SETTINGS
@given(st.sampled_from([1, 2]), st.integers(0, 255), st.binary(min_size=0, max_size=200))
def test_right_subtype_then_anything(subtype, version, rest):
    # Random bytes rarely get past the subtype octet: start with a good one.
    decode_or_pdu_error(bytes([subtype, version]) + rest)


@SETTINGS
@given(pdus, st.lists(st.tuples(st.integers(0, 109), u8), min_size=1, max_size=8),
       st.integers(0, 130))
def test_mutated_valid_pdus_decode_or_raise_pdu_error(pdu, flips, cut):
    raw = bytearray(P.encode(pdu))
    for pos, value in flips:
        raw[pos] = value
    decode_or_pdu_error(bytes(raw))
    decode_or_pdu_error(bytes(raw[:cut]))


@SETTINGS
@given(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.floats(),
                 st.lists(st.integers(0, 255), max_size=5), st.binary().map(bytearray),
                 st.binary().map(memoryview)))
def test_non_bytes_input_is_a_pdu_error_too(obj):
    decode_or_pdu_error(obj)
    try:
        P.parse_frame(obj)
    except P.PduError:
        pass


@SETTINGS
@given(st.binary(max_size=200))
def test_parse_frame_any_bytes(data):
    try:
        src, payload = P.parse_frame(data)
    except P.PduError:
        return
    assert len(src) == 6 and data[:6] == P.SLOW_PROTOCOLS_MAC
    decode_or_pdu_error(payload)


@SETTINGS
@given(pdus)
def test_round_trip(pdu):
    raw = P.encode(pdu)
    assert len(raw) == P.PDU_LEN
    back = P.decode(raw)
    assert back == pdu and type(back) is type(pdu)
    if isinstance(pdu, P.Lacpdu):
        assert isinstance(back.actor.system, bytes) and isinstance(back.partner.system, bytes)
    # The same through an Ethernet frame, with padding and an FCS-sized tail after it.
    frame = P.build_frame(bytes.fromhex("0a0000000001"), raw) + b"\xde\xad\xbe\xef"
    src, payload = P.parse_frame(frame)
    assert src == bytes.fromhex("0a0000000001") and P.decode(payload) == pdu
    # bytearray and memoryview work as bytes do.
    assert P.decode(bytearray(raw)) == pdu and P.decode(memoryview(raw)) == pdu


@SETTINGS
@given(pdus, st.binary(min_size=3, max_size=3), st.binary(min_size=12, max_size=12),
       st.binary(min_size=50, max_size=50), st.integers(1, 255))
def test_reserved_octets_and_newer_versions_are_ignored(pdu, r3, r12, r50, version):
    raw = bytearray(P.encode(pdu))
    raw[1] = version
    if isinstance(pdu, P.Lacpdu):
        raw[19:22] = r3
        raw[39:42] = r3
        raw[46:58] = r12
        raw[60:110] = r50
    else:
        raw[16:18] = r3[:2]
        raw[20:70] = r50
    assert P.decode(bytes(raw)) == pdu


bad_ints = st.one_of(st.integers(max_value=-1), st.integers(min_value=1 << 32), st.floats(),
                     st.text(max_size=3), st.none())


@SETTINGS
@given(st.data())
def test_encode_refuses_bad_fields_with_pdu_error(data):
    """Encoding out-of-range or mistyped fields is a PduError too, never struct.error."""
    good = data.draw(lacpdus)
    field = data.draw(st.sampled_from(["system_priority", "system", "key", "port_priority", "port",
                                       "state", "collector_max_delay", "marker_port",
                                       "marker_system", "marker_tid"]))
    bad = data.draw(bad_ints if field not in ("system", "marker_system") else
                    st.one_of(st.binary().filter(lambda b: len(b) != 6), st.text(), st.none(),
                              st.integers()))
    if field in ("state",):
        bad = data.draw(st.one_of(bad_ints, st.integers(256, 1 << 16)))
    elif field in ("system_priority", "key", "port_priority", "port", "collector_max_delay",
                   "marker_port"):
        bad = data.draw(st.one_of(bad_ints, st.integers(1 << 16, 1 << 20)))
    if field == "collector_max_delay":
        pdu = P.Lacpdu(good.actor, good.partner, bad)
    elif field.startswith("marker_"):
        args = {"marker_port": (False, bad, bytes(6), 0), "marker_system": (False, 0, bad, 0),
                "marker_tid": (False, 0, bytes(6), bad)}[field]
        pdu = P.MarkerPdu(*args)
    else:
        fields = dict(good.actor.as_dict(), **{field: bad})
        pdu = P.Lacpdu(P.LacpInfo(**fields), good.partner, 0)
    with pytest.raises(P.PduError):
        P.encode(pdu)


def test_pdu_error_is_the_one_declared_error():
    assert issubclass(P.PduError, ValueError)
    assert not issubclass(struct.error, P.PduError)
