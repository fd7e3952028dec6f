"""Traffic counters for status: iproute2's stats64 shape, and ifconfig -v's lines."""


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
