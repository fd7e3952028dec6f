"""A link's speed and duplex through the SIOCETHTOOL ioctl: read any link's, set a TAP's.

struct ethtool_link_settings (linux/ethtool.h) is 48 octets: cmd, speed (u32), duplex, port,
phy_address, autoneg, mdio_support, eth_tp_mdix, eth_tp_mdix_ctrl, link_mode_masks_nwords
(s8, at offset 15), transceiver, master_slave_cfg, master_slave_state, rate_matching, 7
reserved u32; then three link mode bitmaps of nwords u32 each. The kernel wants nwords
agreed first: asked with 0, it answers with its own count negated, and takes the real
request only with that count. A driver without it gets the older struct ethtool_cmd
(ETHTOOL_GSET, 44 octets).

tun stores whatever ETHTOOL_SLINKSETTINGS gives it and tells nobody; agrN's worker sets the
sum of its distributing ports' speeds there, as bonding does for its own speed.
"""
from __future__ import annotations

import errno
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB
import struct

from ..record import Record

SIOCETHTOOL = 0x8946
ETHTOOL_GSET, ETHTOOL_GLINKSETTINGS, ETHTOOL_SLINKSETTINGS = 0x1, 0x4C, 0x4D
SPEED_UNKNOWN = 0xFFFFFFFF            # (u32)-1
DUPLEX_HALF, DUPLEX_FULL, DUPLEX_UNKNOWN = 0x00, 0x01, 0xFF
HEADER = 48                           # sizeof(struct ethtool_link_settings)
NWORDS_OFFSET = 15                    # link_mode_masks_nwords
GSET_SIZE = 44                        # sizeof(struct ethtool_cmd)
IFREQ_SIZE = 40


class LinkMode(Record):
    """A link's speed in Mbit/s (None: unknown) and duplex (True full, False half, None unknown)."""
    __slots__ = ("speed", "duplex_full")
    DEFAULTS = {"speed": None, "duplex_full": None}


UNKNOWN = LinkMode()


# -- the codec (pure: unit-tested without a kernel) ---------------------------------------------

def handshake_request() -> bytes:
    """ETHTOOL_GLINKSETTINGS with nwords 0: the kernel answers with its count, negated."""
    return struct.pack("=I", ETHTOOL_GLINKSETTINGS).ljust(HEADER, b"\0")


def handshake_nwords(reply: bytes) -> int:
    """The kernel's link_mode_masks_nwords from the handshake's reply (> 0), or raise
    OSError(EOPNOTSUPP) when it did not take part in it."""
    nwords = -struct.unpack_from("=b", reply, NWORDS_OFFSET)[0]
    if nwords <= 0:
        raise OSError(errno.EOPNOTSUPP, "no link settings handshake")
    return nwords


def get_request(nwords: int) -> bytes:
    """ETHTOOL_GLINKSETTINGS with the agreed nwords, room for the three bitmaps."""
    data = bytearray(HEADER + 3 * 4 * nwords)
    struct.pack_into("=I", data, 0, ETHTOOL_GLINKSETTINGS)
    struct.pack_into("=b", data, NWORDS_OFFSET, nwords)
    return bytes(data)


def decode_speed(speed: int) -> int | None:
    return speed if 0 < speed < SPEED_UNKNOWN else None


def decode_duplex(duplex: int) -> bool | None:
    return {DUPLEX_FULL: True, DUPLEX_HALF: False}.get(duplex)


def decode_settings(reply: bytes) -> LinkMode:
    speed, duplex = struct.unpack_from("=IB", reply, 4)
    return LinkMode(speed=decode_speed(speed), duplex_full=decode_duplex(duplex))


def decode_gset(reply: bytes) -> LinkMode:
    """struct ethtool_cmd: speed's low 16 bits at 12, duplex at 14, speed_hi at 28."""
    low, duplex = struct.unpack_from("=HB", reply, 12)
    high = struct.unpack_from("=H", reply, 28)[0]
    return LinkMode(speed=decode_speed(high << 16 | low), duplex_full=decode_duplex(duplex))


