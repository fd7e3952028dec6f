"""`agrconfig --metrics`: every agr interface of the namespace in the Prometheus text format
0.0.4, for node_exporter's textfile collector.

Written here as prometheus_client's generate_latest writes it, byte for byte (tests/unit/
test_metrics_format.py holds the two together): importing prometheus_client (http.server, ssl,
email, ...) cost this command more than everything else it does. Counter families get the
`_total` suffix on their samples and the info family its `_info` suffix: agr_port_lacpdu_rx is
sampled as agr_port_lacpdu_rx_total.
"""
import os

from ..client import inspect
from ..lacp.states import STATE_BITS

AGR, PORT = ["agr"], ["agr", "port"]

# (family, help, key in the worker's stats64 direction)
AGR_TRAFFIC = (
    ("agr_rx_bytes", "Octets agrN received, counted by its data path (LACPDUs not included)", "rx", "bytes"),
    ("agr_tx_bytes", "Octets agrN sent, counted by its data path (LACPDUs not included)", "tx", "bytes"),
    ("agr_rx_packets", "Frames agrN received, counted by its data path", "rx", "packets"),
    ("agr_tx_packets", "Frames agrN sent, counted by its data path", "tx", "packets"),
    ("agr_rx_dropped", "Frames dropped on the way into agrN (port not collecting)", "rx", "dropped"),
    ("agr_tx_dropped", "Frames agrN could not send (no distributing port)", "tx", "dropped"),
    ("agr_rx_errors", "Frames the relay could not write into agrN", "rx", "errors"),
    ("agr_tx_errors", "Frames the relay could not send on a port", "tx", "errors"),
)
PORT_TRAFFIC = (
    ("agr_port_rx_bytes", "Octets the port carried into agrN", "rx", "bytes"),
    ("agr_port_tx_bytes", "Octets the port carried out of agrN", "tx", "bytes"),
    ("agr_port_rx_packets", "Frames the port carried into agrN", "rx", "packets"),
    ("agr_port_tx_packets", "Frames the port carried out of agrN", "tx", "packets"),
)
# (family, help, key of the LACP core's per-port counters)
LACP_COUNTERS = (
    ("agr_port_lacpdu_rx", "LACPDUs received (802.1AX lacpdu-rx)", "lacpdu_rx"),
    ("agr_port_lacpdu_tx", "LACPDUs sent (802.1AX lacpdu-tx)", "lacpdu_tx"),
    ("agr_port_lacpdu_err", "Slow Protocols frames that did not decode (802.1AX illegal-rx)", "lacpdu_err"),
    ("agr_port_marker_rx", "Marker PDUs received (802.1AX marker-pdus-rx)", "marker_rx"),
    ("agr_port_marker_tx", "Marker Response PDUs sent (802.1AX marker-response-pdus-tx)", "marker_tx"),
    ("agr_port_marker_response_rx", "Marker Response PDUs received (802.1AX marker-response-pdus-rx)",
     "marker_resp_rx"),
    ("agr_port_loop", "Our own LACPDUs received back (a loop)", "loop"),
)
# agr_port_slb_dropped's reason label, and the data path's per-port counter it reads
SLB_DROPS = (("not_designated", "rx_slb_not_designated"), ("reflection", "rx_slb_reflected"))
# (family, help, key of history.py's counts)
HISTORY_COUNTS = (
    ("agr_port_expired", "Times the receive machine entered EXPIRED (partner silent)", "expired"),
    ("agr_port_defaulted", "Times the receive machine entered DEFAULTED", "defaulted"),
    ("agr_port_actor_churn", "Times the actor churn machine entered ACTOR_CHURN (802.1AX actor-churn-count)",
     "actor_churn"),
    ("agr_port_partner_churn", "Times the partner churn machine entered PARTNER_CHURN "
     "(802.1AX partner-churn-count)", "partner_churn"),
)


