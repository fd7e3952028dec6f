"""Transmit machine (802.1AX-2014 §6.4.16).

When NTT is set, send one LACPDU, but no more than three in any Fast_Periodic_Time; an NTT
that must wait is kept and sent when the rate allows (deadline() tells the driver when).
"""
from __future__ import annotations

from . import pdu as P
from .periodic import PeriodicState
from .port import COLLECTOR_MAX_DELAY, FAST_PERIODIC_TIME, MAX_TX_PER_PERIOD, Port


def may_transmit(port: Port) -> bool:
    """LACPDUs go out only on an enabled port whose periodic machine runs."""
    return port.enabled and port.lacp_enabled and port.periodic_state != PeriodicState.NO_PERIODIC


def allowed_at(port: Port, now: float) -> float:
    """When the next LACPDU may leave under the three-per-Fast_Periodic_Time limit."""
    sent = port.tx_times
    while sent and sent[0] + FAST_PERIODIC_TIME <= now:
        sent.popleft()
    if len(sent) < MAX_TX_PER_PERIOD:
        return now
    return sent[-MAX_TX_PER_PERIOD] + FAST_PERIODIC_TIME


def lacpdu_frame(port: Port) -> bytes:
    lacpdu = P.Lacpdu(port.actor_info(), port.partner, COLLECTOR_MAX_DELAY)
    return P.build_frame(port.mac, P.encode(lacpdu))


def transmit(port: Port, now: float) -> bytes | None:
    """The LACPDU frame to send now, if NTT is set and the rate allows; NTT is then cleared."""
    if not (port.ntt and may_transmit(port)) or allowed_at(port, now) > now:
        return None
    port.tx_times.append(now)
    port.ntt = False
    port.counters["lacpdu_tx"] += 1
    return lacpdu_frame(port)


def deadline(port: Port, now: float) -> float | None:
    """When a held-back NTT may go out, or None."""
    if port.ntt and may_transmit(port):
        at = allowed_at(port, now)
        if at > now:
            return at
    return None
