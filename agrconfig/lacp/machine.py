"""What every state machine of 802.1AX-2014 §6.4 shares: named states, a table of the
transitions the standard draws, and one way to enter a state.

Each machine is a class in a module of its own (rx, periodic, mux, actor_churn,
partner_churn, wtr); the Transmit machine (tx) and Selection Logic (selection) have no states.
"""
from __future__ import annotations

from ..enumerated import Enumerated


class IllegalTransition(AssertionError):
    """A machine tried a move that its TRANSITIONS table does not draw: a bug in the core."""


class Machine:
    NAME: str            # as in Transition.machine and the debug log
    ATTR: str            # the Port attribute holding its state
    State: type[Enumerated]
    TRANSITIONS: dict    # (old, new) -> why, as the standard's diagram labels it

    @classmethod
    def state(cls, port):
        return getattr(port, cls.ATTR)

    @classmethod
    def enter(cls, port, new, log: list) -> None:
        """Move `port` to `new`, checked against TRANSITIONS; the move is logged."""
        old = getattr(port, cls.ATTR)
        reason = cls.TRANSITIONS.get((old, new))
        if reason is None:
            raise IllegalTransition(f"illegal {cls.NAME} transition {old} -> {new}")
        setattr(port, cls.ATTR, cls.State(new))
        log.append((port.port_id, cls.NAME, old, cls.State(new), reason))

    @classmethod
    def step(cls, port, core, now: float, log: list) -> None:
        """At most one transition, logged; the core steps each machine until its log stays
        the same, so a machine cannot misreport whether it moved."""
        raise NotImplementedError