class Family:
    """One metric family, as prometheus_client's CounterMetricFamily, GaugeMetricFamily and
    InfoMetricFamily make it: a name, its help, a type, label names and samples."""
    SUFFIX = {"counter": "_total", "info": "_info", "gauge": ""}

    def __init__(self, kind, name, doc, labels):
        self.kind, self.name, self.doc, self.labels = kind, name, doc, list(labels)
        self.samples = []   # (labels dict, value)

    def add_metric(self, values, value):
        labels = dict(zip(self.labels, values))
        if self.kind == "info":   # the value is a dict of labels, the sample is 1
            labels, value = {**labels, **value}, 1.0
        self.samples.append((labels, value))

    def lines(self):
        """generate_latest's lines for this family."""
        name = self.name + self.SUFFIX[self.kind]
        doc = self.doc.replace("\\", r"\\").replace("\n", r"\n")
        out = [f"# HELP {name} {doc}\n", f"# TYPE {name} {'gauge' if self.kind == 'info' else self.kind}\n"]
        for labels, value in self.samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            out.append(f"{name}{{{text}}} {go_float(value)}\n" if text else f"{name} {go_float(value)}\n")
        return out


def _escape(value):
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def go_float(value):
    """A sample's value as prometheus_client writes it (floatToGoString: Go's %g-like form)."""
    d = float(value)
    if d != d:
        return "NaN"
    if d in (float("inf"), float("-inf")):
        return "+Inf" if d > 0 else "-Inf"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:   # Go switches to exponents sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def CounterMetricFamily(name, doc, labels):
    return Family("counter", name, doc, labels)


def GaugeMetricFamily(name, doc, labels):
    return Family("gauge", name, doc, labels)


def InfoMetricFamily(name, doc, labels):
    return Family("info", name, doc, labels)


