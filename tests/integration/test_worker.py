"""The worker: daemon, restart after SIGKILL, no leftovers, one world per namespace."""
import glob
import os
import signal
import time

import psutil
import pytest

from tests.integration.helpers import aggregate, host_pair, ok, port_flags, status_json, wait_distributing

pytestmark = pytest.mark.integration


def worker_procs(lab, ns):
    pids = {int(p) for p in lab.run(ns, "ip", "netns", "pids", ns, check=False).stdout.split()}
    pids |= {int(p) for p in os.popen(f"ip netns pids {ns}").read().split()}
    out = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and "agrconfig" in " ".join(proc.cmdline()):
                out.append(proc)
        except psutil.Error:
            pass
    return out


def netns_inode(lab, ns):
    return lab.run(ns, "stat", "-L", "-c", "%i", "/proc/self/ns/net").stdout.strip()


def test_worker_is_a_daemon_with_a_title_and_root_only_socket(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    procs = worker_procs(lab, a)
    assert len(procs) == 1
    w = procs[0]
    assert "agrconfig: worker agr0" in " ".join(w.cmdline())
    assert os.getsid(w.pid) != os.getsid(0), "worker detached into a session of its own (setsid)"
    assert w.ppid() != os.getpid() and w.terminal() is None
    rundir = f"/run/agrconfig/netns-{netns_inode(lab, a)}"
    assert int(open(f"{rundir}/agr0.pid").read()) == w.pid
    assert oct(os.stat(rundir).st_mode & 0o777) == "0o700"
    # The control socket is abstract: Linux scopes it to the namespace, no file to leave behind.
    assert "@agrconfig/agr0" in lab.run(a, "cat", "/proc/net/unix").stdout
    # A non-root peer is refused.
    code = ("import socket,os,json; os.setuid(65534); s=socket.socket(socket.AF_UNIX);"
            "s.connect('\\0agrconfig/agr0'); s.sendall(b'{\"op\":\"status\"}'); s.shutdown(1);"
            "print(s.recv(4096).decode())")
    out = lab.run(a, "python3", "-c", code).stdout
    assert "EPERM" in out


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
    assert lab.ip(a, "-o", "link", "show", "agr0").stdout.split(":")[0] == index, "the TAP survives"
    # The next command revives the worker from its state file.
    doc = status_json(lab, a)
    assert [p["ifname"] for p in doc["agrports"]] == ["re0", "re1"]
    assert any(x["local"] == "192.0.2.1" for x in doc["addr_info"])
    (w2,) = worker_procs(lab, a)
    assert w2.pid != w.pid
    wait_distributing(lab, a, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=2)
    ok(lab, a, "agr0", "destroy")
    assert worker_procs(lab, a) == []


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
