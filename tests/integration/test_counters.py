"""agr0's traffic totals: counted by the data path that carries the frames, each frame once,
LACPDUs never (issue 14)."""
import json

import pytest

from tests.integration.helpers import agr_pair, ok, status_json

pytestmark = pytest.mark.integration

N = 400
FRAME = 14 + 20 + 8 + 56   # ping's default: Ethernet + IPv4 + ICMP header + 56 octets
SLACK = 4                  # ARP that may refresh meanwhile


def totals(lab, ns):
    doc = status_json(lab, ns)
    return doc["stats64"], {p["ifname"]: p for p in doc["agrports"]}


def delta(after, before):
    return {d: {k: after[d][k] - before[d][k] for k in after[d]} for d in ("rx", "tx")}


@pytest.mark.parametrize("path", ["relay", "ebpf"])
def test_totals_count_each_frame_once_and_no_lacpdu(lab, path):
    a, b = agr_pair(lab, words=("lacptimeout", "fast", "datapath", path))
    for ns in (a, b):   # no IPv6 chatter on agr0: the counts below are exact
        lab.run(ns, "sysctl", "-qw", "net.ipv6.conf.agr0.disable_ipv6=1")
    assert status_json(lab, a)["linkinfo"]["info_data"]["datapath"] == path
    assert lab.ping(a, "192.0.2.2", count=2)   # ARP resolved on both sides

    # Idle: LACPDUs go both ways every second on both ports, agr0 carries nothing.
    s0, p0 = totals(lab, a)
    lab.wait_for(lambda: all(totals(lab, a)[1][p]["lacp_counters"]["lacpdu_rx"]
                             >= p0[p]["lacp_counters"]["lacpdu_rx"] + 3 for p in p0),
                 timeout=10, what="LACPDUs received on both ports")
    s1, _ = totals(lab, a)
    assert delta(s1, s0) == {d: {"bytes": 0, "packets": 0, "errors": 0, "dropped": 0} for d in ("rx", "tx")}

    # N requests out of a, N replies back.
    sb0, _ = totals(lab, b)
    lab.run(a, "ping", "-q", "-f", "-c", str(N), "-W", "1", "192.0.2.2", timeout=60)
    s2, p2 = totals(lab, a)
    sb2, _ = totals(lab, b)
    for name, d in (("a", delta(s2, s1)), ("b", delta(sb2, sb0))):
        for direction in ("rx", "tx"):
            assert N <= d[direction]["packets"] <= N + SLACK, (name, path, d)
            assert N * FRAME <= d[direction]["bytes"] <= N * FRAME + SLACK * 64, (name, path, d)
            assert d[direction]["errors"] == 0 and d[direction]["dropped"] == 0, (name, path, d)
    # The totals are the ports' sums.
    for direction in ("rx", "tx"):
        for key in ("bytes", "packets"):
            assert s2[direction][key] == sum(p["stats64"][direction][key] for p in p2.values())


def test_verbose_status_shows_the_totals(lab):
    a, _b = agr_pair(lab)
    assert lab.ping(a, "192.0.2.2", count=3)
    text = ok(lab, a, "-v", "agr0")
    doc = status_json(lab, a)
    lines = [l for l in text.splitlines() if l.startswith("\tinput:") or l.startswith("\toutput:")]
    assert len(lines) == 2, text
    assert text.count("\t\tinput:") == 2 and text.count("\t\toutput:") == 2, text
    rx = int(lines[0].split()[1])
    assert 3 <= rx <= doc["stats64"]["rx"]["packets"], (text, doc["stats64"])
    assert "input:" not in ok(lab, a, "agr0")


def test_fast_path_leaves_the_kernel_counters_of_agr0_behind(lab):
    """The documented limit (agr(4), BUGS): on the fast path the kernel does not count what
    agr0 sends; our totals do."""
    a, _b = agr_pair(lab)
    lab.run(a, "ping", "-q", "-f", "-c", "200", "-W", "1", "192.0.2.2", timeout=60)
    kernel = json.loads(lab.ip(a, "-j", "-s", "link", "show", "agr0").stdout)[0]["stats64"]
    ours = status_json(lab, a)["stats64"]
    assert ours["tx"]["packets"] >= 200
    assert kernel["tx"]["packets"] < 200, kernel
