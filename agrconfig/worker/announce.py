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


# -- learning frames for the MACs behind agrN (Open vSwitch's compose_rarp) ----------------------
ETH_P_RARP, ETH_P_8021Q = 0x8035, 0x8100
RARP_REQUEST_REVERSE = 3
ETH_ZLEN = 60   # the shortest Ethernet frame without its FCS


def rarp(mac, vlan=None):
    """A broadcast RARP request reverse from `mac` (sender and target hardware address `mac`,
    no protocol addresses), as Open vSwitch sends for each MAC a bond moves: every switch on
    the way learns `mac` on the port it came from. `vlan`: the 802.1Q tag's VLAN ID, or None."""
    tag = b"" if vlan is None else struct.pack("!HH", ETH_P_8021Q, vlan & 0xFFF)
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, RARP_REQUEST_REVERSE) + mac + bytes(4) + mac + bytes(4)
    frame = BROADCAST + mac + tag + struct.pack("!H", ETH_P_RARP) + body
    return frame + bytes(max(0, ETH_ZLEN + len(tag) - len(frame)))


# -- multicast memberships reported again (bonding's resend_igmp) --------------------------------
IGMP_ALL_HOSTS = ipaddress.IPv4Address("224.0.0.1")
IGMPV3_ROUTERS = ipaddress.IPv4Address("224.0.0.22")
MLDV2_ROUTERS = ipaddress.IPv6Address("ff02::16")
CHANGE_TO_EXCLUDE = 4   # a record type of IGMPv3 (RFC 3376 §4.2.12) and MLDv2 (RFC 3810 §5.2.12)
IGMPV3_REPORT, MLDV2_REPORT = 0x22, 143
IP_ROUTER_ALERT = b"\x94\x04\x00\x00"   # RFC 2113: IPv4 option 148, length 4, value 0


def multicast_mac(group):
    """The Ethernet address of an IPv4 (01:00:5e + 23 bits) or IPv6 (33:33 + 32 bits) group."""
    group = ipaddress.ip_address(group)
    if group.version == 4:
        return b"\x01\x00\x5e" + bytes([group.packed[1] & 0x7F]) + group.packed[2:]
    return b"\x33\x33" + group.packed[12:]


def reported_v4(group):
    """The kernel never reports the all-hosts group (RFC 3376 §5)."""
    return ipaddress.IPv4Address(group) != IGMP_ALL_HOSTS


def reported_v6(group):
    """Nor MLD the all-nodes group, nor groups of interface-local or reserved scope (RFC 3810 §6)."""
    group = ipaddress.IPv6Address(group)
    return group != ALL_NODES and (group.packed[1] & 0x0F) > 1


def igmpv3_report(mac, source, groups):
    """One IGMPv3 Membership Report (RFC 3376 §4.2) to 224.0.0.22 from `source` (agrN's IPv4
    address, or 0.0.0.0), a CHANGE_TO_EXCLUDE record with no sources (a join) per group; None
    when no group is to be reported."""
    groups = [ipaddress.IPv4Address(g) for g in groups if reported_v4(g)]
    if not groups:
        return None
    records = b"".join(struct.pack("!BBH", CHANGE_TO_EXCLUDE, 0, 0) + g.packed for g in groups)
    igmp = struct.pack("!BBHHH", IGMPV3_REPORT, 0, 0, 0, len(groups)) + records
    igmp = igmp[:2] + struct.pack("!H", checksum(igmp)) + igmp[4:]
    src = ipaddress.IPv4Address(source).packed
    header = struct.pack("!BBHHHBBH", 0x46, 0xC0, 24 + len(igmp), 0, 0x4000, 1, 2, 0) + src \
        + IGMPV3_ROUTERS.packed + IP_ROUTER_ALERT
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return multicast_mac(IGMPV3_ROUTERS) + mac + struct.pack("!H", 0x0800) + header + igmp


def mldv2_report(mac, source, groups):
    """One MLDv2 Report (RFC 3810 §5.2) to ff02::16 from `source` (agrN's link-local address,
    or ::), hop limit 1 behind a Hop-by-Hop Router Alert (RFC 2711, MLD), a CHANGE_TO_EXCLUDE
    record per group; None when no group is to be reported."""
    groups = [ipaddress.IPv6Address(g) for g in groups if reported_v6(g)]
    if not groups:
        return None
    src = ipaddress.IPv6Address(source)
    records = b"".join(struct.pack("!BBH", CHANGE_TO_EXCLUDE, 0, 0) + g.packed for g in groups)
    icmp = struct.pack("!BBHHH", MLDV2_REPORT, 0, 0, 0, len(groups)) + records
    pseudo = src.packed + MLDV2_ROUTERS.packed + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", checksum(pseudo + icmp)) + icmp[4:]
    hop_by_hop = bytes([58, 0]) + b"\x05\x02\x00\x00" + b"\x01\x00"   # Router Alert (MLD), PadN
    ip6 = struct.pack("!IHBB", 6 << 28, len(hop_by_hop) + len(icmp), 0, 1) + src.packed + MLDV2_ROUTERS.packed
    return multicast_mac(MLDV2_ROUTERS) + mac + struct.pack("!H", ETH_P_IPV6) + ip6 + hop_by_hop + icmp


def igmp_groups(text, ifname):
    """The IPv4 groups of `ifname` in /proc/net/igmp's text (a group is printed as the
    host-order integer of its network-order address)."""
    groups, current = [], None
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        if not line[0].isspace():   # "Idx\tDevice    : Count Querier": a device
            fields = line.split()
            current = fields[1].rstrip(":") if len(fields) > 1 else None
        elif current == ifname:
            word = line.split()[0]
            groups.append(str(ipaddress.IPv4Address(struct.pack("=I", int(word, 16)))))
    return groups


def igmp6_groups(text, ifindex):
    """The IPv6 groups of interface `ifindex` in /proc/net/igmp6's text."""
    groups = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == str(ifindex) and len(fields[2]) == 32:
            groups.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[2]))))
    return groups
