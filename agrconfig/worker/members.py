"""Port membership: which links may join agrN, attaching and detaching them, and undoing what
other tools change on a member (MAC, MTU, addresses)."""
import errno

from ..errors import AgrError
from ..net import rtnl
from ..paths import is_agr_name
from . import datapath, statefile
from .port import PACKET_MR_ALLMULTI, PACKET_MR_MULTICAST, PACKET_MR_PROMISC, Member
from .tap import VNET_HDR_LEN
from ..logger import log

ZERO_VNET = bytes(VNET_HDR_LEN)



class Members:
    """agrN's ports, in order of addition."""

    def __init__(self, name, tap_index):
        self.name = name            # agrN
        self.tap_index = tap_index
        self.ports = []

    def __iter__(self):
        return iter(list(self.ports))

    def __len__(self):
        return len(self.ports)

    def find(self, index):
        for p in self.ports:
            if p.index == index:
                return p
        return None

    def by_name(self, name):
        return next((p for p in self.ports if p.name == name), None)

    def name_of(self, index):
        p = self.find(index)
        return p.name if p else str(index)

    def add(self, port):
        self.ports.append(port)

    def remove(self, port):
        self.ports.remove(port)

    def send(self, index, frame):
        """A frame of ours (LACPDU, Marker, announcement) out of port `index`, if it is there."""
        port = self.find(index)
        if port and port.sock:
            try:
                port.sock.send(ZERO_VNET + frame)
            except OSError as exc:
                log.debug("%s: send on %s: %s", self.name, port.name, exc)

    # -- joining ----------------------------------------------------------------------------
    def check_new(self, name):
        """The link `name` if it may become a port, else the AgrError NetBSD gives."""
        link = rtnl.link(name)
        if link is None:
            raise AgrError(errno.ENOENT, "SIOCSETAGR", f"no such interface: {name}")
        if link.index == self.tap_index or (is_agr_name(name) and statefile.load(name)):
            raise AgrError(errno.EINVAL, "SIOCSETAGR", f"{name} is an agr interface")
        if self.find(link.index):
            raise AgrError(errno.EBUSY, "SIOCSETAGR", f"{name} is already a port of {self.name}")
        owner = statefile.owner_of(name)
        if owner and owner != self.name:
            raise AgrError(errno.EBUSY, "SIOCSETAGR", f"{name} is already a port of {owner}")
        ether = link.type == rtnl.ARPHRD_ETHER and link.addrlen == 6
        if not ether:
            code = errno.EPROTONOSUPPORT if not self.ports else errno.EINVAL
            raise AgrError(code, "SIOCSETAGR", f"{name} is not an Ethernet interface")
        addrs = rtnl.addresses(link.index)
        if addrs:
            listed = ", ".join(f"{a.address}/{a.prefixlen}" for a in addrs)
            raise AgrError(errno.EBUSY, "SIOCSETAGR", f"{name} has addresses ({listed}); delete them first")
        return link

    def check_leaving(self, name):
        """The port `name`, or the AgrError for a link that is not one of ours."""
        port = self.by_name(name)
        if port is None:
            owner = statefile.owner_of(name)
            if owner and owner != self.name:
                raise AgrError(errno.EINVAL, "SIOCSETAGR", f"{name} is a port of {owner}, not {self.name}")
            raise AgrError(errno.ENOENT, "SIOCSETAGR", f"{name} is not a port of {self.name}")
        return port

    def attach(self, port, mac, slow_only):
        """Give the port agrN's MAC and MTU and open its socket."""
        port.configure(mac, rtnl.link(index=self.tap_index).mtu)
        port.open_socket(slow_only=slow_only)
        self.sync_memberships(port)

    def resume(self, orig, mac):
        """Take back a port a dead worker had (from the state file); False if it cannot be.
        `mac`: agrN's, for the port to carry; None leaves the port's as it is."""
        link = rtnl.link(index=orig["index"])
        if link is None or link.name != orig["name"]:
            log.warning("%s: port %s is gone; dropped", self.name, orig["name"])
            if link is not None:
                datapath.remove_leftovers(self.name, [link.index])
            return False
        port = Member(orig)
        try:
            port.configure(mac, rtnl.link(index=self.tap_index).mtu)
            port.open_socket()  # the relay's, until the data path is chosen
        except AgrError as exc:
            log.error("%s: cannot resume port %s: %s", self.name, port.name, exc)
            port.restore()
            datapath.remove_leftovers(self.name, [port.index])
            return False
        self.ports.append(port)
        return True

    # -- leaving ----------------------------------------------------------------------------
    def release(self, port, restore):
        """Give the port back its saved state (restore) or only let go of its socket (it is gone)."""
        if restore:
            for exc in port.restore() or ():
                log.warning("%s: restoring %s: %s", self.name, port.name, exc)
        else:
            port.close_socket()

    def reopen_sockets(self, slow_only):
        """New sockets on every port, for another data path (slow_only: the fast path's)."""
        for p in self.ports:
            p.open_socket(slow_only=slow_only)
            self.sync_memberships(p)

    def restore_all(self):
        for port in list(reversed(self.ports)):
            for exc in port.restore() or ():
                log.warning("%s: restoring %s: %s", self.name, port.name, exc)
        self.ports.clear()

    # -- keeping them members ---------------------------------------------------------------
    def set_mtu(self, mtu):
        """agrN's MTU on every port and on agrN, or nowhere."""
        done = []
        old = rtnl.link(index=self.tap_index).mtu
        try:
            for p in self.ports:
                rtnl.set_mtu(p.index, mtu)
                done.append(p)
            rtnl.set_mtu(self.tap_index, mtu)
        except AgrError:
            for p in done:
                try:
                    rtnl.set_mtu(p.index, old)
                except AgrError:
                    pass
            raise

    def sync_memberships(self, only=None):
        """Push agrN's multicast list and promiscuous/allmulti modes to the ports."""
        tap = rtnl.link(index=self.tap_index)
        if tap is None:
            return
        wanted = {(PACKET_MR_MULTICAST, mac) for mac in rtnl.mcast_addresses(self.name)}
        if tap.flags & rtnl.IFF_PROMISC:
            wanted.add((PACKET_MR_PROMISC, b""))
        if tap.flags & rtnl.IFF_ALLMULTI:
            wanted.add((PACKET_MR_ALLMULTI, b""))
        for p in [only] if only else self.ports:
            p.sync_memberships(wanted)

    def revert_changes(self, port, link, tap, addrs, mac):
        """Another tool changed a member: put back what membership needs, and say so.
        `tap` is agrN's link (None if it is gone), `addrs` the port's addresses, `mac` the one
        the port carries (agrN's, or its own: agrmacpolicy)."""
        try:
            if tap is not None and link.mac != mac:
                log.warning("%s: %s's MAC was changed to %s; set back to %s", self.name, port.name, link.mac, mac)
                rtnl.set_mac(port.index, mac)
            if tap is not None and link.mtu != tap.mtu:
                log.warning("%s: %s's MTU was changed to %d; set back to %d", self.name, port.name, link.mtu, tap.mtu)
                rtnl.set_mtu(port.index, tap.mtu)
            for addr in addrs:
                # A member's own stack must stay out of the way (see PORT_SYSCTLS).
                log.warning("%s: address %s/%d added to port %s; removed (put it on %s)", self.name,
                            addr.address, addr.prefixlen, port.name, self.name)
                rtnl.del_address(port.index, addr)
        except AgrError as exc:
            log.error("%s: cannot set port %s back: %s", self.name, port.name, exc)
