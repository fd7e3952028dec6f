"""Sans-IO IEEE 802.1AX LACP and Marker protocol core: no sockets, no clocks, no threads."""
from .core import LacpCore, NotSettled
from .events import DistributingChanged, Output, PartnerChanged, SelectionChanged, Transition, Transmit
from .port import port_key
from .selection import SelectPolicy
from .snapshot import PortSnapshot

__all__ = ["LacpCore", "NotSettled", "Output", "PortSnapshot", "port_key", "Transmit", "DistributingChanged",
           "Transition", "PartnerChanged", "SelectionChanged", "SelectPolicy"]
