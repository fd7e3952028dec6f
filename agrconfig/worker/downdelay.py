"""agrdowndelay: a port's loss must last a while before the port goes (bonding's downdelay,
teamd's delay_down). Pure: `now` passed in, no clock.

A loss is held under a key (what was lost on which port: ("carrier", index), ("check",
index)); while held the port stays as it was. A loss that ends within the delay is forgotten
(`cancel`); one that lasts is due at its deadline, and whoever holds it applies it then.
"""


class DownDelay:
    def __init__(self):
        self.since = {}      # key -> when the loss was first seen
        self.until = {}      # key -> when it is applied, unless it ends first

    def holding(self, now, key, delay):
        """True while the loss under `key` is to be held (`delay` seconds from its first
        sighting); False at once without a delay, and once the delay is over."""
        if delay <= 0 and key not in self.until:
            return False
        if key not in self.until:
            self.since[key], self.until[key] = now, now + delay
        return now < self.until[key]

    def cancel(self, key):
        """The loss ended (carrier back, a target heard) or was applied: forget it."""
        self.since.pop(key, None)
        self.until.pop(key, None)

    def cancel_port(self, index):
        for key in [k for k in self.until if k[1] == index]:
            self.cancel(key)

    def due(self, now):
        """The keys whose delay is over, oldest first (they stay until cancelled)."""
        return sorted((k for k, t in self.until.items() if t <= now), key=lambda k: self.until[k])

    def deadline(self):
        return min(self.until.values(), default=None)

    def left(self, now, index):
        """Seconds until port `index`'s held loss is applied, or None when none is held."""
        times = [t for k, t in self.until.items() if k[1] == index]
        return max(0.0, min(times) - now) if times else None
