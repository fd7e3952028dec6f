"""The few netlink (pyroute2), sysctl and ethtool calls agrconfig needs, in one place."""
import errno
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass, field

from ..errors import AgrError
from ..record import Record

# pyroute2 takes ~0.2 s to import (its package imports all of it): the reads below (links,
# addresses) speak rtnetlink directly, and pyroute2 is imported on the first change.
IPRoute = NetlinkError = None

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

_ipr = None
_orphans = []


def ipr():
    """One netlink socket per process, opened on first use (after any fork)."""
    global _ipr, IPRoute, NetlinkError
    if _ipr is None:
        if IPRoute is None:
            from pyroute2.netlink.exceptions import NetlinkError
            from pyroute2 import IPRoute
        _ipr = IPRoute()
    return _ipr


def reset():
    """Forget the inherited socket and event loop (call in a forked child after closing fds)."""
    global _ipr
    # Keep the parent's object alive: finalizing it would close fd numbers that
    # the child has closed already and may have reused for its own sockets.
    _orphans.append(_ipr)
    _ipr = None


@dataclass
class Link:
    index: int
    name: str
    mac: str
    mtu: int
    flags: int
    kind: str
    type: int
    addrlen: int
    carrier: bool
    operstate: str
    stats: dict = field(default_factory=dict)

    @property
    def up(self):
        return bool(self.flags & IFF_UP)


# -- reading: rtnetlink requests and replies, parsed here ----------------------------------

NLMSG = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")
IFADDRMSG = struct.Struct("=BBBBI")
RTATTR = struct.Struct("=HH")
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 16, 17, 18, 20, 21, 22
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_STATS64, IFLA_CARRIER = 1, 3, 4, 16, 18, 23, 33
IFLA_MASTER, IFLA_PROTINFO = 10, 12
IFLA_BRPORT_STATE = 1           # in IFLA_PROTINFO of an AF_BRIDGE link message
# ifinfomsg's family: AF_UNSPEC for the link itself; AF_BRIDGE for its place in a bridge (the
# bridge sends RTM_NEWLINK when it joins or changes, RTM_DELLINK when it leaves: not a deletion).
AF_UNSPEC, AF_BRIDGE = 0, 7
IFLA_INFO_KIND = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_FLAGS = 1, 2, 4, 8
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
# The names pyroute2 gives IFLA_STATS64's counters (the first 23 of struct rtnl_link_stats64).
STATS64 = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped",
           "tx_dropped", "multicast", "collisions", "rx_length_errors", "rx_over_errors", "rx_crc_errors",
           "rx_frame_errors", "rx_fifo_errors", "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors",
           "tx_fifo_errors", "tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed")


def _attrs(data, off, end):
    """{type: payload} of the rtattrs in data[off:end] (nested and byte-order flags dropped)."""
    out = {}
    while off + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, off)
        if length < RTATTR.size:
            break
        out[kind & 0x3FFF] = data[off + RTATTR.size:off + length]
        off += (length + 3) & ~3
    return out


def messages(data):
    """(type, bytes of the message) for each netlink message in one datagram: the framing
    shared by requests (below) and the worker's event socket (worker/linkwatch.py). A header
    too short to be one ends the datagram as NLMSG_DONE would."""
    off = 0
    while off + NLMSG.size <= len(data):
        length, mtype, _f, _seq, _pid = NLMSG.unpack_from(data, off)
        if length < NLMSG.size:
            yield NLMSG_DONE, b""
            return
        yield mtype, data[off:off + length]
        off += (length + 3) & ~3


def _rtnl(kind, body, dump):
    """Send one rtnetlink request; the replies as (type, bytes of the message) until the end."""
    flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else 0)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
        sock.send(NLMSG.pack(NLMSG.size + len(body), kind, flags, 1, 0) + body)
        out = []
        while True:
            for mtype, msg in messages(sock.recv(1 << 20)):
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", msg, NLMSG.size)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return out
                out.append((mtype, msg))
            if not dump:
                return out
    finally:
        sock.close()


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
        raw = name.encode() + b"\0"
        attr = RTATTR.pack(RTATTR.size + len(raw), IFLA_IFNAME) + raw
        body = IFINFOMSG.pack(0, 0, 0, 0, 0) + attr + bytes(-len(attr) % 4)
    try:
        msgs = _rtnl(RTM_GETLINK, body, dump=False)
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT, errno.EINVAL, errno.ERANGE):
            return None
        raise
    return link_from_msg(msgs[0][1]) if msgs else None


