"""`agrconfig agrN diagnose`: each finding produced in namespaces, with its advice, and none on
a healthy aggregate (issue 22). Independent faults share one setup, each on an aggregate of
its own, to keep the run short; fast LACP timers throughout."""
import json
import os
import subprocess
import sys

import pytest

from tests.integration.helpers import aggregate, agr_pair, host_pair, ok, port_flags, wait_distributing
from tests.lab import AGRCONFIG, ROOT

pytestmark = pytest.mark.integration
FAST = ("lacptimeout", "fast")
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def diagnose(lab, ns, name, *words, as_json=True, user=()):
    """(exit status, the JSON document or the text)."""
    argv = [*user, *AGRCONFIG, *(["--json"] if as_json else []), name, "diagnose", *words]
    proc = lab.run(ns, *argv, check=False)
    assert proc.returncode in (0, 4), f"diagnose {name}: {proc.returncode}: {proc.stderr}"
    return proc.returncode, json.loads(proc.stdout) if as_json else proc.stdout


def found(lab, ns, name, *words):
    """{code: finding} of a diagnose that found something (exit 4)."""
    status, doc = diagnose(lab, ns, name, *words)
    assert status == 4 and doc["findings"], doc
    return {f["code"]: f for f in doc["findings"]}


def wait_found(lab, ns, name, code, timeout=20):
    return lab.wait_for(lambda: found_or_none(lab, ns, name).get(code), timeout=timeout,
                        what=f"{name}'s finding {code} (last: {sorted(found_or_none(lab, ns, name))})")


def found_or_none(lab, ns, name):
    status, doc = diagnose(lab, ns, name, "interval", "0")
    return {f["code"]: f for f in doc["findings"]}


def ifindex(lab, ns, name):
    return json.loads(lab.ip(ns, "-j", "link", "show", name).stdout)[0]["ifindex"]


