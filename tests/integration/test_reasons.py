"""Why a port is not distributing, with each fault made in namespaces; monitor says it as it
happens, and shows per-port rates (issue 14)."""
import json
import re
import subprocess
import time

import pytest

from tests.integration.helpers import aggregate, agr_pair, host_pair, ok, status_json, wait_distributing
from tests.lab import AGRCONFIG

pytestmark = pytest.mark.integration


def reasons(lab, ns, name="agr0"):
    return {p["ifname"]: p["reason"] for p in status_json(lab, ns, name)["agrports"]}


def wait_reason(lab, ns, port, pattern, timeout=15):
    return lab.wait_for(lambda: re.fullmatch(pattern, reasons(lab, ns).get(port) or ""), timeout=timeout,
                        what=f"{port}'s reason /{pattern}/ (last: {reasons(lab, ns).get(port)!r})")


def test_no_carrier_and_back(lab):
    a, b = agr_pair(lab)
    assert reasons(lab, a) == {"re0": None, "re1": None}
    lab.ip(b, "link", "set", "re1", "down")
    wait_reason(lab, a, "re1", "no carrier")
    assert "\t\tnot distributing: no carrier" in ok(lab, a, "agr0")
    lab.ip(b, "link", "set", "re1", "up")
    wait_distributing(lab, a, ["re0", "re1"])
    assert reasons(lab, a)["re1"] is None
    # The flap is explained after the fact: the port's last transitions, with time and cause.
    port = next(p for p in status_json(lab, a)["agrports"] if p["ifname"] == "re1")
    causes = [t["cause"] for t in port["history"]["transitions"]]
    assert "port disabled" in causes, port["history"]
    assert "port disabled" in ok(lab, a, "-v", "agr0")


def test_partner_silent_expired_then_defaulted(lab):
    a, b = agr_pair(lab, words=("lacptimeout", "fast"))
    lab.run(b, "tc", "qdisc", "add", "dev", "re1", "root", "pfifo", "limit", "0")   # b's re1 sends nothing
    wait_reason(lab, a, "re1", r"partner silent for [0-9.]+ s \((expired|defaulted)\)")
    wait_reason(lab, a, "re1", r"partner silent for [0-9.]+ s \(defaulted\)")
    secs = float(re.search(r"for ([0-9.]+) s", reasons(lab, a)["re1"]).group(1))
    assert 5.5 <= secs <= 60, secs     # fast timeout: expired at 3 s, defaulted at 6 s


def test_no_lacpdu_ever_received(lab):
    a, b = host_pair(lab)
    aggregate(lab, a, words=("lacptimeout", "fast"))       # b's ports belong to no aggregate
    wait_reason(lab, a, "re0", r"no LACPDU ever received \(defaulted\)")


def test_loop(lab):
    a = lab.netns("a")
    lab.veth(a, "re0", a, "re1")
    aggregate(lab, a, words=("lacptimeout", "fast"))
    wait_reason(lab, a, "re0", "loop: our own LACPDU came back")


def test_partner_system_differs(lab):
    a, b = host_pair(lab)
    aggregate(lab, a, words=("lacptimeout", "fast"))
    aggregate(lab, b, ports=("re0",), words=("lacptimeout", "fast"))
    aggregate(lab, b, ports=("re1",), name="agr1", words=("lacptimeout", "fast"))
    lab.wait_for(lambda: sorted(map(bool, reasons(lab, a).values())) == [False, True], timeout=20,
                 what="one port distributing, the other not")
    ((port, why),) = [(p, r) for p, r in reasons(lab, a).items() if r]
    assert re.fullmatch(r"partner system \S+ differs from the aggregation's \S+", why), why


def test_monitor_prints_the_reason_and_the_rates(lab):
    a, b = agr_pair(lab)
    cmd = ["ip", "netns", "exec", a, *AGRCONFIG, "agr0", "monitor", "interval", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        lab.run(a, "ping", "-q", "-f", "-c", "300", "192.0.2.2", timeout=60)
        lab.ip(b, "link", "set", "re1", "down")
        wait_reason(lab, a, "re1", "no carrier")
        time.sleep(1.5)
    finally:
        proc.terminate()
    out = proc.communicate(timeout=10)[0]
    assert re.search(r"re1: .*not distributing: no carrier", out), out
    rates = re.findall(r"rate re[01]: rx ([0-9.]+) (k|M|G)?bit/s ([0-9]+) pkt/s, tx", out)
    assert rates and any(float(r[0]) > 0 for r in rates), out


def test_monitor_json_has_reason_and_rates(lab):
    a, b = agr_pair(lab)
    cmd = ["ip", "netns", "exec", a, *AGRCONFIG, "--json", "agr0", "monitor", "interval", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        lab.ip(b, "link", "set", "re0", "down")
        wait_reason(lab, a, "re0", "no carrier")
        time.sleep(1.5)
    finally:
        proc.terminate()
    events = [json.loads(l) for l in proc.communicate(timeout=10)[0].splitlines()]
    changed = [e for e in events if e["event"] == "port-changed" and "reason" in e["changes"]]
    assert changed and changed[-1]["changes"]["reason"]["new"] == "no carrier", events
    counters = [e for e in events if e["event"] == "counters"]
    assert counters and set(counters[-1]["rates"]) == {"re0", "re1"}
    assert set(counters[-1]["rates"]["re0"]) == {"rx_bps", "rx_pps", "tx_bps", "tx_pps"}
