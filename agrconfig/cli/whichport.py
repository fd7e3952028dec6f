"""`agrconfig agrN whichport DST [from SRC] [tcp|udp SPORT DPORT]`: the port a flow leaves by.

A query (Open vSwitch's bond/hash; bonding has none): the flow's first frame is built as agrN
would send it (agrN's MAC, the next hop's MAC from the neighbour table, the addresses and
ports) and hashed with the data paths' own function (worker/flowhash.py) under the current
policy, over the distributing ports in the data paths' order. Not a word of files, -n or --boot.
"""
import errno
import ipaddress
import json
import struct

from .. import options, worker
from ..errors import AgrError, UsageError
from ..net import rtnl

PROTOS = {"tcp": 6, "udp": 17}
USAGE = "whichport DST [from SRC] [tcp|udp SPORT DPORT]"


def parse(words):
    """-> (dst, src or None, (proto name, sport, dport) or None); UsageError otherwise."""
    def address(text):
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            raise UsageError(f"whichport: bad address {text!r} ({USAGE})") from None

    def port(text):
        if not (text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 0xFFFF):
            raise UsageError(f"whichport: bad port {text!r} (0-65535)")
        return int(text)

    if not words:
        raise UsageError(f"whichport: missing destination ({USAGE})")
    dst, src, l4, rest = address(words[0]), None, None, list(words[1:])
    if rest[:1] == ["from"]:
        if len(rest) < 2:
            raise UsageError(f"whichport: from: missing address ({USAGE})")
        src, rest = address(rest[1]), rest[2:]
        if src.version != dst.version:
            raise UsageError(f"whichport: {src} and {dst} are not of one family")
    if rest and rest[0] in PROTOS:
        if len(rest) < 3:
            raise UsageError(f"whichport: {rest[0]}: missing ports ({USAGE})")
        l4, rest = (rest[0], port(rest[1]), port(rest[2])), rest[3:]
    if rest:
        raise UsageError(f"whichport: unexpected {rest[0]!r} ({USAGE})")
    return dst, src, l4


def first_frame(dst_mac, src_mac, src, dst, l4):
    """The flow's frame as far as the hash reads it (Linux sets DF: not a fragment)."""
    proto = PROTOS[l4[0]] if l4 else (1 if dst.version == 4 else 58)
    ports = struct.pack("!HH4x", l4[1], l4[2]) if l4 else bytes(8)
    if dst.version == 4:
        l3 = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(ports), 0, 0x4000, 64, proto, 0) + src.packed + dst.packed
        etype = 0x0800
    else:
        l3 = struct.pack("!IHBB", 6 << 28, len(ports), proto, 64) + src.packed + dst.packed
        etype = 0x86DD
    return dst_mac + src_mac + struct.pack("!H", etype) + l3 + ports


def choose(ws, frame):
    """(port name or None, hash or None, the distributing ports in the data paths' order, why),
    from agrN's AggregateStatus."""
    table = [p.name for p in ws.distributing]
    flags = ws.flags
    if not table:
        return None, None, table, "no port distributes"
    if flags["proto"] == "failover":
        return table[0], None, table, "failover: the active port"
    if flags["proto"] == "slb":   # the source MAC's port (the VLAN is 0: agrN's own frames)
        src = bytes(frame[6:12])
        b = worker.slb_bucket(src, 0)
        plan = worker.slb_placement([p.index for p in ws.ports], {p.index for p in ws.distributing})
        port = ws.port_by_index(plan[b])
        return port.name, None, table, f"slb: source MAC {src.hex(':')}, bucket {b} of {len(plan)}"
    if flags["link0"]:
        return None, None, table, "round-robin (link0): each frame to the next port"
    h = worker.flow_hash(frame, flags["hash"])
    return table[h % len(table)], h, table, f"hash {options.format_policy(flags['hash'])}"


def query(name, words):
    dst, src, l4 = parse(words)
    from ..client import workers
    ws = workers.worker_status(name)
    if ws is None:
        detail = f"{name} is not an agr interface" if rtnl.link(name) else f"{name}: no such interface"
        raise AgrError(errno.ENXIO, "whichport", detail)
    oif, gateway, prefsrc = rtnl.route_to(str(dst), str(src) if src else None)
    link = rtnl.link(name)
    if link is None or oif != link.index:
        out = rtnl.link(index=oif) if oif else None
        raise AgrError(errno.ENETUNREACH, "whichport",
                       f"{dst} is reached through {out.name if out else 'no interface'}, not {name}")
    src = src or ipaddress.ip_address(prefsrc or ("0.0.0.0" if dst.version == 4 else "::"))
    hop = gateway or str(dst)
    hop_text = f"gateway {gateway}" if gateway else f"neighbour {dst}"
    dst_mac = rtnl.neighbour(link.index, hop)
    l2 = ws.flags["hash"] & options.L2
    if dst_mac is None and l2 and not ws.flags["link0"] and ws.flags["proto"] not in ("failover", "slb"):
        raise AgrError(errno.EHOSTUNREACH, "whichport",
                       f"no neighbour entry for {hop} on {name} (the hash takes MAC addresses): reach it first")
    frame = first_frame(rtnl.mac_bytes(dst_mac or "00:00:00:00:00:00"), rtnl.mac_bytes(link.mac), src, dst, l4)
    port, h, table, why = choose(ws, frame)
    return {"ifname": name, "dst": str(dst), "src": str(src),
            "proto": l4[0] if l4 else ("icmp" if dst.version == 4 else "ipv6-icmp"),
            "sport": l4[1] if l4 else None, "dport": l4[2] if l4 else None,
            "src_mac": link.mac, "dst_mac": dst_mac, "dst_mac_from": hop_text if dst_mac else None,
            "policy": why, "hash": h, "ports": table, "port": port}


def render(r):
    flow = f"{r['dst']} from {r['src']}" + (f" {r['proto']} {r['sport']} {r['dport']}" if r["sport"] is not None
                                             else f" {r['proto']}")
    lines = [f"{r['ifname']}: {flow}: {r['port'] or 'no single port'}"]
    if r["hash"] is not None:
        lines.append(f"\t{r['policy']}: {r['hash']:#010x} % {len(r['ports'])} ports ({', '.join(r['ports'])})")
    else:
        lines.append(f"\t{r['policy']}" + (f" ({', '.join(r['ports'])})" if r["ports"] else ""))
    if r["dst_mac"]:
        lines.append(f"\tMAC addresses: {r['src_mac']} ({r['ifname']}) -> {r['dst_mac']} ({r['dst_mac_from']})")
    return "\n".join(lines) + "\n"


def run(name, words, as_json=False):
    result = query(name, words)
    print(json.dumps(result, indent=2) if as_json else render(result), end="\n" if as_json else "")
    return 0
