"""ifconfig-style status, as text and as JSON (iproute2's shapes and bond key names), from the
worker's AggregateStatus (agrconfig.status)."""

from .. import jsontext, options
from ..client import inspect
from ..lacp.states import STATE_BITS
from ..net import rtnl
from ..status import SCHEMA_KEY, Protocol, Role, Selected, plain
from . import stats

# NetBSD's if_flags bits and names, in its order: what our users read every day.
BSD_FLAGS = (
    (0x1, "UP"), (0x2, "BROADCAST"), (0x4, "DEBUG"), (0x8, "LOOPBACK"), (0x10, "POINTOPOINT"),
    (0x40, "RUNNING"), (0x80, "NOARP"), (0x100, "PROMISC"), (0x200, "ALLMULTI"),
    (0x800, "SIMPLEX"), (0x1000, "LINK0"), (0x2000, "LINK1"), (0x4000, "LINK2"), (0x8000, "MULTICAST"),
)
LINUX_TO_BSD = {
    rtnl.IFF_UP: 0x1, rtnl.IFF_BROADCAST: 0x2, rtnl.IFF_DEBUG: 0x4, rtnl.IFF_LOOPBACK: 0x8,
    rtnl.IFF_POINTOPOINT: 0x10, rtnl.IFF_RUNNING: 0x40, rtnl.IFF_NOARP: 0x80,
    rtnl.IFF_PROMISC: 0x100, rtnl.IFF_ALLMULTI: 0x200, rtnl.IFF_MULTICAST: 0x8000,
}
# Aggregation kinds as bonding's mode names (static keeps the name it had before agrproto).
MODES = {Protocol.LACP: "802.3ad", Protocol.STATIC: "static", Protocol.FAILOVER: "active-backup",
         Protocol.SLB: "balance-slb"}
PORT_FLAGS = options.PORT_FLAGS


def bits_text(value, table):
    names = ",".join(name for bit, name in table if value & bit)
    return f"{value:#x}<{names}>" if value else "0x0"


def lacp_state_text(value):
    return bits_text(value, STATE_BITS)


def bsd_flags(link, ws=None):
    flags = 0
    for linux, bsd in LINUX_TO_BSD.items():
        if link.flags & linux:
            flags |= bsd
    if link.type == rtnl.ARPHRD_ETHER:
        flags |= 0x800  # SIMPLEX: Ethernet cannot hear itself
    if ws:
        for option in options.OPTIONS:
            if option.ifflag and ws.flags[option.key] == option.ifflag_value:
                flags |= option.ifflag
    return flags


def document(facts):
    """What we show about one interface, as a dict (the JSON document, before json_doc)."""
    link, addrs, member_of, ws = facts
    flags = bsd_flags(link, ws)
    doc = {
        "ifname": link.name, "ifindex": link.index, "flags": flags,
        "flags_str": [n for bit, n in BSD_FLAGS if flags & bit], "mtu": link.mtu,
        "address": link.mac, "operstate": link.operstate, "carrier": link.carrier,
        "addr_info": [{"family": "inet" if a.family == 2 else "inet6", "local": a.address,
                       "prefixlen": a.prefixlen, "broadcast": a.broadcast, "scope": a.scope,
                       "flags": a.flags} for a in addrs],
        # agrN's own: its worker counts what the data path carries (the kernel's stay 0 on
        # the fast path); an older worker that does not count falls back to the kernel's.
        "stats64": plain(ws.stats64) if ws and ws.stats64 is not None else stats.from_kernel(link.stats),
    }
    if member_of:
        doc["master"] = member_of
    if ws:
        doc["agr"] = ws
    return doc


def render_text(doc, verbose=False):
    lines = [f"{doc['ifname']}: flags={bits_text(doc['flags'], BSD_FLAGS)} mtu {doc['mtu']}"]
    ws = doc.get("agr")
    if ws:
        lines += agr_lines(ws, verbose)
    if doc["address"] and doc["address"] != "00:00:00:00:00:00":
        lines.append(f"\taddress: {doc['address']}")
    if "master" in doc:
        lines.append(f"\tagr: {doc['master']}")
    if ws:   # as ifconfig's media line: what agrN reports to ethtool (its distributing ports' sum)
        lines.append(f"\tmedia: {media_text(ws.speed)}")
    lines.append(f"\tstatus: {'active' if doc['carrier'] else 'no carrier'}")
    for a in doc["addr_info"]:
        if a["family"] == "inet":
            bcast = f" broadcast {a['broadcast']}" if a["broadcast"] else ""
            lines.append(f"\tinet {a['local']}/{a['prefixlen']}{bcast} flags {a['flags'] & 0xff:#x}")
        else:
            scope = f"%{doc['ifname']}" if a["local"].lower().startswith("fe80") else ""
            sid = f" scopeid {doc['ifindex']:#x}" if scope else ""
            lines.append(f"\tinet6 {a['local']}{scope}/{a['prefixlen']} flags {a['flags'] & 0xff:#x}{sid}")
    if verbose:
        lines += stats.lines(doc["stats64"])
    return "\n".join(lines) + "\n"


