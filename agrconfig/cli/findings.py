"""diagnose's rules: what is wrong with an aggregate, from what was read about it (Facts), as
Findings, each with its evidence (the numbers read) and the action to take.

Pure: a rule takes the Facts (the worker's AggregateStatus, the kernel's view of agrN and its
ports read twice `interval` seconds apart, the network managers' claims) and returns Findings;
diagnose.py reads the Facts at the edge. A new finding is one more rule in RULES.
"""
from enum import Enum
from types import MappingProxyType

from ..lacp import pdu as P
from ..record import Record
from ..status import Protocol, RxState, Selected

FLAP_WINDOW = 600.0      # seconds: "flapping" counts the times a port stopped distributing in it
FLAPS = 3                # that many in the window is a flap
GAP = 1.5                # an inter-arrival time above GAP periodic intervals lost a LACPDU
OUT_OF_SYNC = 2          # periodic intervals the partner may take to come in sync
NO_PARTNER = "00:00:00:00:00:00"
# Frames on a port that never heard a LACPDU that say a static LAG sends to it: more than the
# handful a lone host's IPv6 autoconfiguration sends on a cable (solicitations, MLD reports).
STATIC_FRAMES = 10
# The kernel's counters of a port that mean trouble when they grow (rtnl.STATS64's names).
TROUBLE = ("rx_errors", "tx_errors", "rx_dropped", "tx_dropped", "rx_crc_errors", "rx_frame_errors",
           "rx_length_errors", "rx_fifo_errors", "rx_missed_errors", "rx_over_errors", "tx_carrier_errors",
           "tx_aborted_errors", "tx_fifo_errors", "collisions")


class Severity(Enum):
    WARNING = "warning"      # works, less well than it could, or will fail on the next fault
    ERROR = "error"          # traffic is not carried as configured


class Finding(Record):
    """One thing found: `code` (stable, for scripts), the ports it concerns, what is wrong
    (`message`), the numbers read (`evidence`: name -> value) and what to do (`action`)."""
    __slots__ = ("severity", "code", "ports", "message", "evidence", "action")
    DEFAULTS = {"ports": ()}

    def to_json(self):
        return {"severity": self.severity.value, "code": self.code, "ports": list(self.ports),
                "message": self.message, "evidence": dict(self.evidence), "action": self.action}


def finding(severity, code, ports, message, evidence, action):
    return Finding(severity, code, tuple(ports), message, MappingProxyType(dict(evidence)), action)


class LinkFacts(Record):
    """The kernel's view of one link: MTU, and its IFLA_STATS64 counters at the start and the end."""
    __slots__ = ("mtu", "before", "after")
    DEFAULTS = {"before": MappingProxyType({}), "after": MappingProxyType({})}

    def growth(self, key):
        return max(0, self.after.get(key, 0) - self.before.get(key, 0))


class Claim(Record):
    """A network manager's state file says it manages `ifname` (`detail`: what the file says)."""
    __slots__ = ("manager", "ifname", "detail")


class Facts(Record):
    """What diagnose read: the worker's status (None: it could not be read), agrN's and each
    port's LinkFacts by name, the interval between the two counter readings, the claims."""
    __slots__ = ("name", "status", "links", "interval", "claims")
    DEFAULTS = {"links": MappingProxyType({}), "interval": 0.0, "claims": ()}


# -- helpers ------------------------------------------------------------------------------------

def _lacp(facts):
    st = facts.status
    return st is not None and st.protocol == Protocol.LACP


def _lacp_ports(facts):
    return [p for p in facts.status.ports if p.lacp is not None] if _lacp(facts) else []


def _never_heard(port):
    return not port.lacp.counter("lacpdu_rx") and port.history.lacpdu_age is None


def _frames_in(port):
    """Frames other than Slow Protocols that arrived on the port since it joined (the data
    path counts them, carried or dropped)."""
    return port.counters.get("rx_packets", 0) + port.counters.get("rx_dropped", 0)


def _traffic(port):
    return _frames_in(port) >= STATIC_FRAMES


def period(port):
    """The partner's periodic interval: fast (1 s) when our Timeout bit asks for it, else slow (30 s)."""
    return 1.0 if port.lacp.actor_state & P.TIMEOUT else 30.0


