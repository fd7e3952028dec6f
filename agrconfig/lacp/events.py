"""Actions the LACP core asks its driver to perform or to log.

Every entry point of :class:`~agrconfig.lacp.core.LacpCore` returns an :class:`Output`:
the notifications (Transition, PartnerChanged, SelectionChanged, DistributingChanged) in the
order they happened, and apart from them the frames to send (Transmit).
"""
from __future__ import annotations

from ..record import Record
from .pdu import format_mac


class Transmit(Record):
    """Send ``frame`` (a complete Ethernet frame) on port ``port_id``."""
    __slots__ = ("port_id", "frame")


class DistributingChanged(Record):
    """The distributing (or collecting) set changed; both in order of add_port.

    Emitted when either tuple differs from the previous emission, so a driver
    that re-reads both sets on this action never misses a change.
    """
    __slots__ = ("ports", "collecting")
    DEFAULTS = {"collecting": ()}

    def __str__(self) -> str:
        return f"distributing on {list(self.ports)}, collecting on {list(self.collecting)}"


class Transition(Record):
    """A state machine (or the Selected variable) changed state: for debug logs."""
    __slots__ = ("port_id", "machine", "old", "new", "reason")

    def __str__(self) -> str:
        return f"port {self.port_id} {self.machine}: {self.old} -> {self.new} ({self.reason})"


class PartnerChanged(Record):
    """The partner recorded on a port has a new system id or key."""
    __slots__ = ("port_id", "system", "key")

    def __str__(self) -> str:
        return f"port {self.port_id}: partner {format_mac(self.system)} key {self.key:#06x}"


class SelectionChanged(Record):
    """A different aggregation was chosen (or none: every field None/empty)."""
    __slots__ = ("actor_key", "partner_system", "partner_key", "ports")

    def __str__(self) -> str:
        if self.partner_system is None:
            return "no aggregation selected"
        return (f"aggregation selected: key {self.actor_key:#06x}, partner "
                f"{format_mac(self.partner_system)} key {self.partner_key:#06x}, ports {list(self.ports)}")


Event = DistributingChanged | Transition | PartnerChanged | SelectionChanged
Action = Transmit | Event


class Output:
    """What one call of the core produced: ``events`` (notifications, in order) and
    ``frames`` (Transmit, in order). A driver should act on the events first (so the data
    path follows the mux before a LACPDU announces it), then send the frames. Iterating
    gives the events, then the frames; an Output equals the list of both."""
    __slots__ = ("events", "frames")

    def __init__(self, events=(), frames=()):
        self.events: list[Event] = list(events)
        self.frames: list[Transmit] = list(frames)

    def __iter__(self):
        yield from self.events
        yield from self.frames

    def __len__(self):
        return len(self.events) + len(self.frames)

    def __eq__(self, other):
        if isinstance(other, (Output, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __add__(self, other):
        if isinstance(other, Output):
            return Output(self.events + other.events, self.frames + other.frames)
        return list(self) + list(other)

    def __radd__(self, other):
        return list(other) + list(self)

    def __repr__(self):
        return f"Output(events={self.events!r}, frames={self.frames!r})"