def media_text(speed):
    return f"Ethernet {speed}Mb/s full-duplex" if speed else "Ethernet (speed unknown: no port distributing)"


def duplex_text(duplex_full):
    return None if duplex_full is None else ("full" if duplex_full else "half")


def agr_lines(ws, verbose=False):
    out = []
    f = ws.flags
    proto = "loadbalance (link1: no LACP)" if ws.protocol == Protocol.STATIC else (
        f"failover (no LACP), active {_active_port(ws) or 'none'}" if ws.protocol == Protocol.FAILOVER else
        _slb_text(ws) if ws.protocol == Protocol.SLB else
        f"lacp {'active' if f['lacp_active'] else 'passive'}, "
        f"timeout {'fast' if f['lacp_fast'] else 'slow'}, "
        f"{'strict' if f['lacp_strict'] else 'optimistic (-lacpstrict)'}, "
        f"system {_system_text(ws)}")
    dist = "round-robin (link0)" if f["link0"] else f"hash {options.format_policy(f['hash'])}"
    if ws.protocol == Protocol.SLB:   # agrhash and link0 do not apply
        dist = "source MAC and VLAN"
    out.append(f"\tagr: {proto}; distribution {dist}; datapath {ws.datapath}"
               f"{_limits_text(f)}{_mac_text(ws)}")
    check = f["linkcheck"]
    if check:   # agrlinkcheck: which addresses vouch for a port, and how often they are asked
        applies = "" if ws.protocol != Protocol.LACP else " (not with lacp)"
        out.append(f"\tlinkcheck: {','.join(check['targets'])} interval {check['interval']} ms{applies}")
    for p in ws.ports:
        out.append(f"\tagrport: {p.name}, flags={bits_text(p.flags, PORT_FLAGS)}")
        if p.reason:
            out.append(f"\t\tnot distributing: {p.reason}")
        if p.lacp is None and p.failover is None and p.wtr_left is not None:
            out.append(f"\t\t{_wait_text(p.wtr_left)}")   # loadbalance: the wait is all there is
        if p.down_delay_left is not None:   # agrdowndelay: a loss held
            out.append(f"\t\tlink lost, leaves in {p.down_delay_left:.1f} s unless it returns (agrdowndelay)")
        if p.linkcheck is not None:   # agrlinkcheck's verdict on this port
            lc = p.linkcheck
            heard = "never" if lc.heard_ago is None else f"{lc.heard_ago:.1f}s ago"
            out.append(f"\t\tlinkcheck {'up' if lc.up else 'down'}, target last heard {heard}")
        fo = p.failover
        if fo is not None:   # agrproto failover: the port's role and what ranks it
            wait = f", {_wait_text(p.wtr_left)}" if p.wtr_left is not None else ""
            out.append(f"\t\t{fo.role}, priority {p.port_priority:#06x},{p.index}{wait}")
        lacp = p.lacp
        if lacp is not None:
            out.append(f"\t\tactor: state={lacp_state_text(lacp.actor_state)} key {lacp.actor_key:#06x}"
                       f" port {lacp.actor_port_priority:#06x},{p.index}")
            out.append(f"\t\tpartner: state={lacp_state_text(lacp.partner_state)}"
                       f" system {lacp.partner_system_priority:#06x},{lacp.partner_system}"
                       f" key {lacp.partner_key:#06x} port {lacp.partner_port_priority:#06x},"
                       f"{lacp.partner_port}")
            # selected, standby (attached, another aggregation distributes) or unselected
            out.append(f"\t\t{_selected_text(lacp)}, mux {lacp.mux_state}, receive {lacp.rx_state};"
                       f" lacpdu rx {lacp.counter('lacpdu_rx')} tx {lacp.counter('lacpdu_tx')}"
                       f" err {lacp.counter('lacpdu_err')}; marker rx {lacp.counter('marker_rx')}"
                       f" tx {lacp.counter('marker_tx')}")
        if verbose:
            out += stats.lines(p.stats64, "\t\t")
            out += stats.transition_lines(p.history.transitions, "\t\t")
    return out


