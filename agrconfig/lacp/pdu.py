"""LACPDU and Marker PDU codec (IEEE 802.1AX-2014 §6.4.2, §6.5.3).

Pure functions over bytes.  ``encode`` produces the Slow Protocols payload (it
begins with the subtype octet); ``build_frame`` wraps it in an Ethernet header.
``decode`` and ``parse_frame`` raise only :class:`PduError` on bad input, so a
caller can treat every other exception as a bug.

Reserved fields are sent as zero and ignored on receipt, as the standard asks
("transmitted as 0, ignored on receipt").
"""
from __future__ import annotations

import struct

from ..record import Record

from .states import (ACTIVITY, AGGREGATION, COLLECTING, DEFAULTED, DISTRIBUTING, EXPIRED,  # noqa: F401
                     STATE_BITS, SYNC, SYNCHRONIZATION, TIMEOUT)

SLOW_PROTOCOLS_MAC = b"\x01\x80\xc2\x00\x00\x02"
ETH_P_SLOW = 0x8809
SUBTYPE_LACP = 1
SUBTYPE_MARKER = 2
LACP_VERSION = 1
MARKER_VERSION = 1

# Actor/Partner state bits (ACTIVITY ... EXPIRED, STATE_BITS): in states.py, which status reads.
_STATE_BITS = STATE_BITS

# TLV types and lengths (the length counts the type and length octets too).
TLV_TERMINATOR = 0
TLV_ACTOR = 1
TLV_PARTNER = 2
TLV_COLLECTOR = 3
TLV_MARKER_INFORMATION = 1
TLV_MARKER_RESPONSE = 2
INFO_LEN = 20
COLLECTOR_LEN = 16
MARKER_INFO_LEN = 16

PDU_LEN = 110            # both LACPDU and Marker PDU, after the Ethernet header
ETH_HEADER_LEN = 14
MIN_FRAME_LEN = 60       # without FCS

# subtype, version, then three TLVs, terminator, 50 reserved octets.
_INFO = struct.Struct("!BBH6sHHHB3x")            # 20 octets
_COLLECTOR = struct.Struct("!BBH12x")             # 16 octets
_LACP_HEAD = struct.Struct("!BB")
_MARKER = struct.Struct("!BBBBH6sI2xBB90x")      # 110 octets


class PduError(ValueError):
    """The bytes are not a well-formed Slow Protocols PDU we understand."""


