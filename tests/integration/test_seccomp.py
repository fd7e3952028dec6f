"""The seccomp filter on a real worker and supervisor: both filtered, and a forbidden call made by
the worker itself kills it with SIGSYS; the supervisor says so and restarts it."""
import os
import re
import subprocess
import time

import psutil
import pytest

from tests.integration.helpers import agr_pair, ok, status_json, strip_addresses, wait_distributing, worker_log
from tests.integration.test_worker import worker_procs

pytestmark = pytest.mark.integration

# gdb (scripts/bootstrap test installs it) makes the worker's main thread call syscall(2)
# itself: the call is the worker's, under its filters (gdb's ptrace from outside is not). No
# hook in the worker for it. 59 is execve on x86_64, 221 on aarch64.
EXECVE = {"x86_64": 59, "aarch64": 221}


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def test_worker_and_supervisor_are_filtered_and_a_violation_restarts_the_worker(lab):
    a, _b = agr_pair(lab)
    (w,) = worker_procs(lab, a)
    sup = psutil.Process(w.ppid())
    for proc, filters in ((sup, 1), (w, 2)):   # the worker: the supervisor's and its own, stacked
        fields = status_fields(proc.pid)
        assert fields["Seccomp"].strip() == "2", f"{proc.cmdline()} {fields['Seccomp']}"
        assert int(fields["Seccomp_filters"]) == filters, f"{proc.cmdline()} {fields['Seccomp_filters']}"
        assert fields["NoNewPrivs"].strip() == "1"
    # every thread (the relay too): TSYNC
    for task in w.threads():
        assert status_fields(task.id)["Seccomp"].strip() == "2"

    # Stopped and continued (as a debugger's attach does), its sleeping calls restart: alive.
    w.suspend()
    time.sleep(0.3)
    w.resume()
    time.sleep(0.5)
    assert w.is_running() and w.status() != psutil.STATUS_ZOMBIE
    assert worker_procs(lab, a) == [w]

    nr = EXECVE[os.uname().machine]
    gdb = subprocess.run(["gdb", "-nx", "-batch", "-p", str(w.pid),
                          "-ex", f"call ((long (*)(long, long, long, long)) syscall)({nr}, 0, 0, 0)"],
                         capture_output=True, text=True, timeout=60)
    said = gdb.stdout + gdb.stderr
    assert "SIGSYS" in said and "in a function called from GDB" in said, said
    w.wait(10)
    (w2,) = lab.wait_for(lambda: [p for p in worker_procs(lab, a) if p.pid != w.pid], timeout=15,
                         interval=0.05, what="a new worker")
    assert w2.ppid() == sup.pid, "its supervisor restarted it"
    log = worker_log(lab, a)
    assert re.search(r"agr0: worker killed by signal SIGSYS \(seccomp\); restarting", log), log[-2000:]
    # The aggregate keeps working under the new worker, which is filtered as the first was.
    assert status_fields(w2.pid)["Seccomp"].strip() == "2"
    wait_distributing(lab, a, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=2)
    ok(lab, a, "agr0", "-agrport", "re1")      # a port leaves and comes back: the runtime's calls
    strip_addresses(lab, a, "re1")             # its link-local came back with it
    ok(lab, a, "agr0", "agrport", "re1")
    assert [p["ifname"] for p in status_json(lab, a)["agrports"]] == ["re0", "re1"]
    assert psutil.Process(w2.pid).is_running() and status_fields(w2.pid)["State"][0] != "Z"