def set_request(current: bytes, speed: int | None, duplex_full: bool | None) -> bytes:
    """ETHTOOL_SLINKSETTINGS from the settings just read (`current`, bitmaps and nwords
    included, as the kernel wants them back), with a new speed and duplex."""
    data = bytearray(current)
    struct.pack_into("=IIB", data, 0, ETHTOOL_SLINKSETTINGS,
                     SPEED_UNKNOWN if speed is None else speed,
                     DUPLEX_UNKNOWN if duplex_full is None else (DUPLEX_FULL if duplex_full else DUPLEX_HALF))
    return bytes(data)


def check_speed(speed: int | None) -> None:
    """A speed the u32 field holds, other than the unknown marker."""
    if speed is not None and not (isinstance(speed, int) and 0 < speed < SPEED_UNKNOWN):
        raise ValueError(f"speed {speed!r}: not a speed in Mbit/s")


def aggregate_mode(speeds) -> LinkMode:
    """What agrN reports for ports of these speeds (its distributing ports'), as bonding
    does: the sum of the known speeds, full duplex; unknown when none is known."""
    total = sum(s for s in speeds if s is not None)
    if not total:
        return UNKNOWN
    return LinkMode(speed=min(total, SPEED_UNKNOWN - 1), duplex_full=True)


# -- the ioctl ------------------------------------------------------------------------------

def _ioctl(ifname: str, data: bytes) -> bytes:
    """SIOCETHTOOL on `data` (a struct beginning with its command); the struct back."""
    import ctypes
    import fcntl
    buf = ctypes.create_string_buffer(data, len(data))
    ifr = struct.pack("16sP", ifname.encode()[:15], ctypes.addressof(buf)).ljust(IFREQ_SIZE, b"\0")
    # Any family reaches the device ioctls; unix, so that the sandboxed unit allows no inet sockets.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifr)
    finally:
        sock.close()
    return buf.raw


def _settings(ifname: str) -> bytes:
    """The whole struct ethtool_link_settings of `ifname`, after the nwords handshake."""
    nwords = handshake_nwords(_ioctl(ifname, handshake_request()))
    return _ioctl(ifname, get_request(nwords))


def link_mode(ifname: str) -> LinkMode:
    """`ifname`'s speed and duplex (UNKNOWN when it has none, or no such link)."""
    try:
        try:
            return decode_settings(_settings(ifname))
        except OSError:
            return decode_gset(_ioctl(ifname, struct.pack("=I", ETHTOOL_GSET).ljust(GSET_SIZE, b"\0")))
    except OSError:
        return UNKNOWN


def set_link_mode(ifname: str, speed: int | None, duplex_full: bool | None = True) -> None:
    """Give `ifname` (a TAP: tun stores it) this speed and duplex; None: unknown. OSError
    from the kernel as it comes."""
    check_speed(speed)
    _ioctl(ifname, set_request(_settings(ifname), speed, duplex_full))


# Features by name (`ethtool -k`): a feature's bit differs between kernels, so it is looked up
# in the ETH_SS_FEATURES string set first.
ETHTOOL_GSTRINGS, ETHTOOL_GSSET_INFO, ETHTOOL_GFEATURES = 0x1B, 0x37, 0x3A
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32


def feature(ifname, name):
    """Whether ethtool's feature `name` is active on the link; None when it cannot tell (no
    such feature, or no ethtool on the link)."""
    try:
        info = _ioctl(ifname, struct.pack("=IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0))
        count = struct.unpack_from("=I", info, 16)[0]
        if not count:
            return None
        names = _ioctl(ifname, struct.pack("=III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count)
                         + bytes(ETH_GSTRING_LEN * count))
        bit = feature_bit(names[12:], count, name)
        if bit is None:
            return None
        blocks = (count + 31) // 32
        got = _ioctl(ifname, struct.pack("=II", ETHTOOL_GFEATURES, blocks) + bytes(16 * blocks))
        _available, _requested, active, _never = struct.unpack_from("=IIII", got, 8 + 16 * (bit // 32))
        return bool(active >> (bit % 32) & 1)
    except OSError:
        return None


def feature_bit(strings, count, name):
    """The index of `name` in ETHTOOL_GSTRINGS' table of `count` names, or None."""
    for i in range(count):
        raw = strings[i * ETH_GSTRING_LEN:(i + 1) * ETH_GSTRING_LEN]
        if raw.split(b"\0", 1)[0].decode(errors="replace") == name:
            return i
    return None