def _heard(port):
    return port.lacp.rx_state == RxState.CURRENT and port.lacp.partner_system != NO_PARTNER


# -- the rules ------------------------------------------------------------------------------------

def static_lag(facts):
    """Frames arrive on ports that never heard a LACPDU: the switch runs a static LAG."""
    ports = [p for p in _lacp_ports(facts) if _never_heard(p) and _traffic(p)]
    if not ports:
        return []
    return [finding(Severity.ERROR, "static-lag", [p.name for p in ports],
                    "frames arrive but no LACPDU does: the switch seems to run a static LAG (LACP off)",
                    {f"{p.name}.frames_in": _frames_in(p) for p in ports} |
                    {f"{p.name}.lacpdu_rx": 0 for p in ports},
                    "set `link1` here to match the static LAG, or keep LACP with `lacpfallback`, "
                    "or ask for LACP (mode active) on the switch's port-channel")]


def passive_silent(facts):
    """lacpmode passive, and nothing heard: a passive partner waits for us as we wait for it."""
    if not _lacp(facts) or facts.status.flags.get("lacp_active", True):
        return []
    ports = [p for p in _lacp_ports(facts) if _never_heard(p) and not _traffic(p)]
    if not ports:
        return []
    return [finding(Severity.ERROR, "passive-silent", [p.name for p in ports],
                    "we are passive and hear no LACPDU: the partner may be passive too",
                    {f"{p.name}.lacpdu_rx": 0 for p in ports} | {"lacpmode": "passive"},
                    "set `lacpmode active` (or make the switch's side active)")]


def no_lacp_heard(facts):
    """Active, nothing heard and no frames: no LACP at the far end, or the cable goes elsewhere."""
    if not _lacp(facts) or not facts.status.flags.get("lacp_active", True):
        return []
    ports = [p for p in _lacp_ports(facts) if p.carrier and _never_heard(p) and not _traffic(p)
             and p.lacp.counter("lacpdu_tx")]
    if not ports:
        return []
    return [finding(Severity.ERROR, "no-lacp-heard", [p.name for p in ports],
                    "no LACPDU heard, and next to no frame: the far end runs no LACP on this link, or the "
                    "cable goes elsewhere",
                    {f"{p.name}.lacpdu_tx": p.lacp.counter("lacpdu_tx") for p in ports} |
                    {f"{p.name}.frames_in": _frames_in(p) for p in ports} |
                    {f"{p.name}.lacpdu_rx": 0 for p in ports},
                    "check the cabling and ask for LACP on the switch's port; `lacpfallback` keeps one port "
                    "working meanwhile")]


def two_partners(facts):
    """The ports hear more than one partner system: only one aggregation carries traffic."""
    heard = [p for p in _lacp_ports(facts) if _heard(p)]
    systems = {}
    for p in heard:
        systems.setdefault(p.lacp.partner_system, []).append(p.name)
    if len(systems) < 2:
        return []
    chosen = facts.status.lacp.aggregator.partner_system
    return [finding(Severity.ERROR, "two-partners", [n for names in systems.values() for n in names],
                    f"the ports reach {len(systems)} partner systems, so only the aggregation with "
                    f"{chosen or 'one of them'} carries traffic",
                    {f"partner {system}": ",".join(names) for system, names in systems.items()} |
                    {"selected": chosen},
                    "cable every port to one switch, or join the switches into one LAG (MLAG, stacking); "
                    "`agrselect` chooses which aggregation carries traffic; `agrproto slb` shares "
                    "the load without switch configuration")]


def partner_key_differs(facts):
    """One partner system, several keys: the switch put the ports in different LAGs."""
    by_system = {}
    for p in _lacp_ports(facts):
        if _heard(p):
            by_system.setdefault(p.lacp.partner_system, {}).setdefault(p.lacp.partner_key, []).append(p.name)
    out = []
    for system, keys in by_system.items():
        if len(keys) > 1:
            out.append(finding(Severity.ERROR, "partner-key-differs", [n for ns in keys.values() for n in ns],
                               f"partner {system} gives the ports different keys: it puts them in different LAGs",
                               {f"key {key:#x}": ",".join(names) for key, names in keys.items()},
                               "put these ports in one port-channel on the switch, with one speed"))
    return out


