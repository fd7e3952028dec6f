"""Pre-flight's pure part (agrconfig/heard.py): the eliciting LACPDU, the partner and the LLDP
neighbour read from frames, and the grouping rule. LLDPDUs are built with scapy, independently."""
import pytest
from scapy.contrib.lacp import LACP
from scapy.contrib.lldp import (LLDPDUChassisID, LLDPDUEndOfLLDPDU, LLDPDUPortDescription, LLDPDUPortID,
                                LLDPDUSystemName, LLDPDUTimeToLive)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from agrconfig import heard
from agrconfig.lacp import pdu

MAC = bytes.fromhex("02aabbccdd01")


def partner_frame(**kw):
    actor = dict(system_priority=0x1234, system=bytes.fromhex("020000000099"), key=17, port_priority=100,
                 port=7, state=pdu.ACTIVITY | pdu.TIMEOUT | pdu.AGGREGATION | pdu.SYNC)
    actor.update(kw)
    return pdu.encode(pdu.Lacpdu(pdu.LacpInfo(**actor), heard.ZERO_INFO))


# -- the eliciting LACPDU ------------------------------------------------------------------
def test_eliciting_frame_is_our_port_with_an_empty_partner_and_no_sync():
    frame = heard.eliciting_frame(MAC, 5)
    src, payload = pdu.parse_frame(frame)
    assert src == MAC and frame[:6] == pdu.SLOW_PROTOCOLS_MAC and len(frame) >= 60
    got = pdu.decode(payload)
    assert got.actor == pdu.LacpInfo(0x8000, MAC, 0, 0x8000, 5, pdu.ACTIVITY | pdu.AGGREGATION | pdu.DEFAULTED)
    assert got.partner == pdu.LacpInfo(0, bytes(6), 0, 0, 0, 0)
    assert not got.actor.state & (pdu.SYNC | pdu.COLLECTING | pdu.DISTRIBUTING)
    assert not got.actor.state & pdu.TIMEOUT        # slow: we ask for nothing fast


def test_eliciting_frame_decodes_in_scapy():
    lacp = Ether(heard.eliciting_frame(MAC, 0x10005))[LACP]
    assert lacp.actor_system == "02:aa:bb:cc:dd:01" and lacp.actor_system_priority == 0x8000
    assert lacp.actor_port_number == 5      # ifindex above 65535: its low 16 bits
    assert lacp.partner_system == "00:00:00:00:00:00" and lacp.partner_state == 0 and lacp.partner_key == 0


def test_eliciting_frame_never_uses_port_zero():
    assert pdu.decode(pdu.parse_frame(heard.eliciting_frame(MAC, 0x10000))[1]).actor.port == 1


# -- the partner heard ---------------------------------------------------------------------
def test_lacp_partner_fields():
    p = heard.lacp_partner(partner_frame())
    assert p == heard.LacpPartner(0x1234, "02:00:00:00:00:99", 17, 100, 7,
                                  pdu.ACTIVITY | pdu.TIMEOUT | pdu.AGGREGATION | pdu.SYNC)
    assert (p.active, p.timeout, p.aggregatable, p.system_id) == (True, heard.Timeout.FAST, True,
                                                                  "0x1234,02:00:00:00:00:99")


def test_lacp_partner_passive_slow_individual():
    p = heard.lacp_partner(partner_frame(state=pdu.DEFAULTED))
    assert (p.active, p.timeout, p.aggregatable) == (False, heard.Timeout.SLOW, False)


def test_marker_is_no_partner_and_garbage_is_refused():
    marker = pdu.encode(pdu.MarkerPdu(False, 3, MAC, 9))
    assert heard.lacp_partner(marker) is None
    with pytest.raises(pdu.PduError):
        heard.lacp_partner(b"\x01\x01" + bytes(10))


# -- LLDP ----------------------------------------------------------------------------------
def lldp(*tlvs):
    frame = Ether(dst="01:80:c2:00:00:0e", src="02:00:00:00:00:01", type=0x88CC)
    for t in tlvs:
        frame = frame / t
    return bytes(frame)[14:]


BASIC = (LLDPDUChassisID(subtype=4, id="02:00:00:00:00:01"), LLDPDUPortID(subtype=5, id=b"swp3"),
         LLDPDUTimeToLive(ttl=120))


