"""agrconfig --metrics: Prometheus text format, read back with prometheus_client's parser and
compared with the JSON status (issue 14)."""
import json
import os
import stat

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.helpers import agr_pair, ok

pytestmark = pytest.mark.integration


def samples(text):
    """{(sample name, frozenset of labels): value}, and the family names by type."""
    out, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out, types


def test_metrics_match_the_json(lab):
    a, b = agr_pair(lab, words=("lacptimeout", "fast"))
    ok(lab, a, "agr1", "create")           # an aggregate without ports is reported too
    for ns in (a, b):   # nothing but the pings moves agr0's counters between the two reads
        lab.run(ns, "sysctl", "-qw", "net.ipv6.conf.agr0.disable_ipv6=1")
    assert lab.ping(a, "192.0.2.2", count=3)
    text = ok(lab, a, "--metrics")
    doc = json.loads(ok(lab, a, "--json", "agr0"))
    got, types = samples(text)
    agr = frozenset({("agr", "agr0")})
    for name in ("agr_port_lacpdu_rx", "agr_port_lacpdu_tx", "agr_port_lacpdu_err", "agr_port_marker_rx",
                 "agr_port_expired", "agr_port_defaulted", "agr_port_actor_churn", "agr_port_partner_churn",
                 "agr_port_rx_bytes", "agr_port_tx_bytes", "agr_rx_bytes", "agr_tx_bytes", "agr_rx_packets",
                 "agr_tx_packets"):
        assert types.get(name) == "counter", (name, types.get(name))
    for name in ("agr_port_distributing", "agr_ports_distributing", "agr_port_actor_state",
                 "agr_port_partner_state", "agr_port_last_change_timestamp_seconds"):
        assert types.get(name) == "gauge", (name, types.get(name))
    assert types.get("agr_port_partner_info") == "gauge"   # an info metric, as format 0.0.4 writes it
    assert got[("agr_ports_distributing", agr)] == 2
    assert got[("agr_ports_distributing", frozenset({("agr", "agr1")}))] == 0
    # Traffic: read after the JSON, so at least what it said (nothing else moves agr0's frames).
    for d in ("rx", "tx"):
        assert got[(f"agr_{d}_packets_total", agr)] == doc["stats64"][d]["packets"]
        assert got[(f"agr_{d}_bytes_total", agr)] == doc["stats64"][d]["bytes"]
    for p in doc["agrports"]:
        labels = frozenset({("agr", "agr0"), ("port", p["ifname"])})
        assert got[("agr_port_distributing", labels)] == (1 if p["flags"] & 2 else 0)
        assert got[("agr_port_tx_bytes_total", labels)] == p["stats64"]["tx"]["bytes"]
        assert got[("agr_port_rx_bytes_total", labels)] == p["stats64"]["rx"]["bytes"]
        assert got[("agr_port_lacpdu_err_total", labels)] == p["lacp_counters"]["lacpdu_err"]
        # LACPDUs keep coming (1 per second): the metrics were read first.
        assert got[("agr_port_lacpdu_rx_total", labels)] <= p["lacp_counters"]["lacpdu_rx"]
        assert got[("agr_port_lacpdu_rx_total", labels)] >= p["lacp_counters"]["lacpdu_rx"] - 5
        for bit in ("activity", "timeout", "aggregation", "sync", "collecting", "distributing"):
            want = 1 if bit.upper() in p["ad_actor_oper_port_state_str"] else 0
            assert got[("agr_port_actor_state", labels | {("bit", bit)})] == want, bit
            want = 1 if bit.upper() in p["ad_partner_oper_port_state_str"] else 0
            assert got[("agr_port_partner_state", labels | {("bit", bit)})] == want, bit
        info = {k: v for k, v in got.items() if k[0] == "agr_port_partner_info" and labels <= k[1]}
        ((_, lab_set), value), = info.items()
        lab_map = dict(lab_set)
        assert value == 1 and lab_map["partner_system"] == p["partner_mac"]
        assert int(lab_map["partner_key"], 16) == p["partner_key"]
        assert int(lab_map["partner_port"]) == p["partner_port"]
        assert got[("agr_port_last_change_timestamp_seconds", labels)] > 1e9


def test_metrics_file_is_written_whole(lab):
    a, _b = agr_pair(lab)
    path = os.path.join("/tmp", f"{lab.prefix}-agr.prom")
    try:
        ok(lab, a, f"--metrics-file={path}")
        text = open(path).read()
        got, _ = samples(text)
        assert got[("agr_ports_distributing", frozenset({("agr", "agr0")}))] == 2
        assert stat.S_ISREG(os.stat(path).st_mode)
        assert not [f for f in os.listdir("/tmp") if f.startswith(f"{lab.prefix}-agr.prom.")]  # no temporary left
    finally:
        if os.path.exists(path):
            os.unlink(path)


def test_no_agr_no_metrics_but_valid_output(lab):
    ns = lab.netns("e")
    got, types = samples(ok(lab, ns, "--metrics"))
    assert got == {}
    assert "agr_ports_distributing" in types