def speeds_differ(facts):
    """The ports run at different speeds: only like links aggregate (our key follows the speed)."""
    st = facts.status
    if st is None:
        return []
    speeds = {}
    for p in st.ports:
        if p.carrier and p.speed:
            speeds.setdefault(p.speed, []).append(p.name)
    if len(speeds) < 2:
        return []
    why = ("only ports of one speed aggregate" if st.protocol == Protocol.LACP
           else "flows are spread evenly, so the slower port fills first")
    return [finding(Severity.WARNING, "speeds-differ", [n for ns in speeds.values() for n in ns],
                    f"the ports run at different speeds: {why}",
                    {f"{speed} Mb/s": ",".join(names) for speed, names in sorted(speeds.items())},
                    "use ports of one speed, or check autonegotiation at both ends (ethtool PORT)")]


def partner_out_of_sync(facts):
    """Selected and hearing the partner, whose Synchronization bit has stayed off too long."""
    out = []
    for p in _lacp_ports(facts):
        lacp = p.lacp
        age = p.history.mux_age
        if (not _heard(p) or lacp.partner_state & P.SYNC or lacp.selected != Selected.SELECTED
                or age is None or age <= OUT_OF_SYNC * period(p)):
            continue
        out.append(finding(Severity.ERROR, "partner-out-of-sync", [p.name],
                           f"the partner has been out of sync on {p.name} for {age:.0f} s "
                           f"(more than {OUT_OF_SYNC} periodic intervals of {period(p):.0f} s)",
                           {"seconds": round(age, 1), "partner_state": f"{lacp.partner_state:#x}",
                            "mux": str(lacp.mux_state)},
                           "the switch keeps this port out of its LAG: check that it is in the same "
                           "port-channel as the others, not suspended or hot-standby (max-bundle)"))
    return out


def lacpdu_gaps(facts):
    """Inter-arrival times well above the partner's periodic interval: LACPDUs are lost."""
    out = []
    for p in _lacp_ports(facts):
        intervals = p.history.lacpdu_intervals or ()
        gaps = [i for i in intervals if i > GAP * period(p)]
        if not gaps:
            continue
        out.append(finding(Severity.WARNING, "lacpdu-gaps", [p.name],
                           f"LACPDUs are lost on {p.name}: {len(gaps)} of the last {len(intervals)} "
                           f"came more than {GAP} periodic intervals apart",
                           {"gaps": len(gaps), "intervals": len(intervals), "longest": round(max(gaps), 2),
                            "period": period(p), "expired": p.history.counts.get("expired", 0)},
                           "check the link for errors and the switch for control-plane policing or a "
                           "busy CPU; nothing between may filter 01:80:c2:00:00:02"))
    return out


def flapping(facts):
    """A port that stopped distributing FLAPS times or more within FLAP_WINDOW."""
    if facts.status is None:
        return []
    out = []
    for p in facts.status.ports:
        recent = [a for a in p.history.flap_ages or () if a <= FLAP_WINDOW]
        if len(recent) < FLAPS:
            continue
        out.append(finding(Severity.WARNING, "flapping", [p.name],
                           f"{p.name} stopped distributing {len(recent)} times in the last "
                           f"{FLAP_WINDOW / 60:.0f} minutes",
                           {"flaps": len(recent), "expired": p.history.counts.get("expired", 0),
                            "defaulted": p.history.counts.get("defaulted", 0)},
                           "check the cable, the optics and the port's errors at both ends; `agrwtr SECONDS` "
                           "keeps a returning port out until it has stayed up"))
    return out


def mtu_differs(facts):
    agr = facts.links.get(facts.name)
    if agr is None or facts.status is None:
        return []
    ports = [(p.name, facts.links[p.name].mtu) for p in facts.status.ports
             if p.name in facts.links and facts.links[p.name].mtu != agr.mtu]
    if not ports:
        return []
    return [finding(Severity.ERROR, "mtu-differs", [n for n, _ in ports],
                    f"the MTU of {', '.join(n for n, _ in ports)} differs from {facts.name}'s",
                    {facts.name: agr.mtu} | dict(ports),
                    f"set the MTU on {facts.name} only (`agrconfig {facts.name} mtu N` sets every port); "
                    "a port that refuses it cannot carry that MTU")]


