"""State on disk: root-only files, and a corrupt or stale state file never trusted or fatal."""
import json
import os
import signal
import stat
import time

import pytest

from tests.integration.helpers import PORT_LINE, aggregate, host_pair, ok
from tests.integration.helpers import netns_inode
from tests.integration.test_worker import worker_procs

pytestmark = pytest.mark.integration


def rundir(lab, ns):
    return f"/run/agrconfig/netns-{netns_inode(lab, ns)}"


def listed_ports(lab, ns, name="agr0"):
    return [m.group(1) for m in PORT_LINE.finditer(ok(lab, ns, name))]


def macs(lab, ns, ports=("re0", "re1")):
    return {p: json.loads(lab.ip(ns, "-j", "link", "show", p).stdout)[0]["address"] for p in ports}


def kill_worker(lab, ns):
    """SIGKILL the supervisor and the worker: nobody restarts it, agr0 (the TAP) stays."""
    for w in worker_procs(lab, ns):
        for p in (w.parent(), w):
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    lab.wait_for(lambda: not worker_procs(lab, ns), what="worker gone")


def no_traceback(proc):
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def check_layout(d):
    """agr(4), FILES: root's 0700 directories and 0600 bookkeeping files; the workers' own
    directory _agrconfig:root 2770 holding their 0640 files, group root."""
    import pwd
    user = pwd.getpwnam("_agrconfig").pw_uid
    assert stat.S_IMODE(os.stat("/run/agrconfig").st_mode) == 0o700
    st = os.stat(d)
    assert stat.S_IMODE(st.st_mode) == 0o700 and (st.st_uid, st.st_gid) == (0, 0)
    for f in os.listdir(d):
        st = os.lstat(os.path.join(d, f))
        if f == "worker":
            assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o2770, oct(st.st_mode)
            assert (st.st_uid, st.st_gid) == (user, 0)
        else:
            assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0, f
    w = os.path.join(d, "worker")
    files = os.listdir(w)
    assert "agr0.state" in files and "agr0.pid" in files
    for f in files:
        st = os.lstat(os.path.join(w, f))
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == 0, f
        assert f.endswith(".log") or st.st_uid == user, f


