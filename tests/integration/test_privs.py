"""The supervisor and worker run as _agrconfig with the capabilities agr(4) names (issue 24 item
2); without the user nothing starts; the client trusts only root's and _agrconfig's answers."""
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

import psutil
import pytest

from tests.integration.helpers import agr_pair, netns_inode, ok, status_json, strip_addresses, wait_distributing
from tests.integration.test_seccomp import status_fields
from tests.integration.test_statefile import kill_worker
from tests.integration.test_worker import worker_procs
from tests.lab import AGRCONFIG, ROOT

pytestmark = pytest.mark.integration

CAPS = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_PERFMON": 38, "CAP_BPF": 39}


def documented(item):
    """The capabilities agr(4) lists under `item` (Effective, Permitted, Bounding) as a mask."""
    page = open(os.path.join(ROOT, "man", "agr.4")).read()
    section = page.split(".Ss Runtime files and privileges", 1)[1]
    text = section.split(f".It {item}\n", 1)[1].split("\n.It ", 1)[0].split("\n.El", 1)[0]
    names = set(re.findall(r"CAP_[A-Z_]+", text))
    if item != "Effective" and "those two" in text:
        names |= set(re.findall(r"CAP_[A-Z_]+", section.split(".It Effective\n", 1)[1].split("\n.It ", 1)[0]))
    if "the same four" in text:
        names = set(CAPS)
    assert names and names <= set(CAPS), (item, names)
    return sum(1 << CAPS[n] for n in names)


def test_supervisor_and_worker_run_as_agrconfig_with_what_agr4_names(lab):
    a, _b = agr_pair(lab)
    user = pwd.getpwnam("_agrconfig")
    (w,) = worker_procs(lab, a)
    sup = psutil.Process(w.ppid())
    assert documented("Effective") == (1 << 12) | (1 << 13)
    for proc in (sup, w):
        f = status_fields(proc.pid)
        assert f["Uid"].split() == [str(user.pw_uid)] * 4, f["Uid"]
        assert f["Gid"].split() == [str(user.pw_gid)] * 4, f["Gid"]
        assert f["Groups"].split() == []
        assert int(f["CapEff"], 16) == documented("Effective"), f["CapEff"]
        assert int(f["CapPrm"], 16) == documented("Permitted"), f["CapPrm"]
        assert int(f["CapBnd"], 16) == documented("Bounding"), f["CapBnd"]
        assert int(f["CapInh"], 16) == 0 and int(f["CapAmb"], 16) == 0
        assert f["NoNewPrivs"].strip() == "1" and f["Seccomp"].strip() == "2"
    # The worker cannot write a root file: made to call open(2) itself (as test_seccomp does).
    top = tempfile.mkdtemp(prefix="agr-privs-")
    try:
        os.chmod(top, 0o755)
        target = os.path.join(top, "root-file")
        with open(target, "w") as f:
            f.write("root's\n")
        os.chmod(target, 0o644)
        gdb = subprocess.run(
            ["gdb", "-nx", "-batch", "-p", str(w.pid),
             "-ex", f'call (int) ((int (*)(const char *, int)) open)("{target}", 1)',
             "-ex", "call (int) *((int *(*)(void)) __errno_location)()",
             "-ex", f'call (int) ((int (*)(const char *, int)) open)("{target}", 0)',
             "-ex", "call (int) ((int (*)(int)) close)($3)"],
            capture_output=True, text=True, timeout=60)
        values = dict(re.findall(r"^\$(\d) = (-?\d+)", gdb.stdout, re.M))
        assert values.get("1") == "-1" and values.get("2") == "13", gdb.stdout + gdb.stderr   # EACCES
        assert int(values.get("3", "-1")) >= 0, "yet it can read it: the refusal is the write's"
        assert open(target).read() == "root's\n"
    finally:
        shutil.rmtree(top)
    # Everything it does later works with what it keeps: a port leaves and comes back (the
    # eBPF maps rewritten), a restart after SIGKILL, traffic.
    assert w.is_running()
    ok(lab, a, "agr0", "-agrport", "re1")
    strip_addresses(lab, a, "re1")
    ok(lab, a, "agr0", "agrport", "re1")
    assert status_json(lab, a)["linkinfo"]["info_data"]["datapath"] == "ebpf"
    w.kill()
    (w2,) = lab.wait_for(lambda: [p for p in worker_procs(lab, a) if p.pid != w.pid], timeout=15,
                         interval=0.05, what="a new worker")
    assert status_fields(w2.pid)["Uid"].split() == [str(user.pw_uid)] * 4
    wait_distributing(lab, a, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=2)


def test_without_the_user_nothing_starts(lab):
    a = lab.netns("a")
    proc = lab.run(a, "env", "AGRCONFIG_TEST_USER=_agrconfig_missing", *AGRCONFIG, "agr0", "create", check=False)
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith("agrconfig: SIOCIFCREATE: No such file or directory (ENOENT: user "
                                  "_agrconfig_missing does not exist; create it: useradd --system"), proc.stderr
    assert lab.ip(a, "link", "show", "agr0", check=False).returncode != 0
    assert worker_procs(lab, a) == []
    for name in ("nobody", "root"):   # never a shared user, never root
        proc = lab.run(a, "env", f"AGRCONFIG_TEST_USER={name}", *AGRCONFIG, "agr0", "create", check=False)
        assert proc.returncode == 2 and "(EPERM: user " in proc.stderr, proc
        assert worker_procs(lab, a) == []


