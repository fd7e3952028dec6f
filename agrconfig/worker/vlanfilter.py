"""The ports' hardware VLAN filters pass every VLAN agrN carries (net/vlan.py says how).

`plan` is pure: what agrN carries, which ports filter, and the entries that exist in, the
entries to make and to remove out. VlanFilter applies it when a link event may have changed
any of these (a VLAN upper of agrN came or went, agrN's place in a bridge changed), after a
port joins, and when the worker starts (a restarted worker finds its predecessor's entries).
A port that leaves loses its entries with the rest of its state (Member.restore).
"""

from ..errors import AgrError
from ..net import vlan
from .linkwatch import BridgePortChanged, BridgePortRemoved, EventsLost, LinkChanged, LinkGone
from ..logger import log



def plan(carried, filtering, entries, ports):
    """(to make: [(port index, Vlan)], to remove: [VlanLink]).

    carried: the VLANs agrN carries; filtering: the indexes of the ports whose filter is on;
    entries: our existing entries (VlanLink, ours); ports: the indexes of agrN's ports. An entry
    on a link that is no port of ours is left alone: it may be another agr's."""
    have = {}
    remove = []
    for entry in entries:
        if entry.lower not in ports:
            continue
        if entry.lower in filtering and entry.vlan in carried and (entry.lower, entry.vlan) not in have:
            have[(entry.lower, entry.vlan)] = entry
        else:
            remove.append(entry)   # not wanted any more, or a duplicate
    make = [(port, v) for port in sorted(filtering & set(ports))
            for v in sorted(carried, key=lambda v: (v.proto, v.vid)) if (port, v) not in have]
    return make, remove


class VlanFilter:
    """The filter entries of one worker. `agr` is the worker: its name, tap_index and members."""

    def __init__(self, agr):
        self.agr = agr
        self.entries = {}         # port index -> the VLANs registered on it, for status and logs

    def on_events(self, now, events):
        """Look again when a VLAN device or agrN's bridge port changed (or events were lost)."""
        tap = self.agr.tap_index
        for event in events:
            if isinstance(event, EventsLost) or \
                    (isinstance(event, (LinkChanged, LinkGone)) and (event.index == tap or event.link.kind == "vlan")) or \
                    (isinstance(event, (BridgePortChanged, BridgePortRemoved)) and event.index == tap):
                self.sync()
                return

    def sync(self):
        """Make and remove entries so that every filtering port passes what agrN carries.
        Best effort: a failure is logged and tried again at the next change."""
        agr = self.agr
        try:
            links = vlan.vlan_links()
            carried = vlan.carried(agr.tap_index, links)
            ports = {p.index: p for p in agr.members}
            filtering = {i for i, p in ports.items() if carried and vlan.filters_vlans(p.name)}
            make, remove = plan(carried, filtering, [l for l in links if l.ours], set(ports))
        except (AgrError, OSError) as exc:
            log.warning("%s: VLAN filters not read: %s", agr.name, exc)
            return
        kept = {(l.lower, l.vlan) for l in links if l.ours and l.lower in ports} - {(e.lower, e.vlan) for e in remove}
        for entry in remove:
            try:
                vlan.unregister(entry)
                log.info("%s: port %s: VLAN %s filter entry removed", agr.name,
                         ports[entry.lower].name, entry.vlan)
            except OSError as exc:
                kept.add((entry.lower, entry.vlan))
                log.warning("%s: VLAN filter entry %s not removed: %s", agr.name, entry.name, exc)
        for index, v in make:
            try:
                vlan.register(index, v)
                kept.add((index, v))
                log.info("%s: port %s: VLAN %s registered in its filter", agr.name, ports[index].name, v)
            except OSError as exc:
                log.warning("%s: port %s: VLAN %s not registered in its filter: %s", agr.name,
                            ports[index].name, v, exc)
        self.entries = {}
        for index, v in kept:
            self.entries.setdefault(index, set()).add(v)

    def registered(self, index):
        """The VLANs registered in port `index`'s filter, in order."""
        return sorted(self.entries.get(index, ()), key=lambda v: (v.proto, v.vid))
