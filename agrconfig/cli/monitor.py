"""`agrconfig agrN monitor`: stream port and partner events for people and scripts."""
import errno
import json
import signal
import sys
import time

from ..client import workers
from ..errors import AgrError, UsageError
from ..status import plain
from . import stats

POLL = 0.2


def parse(words):
    opts = {"interval": 10.0, "until": None, "timeout": None}
    i = 0
    while i < len(words):
        key = words[i]
        if key not in opts or i + 1 >= len(words):
            raise UsageError(f"monitor: expected interval N, until distributing|collecting or timeout N, got {key!r}")
        value = words[i + 1]
        if key == "until":
            if value not in ("distributing", "collecting"):
                raise UsageError(f"monitor: until {value!r}: say distributing or collecting")
            opts[key] = value
        else:
            try:
                opts[key] = float(value)
            except ValueError:
                raise UsageError(f"monitor: {key} {value!r} is not a number") from None
            if not 0 < opts[key] < 1e9:  # also refuses nan and inf
                raise UsageError(f"monitor: {key} must be a positive number of seconds")
        i += 2
    return opts


def port_view(p):
    """The facts of a port (a PortStatus) whose changes are events, as JSON values."""
    lacp = p.lacp
    return {"flags": p.flags, "carrier": p.carrier,
            "selected": plain(lacp.selected) if lacp else None, "mux": plain(lacp.mux_state) if lacp else None,
            "rx": plain(lacp.rx_state) if lacp else None,
            "actor_state": lacp.actor_state if lacp else None, "partner_state": lacp.partner_state if lacp else None,
            "partner": f"{lacp.partner_system}/{lacp.partner_key}" if lacp else None,
            # the kind, not the words: "partner silent for 3.1 s" changes every poll
            "reason": p.reason_kind}


def events(old, new):
    """Differences between two AggregateStatus (old: None at first), as event dicts."""
    out = []
    old_entries = {p.name: p for p in (old.ports if old is not None else ())}
    new_entries = {p.name: p for p in new.ports}
    old_ports = {n: port_view(p) for n, p in old_entries.items()}
    new_ports = {n: port_view(p) for n, p in new_entries.items()}
    for name in old_ports.keys() - new_ports.keys():
        out.append({"event": "port-detached", "port": name})
    for name, view in new_ports.items():
        before = old_ports.get(name)
        if before is None:
            out.append({"event": "port-attached", "port": name, **view, "reason": new_entries[name].reason})
            continue
        changed = {k: {"old": before[k], "new": v} for k, v in view.items() if before[k] != v}
        if "reason" in changed:
            changed["reason"] = {"old": old_entries[name].reason, "new": new_entries[name].reason}
        if changed:
            out.append({"event": "port-changed", "port": name, "changes": changed})
    return out


def fmt_text(ev):
    stamp = time.strftime("%H:%M:%S")
    if ev["event"] == "port-changed":
        parts = ", ".join(f"{k} {c['old']} -> {c['new']}" for k, c in ev["changes"].items() if k != "reason")
        why = ev["changes"].get("reason")
        if why:  # the new reason in words, or that the port distributes again
            parts += f"{'; ' if parts else ''}{'not distributing: ' + why['new'] if why['new'] else 'distributing'}"
        return f"{stamp} {ev['port']}: {parts}"
    if ev["event"] == "counters":
        line = f"{stamp} counters: " + "; ".join(
            f"{p}: " + " ".join(f"{k} {v}" for k, v in c.items()) for p, c in ev["ports"].items())
        if ev.get("rates"):
            line += "\n" + "\n".join(f"{stamp} rate {p}: {stats.rate_text(r)}" for p, r in ev["rates"].items())
        return line
    rest = " ".join(f"{k}={v}" for k, v in ev.items() if k not in ("event", "port"))
    return f"{stamp} {ev.get('port', '')}: {ev['event']} {rest}".rstrip()


def satisfied(st, until):
    """Every port is so, or a standby port (ready, and idle by design: agrproto failover's
    standby, agrmaxports' standby)."""
    def so(p):
        return p.distributing if until == "distributing" else p.collecting
    return bool(st.ports) and all(so(p) or p.standby for p in st.ports)


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM: the way a monitor is meant to end. A KeyboardInterrupt, so that no
    `except Exception` on the way swallows it, and main's own catch covers the last instant."""


def _stop(signum, frame):
    raise Stopped(signum)


def _catch_stops():
    """Stop on SIGINT and SIGTERM whatever was inherited: a background job of a non-interactive
    shell starts with SIGINT ignored. Returns the handlers to put back."""
    return {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}


def run(name, words, as_json=False, out=None):
    out = out or (lambda line: (print(line), sys.stdout.flush()))
    opts = parse(words)
    if not workers.exists(name):
        raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no such agr interface")
    start = time.monotonic()
    next_counters = start + opts["interval"]
    last = None
    sampled = None   # (time, {port: stats64}) of the last counters event: rates are since then
    emit = (lambda ev: out(json.dumps({"time": time.time(), "interface": name, **ev}))) if as_json else \
        (lambda ev: out(fmt_text(ev)))
    previous = {}
    try:
        previous = _catch_stops()
        while True:
            st = workers.worker_status(name)
            for ev in events(last, st):
                emit(ev)
            last = st
            if opts["until"] and satisfied(st, opts["until"]):
                return 0
            now = time.monotonic()
            if opts["timeout"] and now - start >= opts["timeout"]:
                if not opts["until"]:
                    return 0
                raise AgrError(errno.ETIMEDOUT, "monitor",
                               f"{name}: not every port {opts['until']} after {opts['timeout']:g} s")
            if sampled is None:
                sampled = (now, {p.name: p.stats64 for p in st.ports})
            if now >= next_counters:
                taken = {p.name: p.stats64 for p in st.ports}
                span = now - sampled[0]
                rates = {n: stats.rates(sampled[1].get(n), s64, span) for n, s64 in taken.items()
                         if s64 and n in sampled[1] and span > 0}
                emit({"event": "counters", "ports": {p.name: {**p.counters, **(p.lacp.counters if p.lacp else {})}
                                                     for p in st.ports}, "rates": rates})
                sampled = (now, taken)
                next_counters = now + opts["interval"]
            time.sleep(POLL)
    except KeyboardInterrupt:   # Stopped too
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
