"""ifconfig operations on any interface: addresses, up/down, mtu."""
import errno

from ..errors import AgrError
from ..net import rtnl


def require(name):
    link = rtnl.link(name)
    if link is None:
        raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no such interface")
    return link


def set_up(name, up):
    rtnl.set_up(require(name).index, up)


def set_mtu(name, mtu):
    rtnl.set_mtu(require(name).index, mtu)


def _family_addresses(link, version):
    fam = 2 if version == 4 else 10
    return [a for a in rtnl.addresses(link.index) if a.family == fam]


def add_address(name, iface, alias):
    """inet ADDR: replace the first address of the family (BSD); with alias: add one."""
    link = require(name)
    existing = _family_addresses(link, iface.version)
    if any(a.interface == iface for a in existing):
        return  # already there: applying the same words twice changes nothing
    if not alias and iface.version == 4 and existing:
        rtnl.del_address(link.index, existing[0])
    rtnl.add_address(link.index, iface)
    if not link.up:
        rtnl.set_up(link.index, True)  # BSD brings an interface up with its first address


def delete_address(name, iface, explicit):
    link = require(name)
    for a in _family_addresses(link, iface.version):
        if a.interface.ip == iface.ip and (not explicit or a.prefixlen == iface.network.prefixlen):
            rtnl.del_address(link.index, a)
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
