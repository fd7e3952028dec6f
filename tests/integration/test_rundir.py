"""/run/agrconfig keeps a directory per network namespace only while it has agr interfaces."""
import os
import signal
import threading

import psutil
import pytest

from agrconfig import paths
from tests.integration.helpers import aggregate, host_pair, netns_inode, ok, port_flags
from tests.lab import sh

pytestmark = pytest.mark.integration


def run_dir(lab, ns):
    return os.path.join(paths.RUN_ROOT, f"netns-{netns_inode(lab, ns)}")


def kill_everything_in(lab, ns):
    """SIGKILL every process of the namespace (supervisors first: no restart), as a container
    runtime or a test's teardown does; agrN's state file stays behind."""
    procs = []
    for pid in sh("ip", "netns", "pids", ns).stdout.split():
        try:
            procs.append((psutil.Process(int(pid)), "supervisor" not in " ".join(psutil.Process(int(pid)).cmdline())))
        except psutil.Error:
            pass
    procs = [p for p, _ in sorted(procs, key=lambda pc: pc[1])]
    assert procs, f"no process in {ns}"
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=5)


def test_the_last_destroy_removes_the_directory(lab):
    a = lab.netns("a")
    d = run_dir(lab, a)
    ok(lab, a, "lo", "up")                      # a command with no agr leaves nothing behind
    assert not os.path.exists(d)
    ok(lab, a, "agr0", "create")
    ok(lab, a, "agr1", "create")
    assert os.path.exists(os.path.join(d, "worker", "agr0.state"))
    ok(lab, a, "agr0", "destroy")
    assert os.path.exists(os.path.join(d, "worker", "agr1.state"))
    ok(lab, a, "agr1", "destroy")
    assert not os.path.exists(d)
    assert lab.agr(a, "agr1").returncode == 2   # no such interface, and no directory made for it
    assert not os.path.exists(d)
    ok(lab, a, "agr0", "create")                # and the next create starts afresh
    ok(lab, a, "--destroy-all")
    assert not os.path.exists(d)


def test_a_create_removes_the_directories_of_namespaces_that_are_gone(lab):
    a, b = host_pair(lab)
    c = lab.netns("c")
    aggregate(lab, a)
    lab.veth(c, "re0", c, "xre0")
    aggregate(lab, c, ports=("re0",))
    gone, kept = run_dir(lab, a), run_dir(lab, c)
    kill_everything_in(lab, a)
    kill_everything_in(lab, c)      # c lives on, held by its mount only: a revivable agr0
    lab.ip(c, "link", "show", "agr0")
    lab.namespaces.remove(a)
    lab.run(b, "ip", "netns", "del", a)
    lab.wait_for(lambda: os.path.exists(os.path.join(gone, "worker", "agr0.state")) and
                 int(os.path.basename(gone)[6:]) not in paths.live_namespaces()[0],
                 what="a's namespace gone, its directory left behind")
    ok(lab, b, "agr0", "create")
    assert not os.path.exists(gone), os.listdir(gone)
    assert os.path.exists(os.path.join(kept, "worker", "agr0.state"))
    assert os.path.exists(os.path.join(run_dir(lab, b), "worker", "agr0.state"))
    # The namespace whose workers were all killed kept everything: its agr0 is revived.
    assert list(port_flags(lab, c)) == ["re0"]
    ok(lab, c, "agr0", "destroy")
    assert not os.path.exists(kept)


def test_creates_and_destroys_racing_in_one_namespace(lab):
    """Two commands create and destroy agr0 and agr1 over and over, while a third asks for the
    status: each lock taken while the directory comes and goes must still exclude the others."""
    a = lab.netns("a")
    failures = []

    def churn(name, rounds=6):
        for _ in range(rounds):
            for words in (("create",), ("destroy",)):
                proc = lab.agr(a, name, *words)
                if proc.returncode:
                    failures.append((name, words, proc.stderr))

    stop = threading.Event()

    def look():
        while not stop.is_set():
            proc = lab.agr(a, "-a")
            if proc.returncode:
                failures.append(("-a", proc.stderr))

    threads = [threading.Thread(target=churn, args=(n,)) for n in ("agr0", "agr1")]
    watcher = threading.Thread(target=look)
    for t in (*threads, watcher):
        t.start()
    for t in threads:
        t.join(300)
    stop.set()
    watcher.join(60)
    assert failures == []
    assert not os.path.exists(run_dir(lab, a))
    assert lab.ip(a, "-o", "link", "show", "type", "tun").stdout == ""