SQUATTER = """
import json, os, socket, sys
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX)
s.bind("\\0agrconfig/agr0")
s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:   # the client hangs up at once: it refuses us
        c.recv(65536)
        c.sendall(json.dumps({"version": 99, "release": "9.9", "result": {"name": "agr0", "pid": os.getpid()}}).encode())
    except OSError:
        pass
    c.close()
"""


def test_the_client_refuses_a_user_answering_for_a_dead_worker(lab):
    a, _b = agr_pair(lab)
    kill_worker(lab, a)
    squatter = subprocess.Popen(["ip", "netns", "exec", a, "python3", "-c", SQUATTER],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert squatter.stdout.readline().strip() == "ready"
        proc = lab.agr(a, "agr0", "-agrport", "re1")
        assert proc.returncode == 2, proc
        assert "agrconfig: control: Operation not permitted (EPERM: agr0: its control socket is held by pid" in proc.stderr
        assert "of uid 65534, not by an agrconfig worker (root or _agrconfig); refused" in proc.stderr
        proc = lab.agr(a, "--json", "agr0")
        assert proc.returncode == 2 and "9.9" not in proc.stdout and "refused" in proc.stderr, proc
        assert squatter.poll() is None
    finally:
        squatter.kill()
        squatter.wait()
    # Gone: root revives the real worker from its state file.
    lab.wait_for(lambda: "@agrconfig/agr0" not in lab.run(a, "cat", "/proc/net/unix").stdout)
    assert [p["ifname"] for p in status_json(lab, a)["agrports"]] == ["re0", "re1"]


# What a root front end needs in its bounding set (the systemd unit's CapabilityBoundingSet):
# the worker's four, the supervisor's uid change (SETUID, SETGID, SETPCAP for the bounding
# set), CHOWN for the workers' directory, KILL to signal workers of another uid. No
# DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, SYS_PTRACE or SYS_ADMIN.
FRONT_END_BOUNDING = "-all,+net_admin,+net_raw,+bpf,+perfmon,+setuid,+setgid,+setpcap,+chown,+kill"


def test_a_front_end_without_dac_override_manages_the_workers(lab):
    from tests.integration.helpers import host_pair
    a, _b = host_pair(lab)
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)

    def agr(*words):
        proc = lab.run(a, "setpriv", f"--bounding-set={FRONT_END_BOUNDING}", "--inh-caps=-all",
                       *AGRCONFIG, *words, check=False)
        assert proc.returncode == 0, f"{words}: {proc.stderr}"
        return proc.stdout

    agr("agr0", "create", "agrport", "re0", "agrport", "re1")
    agr("agr0", "-agrport", "re1")
    assert "agrport: re0" in agr("agr0") and "agrport: re1" not in agr("agr0")
    (w,) = worker_procs(lab, a)
    sup = psutil.Process(w.ppid())
    for proc in (w, sup):
        proc.kill()
    psutil.wait_procs([w, sup], timeout=5)
    assert "agrport: re0" in agr("agr0")          # revived: the state file read through the group
    assert len(worker_procs(lab, a)) == 1
    agr("agr0", "destroy")
    assert worker_procs(lab, a) == []
    assert not os.path.exists(f"/run/agrconfig/netns-{netns_inode(lab, a)}")


def test_a_checkout_the_user_cannot_reach_still_starts_workers(lab):
    """agrconfig in a directory only root may enter (as a checkout under a 0700 /root): the
    worker imports its modules after the change of user, through the directories the supervisor
    opened as root (/proc/self/fd/N), including those it imports later (the link check's)."""
    hidden = tempfile.mkdtemp(prefix="agrconfig-hidden-")
    try:
        os.chmod(hidden, 0o700)                     # /root
        checkout = os.path.join(hidden, "checkout")  # /root/src/agrconfig, 0755 as git makes it
        shutil.copytree(os.path.join(ROOT, "agrconfig"), os.path.join(checkout, "agrconfig"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(os.path.join(ROOT, "bin"), os.path.join(checkout, "bin"))
        os.chmod(checkout, 0o755)
        probe = subprocess.run(["runuser", "-u", "_agrconfig", "--", "test", "-r", os.path.join(checkout, "agrconfig")])
        assert probe.returncode != 0, "the copy must be out of _agrconfig's reach"
        command = [sys.executable, os.path.join(checkout, "bin", "agrconfig")]
        a = lab.netns("a")
        for port in ("re0", "re1"):
            lab.run(a, "ip", "link", "add", port, "type", "veth", "peer", "name", f"x{port}")
            lab.run(a, "sysctl", "-qw", f"net.ipv6.conf.{port}.disable_ipv6=1")
        proc = lab.run(a, *command, "agr0", "create", "agrport", "re0", "agrport", "re1", "up", check=False)
        assert proc.returncode == 0, proc.stderr
        procs = worker_procs(lab, a)
        assert procs and all(p.uids().real == pwd.getpwnam("_agrconfig").pw_uid for p in procs)
        # a module the worker imports when first used, after its seccomp filter too
        proc = lab.run(a, *command, "agr0", "agrlinkcheck", "192.0.2.99", check=False)
        assert proc.returncode == 0, proc.stderr
        assert lab.run(a, *command, "agr0", check=False).returncode == 0
        assert worker_procs(lab, a) and [p.pid for p in worker_procs(lab, a)] == [p.pid for p in procs]
        ok(lab, a, "agr0", "destroy")
    finally:
        shutil.rmtree(hidden, ignore_errors=True)
