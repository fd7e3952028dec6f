"""The rtnetlink, sysctl and ethtool calls agrconfig needs, in one place: links, addresses,
routes and neighbours read and changed through our own netlink code (netlink.py), for the
front end and the worker alike (pyroute2's import alone costs ~0.2 s and ~20 MiB)."""
import errno
import _socket as socket   # socket.py would cost every command ~3 ms (its IntEnum conversions)
import struct

from ..errors import AgrError
from ..record import Record
from . import netlink
from .netlink import NLMSG, NetlinkError, messages  # noqa: F401 (messages: the link watch's framing)

IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_DEBUG = 0x4
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_ALLMULTI = 0x200
IFF_MULTICAST = 0x1000
IFF_LOWER_UP = 0x10000

ARPHRD_ETHER = 1

def reset():
    """Nothing to forget in a forked child: every request opens a socket of its own."""


class Link(Record):
    """index, name, mac, mtu, flags, kind, type, addrlen, carrier, operstate, stats (IFLA_STATS64
    by name), master (IFLA_MASTER: the bridge, bond or team this link is a port of; 0: none)."""
    __slots__ = ("index", "name", "mac", "mtu", "flags", "kind", "type", "addrlen", "carrier", "operstate",
                 "stats", "master")
    DEFAULTS = {"master": 0}

    def __init__(self, *args, **kwargs):
        if len(args) < 11 and "stats" not in kwargs:
            kwargs["stats"] = {}   # a dict of its own, as dataclasses' default_factory
        super().__init__(*args, **kwargs)

    @property
    def up(self):
        return bool(self.flags & IFF_UP)


# -- reading: rtnetlink requests and replies, parsed here ----------------------------------

IFINFOMSG = struct.Struct("=BxHiII")       # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")        # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")        # family, dst_len, src_len, tos, table, protocol, scope, type, flags
NDMSG = struct.Struct("=BxxxiHBB")         # family, index, state, flags, type
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 16, 17, 18, 20, 21, 22
RTM_GETROUTE, RTM_GETNEIGH = 26, 30
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_STATS64, IFLA_CARRIER = 1, 3, 4, 16, 18, 23, 33
IFLA_MASTER, IFLA_PROTINFO = 10, 12
IFLA_BRPORT_STATE = 1           # in IFLA_PROTINFO of an AF_BRIDGE link message
# ifinfomsg's family: AF_UNSPEC for the link itself; AF_BRIDGE for its place in a bridge (the
# bridge sends RTM_NEWLINK when it joins or changes, RTM_DELLINK when it leaves: not a deletion).
AF_UNSPEC, AF_BRIDGE = 0, 7
IFLA_INFO_KIND = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_FLAGS = 1, 2, 4, 8
RTA_DST, RTA_SRC, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC = 1, 2, 4, 5, 7
NDA_DST, NDA_LLADDR = 1, 2
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
# The names pyroute2 gives IFLA_STATS64's counters (the first 23 of struct rtnl_link_stats64).
STATS64 = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped",
           "tx_dropped", "multicast", "collisions", "rx_length_errors", "rx_over_errors", "rx_crc_errors",
           "rx_frame_errors", "rx_fifo_errors", "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors",
           "tx_fifo_errors", "tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed")


_attrs = netlink.attrs


def link_family(msg):
    """The family of an RTM_NEWLINK/RTM_DELLINK message (AF_UNSPEC, AF_BRIDGE, ...)."""
    return msg[NLMSG.size]