def links():
    msgs = _rtnl(RTM_GETLINK, IFINFOMSG.pack(0, 0, 0, 0, 0), dump=True)
    return sorted((link_from_msg(m) for t, m in msgs if t == RTM_NEWLINK), key=lambda l: l.index)


@dataclass
class Address:
    family: int
    address: str
    prefixlen: int
    broadcast: str | None
    flags: int
    scope: int

    @property
    def interface(self):
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
    for t, msg in _rtnl(RTM_GETADDR, IFADDRMSG.pack(0, 0, 0, 0, 0), dump=True):
        if t == RTM_NEWADDR:
            index, addr = address_from_msg(msg)
            out.setdefault(index, []).append(addr)
    return out


def addresses(index):
    return all_addresses().get(index, [])


def _set(ioctl, index, what, **kw):
    try:
        ipr().link("set", index=index, **kw)
    except NetlinkError as exc:
        raise AgrError(exc.code, ioctl, what) from exc


def set_up(index, up=True):
    _set("SIOCSIFFLAGS", index, "set up" if up else "set down", state="up" if up else "down")


def set_mtu(index, mtu):
    _set("SIOCSIFMTU", index, f"mtu {mtu}", mtu=mtu)


def set_mac(index, mac):
    _set("SIOCALIFADDR", index, f"link address {mac}", address=mac)


def set_flag(index, flag, on):
    _set("SIOCSIFFLAGS", index, f"flags {flag:#x}", flags=flag if on else 0, change=flag)


def add_address(index, iface, broadcast=True):
    kw = {}
    if iface.version == 4 and broadcast and iface.network.prefixlen < 31:
        kw["broadcast"] = str(iface.network.broadcast_address)
    try:
        ipr().addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen, **kw)
    except NetlinkError as exc:
        raise AgrError(exc.code, "SIOCAIFADDR", f"{iface}") from exc


def del_address(index, addr):
    try:
        ipr().addr("del", index=index, address=addr.address, prefixlen=addr.prefixlen)
    except NetlinkError as exc:
        raise AgrError(exc.code, "SIOCDIFADDR", f"{addr.address}/{addr.prefixlen}") from exc


def delete_link(index):
    try:
        ipr().link("del", index=index)
    except NetlinkError as exc:
        if exc.code not in (errno.ENODEV, errno.ENOENT):
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
    """(speed in Mbit/s or None, full duplex True/False/None) from ethtool."""
    try:
        from pyroute2.ethtool import Ethtool
        eth = Ethtool()
        try:
            mode = eth.get_link_mode(ifname)
        finally:
            eth.close()
    except Exception:
        return None, None
    speed = mode.speed if isinstance(mode.speed, int) and 0 < mode.speed < 0xFFFFFFFF else None
    duplex = {"Full": True, "Half": False}.get(str(mode.duplex))
    return speed, duplex


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
    """(output ifindex, gateway or None, preferred source) of the kernel's route to `dst`."""
    ipr()
    try:
        msgs = ipr().route("get", dst=dst, **({"src": src} if src else {}))
    except NetlinkError as exc:
        raise AgrError(exc.code, "RTM_GETROUTE", f"no route to {dst}") from exc
    msg = msgs[0]
    return msg.get_attr("RTA_OIF"), msg.get_attr("RTA_GATEWAY"), msg.get_attr("RTA_PREFSRC")


def neighbour(index, addr):
    """The MAC address (str) of `addr` in link `index`'s neighbour table, if usable, else None."""
    family = 10 if ":" in addr else 2
    for msg in ipr().get_neighbours(family=family, ifindex=index):
        if msg.get_attr("NDA_DST") == addr and msg["state"] & NUD_USABLE and msg.get_attr("NDA_LLADDR"):
            return msg.get_attr("NDA_LLADDR")
    return None
