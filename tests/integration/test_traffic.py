"""Frames through agr0: flow hash keeps a flow on one port, link0 spreads, link1 static."""
import pytest

from tests.integration.helpers import agr_pair, aggregate, host_pair, ok, port_flags, status_json

pytestmark = pytest.mark.integration


def tx_per_port(lab, ns):
    return {p["ifname"]: p["counters"]["tx_packets"] for p in status_json(lab, ns)["agrports"]}


def flood(lab, ns, dst, count=200):
    lab.run(ns, "ping", "-q", "-f", "-c", str(count), "-W", "1", dst, check=False)


def test_one_flow_stays_on_one_port(lab):
    a, _b = agr_pair(lab)
    before = tx_per_port(lab, a)
    flood(lab, a, "192.0.2.2")
    after = tx_per_port(lab, a)
    delta = {p: after[p] - before[p] for p in after}
    assert sum(delta.values()) >= 200
    assert min(delta.values()) <= 2, f"one flow was spread over both ports: {delta}"


def test_several_flows_use_both_ports(lab):
    a, b = agr_pair(lab)
    for i in range(3, 19):
        ok(lab, b, "agr0", "inet", f"192.0.2.{i}/24", "alias")
    before = tx_per_port(lab, a)
    for i in range(3, 19):
        flood(lab, a, f"192.0.2.{i}", count=20)
    delta = {p: v - before[p] for p, v in tx_per_port(lab, a).items()}
    assert all(v >= 20 for v in delta.values()), f"16 flows did not use both ports: {delta}"


def test_link0_round_robin_spreads_one_flow(lab):
    a, _b = agr_pair(lab, words=("link0",))
    before = tx_per_port(lab, a)
    flood(lab, a, "192.0.2.2")
    delta = {p: v - before[p] for p, v in tx_per_port(lab, a).items()}
    assert all(v >= 80 for v in delta.values()), delta
    assert "LINK0" in ok(lab, a, "agr0").splitlines()[0]


def test_link1_static_distributes_without_lacp(lab):
    a, b = host_pair(lab)
    aggregate(lab, a, words=("link1",))
    aggregate(lab, b, words=("link1",))
    for ns in (a, b):
        assert port_flags(lab, ns) == {"re0": 3, "re1": 3}
        assert "LINK1" in ok(lab, ns, "agr0").splitlines()[0]
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")
    assert lab.ping(a, "192.0.2.2", count=2)
    lab.ip(b, "link", "set", "re1", "down")
    lab.wait_for(lambda: port_flags(lab, a)["re1"] == 0, timeout=5, what="re1 out on carrier loss")
    assert lab.ping(a, "192.0.2.2", count=2)


def test_tcp_crosses_the_relay(lab):
    """TCP, not only ping: checksums left to finish (CHECKSUM_PARTIAL) must survive the copy."""
    a, b = agr_pair(lab)
    server = lab.run(b, "sh", "-c", "iperf3 -s -1 -D", check=False)
    assert server.returncode == 0, server.stderr
    lab.wait_for(lambda: "5201" in lab.run(b, "ss", "-ltn").stdout, what="iperf3 server")
    proc = lab.run(a, "iperf3", "-c", "192.0.2.2", "-t", "1", "-J", check=False, timeout=30)
    assert proc.returncode == 0, proc.stdout[-500:] + proc.stderr
    import json
    bps = json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"]
    assert bps > 50e6, f"TCP through agr0 crawls at {bps / 1e6:.1f} Mbit/s"