def link_from_msg(msg):
    """The Link in an RTM_NEWLINK/RTM_DELLINK message of family AF_UNSPEC (a dump's reply or an
    event). Other families describe something else (see bridge_port_from_msg): ValueError."""
    fam, ltype, index, flags, _change = IFINFOMSG.unpack_from(msg, NLMSG.size)
    if fam != AF_UNSPEC:
        raise ValueError(f"a link message of family {fam} describes no link")
    at = _attrs(msg, NLMSG.size + IFINFOMSG.size, len(msg))
    raw_mac = at.get(IFLA_ADDRESS)
    mac = mac_str(raw_mac) if raw_mac else ""
    kind = ""
    if IFLA_LINKINFO in at:
        info = at[IFLA_LINKINFO]
        kind = _attrs(info, 0, len(info)).get(IFLA_INFO_KIND, b"").split(b"\0", 1)[0].decode()
    stats = {}
    if len(at.get(IFLA_STATS64, b"")) >= 8 * len(STATS64):
        stats = dict(zip(STATS64, struct.unpack_from(f"={len(STATS64)}Q", at[IFLA_STATS64])))
    oper = at.get(IFLA_OPERSTATE)
    return Link(
        index=index,
        name=at.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace"),
        mac=mac,
        mtu=struct.unpack("=I", at[IFLA_MTU])[0] if len(at.get(IFLA_MTU, b"")) == 4 else 0,
        flags=flags,
        kind=kind,
        type=ltype,
        addrlen=len(raw_mac) if raw_mac else 0,
        carrier=bool(at.get(IFLA_CARRIER, b"\0")[0]),
        operstate=OPERSTATES[oper[0]] if oper and oper[0] < len(OPERSTATES) else "",
        stats=stats,
        master=struct.unpack("=I", at[IFLA_MASTER])[0] if len(at.get(IFLA_MASTER, b"")) == 4 else 0,
    )


class BridgePort(Record):
    """A link's place in a bridge, from a link message of family AF_BRIDGE: `master` is the
    bridge's ifindex (0 if the message names none), `state` the port's STP state (BR_STATE_*,
    None if not given). It carries no carrier: the link's own messages do."""
    __slots__ = ("index", "name", "master", "state")


def bridge_port_from_msg(msg):
    fam, _ltype, index, _flags, _change = IFINFOMSG.unpack_from(msg, NLMSG.size)
    if fam != AF_BRIDGE:
        raise ValueError(f"a link message of family {fam} is not a bridge's")
    at = _attrs(msg, NLMSG.size + IFINFOMSG.size, len(msg))
    master = at.get(IFLA_MASTER, b"")
    info = at.get(IFLA_PROTINFO, b"")
    state = _attrs(info, 0, len(info)).get(IFLA_BRPORT_STATE, b"")
    return BridgePort(index=index, name=at.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace"),
                      master=struct.unpack("=I", master)[0] if len(master) == 4 else 0,
                      state=state[0] if state else None)


def link(name=None, index=None):
    """The link by name or index, or None."""
    if index is not None:
        body = IFINFOMSG.pack(0, 0, index, 0, 0)
    else:
        body = IFINFOMSG.pack(0, 0, 0, 0, 0) + netlink.string(IFLA_IFNAME, name)
    try:
        msgs = netlink.request(RTM_GETLINK, body)
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT, errno.EINVAL, errno.ERANGE):
            return None
        raise
    return link_from_msg(msgs[0][1]) if msgs else None


def links():
    msgs = netlink.request(RTM_GETLINK, IFINFOMSG.pack(0, 0, 0, 0, 0), dump=True)
    return sorted((link_from_msg(m) for t, m in msgs if t == RTM_NEWLINK and link_family(m) == AF_UNSPEC),
                  key=lambda l: l.index)


class Address(Record):
    """family, address, prefixlen, broadcast (or None), flags, scope."""
    __slots__ = ("family", "address", "prefixlen", "broadcast", "flags", "scope")

    @property
    def interface(self):
        import ipaddress   # what changes addresses needs, not every status
        return ipaddress.ip_interface(f"{self.address}/{self.prefixlen}")


def address_from_msg(msg):
    """(ifindex, Address) of an RTM_NEWADDR/RTM_DELADDR message (a dump's reply or an event)."""
    family, prefixlen, flags, scope, index = IFADDRMSG.unpack_from(msg, NLMSG.size)
    at = _attrs(msg, NLMSG.size + IFADDRMSG.size, len(msg))
    addr = at.get(IFA_LOCAL) or at.get(IFA_ADDRESS)
    bcast = at.get(IFA_BROADCAST)
    if len(at.get(IFA_FLAGS, b"")) == 4:
        flags = struct.unpack("=I", at[IFA_FLAGS])[0] or flags
    return index, Address(family, socket.inet_ntop(family, addr) if addr else None, prefixlen,
                          socket.inet_ntop(family, bcast) if bcast else None, flags, scope)


