"""The worker's status report: agrconfig.status's AggregateStatus, built once, here, from the
aggregation's own views (LACP core, static, failover), the data path's counters, the link check
and each port's history. The control server sends its to_json(); no one else assembles status.
"""
from .. import options
from ..status import AggregateStatus, HistoryView, LinkcheckStatus, PortStatus, Protocol, frozen
from . import counters, reasons


def port_flags(index, collecting, distributing):
    """A port's status flags (options.PORT_FLAGS)."""
    return (options.PORT_COLLECTING if index in collecting else 0) | \
        (options.PORT_DISTRIBUTING if index in distributing else 0)


def aggregate_status(*, name, pid, mac, flags, aggregation, path, datapath_note, ports, collecting,
                     distributing, history, checker, now, speed=None, held=lambda index: None,
                     announced=None):
    """agrN's AggregateStatus. `ports` are the attached ports in order (worker/port.py's Member),
    `checker` agrlinkcheck's (None when off), `now` the monotonic time the link check is read at,
    `speed` what agrN reports in Mbit/s (None: unknown), `held(index)` the seconds until a port's
    held loss applies (agrdowndelay; None: none), `announced` the frames sent after moves
    (agrannounce)."""
    totals, port_counters = path.counters([p.index for p in ports])
    lacp = aggregation.status()
    entries = []
    for p in ports:
        entry = PortStatus(
            name=p.name, index=p.index, flags=port_flags(p.index, collecting, distributing),
            carrier=p.carrier, original_mac=p.orig["mac"], speed=p.speed, duplex_full=p.duplex_full,
            counters=frozen(port_counters[p.index]), options=frozen(p.options),
            stats64=frozen(counters.port_stats64(port_counters[p.index])),
            history=HistoryView.from_json(history.view(p.index)),
            linkcheck=None if checker is None else LinkcheckStatus(**checker.status(now, p.index)),
            down_delay_left=_rounded(held(p.index)), **aggregation.port_status(p.index))
        kind, words = reasons.explain(entry, lacp)
        entries.append(entry.replace(reason_kind=kind, reason=words))
    return AggregateStatus(
        name=name, pid=pid, mac=mac, flags=frozen(flags), protocol=Protocol(aggregation.kind),
        datapath=path.name, datapath_note=datapath_note, datapath_mode=path.mode, ports=tuple(entries),
        counters=frozen(totals), stats64=frozen(counters.agr_stats64(totals, port_counters)), lacp=lacp,
        speed=speed, announced=announced, **aggregation.status_extra())


def _rounded(seconds):
    return None if seconds is None else round(seconds, 3)
