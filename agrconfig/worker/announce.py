"""Frames that tell switches and neighbours where agrN's addresses are after a failover:
a gratuitous ARP request per IPv4 address (as the kernel's NETDEV_NOTIFY_PEERS sends for
bonding) and an unsolicited Neighbor Advertisement per IPv6 address (RFC 4861 §7.2.6,
Override set). Pure: addresses and MAC in, frames out.
"""
import ipaddress
import struct

BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
ETH_P_ARP, ETH_P_IPV6 = 0x0806, 0x86DD
NA_OVERRIDE = 0x20000000


def garp(mac, ip):
    """A broadcast ARP request whose sender and target address are both `ip`."""
    ip = ipaddress.IPv4Address(ip).packed
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + bytes(6) + ip
    return BROADCAST + mac + struct.pack("!H", ETH_P_ARP) + arp


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def unsolicited_na(mac, ip):
    """A Neighbor Advertisement of `ip` at `mac` to all nodes, from `ip` itself."""
    src = ipaddress.IPv6Address(ip)
    body = struct.pack("!BBHI", 136, 0, 0, NA_OVERRIDE) + src.packed + struct.pack("!BB", 2, 1) + mac
    pseudo = src.packed + ALL_NODES.packed + struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(body), 58, 255) + src.packed + ALL_NODES.packed
    return ALL_NODES_MAC + mac + struct.pack("!H", ETH_P_IPV6) + ip6 + body


def frames(mac, addresses):
    """One announcement per address (strings, IPv4 or IPv6), in the order given."""
    out = []
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        out.append(garp(mac, ip) if ip.version == 4 else unsolicited_na(mac, ip))
    return out
