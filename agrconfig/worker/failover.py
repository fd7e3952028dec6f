"""agrproto failover: one active port, the others standby; no LACP (as bonding's active-backup,
teamd's activebackup runner, lagg's failover).

Selection is sans-IO (Selector: a clock passed in, no sockets) so a fake clock tests it; the
Failover aggregation around it turns its moves into the worker's actions: the new sets, and
the announcements (announcer.py) from the new port.
"""

from ..lacp import DistributingChanged, Output
from ..lacp.wtr import WaitToRestore
from ..status import FailoverPortStatus, FailoverStatus, Role
from .aggregation import Aggregation


class Candidate:
    __slots__ = ("priority", "up")

    def __init__(self, priority, up=False):
        self.priority, self.up = priority, up

    def __repr__(self):
        return f"Candidate(priority={self.priority!r}, up={self.up!r})"


class Selector:
    """Which port is active. The best is the lowest (priority, port number). The active port
    stays while it is up unless a ready port has a strictly better priority (sticky on equal
    priorities, so a returning port does not move the traffic twice). A port that comes back
    waits `wtr` seconds first (WaitToRestore: a drop meanwhile restarts the wait). With no port
    ready at all, the best one still waiting is taken at once, as bonding does with updelay:
    waiting would only lengthen an outage."""

    def __init__(self, wtr=0.0):
        self.restore = WaitToRestore(wtr)
        self.ports = {}        # port number (ifindex) -> Candidate
        self.active = None

    @property
    def wtr(self):
        return self.restore.time

    def add(self, now, port, priority, up):
        """A port attached while another is active: sticky unless strictly better."""
        self._enter(port, priority, up)
        return self.select(now)

    def start(self, now, ports):
        """Every port at once, (number, priority, up): the best of them, whatever the order."""
        for port, priority, up in ports:
            self._enter(port, priority, up)
        return self.select(now)

    def _enter(self, port, priority, up):
        self.ports[port] = Candidate(priority, up)
        self.restore.forget(port)
        if up:
            self.restore.restore(port)   # attached with carrier: no wait

    def remove(self, now, port):
        self.ports.pop(port, None)
        self.restore.forget(port)
        return self.select(now)

    def set_up(self, now, port, up):
        self.ports[port].up = up
        self.restore.update(now, port, up)
        return self.select(now)

    def set_priority(self, now, port, priority):
        self.ports[port].priority = priority
        return self.select(now)

    def set_wtr(self, now, wtr):
        self.restore.set_time(wtr)
        return self.select(now)

    def _rank(self, port):
        return (self.ports[port].priority, port)

    def select(self, now):
        """Choose; returns (old, new) when the active port changed, else None."""
        old = self.active
        self.restore.restore_due(now)
        ready = [p for p, c in self.ports.items() if c.up and not self.restore.waiting(p)]
        if not ready:
            ready = [p for p, c in self.ports.items() if c.up]
        best = min(ready, key=self._rank, default=None)
        if old in ready and self.ports[best].priority >= self.ports[old].priority:
            best = old   # sticky
        if best is not None:
            self.restore.restore(best)   # taken: its wait is over
        self.active = best
        return (old, best) if best != old else None

    def next_deadline(self):
        """When a waiting port becomes ready (and may take over), or None."""
        return self.restore.deadline()

    def wait_left(self, now, port):
        return self.restore.wtr_left(now, port) or 0.0

    def role(self, port):
        if port == self.active:
            return Role.ACTIVE
        return Role.STANDBY if self.ports[port].up else Role.DOWN


class Failover(Aggregation):
    """agrproto failover. `announce(port)` is told each move to a new active port (the
    worker's announcer.Announcer.moved: gratuitous ARP, unsolicited NA and the rest, sent on
    the port's own socket: written to the TAP they would arrive as received on agrN)."""
    kind = "failover"

    def __init__(self, act, announce, wtr=0.0, moving=lambda active: None):
        self.act = act
        self.announce = announce
        self.moving = moving   # agrmacpolicy: the MACs follow the active port before it is announced
        self.selector = Selector(wtr)
        self.now = 0.0   # the latest time we were told (each loop turn): status's time left

    def fits(self, flags):
        return flags["proto"] == "failover"

    def start(self, now, ports, resume):
        self._clock(now)
        change = self.selector.start(now, [(p.index, p.options["port_priority"], p.up) for p in ports])
        self._moved(change, force=True)
        return resume   # kept for a later switch back to LACP

    def configure(self, now, flags):
        self._clock(now)
        self._moved(self.selector.set_wtr(now, flags["wtr_time"]))

    def _moved(self, change, force=False):
        if change is None and not force:
            return
        active = self.selector.active
        self.moving(active)
        ports = () if active is None else (active,)
        self.act(Output([DistributingChanged(ports, ports)]))
        if change and active is not None:
            self.announce(active)   # after the data path follows: "agrN moved to port `active`"

    def configure_port(self, now, port):
        self._clock(now)
        self._moved(self.selector.set_priority(now, port.index, port.options["port_priority"]))

    def add_port(self, now, port):
        self._clock(now)
        self._moved(self.selector.add(now, port.index, port.options["port_priority"], port.up))

    def remove_port(self, now, index):
        self._clock(now)
        self._moved(self.selector.remove(now, index))

    def set_carrier(self, now, index, up):
        self._clock(now)
        if index in self.selector.ports:
            self._moved(self.selector.set_up(now, index, up))

    def set_system_mac(self, now, mac):
        pass

    @property
    def active(self):
        return self.selector.active

    def receive(self, now, index, frame):
        pass   # no LACP: a partner's LACPDUs and Markers go unanswered

    def get_timer(self):
        return self.selector.next_deadline()

    def _clock(self, now):
        self.now = max(self.now, now)

    def handle_timer(self, now):
        self._clock(now)
        deadline = self.selector.next_deadline()
        if deadline is not None and deadline <= now:
            self._moved(self.selector.select(now))

    def sets(self, ports):
        active = self.selector.active
        both = frozenset() if active is None else frozenset((active,))
        return both, both

    def port_status(self, index):
        if index not in self.selector.ports:
            return {}
        return {"failover": FailoverPortStatus(self.selector.role(index),
                                               round(self.selector.wait_left(self.now, index), 3))}

    def status(self):
        return None

    def status_extra(self):
        return {"failover": FailoverStatus(self.selector.active, self.selector.wtr)}

    def snapshot(self):
        return {}

