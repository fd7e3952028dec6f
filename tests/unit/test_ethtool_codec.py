"""agrconfig/net/ethtool.py's codec, against the layout of linux/ethtool.h written out here
(struct ethtool_link_settings and struct ethtool_cmd as ctypes structures), and the sum of
the distributing ports' speeds that agrN reports."""
import ctypes
import errno

import pytest

from agrconfig.net import ethtool as E


class LinkSettings(ctypes.Structure):   # struct ethtool_link_settings, linux/ethtool.h
    _fields_ = [("cmd", ctypes.c_uint32), ("speed", ctypes.c_uint32), ("duplex", ctypes.c_uint8),
                ("port", ctypes.c_uint8), ("phy_address", ctypes.c_uint8), ("autoneg", ctypes.c_uint8),
                ("mdio_support", ctypes.c_uint8), ("eth_tp_mdix", ctypes.c_uint8),
                ("eth_tp_mdix_ctrl", ctypes.c_uint8), ("link_mode_masks_nwords", ctypes.c_int8),
                ("transceiver", ctypes.c_uint8), ("master_slave_cfg", ctypes.c_uint8),
                ("master_slave_state", ctypes.c_uint8), ("rate_matching", ctypes.c_uint8),
                ("reserved", ctypes.c_uint32 * 7)]


class EthtoolCmd(ctypes.Structure):     # struct ethtool_cmd (ETHTOOL_GSET)
    _fields_ = [("cmd", ctypes.c_uint32), ("supported", ctypes.c_uint32), ("advertising", ctypes.c_uint32),
                ("speed", ctypes.c_uint16), ("duplex", ctypes.c_uint8), ("port", ctypes.c_uint8),
                ("phy_address", ctypes.c_uint8), ("transceiver", ctypes.c_uint8), ("autoneg", ctypes.c_uint8),
                ("mdio_support", ctypes.c_uint8), ("maxtxpkt", ctypes.c_uint32), ("maxrxpkt", ctypes.c_uint32),
                ("speed_hi", ctypes.c_uint16), ("eth_tp_mdix", ctypes.c_uint8), ("eth_tp_mdix_ctrl", ctypes.c_uint8),
                ("lp_advertising", ctypes.c_uint32), ("reserved", ctypes.c_uint32 * 2)]


def test_the_sizes_and_offsets_are_the_headers():
    assert ctypes.sizeof(LinkSettings) == E.HEADER == 48
    assert LinkSettings.link_mode_masks_nwords.offset == E.NWORDS_OFFSET
    assert ctypes.sizeof(EthtoolCmd) == E.GSET_SIZE == 44
    assert (E.ETHTOOL_GSET, E.ETHTOOL_GLINKSETTINGS, E.ETHTOOL_SLINKSETTINGS, E.SIOCETHTOOL) == (1, 0x4C, 0x4D, 0x8946)


def test_the_handshake():
    req = LinkSettings.from_buffer_copy(E.handshake_request())
    assert req.cmd == E.ETHTOOL_GLINKSETTINGS and req.link_mode_masks_nwords == 0
    reply = LinkSettings(cmd=E.ETHTOOL_GLINKSETTINGS, link_mode_masks_nwords=-3)
    assert E.handshake_nwords(bytes(reply)) == 3
    for refused in (0, 3):   # a driver that did not answer the handshake
        with pytest.raises(OSError) as exc:
            E.handshake_nwords(bytes(LinkSettings(link_mode_masks_nwords=refused)))
        assert exc.value.errno == errno.EOPNOTSUPP
    get = E.get_request(3)
    assert len(get) == 48 + 3 * 3 * 4
    head = LinkSettings.from_buffer_copy(get[:48])
    assert head.cmd == E.ETHTOOL_GLINKSETTINGS and head.link_mode_masks_nwords == 3
    assert get[48:] == bytes(36)


def test_decoding_speed_and_duplex():
    def settings(speed, duplex):
        return bytes(LinkSettings(cmd=E.ETHTOOL_GLINKSETTINGS, speed=speed, duplex=duplex)) + bytes(36)
    assert E.decode_settings(settings(10000, 1)) == E.LinkMode(10000, True)
    assert E.decode_settings(settings(100, 0)) == E.LinkMode(100, False)
    assert E.decode_settings(settings(0xFFFFFFFF, 0xFF)) == E.UNKNOWN == E.LinkMode(None, None)
    assert E.decode_settings(settings(0, 1)) == E.LinkMode(None, True)
    assert E.decode_settings(settings(400000, 1)).speed == 400000
    cmd = EthtoolCmd(cmd=1, speed=200000 & 0xFFFF, speed_hi=200000 >> 16, duplex=1)
    assert E.decode_gset(bytes(cmd)) == E.LinkMode(200000, True)
    assert E.decode_gset(bytes(EthtoolCmd(speed=0xFFFF, speed_hi=0xFFFF, duplex=0xFF))) == E.UNKNOWN


def test_the_set_request_keeps_everything_but_speed_and_duplex():
    current = bytes(LinkSettings(cmd=E.ETHTOOL_GLINKSETTINGS, speed=10, duplex=0, port=0, autoneg=1,
                                 link_mode_masks_nwords=3, transceiver=1)) + bytes(range(36))
    out = E.set_request(current, 20000, True)
    head = LinkSettings.from_buffer_copy(out[:48])
    assert head.cmd == E.ETHTOOL_SLINKSETTINGS and head.speed == 20000 and head.duplex == 1
    assert head.link_mode_masks_nwords == 3 and head.autoneg == 1 and head.transceiver == 1
    assert out[48:] == bytes(range(36)) and len(out) == len(current)
    unknown = LinkSettings.from_buffer_copy(E.set_request(current, None, None)[:48])
    assert unknown.speed == 0xFFFFFFFF and unknown.duplex == 0xFF
    assert LinkSettings.from_buffer_copy(E.set_request(current, 100, False)[:48]).duplex == 0


def test_only_real_speeds_are_set():
    for bad in (0, -1, 0xFFFFFFFF, 1 << 40, "1000", 1.5):
        with pytest.raises(ValueError):
            E.check_speed(bad)
    E.check_speed(None)
    E.check_speed(1)


def test_the_aggregate_speed_is_the_sum_of_known_speeds():
    assert E.aggregate_mode([10000, 10000]) == E.LinkMode(20000, True)
    assert E.aggregate_mode([10000]) == E.LinkMode(10000, True)
    assert E.aggregate_mode([]) == E.UNKNOWN, "none distribute: unknown"
    assert E.aggregate_mode([None, 1000]) == E.LinkMode(1000, True), "a port of unknown speed adds nothing"
    assert E.aggregate_mode([None]) == E.UNKNOWN
    assert E.aggregate_mode([0xFFFFFFF0, 0xFFFFFFF0]).speed == 0xFFFFFFFE, "capped below the unknown marker"
