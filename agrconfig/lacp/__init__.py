"""Sans-IO IEEE 802.1AX LACP and Marker protocol core: no sockets, no clocks, no threads.

The names below are loaded on first use (PEP 562): a status command imports one state Enum
(agrconfig.status) or lacp.pdu's constants, and must not pay for the whole core at its start.
"""
_WHERE = {
    "LacpCore": "core", "NotSettled": "core",
    "DistributingChanged": "events", "Output": "events", "PartnerChanged": "events",
    "SelectionChanged": "events", "Transition": "events", "Transmit": "events",
    "port_key": "port", "SelectPolicy": "selection", "PortSnapshot": "snapshot",
}

__all__ = ["LacpCore", "NotSettled", "Output", "PortSnapshot", "port_key", "Transmit", "DistributingChanged",
           "Transition", "PartnerChanged", "SelectionChanged", "SelectPolicy"]


def __getattr__(name):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # __import__, not importlib.import_module: the importlib package imports warnings (1 ms)
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
