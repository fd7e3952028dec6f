"""What each port went through, from the LACP core's Transition events: for status (the last
few transitions, with time and cause), the reason a port is not distributing ("partner silent
for 3.0 s") and the metrics (expired/defaulted/churn counts, time of the last change).

Kept by the worker only: it starts empty when the worker starts.
"""
import collections
import time

KEEP = 12  # transitions kept per port: enough to explain a flap after the fact (~6 each way)
# The receive and mux machines tell the story; the churn machines move to and from MONITOR at
# every flap, so only their entering CHURN is kept; the periodic machine is never kept.
WATCHED = ("rx", "mux")
# (machine, state entered) -> the count it adds to
COUNTED = {("rx", "EXPIRED"): "expired", ("rx", "DEFAULTED"): "defaulted",
           ("actor_churn", "ACTOR_CHURN"): "actor_churn", ("partner_churn", "PARTNER_CHURN"): "partner_churn"}
# For diagnose: the last LACPDU inter-arrival times (gaps in the partner's periodic rate) and
# the times the port stopped distributing (flapping over the last 10 minutes).
KEEP_INTERVALS = 32
KEEP_FLAPS = 32


class PortRecord:
    def __init__(self):
        self.counts = dict.fromkeys(COUNTED.values(), 0)
        self.transitions = collections.deque(maxlen=KEEP)
        self.last_change = None      # wall-clock time of the last kept transition
        self.last_lacpdu = None      # monotonic time of the last LACPDU the receive machine took
        self.arrival = None          # the same, forgotten while the port is disabled: a link
        self.intervals = collections.deque(maxlen=KEEP_INTERVALS)   # that was down lost nothing
        self.flaps = collections.deque(maxlen=KEEP_FLAPS)   # monotonic times it stopped distributing
        self.mux_changed = None      # monotonic time the mux machine last changed state

    def view(self, now):
        return {"counts": dict(self.counts), "last_change": self.last_change,
                "lacpdu_age": None if self.last_lacpdu is None else max(0.0, now - self.last_lacpdu),
                "transitions": list(self.transitions),
                "lacpdu_intervals": [round(i, 3) for i in self.intervals],
                "mux_age": None if self.mux_changed is None else max(0.0, now - self.mux_changed),
                "flap_ages": [max(0.0, now - t) for t in self.flaps]}


class History:
    def __init__(self, clock=time.monotonic, wall=time.time):
        self.ports = {}
        self.clock, self.wall = clock, wall

    def record(self, event):
        """One Transition of the core (port_id, machine, old, new, reason)."""
        rec = self.ports.setdefault(event.port_id, PortRecord())
        new = str(event.new)
        if event.machine == "rx" and new == "CURRENT":
            rec.last_lacpdu = now = self.clock()
            if rec.arrival is not None:
                rec.intervals.append(now - rec.arrival)
            rec.arrival = now
        if str(event.old) == new:
            return
        if event.machine == "rx" and new == "PORT_DISABLED":
            rec.arrival = None
        if event.machine == "mux":
            rec.mux_changed = self.clock()
            if str(event.old) == "COLLECTING_DISTRIBUTING":
                rec.flaps.append(rec.mux_changed)
        counted = COUNTED.get((event.machine, new))
        if counted:
            rec.counts[counted] += 1
        elif event.machine not in WATCHED:
            return
        rec.last_change = self.wall()
        rec.transitions.append({"time": rec.last_change, "machine": event.machine,
                                "old": str(event.old), "new": new, "cause": event.reason})

    def forget(self, index):
        self.ports.pop(index, None)

    def view(self, index):
        return self.ports.get(index, PortRecord()).view(self.clock())