def state_names(bits: int) -> list[str]:
    """Names of the set state bits, least significant first."""
    return [name for bit, name in _STATE_BITS if bits & bit]


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def _check_u(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise PduError(f"{name} out of range: {value!r}")


def _check_mac(name: str, value: bytes) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 6:
        raise PduError(f"{name} must be 6 octets: {value!r}")


class LacpInfo(Record):
    """Actor or Partner information as carried in a LACPDU."""
    __slots__ = ("system_priority", "system", "key", "port_priority", "port", "state")

    def validate(self) -> None:
        _check_u("system_priority", self.system_priority, 16)
        _check_mac("system", self.system)
        _check_u("key", self.key, 16)
        _check_u("port_priority", self.port_priority, 16)
        _check_u("port", self.port, 16)
        _check_u("state", self.state, 8)


class Lacpdu(Record):
    __slots__ = ("actor", "partner", "collector_max_delay")
    DEFAULTS = {"collector_max_delay": 0}


class MarkerPdu(Record):
    """Marker Information (response=False) or Marker Response (response=True)."""
    __slots__ = ("response", "requester_port", "requester_system", "transaction_id")


def _encode_info(tlv: int, info: LacpInfo) -> bytes:
    info.validate()
    return _INFO.pack(tlv, INFO_LEN, info.system_priority, bytes(info.system), info.key,
                      info.port_priority, info.port, info.state)


def encode(pdu: Lacpdu | MarkerPdu) -> bytes:
    """Encode a PDU as a 110-octet Slow Protocols payload starting with the subtype."""
    if isinstance(pdu, Lacpdu):
        _check_u("collector_max_delay", pdu.collector_max_delay, 16)
        out = b"".join((
            _LACP_HEAD.pack(SUBTYPE_LACP, LACP_VERSION),
            _encode_info(TLV_ACTOR, pdu.actor),
            _encode_info(TLV_PARTNER, pdu.partner),
            _COLLECTOR.pack(TLV_COLLECTOR, COLLECTOR_LEN, pdu.collector_max_delay),
            bytes(2),                  # Terminator TLV: type 0, length 0
            bytes(50),                 # reserved
        ))
    elif isinstance(pdu, MarkerPdu):
        _check_u("requester_port", pdu.requester_port, 16)
        _check_mac("requester_system", pdu.requester_system)
        _check_u("transaction_id", pdu.transaction_id, 32)
        tlv = TLV_MARKER_RESPONSE if pdu.response else TLV_MARKER_INFORMATION
        out = _MARKER.pack(SUBTYPE_MARKER, MARKER_VERSION, tlv, MARKER_INFO_LEN, pdu.requester_port,
                           bytes(pdu.requester_system), pdu.transaction_id, TLV_TERMINATOR, 0)
    else:
        raise TypeError(f"not a PDU: {pdu!r}")
    assert len(out) == PDU_LEN
    return out


def _decode_info(data: bytes, offset: int, tlv: int, what: str) -> LacpInfo:
    t, length, sprio, system, key, pprio, port, state = _INFO.unpack_from(data, offset)
    if t != tlv or length != INFO_LEN:
        raise PduError(f"bad {what} TLV: type {t} length {length}")
    return LacpInfo(sprio, bytes(system), key, pprio, port, state)


def decode(payload: bytes) -> Lacpdu | MarkerPdu:
    """Decode a Slow Protocols payload (subtype first).

    Trailing octets beyond the 110 (Ethernet padding, FCS) are ignored.  A
    version above 1 is accepted and read as version 1, as the standard's
    forward-compatibility rule asks; version 0 is refused.
    """
    try:
        data = memoryview(payload).tobytes()
    except Exception as exc:  # noqa: BLE001 - anything not bytes-like is malformed input
        raise PduError(f"not bytes: {exc}") from None
    if len(data) < 2:
        raise PduError("too short for a Slow Protocols PDU")
    subtype, version = data[0], data[1]
    if subtype not in (SUBTYPE_LACP, SUBTYPE_MARKER):
        raise PduError(f"unknown Slow Protocols subtype {subtype}")
    if len(data) < PDU_LEN:
        raise PduError(f"short PDU: {len(data)} octets, need {PDU_LEN}")
    if version < 1:
        raise PduError(f"bad version {version}")
    if subtype == SUBTYPE_LACP:
        actor = _decode_info(data, 2, TLV_ACTOR, "Actor Information")
        partner = _decode_info(data, 22, TLV_PARTNER, "Partner Information")
        ctype, clen, delay = _COLLECTOR.unpack_from(data, 42)
        if ctype != TLV_COLLECTOR or clen != COLLECTOR_LEN:
            raise PduError(f"bad Collector Information TLV: type {ctype} length {clen}")
        # Version 2+ may carry further TLVs here; for version 1 the terminator must follow.
        if version == LACP_VERSION and (data[58], data[59]) != (TLV_TERMINATOR, 0):
            raise PduError(f"bad Terminator TLV: type {data[58]} length {data[59]}")
        return Lacpdu(actor, partner, delay)
    (_, _, tlv, length, port, system, tid, term, term_len) = _MARKER.unpack_from(data, 0)
    if tlv not in (TLV_MARKER_INFORMATION, TLV_MARKER_RESPONSE) or length != MARKER_INFO_LEN:
        raise PduError(f"bad Marker TLV: type {tlv} length {length}")
    if version == MARKER_VERSION and (term, term_len) != (TLV_TERMINATOR, 0):
        raise PduError(f"bad Terminator TLV: type {term} length {term_len}")
    return MarkerPdu(tlv == TLV_MARKER_RESPONSE, port, bytes(system), tid)


def build_frame(src_mac: bytes, payload: bytes) -> bytes:
    """Ethernet frame to the Slow Protocols group address, padded to 60 octets."""
    _check_mac("src_mac", src_mac)
    frame = SLOW_PROTOCOLS_MAC + bytes(src_mac) + ETH_P_SLOW.to_bytes(2, "big") + bytes(payload)
    return frame + bytes(max(0, MIN_FRAME_LEN - len(frame)))


def parse_frame(frame: bytes) -> tuple[bytes, bytes]:
    """Split a Slow Protocols frame into (source MAC, payload)."""
    try:
        data = memoryview(frame).tobytes()
    except Exception as exc:  # noqa: BLE001
        raise PduError(f"not bytes: {exc}") from None
    if len(data) < ETH_HEADER_LEN:
        raise PduError("frame shorter than an Ethernet header")
    if data[12:14] != ETH_P_SLOW.to_bytes(2, "big"):
        raise PduError(f"EtherType {data[12:14].hex()} is not Slow Protocols")
    if data[0:6] != SLOW_PROTOCOLS_MAC:
        raise PduError(f"destination {format_mac(data[0:6])} is not the Slow Protocols address")
    return data[6:12], data[14:]
