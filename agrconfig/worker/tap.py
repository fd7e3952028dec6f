"""The TAP device that is agrN: /dev/net/tun, persistent, with the virtio-net header."""
import fcntl
import os
import struct

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUNGETIFF = 0x800454D2
TUNSETCARRIER = 0x400454E2
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08

VNET_HDR_LEN = 10  # struct virtio_net_hdr; the same on the port sockets


def open_tap(name, persist=True):
    """Open (or re-attach to) TAP `name`; returns the fd.

    IFF_VNET_HDR plus offloads lets 64 KB GSO frames and frames with unfinished
    checksums cross the relay whole.
    """
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        ifr = struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
        fcntl.ioctl(fd, TUNSETIFF, ifr)
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
        fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
        if persist:
            fcntl.ioctl(fd, TUNSETPERSIST, 1)
    except OSError:
        os.close(fd)
        raise
    return fd


def unpersist(fd):
    """Drop persistence: the TAP goes away when the last fd closes."""
    fcntl.ioctl(fd, TUNSETPERSIST, 0)


def attached_name(fd):
    """The name of the TAP this fd is attached to, or None (detached: the device was deleted)."""
    try:
        ifr = fcntl.ioctl(fd, TUNGETIFF, bytes(40))
    except OSError:
        return None
    return ifr[:16].split(b"\0", 1)[0].decode()


def set_carrier(fd, on):
    """agrN's carrier (agrminports). Attaching an fd (TUNSETIFF) turns it on: set it after
    every attach."""
    fcntl.ioctl(fd, TUNSETCARRIER, struct.pack("i", 1 if on else 0))
