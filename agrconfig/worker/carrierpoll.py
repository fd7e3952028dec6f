"""Carrier loss seen at once, for the modes without LACP (bonding's miimon).

The kernel reports a carrier loss by netlink only when its linkwatch work runs, which for a
link going down is at most once a second for the whole system (measured here: 0.45-0.86 s
after a veth's peer went down while other links changed). netif_carrier_ok itself changes at
once, and ETHTOOL_GLINK reads it. Polling the distributing ports every POLL seconds bounds
failover's outage to that, instead of up to a second.

CarrierPoll is a component of the worker's loop; NoCarrierPoll stands in with LACP, whose
own timers and netlink's word are enough there.
"""
import array
import fcntl
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB
import struct

from .component import Component

POLL = 0.01
SIOCETHTOOL = 0x8946
ETHTOOL_GLINK = 0x0000000A


class CarrierPoll(Component):
    """Every POLL seconds, the carrier of each port `ports()` gives (the distributing ones,
    read as it goes); `on_lost(now, port)` for one whose carrier is gone."""
    running = True

    def __init__(self, ports=tuple, on_lost=None):
        # For SIOCETHTOOL, as ethtool.py's: unix, since the sandboxed unit allows no inet sockets.
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.next = 0.0
        self.ports = ports
        self.on_lost = on_lost

    def deadline(self):
        return self.next

    def on_timer(self, now):
        """A distributing port whose carrier is gone leaves now, not when netlink says so."""
        if not self.due(now):
            return
        for port in self.ports():
            if port.carrier and self.link_ok(port.name) is False:
                self.on_lost(now, port)

    def link_ok(self, name):
        """netif_carrier_ok of `name` now; None if it cannot be asked (then netlink decides)."""
        value = array.array("I", [ETHTOOL_GLINK, 0])
        addr, _n = value.buffer_info()
        ifreq = struct.pack("16sP", name.encode()[:15], addr)
        try:
            fcntl.ioctl(self.sock, SIOCETHTOOL, ifreq)
        except OSError:
            return None
        return bool(value[1])

    def due(self, now):
        if now < self.next:
            return False
        self.next = now + POLL
        return True

    def close(self):
        self.sock.close()


class NoCarrierPoll(Component):
    running = False
