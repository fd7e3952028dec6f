"""Announcements after a move (agrannounce): what tells switches and neighbours that agrN's
traffic now leaves by another port.

One entry point, `Announcer.moved(port, macs=None)`, for every kind of move:
- `moved(P)`: agrN as a whole moved to port P (a failover, another LACP aggregator). From P:
  `count` rounds, `interval` ms apart, of a gratuitous ARP per IPv4 address and an unsolicited
  NA per IPv6 address of agrN (bonding's num_grat_arp/num_unsol_na and peer_notif_delay); with
  the first round, a learning frame (RARP, as Open vSwitch) for each MAC the bridge that agrN
  is a port of learned on its other ports, and agrN's (and that bridge's) multicast memberships
  reported again in an IGMPv3 and an MLDv2 report (bonding's resend_igmp).
- `moved(P, macs)`: port P now carries the MACs `macs` ((mac bytes, VLAN ID or None) pairs), as
  after an slb move: one learning frame each, at once; when agrN's own MAC is among them,
  agrN's own announcements and reports follow as above (not the bridge's other MACs: the
  caller names those that moved).

The timing is AnnounceSchedule's (pure: `now` passed in); the Announcer is the loop's
component around it: a move is taken up by the next on_timer (the turn's `now`), the frames
are built by announce.py (pure) from what `facts` reads of the kernel, and sent by `send`.
"""

from ..net import rtnl
from ..record import Record
from .component import Component
from ..logger import log


def _frames():
    """announce.py (and ipaddress), loaded at the first announcement, not in every worker."""
    from . import announce
    return announce



class Round(Record):
    """Round `number` (0: the first) of the announcements of a move to `port`."""
    __slots__ = ("port", "number")


class AnnounceSchedule:
    """When each round of a move's announcements is due. A new move starts over (the rounds
    of the previous one are dropped: they would name the port left behind)."""

    def __init__(self):
        self.port = None
        self.rounds = 0          # rounds still to go
        self.number = 0          # the next round's number
        self.at = None           # when it is due
        self.interval = 0.0

    def moved(self, now, port, count, interval):
        """A move to `port`: `count` rounds (at least one: the learning frames and reports go
        with the first even when no ARP/NA is asked for), `interval` seconds apart, from now."""
        self.port, self.rounds, self.number, self.at, self.interval = port, max(1, count), 0, now, interval

    def forget(self, port):
        """Port `port` left: no more rounds from it."""
        if self.port == port:
            self.rounds, self.at = 0, None

    def due(self, now):
        """The rounds due by `now`, in order (several only when the loop was late)."""
        out = []
        while self.rounds and self.at <= now:
            out.append(Round(port=self.port, number=self.number))
            self.rounds -= 1
            self.number += 1
            self.at = self.at + self.interval if self.rounds else None
        return out

    def deadline(self):
        return self.at


class Facts:
    """What the announcements are made of, read from the kernel when a round is built (the
    worker's: agrN's index and MAC; each method may raise OSError/AgrError)."""

    def mac(self):
        """agrN's MAC (bytes)."""
        raise NotImplementedError

    def addresses(self):
        """agrN's addresses (strings, IPv6 link-local ones possibly with %scope)."""
        raise NotImplementedError

    def learned(self):
        """(mac bytes, VLAN ID or None) the bridge agrN is a port of learned on its other
        ports (and its own addresses); empty when agrN is in no bridge."""
        raise NotImplementedError

    def listeners(self):
        """Who listens to multicast groups through agrN: (MAC bytes, addresses, IPv4 groups,
        IPv6 groups) for agrN, and for the bridge agrN is a port of (the host's memberships
        are the bridge's then)."""
        raise NotImplementedError


class Listener(Record):
    """A device whose multicast memberships are reported: its MAC (bytes), its addresses
    (strings), its IPv4 and IPv6 groups."""
    __slots__ = ("mac", "addresses", "v4", "v6")


class KernelFacts(Facts):
    """Facts of agrN (`index()` its ifindex, `mac()` its MAC as a string) from rtnetlink and
    /proc/net (the worker's network namespace's)."""

    def __init__(self, index, mac):
        self.index_of = index
        self.mac_text = mac

    @property
    def index(self):
        return self.index_of()

    def mac(self):
        return rtnl.mac_bytes(self.mac_text())

    def addresses(self):
        return [a.address for a in rtnl.addresses(self.index)]

    def learned(self):
        bridge = rtnl.master(self.index)
        if bridge is None:
            return []
        untagged = self._default_pvid(bridge)
        seen = {}
        for e in rtnl.bridge_fdb(bridge):
            if e.port != self.index:
                seen.setdefault((e.mac, None if e.vlan == untagged else e.vlan), None)
        return [(rtnl.mac_bytes(mac), vlan) for mac, vlan in seen]

    @staticmethod
    def _default_pvid(bridge):
        """The VLAN a VLAN-aware bridge sends untagged (its default_pvid, as agrN's PVID when
        nobody changed it), or None."""
        link = rtnl.link(index=bridge)
        try:
            with open(f"/sys/class/net/{link.name}/bridge/default_pvid") as f:
                return int(f.read())
        except (AttributeError, OSError, ValueError):
            return None

    def listeners(self):
        with open("/proc/net/igmp") as f:
            igmp = f.read()
        try:
            with open("/proc/net/igmp6") as f:
                igmp6 = f.read()
        except FileNotFoundError:   # IPv6 disabled in the kernel
            igmp6 = ""
        out = []
        for index in (self.index, rtnl.master(self.index)):
            link = rtnl.link(index=index) if index is not None else None
            if link is None or not link.mac:
                continue
            out.append(Listener(mac=rtnl.mac_bytes(link.mac), addresses=[a.address for a in rtnl.addresses(index)],
                                v4=_frames().igmp_groups(igmp, link.name), v6=_frames().igmp6_groups(igmp6, index)))
        return out


