"""Sans-IO IEEE 802.1AX LACP and Marker protocol core: no sockets, no clocks, no threads."""
from .aggregator import LacpCore, port_key
from .events import DistributingChanged, PartnerChanged, SelectionChanged, Transition, Transmit

__all__ = ["LacpCore", "port_key", "Transmit", "DistributingChanged", "Transition", "PartnerChanged",
           "SelectionChanged"]
