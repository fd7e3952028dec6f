"""How what happens to the links reaches the aggregation: the link watch's events (agrN deleted
or given another MAC; a port gone, renamed, changed by another tool, its carrier), agrlinkcheck's
verdicts and the polled carrier (carrierpoll.py); agrdowndelay holds a loss for a while
(downdelay.py), as a component of the loop whose deadline is the end of the earliest hold."""

from ..net import rtnl
from .component import Component
from .downdelay import DownDelay
from .linkwatch import LinkGone
from ..logger import log



class LinkState(Component):
    """The link reactions of one worker. `agr` is the worker: its members, mac, tap_index,
    aggregation, linkcheck and ports (transactions.py), its flags, save(), recompute() and
    system_mac(), and its `stopping` flag.

    With agrdowndelay, a port that loses its carrier (or agrlinkcheck's verdict) keeps its
    place until the loss has lasted the delay; frames the data path sends it meanwhile are lost.
    """

    def __init__(self, agr):
        self.agr = agr
        self.hold = DownDelay()

    def _held(self, now, port, what):
        """True while the loss of `what` ("carrier", "check") on `port` is held (agrdowndelay)."""
        key = (what, port.index)
        fresh = key not in self.hold.until
        held = self.hold.holding(now, key, self.agr.flags["down_delay"] / 1000.0)
        if held and fresh:
            log.info("%s: port %s %s down, held for agrdowndelay %d ms", self.agr.name, port.name,
                     what, self.agr.flags["down_delay"])
        return held

    def deadline(self):
        return self.hold.deadline()

    def on_timer(self, now):
        """Held losses that lasted: applied now, if they still hold."""
        for key in self.hold.due(now):
            what, index = key
            port = self.agr.members.find(index)
            if port is not None and what == "carrier":
                self.changed(now, index)          # read again: the carrier may be back
            elif port is not None:
                self.hold.cancel(key)
                self._set_alive(now, port, False)
            self.hold.cancel(key)

    def held_left(self, now, index):
        """Seconds until port `index`'s held loss applies (None: none held), for status."""
        return self.hold.left(now, index)

    def on_events(self, now, events):
        """The link watch's events, in order."""
        for event in events:
            self.changed(now, event.index, gone=isinstance(event, LinkGone))

    def changed(self, now, index, gone=False):
        """Something changed on link `index` (None: anything, events were lost)."""
        agr = self.agr
        ours = index in (None, agr.tap_index)  # agrN itself, or everything (events were lost)
        ports = [p for p in agr.members if ours or p.index == index]
        if not ours and not ports:
            return
        deleted = ours and gone and index is not None
        tap = None if deleted else rtnl.link(index=agr.tap_index)
        if ours and tap is None:  # deleted: seen, or found after lost events
            log.warning("%s: deleted by someone else; giving the ports back", agr.name)
            agr.stopping = True
            return
        if ours:
            agr.members.sync_memberships()
            if tap is not None and tap.mac != agr.mac:
                # `ip link set agrN address ...`: followed, or set back (lladdr, agrmacpolicy active)
                agr.link_address_changed(now, tap.mac)
        addrs = rtnl.all_addresses() if ports else {}
        for port in ports:
            link = rtnl.link(index=port.index)
            if link is None:
                log.warning("%s: port %s went away", agr.name, port.name)
                agr.ports.drop(now, port, restore=False)
                continue
            if link.name != port.name:
                log.warning("%s: port %s was renamed %s; it stays a port", agr.name, port.name, link.name)
                port.rename(link.name)
                agr.save()
            agr.members.revert_changes(port, link, tap, addrs.get(port.index, []), agr.port_mac(port))
            carrier = link.carrier and link.up
            if not carrier and port.carrier and self._held(now, port, "carrier"):
                continue
            self.hold.cancel(("carrier", port.index))
            if carrier != port.carrier:
                port.carrier = carrier
                log.info("%s: port %s carrier %s", agr.name, port.name, "up" if carrier else "down")
                if carrier:   # back: under agrlinkcheck it proves itself again
                    agr.linkcheck.carrier_back(now, port)
                    self.reread_speed(now, port)   # renegotiated: maybe another speed
                agr.aggregation.set_carrier(now, port.index, port.up)
                agr.recompute()

    def reread_speed(self, now, port):
        """The port's speed and duplex as the link reports them now; the aggregation (LACP's
        key) hears of a change before the port is enabled again."""
        speed, duplex_full = rtnl.link_mode(port.name)
        if (speed, duplex_full) != (port.speed, port.duplex_full):
            log.info("%s: port %s speed %s", self.agr.name, port.name,
                     f"{speed} Mb/s" if speed else "unknown")
            port.speed, port.duplex_full = speed, duplex_full
            self.agr.aggregation.set_port_speed(now, port.index, speed, duplex_full)

    def verdict(self, now, index, up):
        """agrlinkcheck's verdict on port `index` changed."""
        port = self.agr.members.find(index)
        if port is None or (not up and port.alive and self._held(now, port, "check")):
            return
        log.info("%s: port %s linkcheck %s", self.agr.name, port.name, "up" if up else "down: no answer")
        self.set_alive(now, port, up)

    def set_alive(self, now, port, alive):
        self.hold.cancel(("check", port.index))
        self._set_alive(now, port, alive)

    def _set_alive(self, now, port, alive):
        if port.alive != alive:
            port.alive = alive
            self.agr.aggregation.set_carrier(now, port.index, port.up)
            self.agr.recompute()

    def carrier_lost(self, now, port):
        """The carrier poll found a distributing port's carrier gone: it leaves now (after
        agrdowndelay, which the poll's next look finds still running)."""
        if self._held(now, port, "carrier"):
            return
        self.hold.cancel(("carrier", port.index))
        port.carrier = False
        log.info("%s: port %s carrier down (polled)", self.agr.name, port.name)
        self.agr.aggregation.set_carrier(now, port.index, port.up)
        self.agr.recompute()
