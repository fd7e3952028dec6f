"""The eBPF fast path's hand-over when a port joins the distributing set: an I/O-free machine.

Why: a port joining moves flows to it while their earlier frames may still wait in another
port's queue. So, as the relay does, the egress program first hands frames on to agrN's own
queue (PASS), where the relay thread holds them for its hold (dataplane.HOLD) and then sends
them on the new ports. When the hold is over the program drains (DRAIN): a frame goes on to the
relay while the relay has not sent all it was handed (the join map's counters `passed` and
`relayed` differ), else the kernel redirects it, as it is then behind every earlier frame of
its flow. Once agrN's queue has been quiet for JOIN_QUIET with the counters equal, the program
redirects again without looking (NORMAL). Nothing is dropped and no frame overtakes an older
one. Where the kernel has no join map, or the relay never catches up (a stream faster than
it, or frames lost on their way into agrN's queue, so the counters stay apart) within
DRAIN_TIMEOUT, the program drops instead for the instant it takes to empty that queue (DROP),
then redirects. JOIN_TIMEOUT ends any hand-over that is still going.

    NORMAL --join--> PASS --hold over--> DRAIN --counters equal, queue quiet--> NORMAL
                      |                    `--DRAIN_TIMEOUT--> DROP --queue empty--> NORMAL
                      `--(no join map) relay caught up--> DROP
    any join state --another port joins--> PASS;  --JOIN_TIMEOUT--> NORMAL

The machine reads no clock, map or relay. Its inputs: the distributing set changed
(`ports_changed`), the relay took a drain request (`requested`) or answered one (`drained`,
with the join map's counters), and the time (`tick(now)`). It returns the actions to carry out,
in order (datapath.EbpfPath does). A join arrives without the time (the data path's set_ports
has none): its deadlines are fixed by the next tick, which `deadline()` asks for at once.
"""
from __future__ import annotations

from ..enumerated import Enumerated

from ..lacp.machine import IllegalTransition
from ..record import Record

JOIN_QUIET = 0.001     # agrN's queue quiet this long (relay's drain request) before a step on
DRAIN_TIMEOUT = 0.25   # the relay has this long to catch up in DRAIN before DROP
JOIN_TIMEOUT = 1.0     # a hand-over ends by this long after its (last) join whatever else happens
DUE = float("-inf")    # a deadline already past on any clock: "tick me at once"


class Mode(Enumerated):
    """The egress program's mode (fastpath.FastPath.set_mode), which is the machine's state;
    status shows its value as datapath_mode."""
    NORMAL = "normal"   # redirect in the kernel
    PASS = "pass"       # every frame on to agrN's queue (the relay holds, then sends them)
    DRAIN = "drain"     # on to agrN's queue while passed != relayed, else redirect
    DROP = "drop"       # drop and count (no distributing port in the program's view)


# -- actions: what the edge carries out, in the order given --------------------------------
class SetMode(Record):
    """Write `mode` into the egress program's configuration."""
    __slots__ = ("mode",)


class Rebase(Record):
    """Set the join map's passed = relayed (only in NORMAL: the program counts nothing then).
    Frames the relay read uncounted (a dead worker's) would otherwise keep them apart."""
    __slots__ = ()


class RequestDrain(Record):
    """Ask the relay to signal once its hold is over and agrN's queue has been empty for
    `quiet` seconds; tell the machine the request's number (`requested`)."""
    __slots__ = ("quiet",)


class DrainTimedOut(Record):
    """Say that the relay did not catch up within DRAIN_TIMEOUT (with the counters)."""
    __slots__ = ()


class JoinTimedOut(Record):
    """Say that agrN's queue did not empty within JOIN_TIMEOUT."""
    __slots__ = ()


M = Mode