def _limits_text(f):
    """The port limits and lacpfallback, when not the defaults: '; maxports 1; minports 2'."""
    text = f"; maxports {f['max_ports']}" if f["max_ports"] != options.BY_KEY["max_ports"].default else ""
    text += f"; minports {f['min_ports']}" if f["min_ports"] != options.BY_KEY["min_ports"].default else ""
    text += "; lacpfallback" if f["lacp_fallback"] else ""
    text += f"; wtr {f['wtr_time']} s" if f["wtr_time"] else ""
    text += f"; select {f['select']}" if f["select"] != options.BY_KEY["select"].default else ""
    return text + _announce_text(f)


def _announce_text(f):
    """agrannounce and agrdowndelay, when not the defaults: '; announce 3 interval 200 ms'."""
    announce = f.get("announce") or options.BY_KEY["announce"].default   # a 0.2.0 worker has neither
    text = "" if announce == options.BY_KEY["announce"].default else \
        f"; announce {announce['count']} interval {announce['interval']} ms"
    return text + (f"; downdelay {f['down_delay']} ms" if f.get("down_delay") else "")


def _mac_text(ws):
    """agrmacpolicy and lladdr, when not the defaults: '; macpolicy follow; lladdr 02:..'."""
    f = ws.flags
    text = ""
    if f["mac_policy"] != options.BY_KEY["mac_policy"].default:   # bonding honours it in active-backup only
        text += f"; macpolicy {f['mac_policy']}" + ("" if ws.protocol == Protocol.FAILOVER else " (failover only)")
    return text + (f"; lladdr {f['lladdr']}" if f["lladdr"] else "")


def _fallback_port(ws):
    """The name of the port carrying traffic in lacpfallback, or None."""
    port = ws.fallback_port
    return None if port is None else port.name


def _selected_text(lacp):
    # standby (agrmaxports) is a spare of the distributing aggregation, not another one
    text = str(lacp.selected).lower()
    text = text + " (agrmaxports)" if lacp.limited else text
    text = text + ", fallback" if lacp.fallback else text
    return text + f", {_wait_text(lacp.wtr_left)}" if lacp.wtr_left is not None else text


def _wait_text(left):
    """agrwtr's wait, in the same words whichever aggregation counts it."""
    return f"wait-to-restore {left:.1f} s left"


def _slb_text(ws):
    """agrproto slb's line: the designated port, the learned MACs and the moves so far."""
    s = ws.slb
    port = ws.designated_port
    text = f"slb (no LACP), designated {port.name if port else 'none'}"
    return text if s is None else f"{text}, {s.learned} MACs learned, {s.moved} moved"


def _active_port(ws):
    """agrproto failover's active port's name, or None."""
    port = ws.active_port
    return None if port is None else port.name


def _system_text(ws):
    """Our LACP System ID as status shows it: priority,MAC; '(lacpsysid)' when the MAC is set
    rather than agrN's own."""
    f = ws.flags
    prio = f["lacp_sysprio"]
    if f["lacp_sysid"]:
        return f"{prio:#06x},{f['lacp_sysid']} (lacpsysid)"
    mac = (ws.lacp.system if ws.lacp is not None else None) or ws.mac or "?"
    return f"{prio:#06x},{mac}"


def render(name, as_json=False, verbose=False):
    doc = document(inspect.describe(name))
    if as_json:
        return jsontext.dumps(json_doc(doc), indent=2, default=plain) + "\n"   # a reply's odd values too
    return render_text(doc, verbose)


def render_all(as_json=False, verbose=False):
    docs = [document(facts) for facts in inspect.describe_all()]
    if as_json:
        return jsontext.dumps([json_doc(d) for d in docs], indent=2, default=plain) + "\n"
    return "".join(render_text(d, verbose) for d in docs)


# agrmacpolicy in bonding's words (fail_over_mac)
FAIL_OVER_MAC = {"same": "none", "active": "active", "follow": "follow"}