def all_addresses():
    """{ifindex: [Address]} for every interface, from one dump."""
    out = {}
    for t, msg in netlink.request(RTM_GETADDR, IFADDRMSG.pack(0, 0, 0, 0, 0), dump=True):
        if t == RTM_NEWADDR:
            index, addr = address_from_msg(msg)
            out.setdefault(index, []).append(addr)
    return out


def addresses(index):
    return all_addresses().get(index, [])


def _set_link(ioctl, index, what, flags=0, change=0, attrs=b""):
    """Change link `index` (RTM_NEWLINK on an existing link, as `ip link set`)."""
    try:
        netlink.request(RTM_NEWLINK, IFINFOMSG.pack(AF_UNSPEC, 0, index, flags, change) + attrs)
    except NetlinkError as exc:
        raise AgrError(exc.errno, ioctl, what) from exc


def set_up(index, up=True):
    _set_link("SIOCSIFFLAGS", index, "set up" if up else "set down", IFF_UP if up else 0, IFF_UP)


def set_mtu(index, mtu):
    _set_link("SIOCSIFMTU", index, f"mtu {mtu}", attrs=netlink.u32(IFLA_MTU, mtu))


def set_mac(index, mac):
    _set_link("SIOCALIFADDR", index, f"link address {mac}", attrs=netlink.attr(IFLA_ADDRESS, mac_bytes(mac)))


def set_flag(index, flag, on):
    _set_link("SIOCSIFFLAGS", index, f"flags {flag:#x}", flag if on else 0, flag)


def _address_body(index, family, address, prefixlen, broadcast=None):
    raw = socket.inet_pton(family, address)
    body = IFADDRMSG.pack(family, prefixlen, 0, 0, index)
    if family == socket.AF_INET:        # IFA_LOCAL is the address; IFA_ADDRESS the peer, the same here
        body += netlink.attr(IFA_LOCAL, raw)
    body += netlink.attr(IFA_ADDRESS, raw)
    if broadcast:
        body += netlink.attr(IFA_BROADCAST, socket.inet_pton(family, broadcast))
    return body


def add_address(index, iface, broadcast=True):
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    bcast = None
    if iface.version == 4 and broadcast and iface.network.prefixlen < 31:
        bcast = str(iface.network.broadcast_address)
    body = _address_body(index, family, str(iface.ip), iface.network.prefixlen, bcast)
    try:
        netlink.request(RTM_NEWADDR, body, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL)
    except NetlinkError as exc:
        raise AgrError(exc.errno, "SIOCAIFADDR", f"{iface}") from exc


def del_address(index, addr):
    try:
        netlink.request(RTM_DELADDR, _address_body(index, addr.family, addr.address, addr.prefixlen))
    except NetlinkError as exc:
        raise AgrError(exc.errno, "SIOCDIFADDR", f"{addr.address}/{addr.prefixlen}") from exc


def delete_link(index):
    try:
        netlink.request(RTM_DELLINK, IFINFOMSG.pack(AF_UNSPEC, 0, index, 0, 0))
    except NetlinkError as exc:
        if exc.errno not in (errno.ENODEV, errno.ENOENT):
            raise


# -- sysctls (per network namespace: /proc/sys/net follows the reading process) --

def sysctl_path(family, ifname, key):
    return f"/proc/sys/net/{family}/conf/{ifname}/{key}"