class JoinHandOver:
    """One agrN's hand-over. `drains`: the kernel has the join map (DRAIN is possible);
    `hold`: the relay's hold (dataplane.HOLD), the least PASS lasts."""

    TRANSITIONS = {
        (M.NORMAL, M.PASS): "a port joins while a port that distributed may still hold older frames",
        (M.PASS, M.PASS): "another port joins: the hold begins again",
        (M.DRAIN, M.PASS): "another port joins: the hold begins again (counters not rebased)",
        (M.DROP, M.PASS): "another port joins: the hold begins again (counters not rebased)",
        (M.PASS, M.DRAIN): "the relay's hold is over",
        (M.PASS, M.DROP): "no join map: the relay caught up; drop while agrN's queue empties",
        (M.DRAIN, M.DROP): "the relay did not catch up within DRAIN_TIMEOUT",
        (M.DRAIN, M.NORMAL): "the relay sent all it was handed (or the rest was lost before agrN's "
                             "queue), or JOIN_TIMEOUT",
        (M.DROP, M.NORMAL): "agrN's queue is empty, or JOIN_TIMEOUT",
        (M.PASS, M.NORMAL): "JOIN_TIMEOUT",
    }

    def __init__(self, drains, hold):
        self.drains = bool(drains)
        self.hold = hold
        self.state = M.NORMAL
        self.join_deadline = None   # the hand-over ends by then at the latest
        self.stage_deadline = None  # PASS (with the join map): the hold's end; DRAIN: its limit
        self.anchor = None          # a join's relay hold end, until a tick fixes the deadlines
        self.request = None         # number of the relay's drain request awaited (None: none)
        self.last_counts = None     # DRAIN: the counters at the last quiet moment found them apart

    # -- inputs ------------------------------------------------------------------------------
    def ports_changed(self, old, new, carrier, hold_until):
        """The distributing set goes from `old` to `new` (port indexes); `carrier`: the ports
        with carrier; `hold_until`: when the relay's hold (begun by the same change) ends.
        A hand-over only while a port that distributed may still hold older frames: after a
        carrier loss (failover's move) their queues are gone, so nothing can be overtaken."""
        if not set(new) - set(old) or not set(old) & set(carrier):
            return ()  # no port joined, or none that distributed lives (or none distributed)
        actions = []
        if self.drains and self.state is M.NORMAL:
            actions.append(Rebase())
        self._enter(M.PASS)
        actions.append(SetMode(M.PASS))
        self.join_deadline = self.stage_deadline = self.request = None  # earlier answers: ignored
        self.anchor = hold_until
        if not self.drains:  # no DRAIN: PASS lasts until the relay has caught up
            actions.append(RequestDrain(0.0))
        return tuple(actions)

    def requested(self, number):
        """The relay took the last RequestDrain as request `number`."""
        self.request = number

    def drained(self, number, counts):
        """The relay answered request `number`; `counts`: the join map's (passed, relayed)
        read after that (None without the map)."""
        if self.request is None or number != self.request:
            return ()  # none awaited (NORMAL has none), or an earlier one's (a join began again)
        if self.state is M.PASS:  # no join map: the relay caught up; drop while the queue empties
            return self._drop()
        if self.state is M.DRAIN:
            # Equal: everything handed to the relay has gone. Apart but unchanged over two
            # quiet periods: the difference was lost on the way into agrN's queue.
            if counts[0] == counts[1] or counts == self.last_counts:
                return self._normal()
            self.last_counts = counts  # a frame on its way into agrN's queue: look again later
            return self._request(JOIN_QUIET)
        return self._normal()  # DROP: agrN's queue is empty

    def tick(self, now):
        """The time is `now`: fix a join's deadlines, act on those that have passed."""
        if self.anchor is not None:
            self.join_deadline = now + JOIN_TIMEOUT
            if self.drains and self.state is M.PASS:
                self.stage_deadline = max(self.anchor, now + self.hold)
            self.anchor = None
        if self.join_deadline is not None and now >= self.join_deadline:
            return (JoinTimedOut(),) + self._normal()
        if self.stage_deadline is not None and now >= self.stage_deadline:
            if self.state is M.PASS:
                self._enter(M.DRAIN)
                self.last_counts = None
                self.stage_deadline = now + DRAIN_TIMEOUT
                return (SetMode(M.DRAIN),) + self._request(JOIN_QUIET)
            return (DrainTimedOut(),) + self._drop()
        return ()

    def deadline(self):
        """When to tick next (None: no need)."""
        if self.anchor is not None:
            return DUE
        timers = [t for t in (self.join_deadline, self.stage_deadline) if t is not None]
        return min(timers) if timers else None

    # -- moves -------------------------------------------------------------------------------
    def _enter(self, new):
        if (self.state, new) not in self.TRANSITIONS:
            raise IllegalTransition(f"illegal join hand-over transition {self.state} -> {new}")
        self.state = new

    def _request(self, quiet):
        self.request = None  # until the relay numbers it
        return (RequestDrain(quiet),)

    def _drop(self):
        self._enter(M.DROP)
        self.stage_deadline = None
        return (SetMode(M.DROP),) + self._request(JOIN_QUIET)

    def _normal(self):
        self._enter(M.NORMAL)
        self.join_deadline = self.stage_deadline = self.anchor = self.request = None
        return (SetMode(M.NORMAL),)