def hold_taps(lab, ns, names):
    """A process holding the TAPs open (a TAP has carrier while someone reads it)."""
    code = ("import fcntl, os, struct, sys, time\n"
            "fds = [os.open('/dev/net/tun', os.O_RDWR) for _ in sys.argv[1:]]\n"
            "for fd, n in zip(fds, sys.argv[1:]):\n"
            "    fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', n.encode(), 0x0002 | 0x1000))\n"
            "print('ok', flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code, *names],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ok"
    return proc


def test_a_healthy_aggregate_has_no_finding(lab):
    a, b = agr_pair(lab, words=FAST)
    ping = subprocess.Popen(["ip", "netns", "exec", a, "ping", "-q", "-c", "30", "-i", "0.05", "192.0.2.2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status, doc = diagnose(lab, a, "agr0")
    finally:
        ping.wait(timeout=30)
    assert (status, doc["findings"], doc["notes"]) == (0, [], []), doc
    assert diagnose(lab, b, "agr0", as_json=False) == (0, "agr0: nothing found\n")
    # Any user may run it, and the worker answers a user's look: the same findings as root's.
    assert diagnose(lab, a, "agr0", user=NOBODY, as_json=False) == (0, "agr0: nothing found\n")


def test_static_lag_passive_no_lacp_two_partners_fast_path_mtu_errors_network_managers(lab, tmp_path, monkeypatch):
    ports = [f"re{i}" for i in range(6)]
    a, b = host_pair(lab, ports=ports)
    for ns in (a, b):
        for p in ports:
            lab.run(ns, "sysctl", "-qw", f"net.ipv6.conf.{p}.disable_ipv6=1")
    # agr0: the switch runs a static LAG (b: link1), and floods broadcasts to us.
    aggregate(lab, a, ports=("re0",), words=FAST)
    aggregate(lab, b, ports=("re0",), words=("link1",))
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")
    # agr1: both ends passive.  agr2: nothing at the far end.
    aggregate(lab, a, ports=("re1",), name="agr1", words=(*FAST, "lacpmode", "passive"))
    aggregate(lab, b, ports=("re1",), name="agr1", words=(*FAST, "lacpmode", "passive"))
    aggregate(lab, a, ports=("re2",), name="agr2", words=FAST)
    # agr3: its ports reach two systems (b's agr3 and agr4).
    aggregate(lab, a, ports=("re3", "re4"), name="agr3", words=FAST)
    aggregate(lab, b, ports=("re3",), name="agr3", words=FAST)
    aggregate(lab, b, ports=("re4",), name="agr4", words=FAST)
    # agr4: a static pair whose far end has the smaller MTU: what we send is dropped.
    aggregate(lab, a, ports=("re5",), name="agr4", words=("link1",))
    aggregate(lab, b, ports=("re5",), name="agr5", words=("link1",))
    ok(lab, a, "agr4", "inet", "198.51.100.1/24")
    ok(lab, b, "agr5", "inet", "198.51.100.2/24", "mtu", "1000")
    # agr5: a macvlan port, which cannot go above its lower link's MTU, and agr5 set above it
    # behind agrconfig's back.
    lab.veth(a, "low0", a, "xlow0")
    lab.ip(a, "link", "add", "mv0", "link", "low0", "type", "macvlan", "mode", "private")
    lab.run(a, "sysctl", "-qw", "net.ipv6.conf.mv0.disable_ipv6=1")
    lab.ip(a, "link", "set", "mv0", "up")
    aggregate(lab, a, ports=("mv0",), name="agr5", words=FAST)
    lab.ip(a, "link", "set", "agr5", "mtu", "1600")
    # agr6: a worker without CAP_BPF or CAP_SYS_ADMIN: no fast path.
    lab.run(a, "setpriv", "--bounding-set=-bpf,-sys_admin", *AGRCONFIG, "agr6", "create")
    # Network managers' state files: NetworkManager manages re0, systemd-networkd agr0.
    nm, networkd = tmp_path / "nm", tmp_path / "networkd"
    nm.mkdir()
    networkd.mkdir()
    (nm / str(ifindex(lab, a, "re0"))).write_text("[device]\nmanaged=true\nconnection-uuid=4f2c-1\n")
    (networkd / str(ifindex(lab, a, "agr0"))).write_text(
        "# This is private data. Do not parse.\nADMIN_STATE=configured\nOPER_STATE=routable\n"
        "NETWORK_FILE=/etc/systemd/network/50-agr0.network\n")
    monkeypatch.setenv("AGRCONFIG_NM_DEVICES_DIR", str(nm))
    monkeypatch.setenv("AGRCONFIG_NETWORKD_LINKS_DIR", str(networkd))

    lab.run(b, "ping", "-q", "-b", "-c", "20", "-i", "0.05", "192.0.2.255", check=False)
    f = wait_found(lab, a, "agr0", "static-lag")
    assert f["severity"] == "error" and f["ports"] == ["re0"] and f["evidence"]["re0.lacpdu_rx"] == 0
    assert f["evidence"]["re0.frames_in"] >= 10
    assert "`link1`" in f["action"] and "`lacpfallback`" in f["action"]
    managers = [x for x in diagnose(lab, a, "agr0", "interval", "0")[1]["findings"] if x["code"] == "network-manager"]
    assert sorted((x["ports"][0], x["evidence"]["manager"]) for x in managers) == [
        ("agr0", "systemd-networkd"), ("re0", "NetworkManager")]
    assert any("nmcli device set re0 managed no" in x["action"] for x in managers)
    assert any("Unmanaged=yes" in x["action"] for x in managers)

    f = found(lab, a, "agr1", "interval", "0")
    assert list(f) == ["passive-silent"] and "`lacpmode active`" in f["passive-silent"]["action"]
    f = found(lab, a, "agr2", "interval", "0")
    assert list(f) == ["no-lacp-heard"] and f["no-lacp-heard"]["ports"] == ["re2"]

    f = wait_found(lab, a, "agr3", "two-partners")
    assert sorted(f["ports"]) == ["re3", "re4"] and len([k for k in f["evidence"] if k.startswith("partner ")]) == 2
    assert all(w in f["action"] for w in ("MLAG", "`agrselect`", "`agrproto slb`"))

    ping = subprocess.Popen(["ip", "netns", "exec", a, "ping", "-q", "-c", "40", "-i", "0.05", "-s", "1400",
                             "198.51.100.2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status, doc = diagnose(lab, a, "agr4", "interval", "1")
    finally:
        ping.wait(timeout=30)
    (f,) = doc["findings"]
    assert f["code"] == "errors-grow" and f["ports"] == ["re5"] and f["evidence"]["tx_dropped"] > 0, doc
    assert "MTU" in f["action"]

    f = found(lab, a, "agr5", "interval", "0")["mtu-differs"]
    assert f["evidence"] == {"agr5": 1600, "mv0": 1500} and "`agrconfig agr5 mtu N`" in f["action"]

    f = found(lab, a, "agr6", "interval", "0")
    assert list(f) == ["no-fast-path"], f
    f = f["no-fast-path"]
    assert "(capability)" in f["message"] and "not permitted" in f["evidence"]["why"] and "CAP_BPF" in f["action"]


def test_partner_key_out_of_sync_and_lost_lacpdus(lab):
    a, b = host_pair(lab, ports=("re0", "re1", "re2", "re3"))
    partner = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-m", "tests.integration.diagnose_partner",
                                "re0:0x55", "re1:0x66", "re2:0x55:nosync", "re3:0x77:skip3"], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": ROOT})
    try:
        aggregate(lab, a, ports=("re0", "re1"), words=FAST)
        aggregate(lab, a, ports=("re2",), name="agr1", words=FAST)
        aggregate(lab, a, ports=("re3",), name="agr2", words=FAST)
        f = wait_found(lab, a, "agr0", "partner-key-differs")
        assert f["evidence"] == {"key 0x55": "re0", "key 0x66": "re1"} and "port-channel" in f["action"]
        f = wait_found(lab, a, "agr1", "partner-out-of-sync")
        assert f["ports"] == ["re2"] and f["evidence"]["seconds"] >= 2 and "max-bundle" in f["action"]
        f = wait_found(lab, a, "agr2", "lacpdu-gaps")
        assert f["evidence"]["period"] == 1.0 and 1.5 < f["evidence"]["longest"] < 3, f
        assert f["evidence"]["gaps"] >= 1 and "01:80:c2:00:00:02" in f["action"]
    finally:
        partner.kill()
        partner.wait()


def test_flapping_half_duplex_and_speeds(lab):
    a, b = agr_pair(lab, words=FAST)
    for n in range(3):
        lab.ip(b, "link", "set", "re1", "down")
        lab.wait_for(lambda: port_flags(lab, a).get("re1") != 3, what="re1 stops distributing")
        lab.ip(b, "link", "set", "re1", "up")
        wait_distributing(lab, a, ["re0", "re1"])
    f = found(lab, a, "agr0", "interval", "0")
    assert list(f) == ["flapping"] and f["flapping"]["ports"] == ["re1"] and f["flapping"]["evidence"]["flaps"] == 3
    assert "`agrwtr" in f["flapping"]["action"]
    # A TAP's speed and duplex can be set: agr1 over a 100 Mb/s half-duplex one and a 10 Gb/s one.
    for tap in ("tap0", "tap1"):
        lab.ip(a, "tuntap", "add", "dev", tap, "mode", "tap")
        lab.run(a, "sysctl", "-qw", f"net.ipv6.conf.{tap}.disable_ipv6=1")
        lab.ip(a, "link", "set", tap, "up")
    lab.run(a, "ethtool", "-s", "tap0", "speed", "100", "duplex", "half")
    lab.run(a, "ethtool", "-s", "tap1", "speed", "10000", "duplex", "full")
    holder = hold_taps(lab, a, ["tap0", "tap1"])
    try:
        aggregate(lab, a, ports=("tap0", "tap1"), name="agr1", words=FAST)
        f = found(lab, a, "agr1", "interval", "0")
        assert f["half-duplex"]["ports"] == ["tap0"] and f["half-duplex"]["evidence"]["tap0.duplex"] == "half"
        assert "full duplex" in f["half-duplex"]["action"]
        assert f["speeds-differ"]["evidence"] == {"100 Mb/s": "tap0", "10000 Mb/s": "tap1"}
    finally:
        holder.kill()
        holder.wait()

