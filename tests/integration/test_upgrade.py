"""Upgrade in place: workers of the previous release are restarted into this code by the first
command that meets them, through the crash path, while a ping crosses the aggregate."""
import json
import os
import pwd
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from agrconfig import __version__, paths
from agrconfig.ipc import protocol
from tests.integration.helpers import ok, port_flags, status_json, strip_addresses
from tests.integration.helpers import host_pair, install_release, netns_inode
from tests.lab import AGRCONFIG, ROOT

# Earlier releases an aggregate may have been started by: commit, its release, and its
# protocol version as a ping tells it. 0.1.0's replies carried no version; 0.2.0 (0df1f40) is the
# release before the typed models (status schema, typed requests, a worker of components);
# 0.3.0 (b46cf3a) the last whose supervisor was a fork of the front end, as root; 0.4.0
# (7873efe) the last whose workers ran as root, with their files in netns-X itself.
OLD_RELEASES = {"0fd4b0f": ("0.1.0", 0), "0df1f40": ("0.2.0", 3), "b46cf3a": ("0.3.0", 3),
                "7873efe8c6debfcfecca4b98596c9c735867b97a": ("0.4.0", 3)}


@pytest.fixture(scope="module", params=sorted(OLD_RELEASES, key=lambda c: OLD_RELEASES[c]))
def old_release(request, tmp_path_factory):
    """An earlier release, installed in a virtual environment of its own: its source from
    git, the libraries it needs linked from ours (no network). Returns its agrconfig command
    and the protocol version its pings carry."""
    commit = request.param
    release, protocol_version = OLD_RELEASES[commit]
    command = install_release(tmp_path_factory.mktemp("old-release"), commit, release)
    return command, protocol_version


def old(lab, ns, command, *words):
    proc = lab.run(ns, *command, *words, check=False)
    assert proc.returncode == 0, f"old agrconfig {' '.join(words)}: {proc.stderr}"
    return proc.stdout


def agr_processes(lab, ns):
    """Our supervisors and workers in `ns`."""
    out = []
    for pid in lab.run(ns, "ip", "netns", "pids", ns, check=False).stdout.split():
        try:
            proc = psutil.Process(int(pid))
            if proc.status() != psutil.STATUS_ZOMBIE and " ".join(proc.cmdline()).startswith("agrconfig: "):
                out.append(proc)
        except psutil.Error:
            pass
    return out


def peer(lab, ns):
    code = "import json; from agrconfig.ipc import client; p = client.ping('agr0'); print(json.dumps(p.as_dict()))"
    out = lab.run(ns, "env", f"PYTHONPATH={ROOT}", sys.executable, "-c", code).stdout
    return json.loads(out)


def start_monitor(ns, command):
    # SIGINT back to its default in the child: the old release's monitor stops on SIGINT only
    # when it did not inherit SIG_IGN (a suite started as a background job of `sh -c`).
    mon = subprocess.Popen(["ip", "netns", "exec", ns, *command, "--json", "agr0", "monitor", "interval", "0.5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    events = []
    threading.Thread(target=lambda: events.extend(json.loads(line) for line in mon.stdout), daemon=True).start()
    return mon, events


def stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_old_workers_are_restarted_into_this_release_without_a_break(lab, old_release):
    old_release, old_protocol = old_release
    a, b = host_pair(lab)
    for ns, addr in ((a, "192.0.2.1/24"), (b, "192.0.2.2/24")):
        for port in ("re0", "re1"):
            strip_addresses(lab, ns, port)
        old(lab, ns, old_release, "agr0", "create")
        old(lab, ns, old_release, "agr0", "agrport", "re0")
        old(lab, ns, old_release, "agr0", "agrport", "re1")
        old(lab, ns, old_release, "agr0", "inet", addr)
    for ns in (a, b):
        lab.wait_for(lambda: "agrport: re0, flags=0x3<" in old(lab, ns, old_release, "agr0")
                     and "agrport: re1, flags=0x3<" in old(lab, ns, old_release, "agr0"),
                     timeout=20, what=f"the old release distributing in {ns}")
        assert peer(lab, ns)["version"] == old_protocol, "the old release's worker answers"
    old_procs = {ns: agr_processes(lab, ns) for ns in (a, b)}
    assert all(len(procs) == 2 for procs in old_procs.values()), old_procs
    old_uids = {ns: {p.uids().real for p in procs} for ns, procs in old_procs.items()}

    ping = subprocess.Popen(["ip", "netns", "exec", a, "ping", "-i", "0.01", "-W", "1", "192.0.2.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        for ns, other in ((a, b), (b, a)):
            # The partner watches with its own monitor (b's is still the old release's when a
            # is upgraded): it must see no LACP change.
            mon, events = start_monitor(other, old_release if other == b else AGRCONFIG)
            lab.wait_for(lambda: any(e["event"] == "counters" for e in events), timeout=15,
                         what="the partner's monitor running")
            text = ok(lab, ns, "agr0")          # the new front end meets the old worker
            assert "agrport: re0, flags=0x3<" in text and "agrport: re1, flags=0x3<" in text, text
            assert peer(lab, ns)["release"] == __version__
            assert peer(lab, ns)["version"] == protocol.PROTOCOL_VERSION
            assert status_json(lab, ns)["linkinfo"]["info_data"]["datapath"] == "ebpf"
            gone = psutil.wait_procs(old_procs[ns], timeout=5)[1]
            assert not gone, f"old processes left in {ns}: {gone}"
            # The old ones ran as root; the new ones as _agrconfig, with the state adopted.
            assert old_uids[ns] == {0}
            assert {p.uids().real for p in agr_processes(lab, ns)} == {pwd.getpwnam("_agrconfig").pw_uid}
            d = os.path.join(paths.RUN_ROOT, f"netns-{netns_inode(lab, ns)}")
            assert not os.path.exists(os.path.join(d, "agr0.state"))
            assert os.stat(os.path.join(d, "worker", "agr0.state")).st_uid == pwd.getpwnam("_agrconfig").pw_uid
            time.sleep(4)       # a renegotiation (Sync off) shows at once; this covers aggregate wait
            _out, err = stop(mon)
            assert mon.returncode == 0, err
            seen = [e for e in events if e["event"] != "counters"]
            assert [(e["event"], e["flags"]) for e in seen[:2]] == [("port-attached", 3)] * 2, seen
            assert seen[2:] == [], f"the partner saw the upgrade: {seen[2:]}"
        for ns in (a, b):
            ok(lab, ns, "agr0", "lacptimeout", "fast")
        for ns in (a, b):
            lab.wait_for(lambda: port_flags(lab, ns) == {"re0": 3, "re1": 3}, timeout=15,
                         what="distributing with the fast timeout")
            assert status_json(lab, ns)["linkinfo"]["info_data"]["ad_lacp_rate"] == "fast"
        time.sleep(2)
    finally:
        out, _err = stop(ping)
    sent, received = (int(out.split(" packets transmitted, ")[0].split()[-1]),
                      int(out.split(" received")[0].split()[-1]))
    assert sent > 500, out
    print(f"upgrade under ping at 100/s: {sent - received} of {sent} lost")
    assert sent - received < sent / 100, f"lost {sent - received} of {sent} pings"
    for ns in (a, b):
        ok(lab, ns, "agr0", "destroy")
        assert agr_processes(lab, ns) == []
