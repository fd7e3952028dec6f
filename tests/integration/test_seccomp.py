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
    assert re.search(r"agr0: worker killed by signal SIGSYS \(seccomp: a system call outside its filter\); restarting", log), log[-2000:]
    # The aggregate keeps working under the new worker, which is filtered as the first was.
    assert status_fields(w2.pid)["Seccomp"].strip() == "2"
    wait_distributing(lab, a, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=2)
    ok(lab, a, "agr0", "-agrport", "re1")      # a port leaves and comes back: the runtime's calls
    strip_addresses(lab, a, "re1")             # its link-local came back with it
    ok(lab, a, "agr0", "agrport", "re1")
    assert [p["ifname"] for p in status_json(lab, a)["agrports"]] == ["re0", "re1"]
    assert psutil.Process(w2.pid).is_running() and status_fields(w2.pid)["State"][0] != "Z"


SYSLOG_WORLD = r"""
set -e
# A /dev of our own (this mount namespace only) with the nodes a worker opens, and /dev/log:
# the socket the test listens on. The host's /dev is not touched.
mount --make-rprivate /
mkdir -p "$T/realdev"
mount --rbind /dev "$T/realdev"
mount -t tmpfs -o mode=0755 tmpfs /dev
for n in null zero full random urandom; do touch "/dev/$n"; mount --bind "$T/realdev/$n" "/dev/$n"; done
mkdir /dev/net; touch /dev/net/tun; mount --bind "$T/realdev/net/tun" /dev/net/tun
touch /dev/log; mount --bind "$T/log" /dev/log
exec env -u AGRCONFIG_LOG "$@"
"""


def test_a_worker_that_logs_to_syslog_starts_and_logs(lab, tmp_path):
    """Where there is syslog (/dev/log: every systemd host) the worker logs there, and its first
    look at the runtime directory comes after its filter: a call missing from the list (flock,
    once) killed every worker at its start. The suite's other tests log to a file."""
    import socket
    os.chmod(tmp_path, 0o755)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "log"))
    os.chmod(tmp_path / "log", 0o666)
    listener.settimeout(0.2)
    a = lab.netns("a")
    for port in ("re0", "re1"):
        lab.run(a, "ip", "link", "add", port, "type", "veth", "peer", "name", f"x{port}")
        lab.run(a, "sysctl", "-qw", f"net.ipv6.conf.{port}.disable_ipv6=1")
    from tests.lab import AGRCONFIG
    proc = lab.run(a, "env", f"T={tmp_path}", "unshare", "--mount", "sh", "-c", SYSLOG_WORLD, "world",
                   *AGRCONFIG, "agr0", "create", "agrport", "re0", "agrport", "re1", "up", check=False)
    try:
        assert proc.returncode == 0, proc.stderr
        time.sleep(1)
        (w,) = worker_procs(lab, a)
        assert w.create_time() < time.time() - 0.5 and status_fields(w.pid)["Seccomp"].strip() == "2"
        ok(lab, a, "agr0", "-agrport", "re1")   # something the worker logs, after its filter
        lines, deadline = [], time.monotonic() + 5
        while time.monotonic() < deadline and not any("re1" in line for line in lines):
            try:
                lines.append(listener.recv(4096).decode(errors="replace"))
            except TimeoutError:
                pass
        assert any(f"agrconfig/agr0[{w.pid}]" in line and "re1" in line for line in lines), lines
        assert worker_procs(lab, a) == [w], "the worker died (a call outside its filter?)"
    finally:
        listener.close()
        lab.agr(a, "--destroy-all")
