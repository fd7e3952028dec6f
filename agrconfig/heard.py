"""What a free port hears, for pre-flight (`agrconfig -l --free -v`): its LACP partner, its
LLDP neighbour, and which ports could form one aggregate. Pure: bytes in, Records out.

The eliciting LACPDU is built here too: our actor on that port, every partner field still
zero. The partner's copy of us then differs from what it sends, so its update_NTT answers at
once (802.1AX-2014 6.4.9); our Synchronization bit stays off, so no aggregation forms.
"""
import enum

from .lacp import pdu
from .record import Record

ETH_P_LLDP = 0x88CC
LLDP_MAC = b"\x01\x80\xc2\x00\x00\x0e"      # nearest bridge: a switch neither forwards nor floods it
OUR_SYSTEM_PRIORITY = 0x8000
OUR_PORT_PRIORITY = 0x8000
# Active, slow timeout, aggregatable, defaulted (we have no partner yet); never in sync.
ELICIT_STATE = pdu.ACTIVITY | pdu.AGGREGATION | pdu.DEFAULTED
ZERO_INFO = pdu.LacpInfo(0, bytes(6), 0, 0, 0, 0)


class Timeout(enum.Enum):
    SLOW = "slow"     # Long_Timeout_Time 90 s, LACPDUs every 30 s
    FAST = "fast"     # Short_Timeout_Time 3 s, LACPDUs every second


class LacpPartner(Record):
    """The partner's Actor information in a LACPDU heard on a port."""
    __slots__ = ("system_priority", "system", "key", "port_priority", "port", "state")

    @property
    def active(self):
        return bool(self.state & pdu.ACTIVITY)

    @property
    def timeout(self):
        return Timeout.FAST if self.state & pdu.TIMEOUT else Timeout.SLOW

    @property
    def aggregatable(self):
        return bool(self.state & pdu.AGGREGATION)

    @property
    def system_id(self):
        """802.1AX's System Identifier: priority and MAC, as one text."""
        return f"{self.system_priority:#06x},{self.system}"


class LldpNeighbour(Record):
    """The Chassis ID, Port ID and System Name of an LLDPDU (IEEE 802.1AB-2016 8.5), as text:
    a MAC as aa:bb:.., a network address as an IP, names as they are (non-printable: hex)."""
    __slots__ = ("chassis_id", "port_id", "system_name")
    DEFAULTS = {"system_name": None}


class LldpError(ValueError):
    """The bytes are not an LLDPDU with the mandatory TLVs in their place."""


def lacp_partner(payload):
    """The LacpPartner of a Slow Protocols payload, or None for a Marker PDU; PduError if bad."""
    got = pdu.decode(payload)
    if not isinstance(got, pdu.Lacpdu):
        return None
    a = got.actor
    return LacpPartner(a.system_priority, pdu.format_mac(a.system), a.key, a.port_priority, a.port, a.state)


def eliciting_frame(mac, port):
    """The one LACPDU pre-flight sends on a free port: actor = that port (system = its MAC,
    priority 0x8000, port number `port`), partner fields all zero, Synchronization off."""
    actor = pdu.LacpInfo(OUR_SYSTEM_PRIORITY, bytes(mac), 0, OUR_PORT_PRIORITY, port & 0xFFFF or 1, ELICIT_STATE)
    return pdu.build_frame(mac, pdu.encode(pdu.Lacpdu(actor, ZERO_INFO)))


# -- LLDP ------------------------------------------------------------------------------------
TLV_END, TLV_CHASSIS_ID, TLV_PORT_ID, TLV_TTL, TLV_SYSTEM_NAME = 0, 1, 2, 3, 5
CHASSIS_MAC, CHASSIS_NETWORK = 4, 5       # chassis ID subtypes (8.5.2.2)
PORT_MAC, PORT_NETWORK = 3, 4             # port ID subtypes (8.5.3.2)


def _tlvs(data):
    """(type, value) of each TLV up to End of LLDPDU: 7 bits of type, 9 of length."""
    i = 0
    while i + 2 <= len(data):
        head = int.from_bytes(data[i:i + 2], "big")
        kind, length = head >> 9, head & 0x1FF
        value = data[i + 2:i + 2 + length]
        if len(value) != length:
            raise LldpError(f"TLV {kind} runs past the frame ({length} octets)")
        if kind == TLV_END:
            return
        yield kind, value
        i += 2 + length


def _text(raw):
    text = raw.decode("utf-8", "replace")
    return text if text.isprintable() and "\ufffd" not in text else raw.hex(":")


def _network_address(raw):
    import ipaddress
    family, addr = (raw[0], raw[1:]) if raw else (0, b"")
    if family == 1 and len(addr) == 4 or family == 2 and len(addr) == 16:
        return str(ipaddress.ip_address(addr))
    return raw.hex(":")


def _id(value, mac_subtype, network_subtype, what):
    if len(value) < 2:
        raise LldpError(f"empty {what}")
    subtype, raw = value[0], value[1:]
    if subtype == mac_subtype and len(raw) == 6:
        return pdu.format_mac(raw)
    if subtype == network_subtype:
        return _network_address(raw)
    return _text(raw)


def lldp_neighbour(payload):
    """The LldpNeighbour of an LLDPDU (the payload after the Ethernet header); LldpError if it
    does not begin with Chassis ID, Port ID and Time To Live, as 802.1AB requires."""
    tlvs = list(_tlvs(bytes(payload)))
    if [k for k, _v in tlvs[:3]] != [TLV_CHASSIS_ID, TLV_PORT_ID, TLV_TTL]:
        raise LldpError("an LLDPDU begins with Chassis ID, Port ID and Time To Live")
    name = next((_text(v) for k, v in tlvs[3:] if k == TLV_SYSTEM_NAME), None)
    return LldpNeighbour(_id(tlvs[0][1], CHASSIS_MAC, CHASSIS_NETWORK, "chassis ID"),
                         _id(tlvs[1][1], PORT_MAC, PORT_NETWORK, "port ID"), name)


# -- grouping --------------------------------------------------------------------------------
class Group(Record):
    """Ports that can form one aggregate: one partner system and key (its Aggregation bit set)
    and one speed (None: unknown, as veth's)."""
    __slots__ = ("partner_system_priority", "partner_system", "partner_key", "speed", "ports")


def groups(ports):
    """Groups of (name, speed, LacpPartner or None): ports whose partner is aggregatable, by
    partner system, key and speed, in the order the ports come; a port whose partner is
    individual or silent is in none."""
    found = {}
    for name, speed, partner in ports:
        if partner is None or not partner.aggregatable:
            continue
        key = (partner.system_priority, partner.system, partner.key, speed)
        found.setdefault(key, []).append(name)
    return [Group(*key, tuple(names)) for key, names in found.items()]