class Announcer(Component):
    """The loop's component for announcements after a move (see the module's docstring).
    `send(port, frame)` sends a frame out of a port's own socket; `settings()` gives the
    agrannounce option ({"count", "interval" in ms})."""

    def __init__(self, send, facts, settings):
        self.send = send
        self.facts = facts
        self.settings = settings
        self.schedule = AnnounceSchedule()
        self.pending = []        # (port, macs or None), taken up by the next on_timer
        self.sent = 0            # frames sent, for status and metrics
        self.learning = False    # the current move's first round sends the bridge's MACs

    def moved(self, port, macs=None):
        """Port `port` now carries agrN's traffic (`macs` None), or the MACs `macs`."""
        self.pending.append((port, None if macs is None else list(macs)))

    def forget(self, port):
        """Port `port` left agrN: nothing more from it."""
        self.pending = [(p, m) for p, m in self.pending if p != port]
        self.schedule.forget(port)

    def deadline(self):
        return 0.0 if self.pending else self.schedule.deadline()

    def on_timer(self, now):
        pending, self.pending = self.pending, []
        for port, macs in pending:
            self._take(now, port, macs)
        for round_ in self.schedule.due(now):
            self._round(round_)

    def _take(self, now, port, macs):
        if macs is not None:
            own = self._read(self.facts.mac, None)
            for mac, vlan in macs:
                self._send(port, _frames().rarp(mac, vlan))
            if own is None or own not in {mac for mac, _vlan in macs}:
                return
        setting = self.settings()
        self.schedule.moved(now, port, setting["count"], setting["interval"] / 1000.0)
        self.learning = macs is None   # the bridge's MACs only when agrN moved as a whole

    def _round(self, round_):
        setting = self.settings()
        mac = self._read(self.facts.mac, None)
        if mac is None:
            return
        frames = []
        if round_.number < setting["count"]:
            frames += _frames().frames(mac, self._read(self.facts.addresses, []))
        if round_.number == 0:
            if self.learning:
                frames += [_frames().rarp(m, vlan) for m, vlan in self._read(self.facts.learned, [])
                           if m != mac and not m[0] & 1]
            frames += self.reports()
        for frame in frames:
            self._send(round_.port, frame)

    def reports(self):
        """An IGMPv3 and an MLDv2 report of each listener's memberships, from its own MAC and
        address (0.0.0.0 or :: without one: valid, RFC 3376 §4.2.13 / RFC 3810 §5.2.13)."""
        out = []
        for who in self._read(self.facts.listeners, []):
            src4 = next((a for a in who.addresses if ":" not in a), "0.0.0.0")
            src6 = next((a.split("%", 1)[0] for a in who.addresses if a.lower().startswith("fe80:")), "::")
            out += [f for f in (_frames().igmpv3_report(who.mac, src4, who.v4),
                                _frames().mldv2_report(who.mac, src6, who.v6)) if f is not None]
        return out

    def _send(self, port, frame):
        self.send(port, frame)
        self.sent += 1

    def _read(self, what, default):
        try:
            return what()
        except Exception as exc:   # a failed read costs its frames, not the worker
            log.warning("announcements: cannot read %s: %s", what.__name__, exc)
            return default


class AggregatorWatch:
    """A move under LACP: the selected aggregation (our key, the partner's system and key)
    became another one, as when the partner behind the ports changes. Told the core's
    SelectionChanged events (`selection`) and, after each, the distributing ports
    (`distributing`), which give the port to announce from once the new aggregation carries
    traffic. The first selection is no move (nothing was announced elsewhere before)."""

    def __init__(self):
        self.selected = None     # (actor key, partner system, partner key) last selected
        self.moved = False       # waiting for the new aggregation to distribute

    def selection(self, event):
        if event.partner_system is None:
            return   # none selected: the next one is a move if it differs from the last
        chosen = (event.actor_key, bytes(event.partner_system), event.partner_key)
        if self.selected is not None and chosen != self.selected:
            self.moved = True
        self.selected = chosen

    def distributing(self, ports):
        """The port to announce from (the lowest distributing), once, after a move; else None."""
        if not self.moved or not ports:
            return None
        self.moved = False
        return min(ports)
