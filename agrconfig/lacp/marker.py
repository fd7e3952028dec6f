"""Marker protocol (802.1AX-2014 §6.5): the responder, and a generator for port moves.

Both return the frames to send, as Transmit."""
from __future__ import annotations

from . import pdu as P
from .events import Transmit


def receive(port, pdu: P.MarkerPdu):
    """Answer a Marker Information on the port it came in on; count a Response."""
    if pdu.response:
        port.counters["marker_resp_rx"] += 1
        port.marker_pending.pop(pdu.transaction_id, None)
        return []
    port.counters["marker_rx"] += 1
    reply = P.MarkerPdu(True, pdu.requester_port, pdu.requester_system, pdu.transaction_id)
    port.counters["marker_tx"] += 1
    return [Transmit(port.port_id, P.build_frame(port.mac, P.encode(reply)))]


def generate(port, now):
    """Send a Marker Information: its Response says the partner has every earlier frame."""
    port.marker_tid = (port.marker_tid + 1) & 0xFFFFFFFF
    port.marker_pending[port.marker_tid] = now
    info = P.MarkerPdu(False, port.port_id & 0xFFFF, port.system.mac, port.marker_tid)
    port.counters["marker_tx"] += 1
    return [Transmit(port.port_id, P.build_frame(port.mac, P.encode(info)))]
