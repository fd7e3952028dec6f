"""Link watching: rtnetlink's link and address multicast groups as typed events.

The messages are parsed by net/rtnl.py, the parser the command line's reads use too. A link
message's family says what it is about: AF_UNSPEC, the link itself (LinkChanged, LinkGone);
AF_BRIDGE, its place in a bridge (BridgePortChanged, BridgePortRemoved). A link leaving a
bridge (nomaster, the bridge deleted) gets an RTM_DELLINK of family AF_BRIDGE: the link stays.
LinkWatch is a component of the worker's loop: it hands each batch of events to its handler.
"""
import errno
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB
import struct

from ..net import rtnl
from ..record import Record
from .component import READ, Component

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100


class LinkChanged(Record):
    """A link appeared or changed (name, MAC, MTU, flags, carrier...)."""
    __slots__ = ("index", "link")


class LinkGone(Record):
    __slots__ = ("index", "link")


class BridgePortChanged(Record):
    """A link joined a bridge, or its port state there changed."""
    __slots__ = ("index", "port")


class BridgePortRemoved(Record):
    """A link left a bridge (nomaster, moved on, or the bridge deleted): it is still there."""
    __slots__ = ("index", "port")


class AddressAdded(Record):
    __slots__ = ("index", "address")


class AddressRemoved(Record):
    __slots__ = ("index", "address")


class EventsLost(Record):
    """The socket overflowed (or a message made no sense): look at everything again."""
    __slots__ = ("index",)
    DEFAULTS = {"index": None}


_LINK_PARSERS = {    # (message type, family): its event; link messages of other families are not read
    (rtnl.RTM_NEWLINK, rtnl.AF_UNSPEC): lambda msg: LinkChanged(*_link(msg)),
    (rtnl.RTM_DELLINK, rtnl.AF_UNSPEC): lambda msg: LinkGone(*_link(msg)),
    (rtnl.RTM_NEWLINK, rtnl.AF_BRIDGE): lambda msg: BridgePortChanged(*_bridge_port(msg)),
    (rtnl.RTM_DELLINK, rtnl.AF_BRIDGE): lambda msg: BridgePortRemoved(*_bridge_port(msg)),
}
_ADDRESS_PARSERS = {
    rtnl.RTM_NEWADDR: lambda msg: AddressAdded(*rtnl.address_from_msg(msg)),
    rtnl.RTM_DELADDR: lambda msg: AddressRemoved(*rtnl.address_from_msg(msg)),
}


def _link(msg):
    link = rtnl.link_from_msg(msg)
    return link.index, link


def _bridge_port(msg):
    port = rtnl.bridge_port_from_msg(msg)
    return port.index, port


def _event(kind, msg):
    """The event of one message, or None for one we do not read."""
    if kind in (rtnl.RTM_NEWLINK, rtnl.RTM_DELLINK):
        parse = _LINK_PARSERS.get((kind, rtnl.link_family(msg)))
    else:
        parse = _ADDRESS_PARSERS.get(kind)
    return parse(msg) if parse is not None else None


def events(data):
    """The typed events in one datagram from the event socket."""
    out = []
    for kind, msg in rtnl.messages(data):
        try:
            event = _event(kind, msg)
        except (struct.error, ValueError, IndexError):
            event = EventsLost()  # the safe reading of a message we cannot read
        if event is not None:
            out.append(event)
    return out


class LinkWatch(Component):
    """A non-blocking rtnetlink socket on the link and address groups; `handler(now, events)`
    gets the events read at each wakeup, in order."""

    def __init__(self, handler=None):
        self.handler = handler
        self.sock = socket.socket(socket.AF_NETLINK,
                                  socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                                  socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))

    def fileno(self):
        return self.sock.fileno()

    def fds(self):
        return ((self.sock, None, READ),)

    def on_readable(self, now, _key):
        self.handler(now, self.read())

    def read(self):
        """Every event waiting on the socket, in order."""
        out = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # we missed events: look at everything again
                    out.append(EventsLost())
                    continue
                raise
            out += events(data)

    def close(self):
        self.sock.close()