def half_duplex(facts):
    if facts.status is None:
        return []
    ports = [p for p in facts.status.ports if p.carrier and p.duplex_full is False]
    if not ports:
        return []
    return [finding(Severity.ERROR, "half-duplex", [p.name for p in ports],
                    "half duplex: such a link cannot aggregate (802.1AX), it stays individual",
                    {f"{p.name}.speed": p.speed for p in ports} | {f"{p.name}.duplex": "half" for p in ports},
                    "set full duplex at both ends, or autonegotiation (`ethtool -s PORT autoneg on`); "
                    "check the cable")]


def errors_grow(facts):
    if facts.status is None or not facts.interval:
        return []
    out = []
    for p in facts.status.ports:
        link = facts.links.get(p.name)
        if link is None:
            continue
        grown = {k: link.growth(k) for k in TROUBLE if link.growth(k)}
        if not grown:
            continue
        out.append(finding(Severity.WARNING, "errors-grow", [p.name],
                           f"errors or drops grew on {p.name} in {facts.interval:g} s",
                           grown | {"interval": facts.interval},
                           "check the cable, the optics and the switch port's counters; drops on "
                           "sending: the far end's MTU may be smaller, or a queue overflows"))
    return out


def no_fast_path(facts):
    """The relay carries the traffic although the eBPF fast path was allowed: say why."""
    st = facts.status
    if st is None or st.datapath != "relay" or st.flags.get("datapath") == "relay" or not st.datapath_note:
        return []
    note = st.datapath_note
    lower = note.lower()
    if "not permitted" in lower or "permission" in lower:
        why, action = "capability", ("the worker lacks CAP_BPF (or CAP_SYS_ADMIN): run agrconfig with full root "
                                     "privileges (in a container, grant CAP_BPF and CAP_NET_ADMIN)")
    elif "big-endian" in lower:
        why, action = "host", "none: the fast path needs a little-endian host; the relay is slower"
    elif "not implemented" in lower:
        why, action = "kernel", "a kernel with bpf(2) (CONFIG_BPF_SYSCALL) and tc eBPF (CONFIG_NET_CLS_BPF)"
    elif " map" in lower:
        why, action = "map type", "a kernel with BPF array and per-CPU array maps (Linux 4.6 or later)"
    else:
        why, action = "kernel", ("a kernel with tc eBPF programs in direct-action mode (CONFIG_NET_CLS_BPF, "
                                 "CONFIG_NET_SCH_INGRESS)")
    return [finding(Severity.WARNING, "no-fast-path", [],
                    f"the eBPF fast path is not in use ({why}): every frame is copied by the relay",
                    {"datapath": st.datapath, "why": note},
                    action + f"; then `agrconfig {st.name} datapath auto` tries again")]


def network_manager(facts):
    out = []
    for c in facts.claims:
        if c.manager == "NetworkManager":
            action = (f"`nmcli device set {c.ifname} managed no`, and keep it so with "
                      "unmanaged-devices=interface-name:" + c.ifname + " in NetworkManager.conf")
        else:
            action = f"give {c.ifname} a .network file with [Link] Unmanaged=yes (systemd-networkd)"
        out.append(finding(Severity.ERROR, "network-manager", [c.ifname],
                           f"{c.manager} manages {c.ifname}: it may take addresses, MTU or the link away",
                           {"manager": c.manager, "state": c.detail}, action))
    return out


RULES = [static_lag, passive_silent, no_lacp_heard, two_partners, partner_key_differs, speeds_differ,
         partner_out_of_sync, lacpdu_gaps, flapping, mtu_differs, half_duplex, errors_grow, no_fast_path,
         network_manager]


def diagnose(facts, rules=None):
    """Every rule's findings, errors first, in the rules' order."""
    found = [f for rule in (RULES if rules is None else rules) for f in rule(facts)]
    return sorted(found, key=lambda f: f.severity != Severity.ERROR)
