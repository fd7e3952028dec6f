"""ifconfig operations on any interface: addresses, up/down, mtu."""
import errno
import ipaddress

from . import netlink
from .errors import AgrError
from .words import is_number


def classful_prefix(addr):
    """BSD's default netmask when none is given: by the address's historic class."""
    first = int(addr) >> 24
    if first < 128:
        return 8
    if first < 192:
        return 16
    return 24


def parse_netmask(text):
    """'255.255.255.0', '0xffffff00' or '24' -> prefix length."""
    try:
        if text.lower().startswith("0x"):
            mask = ipaddress.IPv4Address(int(text, 16))
        elif is_number(text, 3):
            return int(ipaddress.ip_network(f"0.0.0.0/{int(text)}").prefixlen)
        else:
            mask = ipaddress.IPv4Address(text)
        return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    except ValueError as exc:
        raise ValueError(f"bad netmask {text!r}") from exc


def parse_address(family, text, prefix=None):
    """ADDR[/LEN] (an IPv6 scope '%if' is accepted and dropped) -> (ip_interface, explicit)."""
    addr, _, length = text.partition("/")
    addr = addr.split("%", 1)[0]
    ip = ipaddress.ip_address(addr)
    want = 4 if family == "inet" else 6
    if ip.version != want:
        raise ValueError(f"{text!r} is not an {family} address")
    if length:
        if not is_number(length, 3):
            raise ValueError(f"bad prefix length in {text!r}")
        prefix = int(length)
    explicit = prefix is not None
    if prefix is None:
        prefix = classful_prefix(ip) if want == 4 else 64
    if not 0 <= prefix <= (32 if want == 4 else 128):
        raise ValueError(f"bad prefix length {prefix}")
    return ipaddress.ip_interface(f"{ip}/{prefix}"), explicit


def require(name):
    link = netlink.link(name)
    if link is None:
        raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no such interface")
    return link


def set_up(name, up):
    netlink.set_up(require(name).index, up)


def set_mtu(name, mtu):
    netlink.set_mtu(require(name).index, mtu)


def _family_addresses(link, version):
    fam = 2 if version == 4 else 10
    return [a for a in netlink.addresses(link.index) if a.family == fam]


def add_address(name, iface, alias):
    """inet ADDR: replace the first address of the family (BSD); with alias: add one."""
    link = require(name)
    existing = _family_addresses(link, iface.version)
    if any(a.interface == iface for a in existing):
        return  # already there: applying the same words twice changes nothing
    if not alias and iface.version == 4 and existing:
        netlink.del_address(link.index, existing[0])
    netlink.add_address(link.index, iface)
    if not link.up:
        netlink.set_up(link.index, True)  # BSD brings an interface up with its first address


def delete_address(name, iface, explicit):
    link = require(name)
    for a in _family_addresses(link, iface.version):
        if a.interface.ip == iface.ip and (not explicit or a.prefixlen == iface.network.prefixlen):
            netlink.del_address(link.index, a)
            return
    ioctl = "SIOCDIFADDR" if iface.version == 4 else "SIOCDIFADDR_IN6"
    raise AgrError(errno.EADDRNOTAVAIL, ioctl, f"{iface.ip} is not an address of {name}")


def apply_address(name, arg):
    """An address word: (action, interface, explicit) from the grammar."""
    action, iface, explicit = arg
    if action == "delete":
        delete_address(name, iface, explicit)
    else:
        # inet replaces the first IPv4 address, as BSD does; inet6 always adds.
        add_address(name, iface, alias=action == "alias" or iface.version == 6)
