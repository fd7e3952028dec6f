"""`agrconfig agrN monitor`: stream port and partner events for people and scripts."""
import errno
import json
import sys
import time

from ..client import workers
from ..errors import AgrError, UsageError

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
    """The facts of a port whose changes are events."""
    lacp = p.get("lacp") or {}
    return {"flags": p["flags"], "carrier": p["carrier"],
            "selected": lacp.get("selected"), "mux": lacp.get("mux_state"), "rx": lacp.get("rx_state"),
            "actor_state": lacp.get("actor_state"), "partner_state": lacp.get("partner_state"),
            "partner": f"{lacp.get('partner_system')}/{lacp.get('partner_key')}" if lacp else None}


def events(old, new):
    """Differences between two status snapshots, as event dicts."""
    out = []
    old_ports = {p["name"]: port_view(p) for p in (old or {}).get("ports", [])}
    new_ports = {p["name"]: port_view(p) for p in new["ports"]}
    for name in old_ports.keys() - new_ports.keys():
        out.append({"event": "port-detached", "port": name})
    for name, view in new_ports.items():
        before = old_ports.get(name)
        if before is None:
            out.append({"event": "port-attached", "port": name, **view})
            continue
        changed = {k: {"old": before[k], "new": v} for k, v in view.items() if before[k] != v}
        if changed:
            out.append({"event": "port-changed", "port": name, "changes": changed})
    return out


def fmt_text(ev):
    stamp = time.strftime("%H:%M:%S")
    if ev["event"] == "port-changed":
        parts = ", ".join(f"{k} {c['old']} -> {c['new']}" for k, c in ev["changes"].items())
        return f"{stamp} {ev['port']}: {parts}"
    if ev["event"] == "counters":
        return f"{stamp} counters: " + "; ".join(
            f"{p}: " + " ".join(f"{k} {v}" for k, v in c.items()) for p, c in ev["ports"].items())
    rest = " ".join(f"{k}={v}" for k, v in ev.items() if k not in ("event", "port"))
    return f"{stamp} {ev.get('port', '')}: {ev['event']} {rest}".rstrip()


def satisfied(st, until):
    """Every port is so; with agrproto failover a standby port (up, idle by design) counts."""
    bit = 2 if until == "distributing" else 1
    return bool(st["ports"]) and all(p["flags"] & bit or (p.get("failover") or {}).get("role") == "standby"
                                     for p in st["ports"])


def run(name, words, as_json=False, out=None):
    out = out or (lambda line: (print(line), sys.stdout.flush()))
    opts = parse(words)
    if not workers.exists(name):
        raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no such agr interface")
    start = time.monotonic()
    next_counters = start + opts["interval"]
    last = None
    emit = (lambda ev: out(json.dumps({"time": time.time(), "interface": name, **ev}))) if as_json else \
        (lambda ev: out(fmt_text(ev)))
    try:
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
            if now >= next_counters:
                emit({"event": "counters", "ports": {p["name"]: {**p["counters"],
                      **{k: v for k, v in (p.get("lacp") or {}).get("counters", {}).items()}}
                      for p in st["ports"]}})
                next_counters = now + opts["interval"]
            time.sleep(POLL)
    except KeyboardInterrupt:
        return 0