def test_lldp_mac_chassis_name_port_system_name():
    got = heard.lldp_neighbour(lldp(*BASIC, LLDPDUPortDescription(description=b"to host"),
                                    LLDPDUSystemName(system_name=b"sw1"), LLDPDUEndOfLLDPDU()))
    assert got == heard.LldpNeighbour("02:00:00:00:00:01", "swp3", "sw1")


def test_lldp_without_system_name_or_end():
    assert heard.lldp_neighbour(lldp(*BASIC)) == heard.LldpNeighbour("02:00:00:00:00:01", "swp3", None)


def test_lldp_locally_assigned_and_mac_port_ids_and_network_address():
    got = heard.lldp_neighbour(lldp(LLDPDUChassisID(subtype=7, id=b"rack4-sw"),
                                    LLDPDUPortID(subtype=3, id="02:00:00:00:00:07"), LLDPDUTimeToLive(ttl=5)))
    assert got == heard.LldpNeighbour("rack4-sw", "02:00:00:00:00:07", None)
    raw = bytes([1 << 1, 6, 5, 1, 192, 0, 2, 1])         # chassis ID, subtype 5: IPv4 192.0.2.1
    raw += bytes([2 << 1, 3, 7]) + b"p1" + bytes([6, 2, 0, 9]) + bytes(2)
    assert heard.lldp_neighbour(raw) == heard.LldpNeighbour("192.0.2.1", "p1", None)


def test_lldp_unprintable_names_come_as_hex():
    got = heard.lldp_neighbour(lldp(LLDPDUChassisID(subtype=7, id=b"\x1b[2J"), LLDPDUPortID(subtype=5, id=b"\xff\xfe"),
                                    LLDPDUTimeToLive(ttl=5), LLDPDUSystemName(system_name=b"a\nb")))
    assert got == heard.LldpNeighbour("1b:5b:32:4a", "ff:fe", "61:0a:62")


@pytest.mark.parametrize("raw", [
    b"",                                                 # nothing
    bytes([1 << 1, 7, 4]) + MAC,                         # chassis ID only
    bytes([2 << 1, 3, 5]) + b"p1" + bytes([2, 7, 4]) + MAC + bytes([6, 2, 0, 9]),   # out of order
    bytes([1 << 1, 30, 4]) + MAC,                        # a TLV longer than the frame
    bytes([1 << 1, 1, 4]) + bytes([2 << 1, 3, 5]) + b"p1" + bytes([6, 2, 0, 9]),   # empty chassis ID
])
def test_lldp_malformed_is_refused(raw):
    with pytest.raises(heard.LldpError):
        heard.lldp_neighbour(raw)


def test_lldp_frame_padding_after_end_is_ignored():
    assert heard.lldp_neighbour(lldp(*BASIC, LLDPDUEndOfLLDPDU(), Raw(b"\xff" * 20))).port_id == "swp3"


# -- grouping ------------------------------------------------------------------------------
def partner(system="02:00:00:00:00:99", key=17, prio=0x8000, state=pdu.ACTIVITY | pdu.AGGREGATION):
    return heard.LacpPartner(prio, system, key, 0x8000, 1, state)


def test_groups_by_system_key_and_speed_in_port_order():
    ports = [("re0", 1000, partner()), ("re1", 1000, partner()), ("re2", 10000, partner()),
             ("re3", 1000, partner(key=18)), ("re4", 1000, partner(system="02:00:00:00:00:98")),
             ("re5", 1000, partner(prio=1)), ("re6", 1000, None), ("re7", 1000, partner())]
    assert heard.groups(ports) == [
        heard.Group(0x8000, "02:00:00:00:00:99", 17, 1000, ("re0", "re1", "re7")),
        heard.Group(0x8000, "02:00:00:00:00:99", 17, 10000, ("re2",)),
        heard.Group(0x8000, "02:00:00:00:00:99", 18, 1000, ("re3",)),
        heard.Group(0x8000, "02:00:00:00:00:98", 17, 1000, ("re4",)),
        heard.Group(1, "02:00:00:00:00:99", 17, 1000, ("re5",)),
    ]


def test_an_individual_partner_or_silence_forms_no_group():
    assert heard.groups([("re0", 1000, partner(state=pdu.ACTIVITY)), ("re1", 1000, partner(state=pdu.ACTIVITY)),
                         ("re2", None, None)]) == []


def test_unknown_speeds_group_together():
    assert heard.groups([("v0", None, partner()), ("v1", None, partner())]) == [
        heard.Group(0x8000, "02:00:00:00:00:99", 17, None, ("v0", "v1"))]
