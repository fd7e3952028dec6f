"""Traffic counters for status: iproute2's stats64 shape, and ifconfig -v's lines; the
ports' last transitions, and rates for monitor."""
import time


def from_kernel(stats):
    """The kernel's IFLA_STATS64 (pyroute2's names) in `ip -j -s link`'s shape."""
    if not stats:
        return {}
    return {"rx": {"bytes": stats.get("rx_bytes", 0), "packets": stats.get("rx_packets", 0),
                   "errors": stats.get("rx_errors", 0), "dropped": stats.get("rx_dropped", 0),
                   "over_errors": stats.get("rx_over_errors", 0), "multicast": stats.get("multicast", 0)},
            "tx": {"bytes": stats.get("tx_bytes", 0), "packets": stats.get("tx_packets", 0),
                   "errors": stats.get("tx_errors", 0), "dropped": stats.get("tx_dropped", 0),
                   "carrier_errors": stats.get("tx_carrier_errors", 0),
                   "collisions": stats.get("collisions", 0)}}


def lines(stats64, indent="\t"):
    """NetBSD ifconfig -v's 'input:' and 'output:' lines (errors and drops always shown)."""
    if not stats64:
        return []
    out = []
    for word, key in (("input", "rx"), ("output", "tx")):
        s = stats64.get(key, {})
        out.append(f"{indent}{word}: {s.get('packets', 0)} packets, {s.get('bytes', 0)} bytes,"
                   f" {s.get('errors', 0)} errors, {s.get('dropped', 0)} drops")
    return out


def transition_lines(transitions, indent="\t\t"):
    """A port's last state changes (status.Transition), oldest first, with time and cause."""
    out = []
    for t in transitions:
        stamp = time.strftime("%H:%M:%S", time.localtime(t.time)) + f".{int(t.time * 10) % 10}"
        out.append(f"{indent}{stamp} {t.machine} {t.old} -> {t.new} ({t.cause})")
    return out


def rates(old, new, seconds):
    """Per-second rates between two stats64: {rx_bps, rx_pps, tx_bps, tx_pps}."""
    out = {}
    for d in ("rx", "tx"):
        o, n = (old or {}).get(d, {}), (new or {}).get(d, {})
        out[f"{d}_bps"] = max(0, n.get("bytes", 0) - o.get("bytes", 0)) * 8 / seconds
        out[f"{d}_pps"] = max(0, n.get("packets", 0) - o.get("packets", 0)) / seconds
    return out


def rate_text(r):
    def bits(v):
        for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
            if v >= scale:
                return f"{v / scale:.2f} {unit}"
        return f"{v:.0f} bit/s"
    return (f"rx {bits(r['rx_bps'])} {r['rx_pps']:.0f} pkt/s, "
            f"tx {bits(r['tx_bps'])} {r['tx_pps']:.0f} pkt/s")
