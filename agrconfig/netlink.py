"""The few netlink (pyroute2), sysctl and ethtool calls agrconfig needs, in one place."""
import errno
import ipaddress
from dataclasses import dataclass, field

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .errors import AgrError

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
    global _ipr
    if _ipr is None:
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


def _link_from_msg(msg):
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else ""
    mac = msg.get_attr("IFLA_ADDRESS") or ""
    stats = msg.get_attr("IFLA_STATS64") or {}
    return Link(
        index=msg["index"],
        name=msg.get_attr("IFLA_IFNAME"),
        mac=mac,
        mtu=msg.get_attr("IFLA_MTU") or 0,
        flags=msg["flags"],
        kind=kind or "",
        type=msg["ifi_type"],
        addrlen=len(mac.split(":")) if mac else 0,
        carrier=bool(msg.get_attr("IFLA_CARRIER")),
        operstate=msg.get_attr("IFLA_OPERSTATE") or "",
        stats=dict(stats) if stats else {},
    )


def link(name=None, index=None):
    """The link by name or index, or None."""
    try:
        if index is not None:
            msgs = ipr().link("get", index=index)
        else:
            msgs = ipr().link("get", ifname=name)
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT, errno.EINVAL):
            return None
        raise
    return _link_from_msg(msgs[0]) if msgs else None


def links():
    return sorted((_link_from_msg(m) for m in ipr().get_links()), key=lambda l: l.index)


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


def addresses(index):
    out = []
    for msg in ipr().get_addr(index=index):
        addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        out.append(Address(msg["family"], addr, msg["prefixlen"], msg.get_attr("IFA_BROADCAST"),
                           msg.get_attr("IFA_FLAGS") or msg["flags"], msg["scope"]))
    return out


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


