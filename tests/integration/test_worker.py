"""The worker: daemon, restart after SIGKILL, no leftovers, one world per namespace."""
import glob
import json
import os
import signal
import subprocess
import time

import psutil
import pytest

from tests.integration.helpers import (agr_pair, aggregate, host_pair, netns_inode, ok, port_flags,
                                       status_json, strip_addresses, wait_distributing)
from tests.lab import AGRCONFIG

pytestmark = pytest.mark.integration


def worker_procs(lab, ns):
    pids = {int(p) for p in lab.run(ns, "ip", "netns", "pids", ns, check=False).stdout.split()}
    pids |= {int(p) for p in os.popen(f"ip netns pids {ns}").read().split()}
    out = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and "agrconfig: worker" in " ".join(proc.cmdline()):
                out.append(proc)
        except psutil.Error:
            pass
    return out


def test_worker_is_a_daemon_with_a_title_and_root_only_socket(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    procs = worker_procs(lab, a)
    assert len(procs) == 1
    w = procs[0]
    assert "agrconfig: worker agr0" in " ".join(w.cmdline())
    assert os.getsid(w.pid) != os.getsid(0), "worker detached into a session of its own (setsid)"
    assert w.terminal() is None
    rundir = f"/run/agrconfig/netns-{netns_inode(lab, a)}"
    assert int(open(f"{rundir}/agr0.pid").read()) == w.ppid(), "the pid file names the supervisor"
    assert "agrconfig: supervisor agr0" in " ".join(psutil.Process(w.ppid()).cmdline())
    assert oct(os.stat(rundir).st_mode & 0o777) == "0o700"
    # The control socket is abstract: Linux scopes it to the namespace, no file to leave behind.
    assert "@agrconfig/agr0" in lab.run(a, "cat", "/proc/net/unix").stdout
    # A non-root peer is refused.
    code = ("import socket,os,json; os.setuid(65534); s=socket.socket(socket.AF_UNIX);"
            "s.connect('\\0agrconfig/agr0'); s.sendall(b'{\"op\":\"status\"}'); s.shutdown(1);"
            "print(s.recv(4096).decode())")
    out = lab.run(a, "python3", "-c", code).stdout
    assert "EPERM" in out


def test_worker_keeps_only_net_admin_net_raw_perfmon_and_bpf(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    (w,) = worker_procs(lab, a)
    sup = psutil.Process(w.ppid())
    want = (1 << 12) | (1 << 13) | (1 << 38) | (1 << 39)  # CAP_NET_ADMIN, NET_RAW, PERFMON, BPF
    for proc in (w, sup):
        with open(f"/proc/{proc.pid}/status") as f:
            fields = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
        for key in ("CapEff", "CapPrm", "CapBnd"):
            assert int(fields[key], 16) == want, f"{proc.name()} {key} {fields[key]}"
        assert int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0
        assert fields["NoNewPrivs"].strip() == "1"
    # And with only those it still does its work: a port leaves and comes back.
    ok(lab, a, "agr0", "-agrport", "re1")
    strip_addresses(lab, a, "re1")  # its link-local came back with it
    ok(lab, a, "agr0", "agrport", "re1")
    assert status_json(lab, a)["linkinfo"]["info_data"]["datapath"] == "ebpf"
    assert [p["ifname"] for p in status_json(lab, a)["agrports"]] == ["re0", "re1"]


def test_destroy_leaves_nothing(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    rundir = f"/run/agrconfig/netns-{netns_inode(lab, a)}"
    ok(lab, a, "agr0", "destroy")
    assert worker_procs(lab, a) == []
    assert lab.ip(a, "link", "show", "agr0", check=False).returncode != 0
    assert not glob.glob(f"{rundir}/agr0.*"), os.listdir(rundir)
    assert "@agrconfig/agr0" not in lab.run(a, "cat", "/proc/net/unix").stdout
    assert "re0" in lab.ip(a, "link", "show", "re0").stdout


def test_destroy_with_ports_attached_restores_them(lab):
    a, _b = host_pair(lab)
    before = {p: lab.ip(a, "-o", "link", "show", p).stdout.split("link/ether ")[1].split()[0] for p in ("re0", "re1")}
    aggregate(lab, a)
    ok(lab, a, "agr0", "destroy")
    after = {p: lab.ip(a, "-o", "link", "show", p).stdout.split("link/ether ")[1].split()[0] for p in ("re0", "re1")}
    assert after == before


def test_worker_restarts_after_sigkill_keeping_agr0_and_addresses(lab):
    a, b = host_pair(lab)
    for ns, addr in ((a, "192.0.2.1/24"), (b, "192.0.2.2/24")):
        aggregate(lab, ns)
        ok(lab, ns, "agr0", "inet", addr)
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])
    (w,) = worker_procs(lab, a)
    index = lab.ip(a, "-o", "link", "show", "agr0").stdout.split(":")[0]
    w.send_signal(signal.SIGKILL)
    w.wait(5)
    killed = time.monotonic()
    # The supervisor starts a new worker by itself, within a second.
    (w2,) = lab.wait_for(lambda: worker_procs(lab, a), timeout=1.0, interval=0.02, what="a new worker")
    assert time.monotonic() - killed < 1.0
    assert w2.pid != w.pid
    assert lab.ip(a, "-o", "link", "show", "agr0").stdout.split(":")[0] == index, "the TAP survives"
    doc = status_json(lab, a)
    assert [p["ifname"] for p in doc["agrports"]] == ["re0", "re1"]
    assert any(x["local"] == "192.0.2.1" for x in doc["addr_info"])
    wait_distributing(lab, a, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=2)
    ok(lab, a, "agr0", "destroy")
    assert worker_procs(lab, a) == []


def test_restarted_worker_resumes_lacp_so_the_partner_sees_no_change(lab):
    # Fast timeout: the partner would expire our ports 3 s after our last LACPDU.
    a, b = agr_pair(lab, words=("lacptimeout", "fast"))
    mon = subprocess.Popen(["ip", "netns", "exec", b, *AGRCONFIG, "--json", "agr0", "monitor", "timeout", "6"],
                           stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # the monitor's first snapshot
        (w,) = worker_procs(lab, a)
        w.send_signal(signal.SIGKILL)
        w.wait(5)
        lab.wait_for(lambda: worker_procs(lab, a), timeout=1.0, interval=0.02, what="a new worker")
        lab.wait_for(lambda: port_flags(lab, a) == {"re0": 3, "re1": 3}, timeout=5, interval=0.05,
                     what="re0 and re1 distributing again")
        # What shows that it resumed rather than negotiated again: the partner saw nothing.
        out, _ = mon.communicate(timeout=15)
    finally:
        if mon.poll() is None:
            mon.kill()
    changes = [e for e in map(json.loads, out.splitlines()) if e["event"] == "port-changed"]
    assert changes == [], f"the partner saw our restart: {changes}"
    assert lab.ping(a, "192.0.2.2", count=2)


def test_next_command_revives_a_worker_whose_supervisor_died_too(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    (w,) = worker_procs(lab, a)
    sup = psutil.Process(w.ppid())
    sup.send_signal(signal.SIGKILL)
    w.send_signal(signal.SIGKILL)
    psutil.wait_procs([sup, w], timeout=5)
    doc = status_json(lab, a)
    assert [p["ifname"] for p in doc["agrports"]] == ["re0", "re1"]
    assert any(x["local"] == "192.0.2.1" for x in doc["addr_info"])
    assert len(worker_procs(lab, a)) == 1
    ok(lab, a, "agr0", "destroy")


def test_sigterm_is_a_clean_shutdown(lab):
    a, _b = host_pair(lab)
    mac = lab.ip(a, "-o", "link", "show", "re1").stdout.split("link/ether ")[1].split()[0]
    aggregate(lab, a)
    (w,) = worker_procs(lab, a)
    sup = psutil.Process(w.ppid())
    sup.send_signal(signal.SIGTERM)
    psutil.wait_procs([sup, w], timeout=10)
    assert not sup.is_running() and not w.is_running()
    assert lab.ip(a, "link", "show", "agr0", check=False).returncode != 0
    assert lab.ip(a, "-o", "link", "show", "re1").stdout.split("link/ether ")[1].split()[0] == mac


def test_each_namespace_has_its_own_agr0(lab):
    a, b = host_pair(lab)
    aggregate(lab, a, ports=("re0",))
    aggregate(lab, b, ports=("re1",))
    assert list(port_flags(lab, a)) == ["re0"]
    assert list(port_flags(lab, b)) == ["re1"]
    ok(lab, a, "agr0", "destroy")
    assert list(port_flags(lab, b)) == ["re1"], "destroying A's agr0 left B's alone"
    assert len(worker_procs(lab, b)) == 1


def test_mac_of_first_port_and_ports_take_it(lab):
    a, _b = host_pair(lab)
    mac = lambda dev: lab.ip(a, "-o", "link", "show", dev).stdout.split("link/ether ")[1].split()[0]
    first = mac("re0")
    aggregate(lab, a)
    assert mac("agr0") == first
    assert mac("re1") == first
    doc = status_json(lab, a)
    assert doc["address"] == first
