"""A member port (Member): its saved original state, its AF_PACKET socket, and restoring it."""
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB
import struct

from .. import options
from ..net import rtnl, vlan
from ..errors import AgrError
from ..lacp.pdu import ETH_P_SLOW, SLOW_PROTOCOLS_MAC
from .statefile import PORT_SYSCTLS   # defined there: status reads state files without this module

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_DROP_MEMBERSHIP = 2
PACKET_AUXDATA = 8
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
PACKET_MR_MULTICAST = 0
PACKET_MR_PROMISC = 1
PACKET_MR_ALLMULTI = 2
PACKET_MR_UNICAST = 3
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
SOCKET_BUFFER = 4 << 20


def snapshot(link):
    """What we restore when the port leaves."""
    return {
        "name": link.name,
        "index": link.index,
        "mac": link.mac,
        "mtu": link.mtu,
        "up": link.up,
        "promisc": bool(link.flags & rtnl.IFF_PROMISC),
        "sysctl": {f"{fam}/{key}": rtnl.sysctl_get(fam, link.name, key) for fam, key, _ in PORT_SYSCTLS},
    }


def _mreq(index, kind, mac=b""):
    return struct.pack("iHH8s", index, kind, len(mac), mac)


class Member:
    """A member port of agrN (not the LACP core's per-port variables, lacp/port.py's Port)."""

    def __init__(self, orig):
        # The port's settings (agrportpri) travel in the state file beside its original state.
        self.options = {**options.defaults("port"), **(orig.get("options") or {})}
        orig = {k: v for k, v in orig.items() if k != "options"}
        self.orig = orig
        self.name = orig["name"]
        self.index = orig["index"]
        self.mac = rtnl.mac_bytes(orig["mac"])  # LACPDUs leave from the original MAC
        self.sock = None
        self.carrier = False
        self.alive = True        # agrlinkcheck's verdict (True while no check runs)
        self.memberships = set()
        self.speed = None
        self.duplex_full = None

    @property
    def up(self):
        """Carries traffic as far as the link knows: carrier, and agrlinkcheck's targets heard."""
        return self.carrier and self.alive

    def rename(self, name):
        """Another tool renamed the port: sysctls and restore follow the new name."""
        self.name = name
        self.orig = dict(self.orig, name=name)

    def to_state(self):
        return {**self.orig, "options": dict(self.options)}

    # -- configuring --------------------------------------------------------
    def configure(self, agr_mac, mtu):
        """Make the port a member, with the MAC `agr_mac` (None: as it is). Raises AgrError; the
        caller restores on failure."""
        for fam, key, value in PORT_SYSCTLS:
            rtnl.sysctl_set(fam, self.name, key, value)
        link = rtnl.link(index=self.index)
        up = link.up
        # Down only for a MAC change (some drivers refuse it while up). A port that is
        # already right, as after a worker restart, is not bounced: its partner must
        # not see the carrier drop.
        if agr_mac is not None and link.mac != agr_mac:
            if up:
                rtnl.set_up(self.index, False)
                up = False
            rtnl.set_mac(self.index, agr_mac)
        if link.mtu != mtu:
            rtnl.set_mtu(self.index, mtu)
        if not up:
            rtnl.set_up(self.index, True)
        self.speed, self.duplex_full = rtnl.link_mode(self.name)
        self.carrier = rtnl.link(index=self.index).carrier

    def open_socket(self, slow_only=False):
        """Raw socket on the port: every frame (relay) or Slow Protocols only (fast path)."""
        proto = ETH_P_SLOW if slow_only else ETH_P_ALL
        # Protocol 0 until bind(): a socket made with its protocol is hooked into every
        # interface's receive at once, and bind() then unhooks it and waits for an RCU grace
        # period (synchronize_net, 10-20 ms of every attach here); unhooked, bind waits for none.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            if not slow_only:
                # Room for a burst of 64 KB GSO frames each way: the defaults hold three,
                # and a full queue drops (receive) or refuses (send) the next one.
                for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
                    except OSError:
                        sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            try:
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            except OSError:
                pass  # old kernel: our own frames come back and are dropped by type
            sock.bind((self.name, proto))
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP,
                            _mreq(self.index, PACKET_MR_MULTICAST, SLOW_PROTOCOLS_MAC))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise AgrError.from_oserror(exc, "SIOCSETAGR", f"raw socket on {self.name}") from exc
        self.close_socket()
        self.sock = sock
        self.memberships = set()
        return sock

    def close_socket(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def sync_memberships(self, wanted):
        """Push agrN's multicast list, promiscuous and allmulti modes to the port.

        `wanted` is a set of (kind, mac bytes). Memberships belong to the socket,
        so the kernel drops them when the socket closes: nothing to restore.
        """
        if self.sock is None:
            return
        for kind, mac in wanted - self.memberships:
            self._membership(PACKET_ADD_MEMBERSHIP, kind, mac)
        for kind, mac in self.memberships - wanted:
            self._membership(PACKET_DROP_MEMBERSHIP, kind, mac)
        self.memberships = set(wanted)

    def _membership(self, op, kind, mac):
        try:
            self.sock.setsockopt(SOL_PACKET, op, _mreq(self.index, kind, mac))
        except OSError:
            pass

    # -- restoring ----------------------------------------------------------
    def restore(self):
        """Give the port back as we found it; best effort, every step tried."""
        self.close_socket()
        link = rtnl.link(index=self.index)
        if link is None:
            return  # the port is gone: nothing to give back
        errors = []

        def attempt(fn, *args):
            try:
                fn(*args)
            except AgrError as exc:
                errors.append(exc)

        attempt(rtnl.set_up, self.index, False)
        if link.mac != self.orig["mac"]:
            attempt(rtnl.set_mac, self.index, self.orig["mac"])
        if link.mtu != self.orig["mtu"]:
            attempt(rtnl.set_mtu, self.index, self.orig["mtu"])
        if bool(link.flags & rtnl.IFF_PROMISC) != self.orig["promisc"]:
            attempt(rtnl.set_flag, self.index, rtnl.IFF_PROMISC, self.orig["promisc"])
        # addr_gen_mode before disable_ipv6: re-enabling IPv6 then makes the link-local again.
        for fam, key, _ in sorted(PORT_SYSCTLS, key=lambda s: s[1] == "disable_ipv6"):
            value = self.orig["sysctl"].get(f"{fam}/{key}")
            if value is not None:
                attempt(rtnl.sysctl_set, fam, self.name, key, value)
        errors.extend(AgrError.from_oserror(exc, "RTM_DELLINK", f"{self.name}'s VLAN filter entry")
                      for exc in vlan.release(self.index))
        if self.orig["up"]:
            attempt(rtnl.set_up, self.index, True)
        return errors