def json_doc(doc):
    """The JSON document, with iproute2's bond key names where they fit."""
    out = {k: v for k, v in doc.items() if k != "agr"}
    ws = doc.get("agr")
    if ws:
        f = ws.flags
        info = {
            "mode": MODES.get(ws.protocol, str(ws.protocol)),
            "xmit_hash_policy": "round-robin" if f["link0"] else f["hash"],
            "ad_lacp_rate": "fast" if f["lacp_fast"] else "slow",
            "ad_lacp_active": "on" if f["lacp_active"] else "off",
            "ad_actor_sys_prio": f["lacp_sysprio"],
            "ad_actor_system": f["lacp_sysid"] or (ws.lacp.system if ws.lacp is not None else None),
            "datapath": ws.datapath, "datapath_mode": ws.datapath_mode,
            "flags": plain(ws.flags),
            "ad_info": _ad_info(ws),
            SCHEMA_KEY: ws.schema,   # the worker's status schema (0: release 0.2.0's worker)
        }
        out["linkinfo"] = {"info_kind": "agr", "info_data": info}
        info["speed"] = ws.speed   # Mbit/s, as ethtool shows agrN's; None: unknown
        info["min_links"] = f["min_ports"]   # bonding's name
        info["fallback_port"] = _fallback_port(ws)
        info["updelay"] = f["wtr_time"] * 1000   # bonding's, ms
        info["downdelay"] = f.get("down_delay", 0)   # bonding's, ms (0.2.0's workers: none)
        announce = f.get("announce") or options.BY_KEY["announce"].default
        info.update(num_grat_arp=announce["count"], num_unsol_na=announce["count"],   # bonding's
                    peer_notif_delay=announce["interval"])
        check = f["linkcheck"]
        if check:   # bonding's names
            info.update(arp_interval=check["interval"],
                        arp_ip_target=[t for t in check["targets"] if ":" not in t],
                        ns_ip6_target=[t for t in check["targets"] if ":" in t])
        if ws.protocol == Protocol.FAILOVER:    # bonding's active_slave
            info["active_slave"] = _active_port(ws)
        if ws.protocol == Protocol.SLB:   # the designated port by name, as active_slave
            port = ws.designated_port
            info["slb"] = {"designated": port.name if port else None,
                           "learned": ws.slb.learned if ws.slb else 0, "moved": ws.slb.moved if ws.slb else 0}
        info["fail_over_mac"] = FAIL_OVER_MAC.get(f["mac_policy"], f["mac_policy"])   # bonding's, as set (it applies to failover)
        out["agrports"] = [_port_json(p) for p in ws.ports]
        out["counters"] = plain(ws.counters)
    return out


def _ad_info(ws):
    lacp = ws.lacp
    if lacp is None:
        return None
    agg = lacp.aggregator
    return {"actor_system": lacp.system, "actor_sys_priority": lacp.system_priority,
            "actor_key": agg.actor_key, "partner_key": agg.partner_key,
            "partner_mac": agg.partner_system, "ports": len(agg.ports)}


def _port_json(p):
    out = {"ifname": p.name, "ifindex": p.index, "flags": p.flags,
           "flags_str": [n for bit, n in PORT_FLAGS if p.flags & bit],
           "carrier": p.carrier, "perm_hwaddr": p.original_mac, "counters": plain(p.counters),
           "stats64": plain(p.stats64) if p.stats64 is not None else {}, "reason": p.reason,
           "history": plain(p.history),
           "options": plain(p.options),
           "actor_port_prio": p.port_priority,
           "speed": p.speed, "duplex": duplex_text(p.duplex_full)}
    lacp = p.lacp
    if lacp is not None:
        out.update({
            "ad_aggregator_id": 1 if lacp.selected == Selected.SELECTED else None,
            "ad_actor_oper_port_state": lacp.actor_state,
            "ad_actor_oper_port_state_str": list(lacp.actor_state_str),
            "ad_partner_oper_port_state": lacp.partner_state,
            "ad_partner_oper_port_state_str": list(lacp.partner_state_str),
            "actor_key": lacp.actor_key, "partner_mac": lacp.partner_system,
            "partner_key": lacp.partner_key, "partner_port": lacp.partner_port,
            "partner_system_priority": lacp.partner_system_priority,
            "partner_port_priority": lacp.partner_port_priority,
            "selected": str(lacp.selected), "standby": lacp.standby,
            "mux_state": str(lacp.mux_state), "rx_state": str(lacp.rx_state),
            "lacp_counters": plain(lacp.counters),
        })
        out["standby_maxports"] = lacp.limited
        out["fallback"] = lacp.fallback
    out["wtr_left"] = p.wtr_left   # one field for LACP, loadbalance and failover
    if p.linkcheck is not None:
        out["linkcheck"] = plain(p.linkcheck)
    if p.down_delay_left is not None:   # agrdowndelay: the port goes then, unless its link returns
        out["down_delay_left"] = p.down_delay_left
    if p.failover is not None:   # bonding's sysfs slave state: active or backup
        out["state"] = "active" if p.failover.role == Role.ACTIVE else "backup"
        out["failover"] = plain(p.failover)
    return out