def test_runtime_files_are_root_only_and_repaired(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    d = rundir(lab, a)
    check_layout(d)
    # Loosened by someone: the next command puts it right.
    os.chmod(d, 0o755)
    os.chmod(os.path.join(d, "lock"), 0o644)
    os.chmod(os.path.join(d, "worker"), 0o777)
    os.chmod(os.path.join(d, "worker", "agr0.state"), 0o644)
    os.chmod(os.path.join(d, "worker", "agr0.pid"), 0o666)
    ok(lab, a, "agr0", "link0")
    check_layout(d)


CORRUPTIONS = {
    "garbage": b"\x00\xff\xfegarbage\x01",
    "truncated": b'{"name": "agr0", "ifindex": 5, "pid": 1, "flags": {}, "ports": [{"name": "re0", "ind',
    "empty": b"",
    "a list": b"[1, 2, 3]",
    "missing ports": b'{"name": "agr0", "ifindex": 5, "pid": 1, "flags": {}}',
    "ports not a list": b'{"name": "agr0", "ifindex": 5, "pid": 1, "flags": {}, "ports": "re0"}',
    "port a path": b'{"name": "agr0", "ifindex": 5, "pid": 1, "flags": {}, "ports": [{"name": "../../x", '
                   b'"index": 2, "mac": "02:00:00:00:00:01", "mtu": 1500, "up": true, "promisc": false, '
                   b'"sysctl": {}}]}',
    "sysctl value not a number": b'{"name": "agr0", "ifindex": 5, "pid": 1, "flags": {}, "ports": [{"name": '
                                 b'"re0", "index": 2, "mac": "02:00:00:00:00:01", "mtu": 1500, "up": true, '
                                 b'"promisc": false, "sysctl": {"ipv4/rp_filter": "1; rm -rf /"}}]}',
    "flag wrong type": b'{"name": "agr0", "ifindex": 5, "pid": 1, "flags": {"hash": "l2"}, "ports": []}',
    "other name": b'{"name": "agr9", "ifindex": 5, "pid": 1, "flags": {}, "ports": []}',
}


@pytest.mark.parametrize("what", sorted(CORRUPTIONS))
def test_corrupt_state_with_live_worker_is_rewritten(lab, what):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    attached = macs(lab, a)
    path = os.path.join(rundir(lab, a), "worker", "agr0.state")
    with open(path, "wb") as f:
        f.write(CORRUPTIONS[what])
    proc = no_traceback(lab.agr(a, "agr0"))
    assert proc.returncode == 0, proc.stderr
    assert "state file" in proc.stderr, "a log line says what happened"
    assert [m.group(1) for m in PORT_LINE.finditer(proc.stdout)] == ["re0", "re1"]
    # The worker wrote it again from what it knows.
    state = json.load(open(path))
    assert [p["name"] for p in state["ports"]] == ["re0", "re1"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640   # agr(4), FILES
    assert no_traceback(lab.agr(a, "-a")).returncode == 0
    ok(lab, a, "agr1", "create")
    ok(lab, a, "agr0", "destroy")
    restored = macs(lab, a)
    assert restored != attached and restored["re0"] != restored["re1"], "ports got their own MACs back"
    ok(lab, a, "agr1", "destroy")


@pytest.mark.parametrize("what", ["garbage", "truncated", "missing ports", "port a path"])
def test_corrupt_state_with_dead_worker(lab, what):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    kill_worker(lab, a)
    path = os.path.join(rundir(lab, a), "worker", "agr0.state")
    with open(path, "wb") as f:
        f.write(CORRUPTIONS[what])
    # Nothing trusted, nothing crashes.
    for words in (["agr0"], ["-a"], ["--json", "agr0"], ["-l"]):
        proc = no_traceback(lab.agr(a, *words))
        assert proc.returncode in (0, 2), (words, proc.stderr)
        if proc.returncode:
            assert proc.stderr.startswith("agrconfig: "), proc.stderr
    assert not worker_procs(lab, a), "no worker started from a corrupt state"
    ok(lab, a, "agr1", "create")
    # destroy removes the leftover agr0 (its ports' originals are unknown: left as they are).
    proc = no_traceback(lab.agr(a, "agr0", "destroy"))
    assert proc.returncode == 0, proc.stderr
    assert lab.ip(a, "link", "show", "agr0", check=False).returncode != 0
    ok(lab, a, "agr0", "create")
    ok(lab, a, "agr0", "destroy")
    ok(lab, a, "agr1", "destroy")


def test_state_naming_missing_ports_is_resumed_without_them(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    kill_worker(lab, a)
    path = os.path.join(rundir(lab, a), "worker", "agr0.state")
    state = json.load(open(path))
    ghost = dict(state["ports"][0], name="ghost0", index=9999)
    renamed = dict(state["ports"][1], name="re9")  # re1's index, another name
    state["ports"] = [state["ports"][0], renamed, ghost]
    with open(path, "w") as f:
        json.dump(state, f)
    proc = no_traceback(lab.agr(a, "agr0"))
    assert proc.returncode == 0, proc.stderr
    assert [m.group(1) for m in PORT_LINE.finditer(proc.stdout)] == ["re0"]
    assert len(worker_procs(lab, a)) == 1
    ok(lab, a, "agr0", "destroy")


def test_state_whose_ifindex_is_another_interface_is_discarded(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    before = macs(lab, a)
    kill_worker(lab, a)
    lab.ip(a, "link", "del", "agr0")  # agr0 gone while no worker ran
    lab.ip(a, "link", "add", "agr0", "type", "veth", "peer", "name", "xagr0")  # someone else's agr0
    path = os.path.join(rundir(lab, a), "worker", "agr0.state")
    proc = no_traceback(lab.agr(a, "agr0"))
    assert proc.returncode in (0, 2), proc.stderr
    assert not os.path.exists(path), "the stale state is removed"
    assert not worker_procs(lab, a)
    # Its ports carried our settings: they were given back.
    assert macs(lab, a) != before
    assert lab.ip(a, "link", "show", "agr0").returncode == 0, "someone else's agr0 is left alone"
    lab.ip(a, "link", "del", "agr0")
    ok(lab, a, "agr0", "create")
    ok(lab, a, "agr0", "destroy")


def test_pid_file_naming_another_process(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    sleeper = lab.run(a, "sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!").stdout.strip()
    pid_path = os.path.join(rundir(lab, a), "worker", "agr0.pid")
    kill_worker(lab, a)
    with open(pid_path, "w") as f:
        f.write(f"{sleeper}\n")
    ok(lab, a, "agr0")                   # revived from the state; the stranger is not touched
    assert os.path.exists(f"/proc/{sleeper}")
    with open(pid_path, "w") as f:
        f.write("1\n")
    t = time.monotonic()
    ok(lab, a, "agr0", "destroy")
    assert time.monotonic() - t < 5, "destroy did not wait for pid 1"
    assert os.path.exists(f"/proc/{sleeper}")
    os.kill(int(sleeper), signal.SIGKILL)


def current_cookie(lab, ns):
    code = ("import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
            "print(int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 71, 8), 'little'))")
    return lab.run(ns, "python3", "-c", code).stdout.strip()


def leave_state_of_a_gone_agr0(lab, ns):
    """A state file and a log for an agr0 that no longer exists, and no worker."""
    ok(lab, ns, "agr0", "create")
    kill_worker(lab, ns)
    lab.ip(ns, "link", "del", "agr0")
    with open(os.path.join(rundir(lab, ns), "worker", "agr0.log"), "a") as f:
        f.write("a line from before\n")


def test_files_of_a_dead_namespace_with_the_same_inode_are_forgotten(lab):
    a, _b = host_pair(lab)
    leave_state_of_a_gone_agr0(lab, a)
    d = rundir(lab, a)
    assert open(os.path.join(d, "netns-cookie")).read().strip() == current_cookie(lab, a)
    # As if this namespace were a new one that got a dead one's inode.
    with open(os.path.join(d, "netns-cookie"), "w") as f:
        f.write("1\n")
    proc = no_traceback(lab.agr(a, "-a"))
    assert proc.returncode == 0 and "agr0" not in proc.stdout, proc.stdout
    assert not os.path.exists(os.path.join(d, "worker", "agr0.state"))
    proc = no_traceback(lab.agr(a, "agr0", "create"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert open(os.path.join(d, "netns-cookie")).read().strip() == current_cookie(lab, a)
    assert "a line from before" not in open(os.path.join(d, "worker", "agr0.log")).read()
    ok(lab, a, "agr0", "destroy")


def test_create_over_the_state_of_a_gone_agr(lab):
    a, _b = host_pair(lab)
    leave_state_of_a_gone_agr0(lab, a)
    proc = no_traceback(lab.agr(a, "agr0", "create"))
    assert proc.returncode == 0, proc.stderr
    assert len(worker_procs(lab, a)) == 1
    ok(lab, a, "agr0", "destroy")
