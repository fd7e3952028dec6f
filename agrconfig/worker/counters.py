"""agrN's traffic totals, in iproute2's stats64 shape, from the data path's own counters.

On the fast path the kernel's counters of agrN stay at zero (tc redirects before the TAP
driver counts), so the totals are summed from what each data path counts per port: every
frame agrN sends leaves on exactly one port and every frame it receives arrives on exactly
one, so the sums count each frame once. Slow Protocols frames (LACPDUs, Markers) are the
ports' own traffic, never agrN's: neither data path counts them here.
"""


def _get(c, key):
    return int(c.get(key, 0) or 0)


def port_stats64(c):
    """One port's share of agrN's traffic: what it carried for agrN, and what it dropped
    (frames that arrived while it was not collecting)."""
    return {"rx": {"bytes": _get(c, "rx_bytes"), "packets": _get(c, "rx_packets"),
                   "errors": 0, "dropped": _get(c, "rx_dropped")},
            "tx": {"bytes": _get(c, "tx_bytes"), "packets": _get(c, "tx_packets"),
                   "errors": 0, "dropped": 0}}


def agr_stats64(totals, ports):
    """agrN's totals: the ports' sums, plus what only agrN drops or fails (no distributing
    port; a write or send the relay could not make)."""
    out = {"rx": {"bytes": 0, "packets": 0, "errors": _get(totals, "rx_errors"), "dropped": 0},
           "tx": {"bytes": 0, "packets": 0, "errors": _get(totals, "tx_errors"),
                  "dropped": _get(totals, "tx_drop_no_port")}}
    for c in ports.values():
        s = port_stats64(c)
        for direction in ("rx", "tx"):
            for key in ("bytes", "packets", "dropped"):
                out[direction][key] += s[direction][key]
    return out