def sysctl_get(family, ifname, key):
    try:
        with open(sysctl_path(family, ifname, key)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def sysctl_set(family, ifname, key, value):
    path = sysctl_path(family, ifname, key)
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except FileNotFoundError:
        pass  # no IPv6 (or IPv4) in this kernel: nothing to keep the port from
    except OSError as exc:
        raise AgrError.from_oserror(exc, "sysctl", path) from exc


def link_mode(ifname):
    """(speed in Mbit/s or None, full duplex True/False/None): ethtool.py's, as a pair."""
    from . import ethtool
    mode = ethtool.link_mode(ifname)
    return mode.speed, mode.duplex_full


def mcast_addresses(ifname):
    """Link-layer multicast memberships of an interface (from /proc/net/dev_mcast)."""
    out = []
    try:
        with open("/proc/net/dev_mcast") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[1] == ifname:
                    out.append(bytes.fromhex(parts[4]))
    except FileNotFoundError:
        pass
    return out


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def mac_str(raw):
    return ":".join(f"{b:02x}" for b in raw)




# -- routes and neighbours (whichport) ----------------------------------------------------------
NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80   # reachable, stale, delay, probe, noarp, permanent


def route_to(dst, src=None):
    """(output ifindex, gateway or None, preferred source or None) of the kernel's route to `dst`."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    bits = 128 if family == socket.AF_INET6 else 32
    body = RTMSG.pack(family, bits, bits if src else 0, 0, 0, 0, 0, 0, 0)
    body += netlink.attr(RTA_DST, socket.inet_pton(family, dst))
    if src:
        body += netlink.attr(RTA_SRC, socket.inet_pton(family, src))
    try:
        msgs = netlink.request(RTM_GETROUTE, body)
    except NetlinkError as exc:
        raise AgrError(exc.errno, "RTM_GETROUTE", f"no route to {dst}") from exc
    at = _attrs(msgs[0][1], NLMSG.size + RTMSG.size)
    gateway, prefsrc = at.get(RTA_GATEWAY), at.get(RTA_PREFSRC)
    return (netlink.get_u32(at, RTA_OIF), socket.inet_ntop(family, gateway) if gateway else None,
            socket.inet_ntop(family, prefsrc) if prefsrc else None)


def neighbour(index, addr):
    """The MAC address (str) of `addr` in link `index`'s neighbour table, if usable, else None."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    want = socket.inet_pton(family, addr)
    for _t, msg in netlink.request(RTM_GETNEIGH, NDMSG.pack(family, 0, 0, 0, 0), dump=True):
        fam, ifindex, state, _flags, _type = NDMSG.unpack_from(msg, NLMSG.size)
        at = _attrs(msg, NLMSG.size + NDMSG.size)
        if fam == family and ifindex == index and at.get(NDA_DST) == want and state & NUD_USABLE \
                and at.get(NDA_LLADDR):
            return mac_str(at[NDA_LLADDR])
    return None


# -- a bridge's forwarding database (agrannounce's learning frames) ------------------------------
NDA_MASTER, NDA_VLAN = 9, 5
NTF_SELF, NTF_MASTER = 0x02, 0x04


class FdbEntry(Record):
    """An entry of a bridge's forwarding database: `mac` (str) learned (or configured) on port
    `port` (an ifindex; the bridge's own index for its own addresses), in VLAN `vlan` (None:
    untagged); `state` the NUD_* bits (NUD_PERMANENT 0x80: the bridge's own address)."""
    __slots__ = ("mac", "vlan", "port", "state")


def fdb_from_msg(msg, bridge):
    """The FdbEntry of an RTM_NEWNEIGH message of family AF_BRIDGE if it is bridge `bridge`'s
    (not a port device's own address list: those carry NTF_SELF and no master), else None."""
    fam, index, state, flags, _type = NDMSG.unpack_from(msg, NLMSG.size)
    at = _attrs(msg, NLMSG.size + NDMSG.size)
    mac = at.get(NDA_LLADDR)
    if fam != AF_BRIDGE or not mac or len(mac) != 6:
        return None
    master = netlink.get_u32(at, NDA_MASTER) if len(at.get(NDA_MASTER, b"")) == 4 else None
    if not (master == bridge or (index == bridge and not flags & NTF_SELF)):
        return None
    vlan = at.get(NDA_VLAN)
    return FdbEntry(mac=mac_str(mac), vlan=struct.unpack("=H", vlan)[0] if len(vlan or b"") == 2 else None,
                    port=index, state=state)


def bridge_fdb(bridge):
    """Bridge `bridge`'s forwarding database (RTM_GETNEIGH dump of family AF_BRIDGE)."""
    msgs = netlink.request(RTM_GETNEIGH, NDMSG.pack(AF_BRIDGE, 0, 0, 0, 0), dump=True)
    return [e for e in (fdb_from_msg(m, bridge) for _t, m in msgs) if e is not None]


def master(index):
    """The ifindex of link `index`'s master (a bridge), or None."""
    try:
        msgs = netlink.request(RTM_GETLINK, IFINFOMSG.pack(0, 0, index, 0, 0))
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT, errno.EINVAL):
            return None
        raise
    if not msgs:
        return None
    at = _attrs(msgs[0][1], NLMSG.size + IFINFOMSG.size)
    return netlink.get_u32(at, IFLA_MASTER) or None