def families(statuses):
    """Prometheus metric families for {agr name: AggregateStatus}."""
    def new(kind, name, doc, labels):
        return kind(name, doc, labels=labels)

    agr_traffic = [new(CounterMetricFamily, n, d, AGR) for n, d, _, _ in AGR_TRAFFIC]
    port_traffic = [new(CounterMetricFamily, n, d, PORT) for n, d, _, _ in PORT_TRAFFIC]
    lacp = [new(CounterMetricFamily, n, d, PORT) for n, d, _ in LACP_COUNTERS]
    counts = [new(CounterMetricFamily, n, d, PORT) for n, d, _ in HISTORY_COUNTS]
    ports_dist = new(GaugeMetricFamily, "agr_ports_distributing", "Ports of agrN distributing", AGR)
    ports_n = new(GaugeMetricFamily, "agr_ports", "Ports attached to agrN", AGR)
    speed = new(GaugeMetricFamily, "agr_speed_bytes", "agrN's speed in bytes per second as ethtool shows it: "
                "the sum of its distributing ports' (as node_exporter's node_network_speed_bytes)", AGR)
    port_speed = new(GaugeMetricFamily, "agr_port_speed_bytes", "The port's link speed in bytes per second", PORT)
    dist = new(GaugeMetricFamily, "agr_port_distributing", "1 if the port distributes agrN's frames", PORT)
    coll = new(GaugeMetricFamily, "agr_port_collecting", "1 if the port collects frames for agrN", PORT)
    carrier = new(GaugeMetricFamily, "agr_port_carrier", "1 if the port has carrier", PORT)
    actor = new(GaugeMetricFamily, "agr_port_actor_state",
                "Actor_Oper_Port_State bit (802.1AX actor-oper-port-state), 1 if set", PORT + ["bit"])
    partner = new(GaugeMetricFamily, "agr_port_partner_state",
                  "Partner_Oper_Port_State bit (802.1AX partner-oper-port-state), 1 if set", PORT + ["bit"])
    partner_info = InfoMetricFamily("agr_port_partner", "The partner's System ID, key and port (802.1AX "
                                    "partner-oper-system, -key, -port-number and priorities)", PORT)
    announced = new(CounterMetricFamily, "agr_announcements",
                    "Frames sent after moves: gratuitous ARP, unsolicited NA, learning frames, reports", AGR)
    changed = new(GaugeMetricFamily, "agr_port_last_change_timestamp_seconds",
                  "Unix time of the port's last LACP state change (receive, mux or churn machine)", PORT)
    slb_learned = new(GaugeMetricFamily, "agr_slb_learned", "agrproto slb: (MAC, VLAN) pairs agrN sends from, "
                      "learned", AGR)
    slb_moved = new(CounterMetricFamily, "agr_slb_moved", "agrproto slb: learned MACs moved to another port "
                    "(each announced by a RARP)", AGR)
    slb_dropped = new(CounterMetricFamily, "agr_port_slb_dropped", "agrproto slb: frames dropped on arrival: "
                      "broadcast or multicast off the designated port, or our own come back", PORT + ["reason"])
    slb_designated = new(GaugeMetricFamily, "agr_port_slb_designated", "agrproto slb: 1 on the port that "
                         "accepts broadcast and multicast", PORT)
    for name, ws in sorted(statuses.items()):
        s64 = ws.stats64 or {}
        if ws.slb is not None:
            slb_learned.add_metric([name], ws.slb.learned)
            slb_moved.add_metric([name], ws.slb.moved)
            for p in ws.ports:
                slb_designated.add_metric([name, p.name], 1 if p.index == ws.slb.designated else 0)
                for reason, key in SLB_DROPS:
                    slb_dropped.add_metric([name, p.name, reason], p.counters.get(key, 0))
        for fam, (_, _, direction, key) in zip(agr_traffic, AGR_TRAFFIC):
            fam.add_metric([name], s64.get(direction, {}).get(key, 0))
        ports_dist.add_metric([name], len(ws.distributing))
        ports_n.add_metric([name], len(ws.ports))
        if ws.speed:   # unknown: no sample, as node_exporter does
            speed.add_metric([name], ws.speed * 125000)
        if ws.announced is not None:   # None: a 0.2.0 worker
            announced.add_metric([name], ws.announced)
        for p in ws.ports:
            labels = [name, p.name]
            ps64 = p.stats64 or {}
            for fam, (_, _, direction, key) in zip(port_traffic, PORT_TRAFFIC):
                fam.add_metric(labels, ps64.get(direction, {}).get(key, 0))
            dist.add_metric(labels, 1 if p.distributing else 0)
            coll.add_metric(labels, 1 if p.collecting else 0)
            carrier.add_metric(labels, 1 if p.carrier else 0)
            if p.speed:
                port_speed.add_metric(labels, p.speed * 125000)
            for fam, (_, _, key) in zip(counts, HISTORY_COUNTS):
                fam.add_metric(labels, p.history.counts.get(key, 0))
            if p.history.last_change is not None:
                changed.add_metric(labels, p.history.last_change)
            lp = p.lacp
            if lp is None:
                continue  # link1: no LACP
            for fam, (_, _, key) in zip(lacp, LACP_COUNTERS):
                fam.add_metric(labels, lp.counter(key))
            for bit, bit_name in STATE_BITS:
                actor.add_metric(labels + [bit_name.lower()], 1 if lp.actor_state & bit else 0)
                partner.add_metric(labels + [bit_name.lower()], 1 if lp.partner_state & bit else 0)
            partner_info.add_metric(labels, {
                "partner_system": lp.partner_system,
                "partner_system_priority": f"{lp.partner_system_priority:#06x}",
                "partner_key": f"{lp.partner_key:#06x}", "partner_port": str(lp.partner_port),
                "partner_port_priority": f"{lp.partner_port_priority:#06x}"})
    return [*agr_traffic, ports_dist, ports_n, dist, coll, carrier, *port_traffic, *lacp, actor, partner,
            partner_info, *counts, changed, speed, port_speed, announced,
            # only under agrproto slb: other setups' output stays as it was, HELP lines included
            *([slb_learned, slb_moved, slb_designated, slb_dropped]
              if any(ws.slb is not None for ws in statuses.values()) else [])]


def text(statuses=None):
    statuses = inspect.agr_statuses() if statuses is None else statuses
    return "".join(line for family in families(statuses) for line in family.lines())


def write_file(path, statuses=None):
    """Atomically (a temporary file renamed into place), as the textfile collector needs and
    as prometheus_client's write_to_textfile does it."""
    data = text(statuses).encode()
    tmp = f"{path}.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
