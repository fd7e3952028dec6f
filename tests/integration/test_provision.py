"""Configuration files: apply, idempotent re-apply, difference, dry run, boot order, monitor."""
import json
import os
import subprocess
import time

import pytest

from tests.integration.helpers import (aggregate, host_pair, ok, port_flags, status_json, strip_addresses,
                                       wait_distributing, worker_log)

pytestmark = pytest.mark.integration


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


@pytest.fixture
def confdir(tmp_path):
    return tmp_path


def boot(lab, ns, confdir, *extra):
    return lab.agr(ns, *extra, "--boot", f"--confdir={confdir}")


def start_ip_monitor(lab, ns):
    # Let the kernel finish duplicate address detection first: its events are not ours.
    lab.wait_for(lambda: "tentative" not in lab.ip(ns, "addr", "show").stdout, what="DAD done")
    return subprocess.Popen(["ip", "netns", "exec", ns, "ip", "monitor", "link", "address"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def stop(proc):
    proc.terminate()
    out, _ = proc.communicate(timeout=5)
    return out


def test_boot_applies_ports_first_and_is_idempotent(lab, confdir):
    a, b = host_pair(lab)
    for ns in (a, b):
        lab.ip(ns, "addr", "add", "198.51.100.1/24", "dev", "re0")
    write(confdir / "ifconfig.re0", "# the port loses its address before agr0 takes it\ninet 198.51.100.1 delete\n")
    write(confdir / "ifconfig.agr0", "create\nagrport re0\nagrport re1   # second port\n\ninet 192.0.2.1/24\nup\n")
    for ns in (a, b):
        for p in ("re0", "re1"):
            lab.run(ns, "sysctl", "-qw", f"net.ipv6.conf.{p}.disable_ipv6=1")
    proc = boot(lab, a, confdir)
    assert proc.returncode == 0, proc.stderr
    doc = status_json(lab, a)
    assert [p["ifname"] for p in doc["agrports"]] == ["re0", "re1"]
    assert any(x["local"] == "192.0.2.1" for x in doc["addr_info"])

    # A partner, so that LACP has settled before we look again.
    aggregate(lab, b)
    wait_distributing(lab, a, ["re0", "re1"])
    doc = status_json(lab, a)
    # Twice: nothing at all happens (no netlink link/address event, no LACP restart).
    lacp_before = {p["ifname"]: (p["mux_state"], p["rx_state"], p["lacp_counters"]) for p in doc["agrports"]}
    mon = start_ip_monitor(lab, a)
    time.sleep(0.3)
    dry = boot(lab, a, confdir, "-n")
    assert dry.returncode == 0 and dry.stdout.strip() == "", dry.stdout
    proc = boot(lab, a, confdir)
    assert proc.returncode == 0, proc.stderr
    time.sleep(0.5)
    events = stop(mon)
    assert "agr0" not in events and "re0" not in events and "re1" not in events, events
    doc2 = status_json(lab, a)
    assert [p["ifname"] for p in doc2["agrports"]] == ["re0", "re1"]
    for p in doc2["agrports"]:
        mux, rx, counters = lacp_before[p["ifname"]]
        # No renegotiation: the machines stayed where they were and no port was re-added
        # (a re-added port starts its counters from zero).
        assert (p["mux_state"], p["rx_state"]) == (mux, rx)
        assert p["lacp_counters"]["lacpdu_tx"] >= counters["lacpdu_tx"] > 0


def test_changed_file_applies_only_the_difference_and_dry_run_says_so(lab, confdir):
    a, _b = host_pair(lab)
    for p in ("re0", "re1"):
        strip_addresses(lab, a, p)
    conf = confdir / "ifconfig.agr0"
    write(conf, "create\nagrport re0\nagrport re1\ninet 192.0.2.1/24\nlink0\n")
    ok(lab, a, "-f", str(conf), "agr0")
    write(conf, "create\nagrport re0\ninet 192.0.2.5/24\n")
    dry = lab.agr(a, "-n", "-f", str(conf), "agr0")
    assert dry.returncode == 3, dry.stderr   # something would change
    assert dry.stdout.splitlines() == [
        "agrconfig agr0 inet 192.0.2.5/24",
        "agrconfig agr0 -agrport re1",
        "agrconfig agr0 -link0",
    ]
    assert list(port_flags(lab, a)) == ["re0", "re1"], "the dry run changed nothing"
    mon = start_ip_monitor(lab, a)
    time.sleep(0.3)
    ok(lab, a, "-f", str(conf), "agr0")
    time.sleep(0.3)
    events = stop(mon)
    assert "re0" not in events, f"re0 was touched: {events}"
    assert list(port_flags(lab, a)) == ["re0"]
    out = ok(lab, a, "agr0")
    assert "192.0.2.5/24" in out and "192.0.2.1/24" not in out and "LINK0" not in out.splitlines()[0]


def test_shell_lines_and_bad_lines(lab, confdir):
    a, _b = host_pair(lab)
    marker = confdir / "ran"
    conf = confdir / "ifconfig.re0"
    write(conf, f"!touch {marker}\nup\n")
    ok(lab, a, "-f", str(conf), "re0")
    assert marker.exists()
    write(conf, "up\nfrobnicate\n")
    proc = lab.agr(a, "-f", str(conf), "re0")
    assert proc.returncode == 1 and f"{conf}:2" in proc.stderr
    os.chmod(conf, 0o666)
    write(conf, f"!touch {marker}2\n")
    os.chmod(conf, 0o666)
    proc = lab.agr(a, "-f", str(conf), "re0")
    assert proc.returncode == 2 and not (confdir / "ran2").exists()


def test_halt_destroys_configured_interfaces(lab, confdir):
    a, _b = host_pair(lab)
    for p in ("re0", "re1"):
        strip_addresses(lab, a, p)
    write(confdir / "ifconfig.agr3", "create\nagrport re0\n")
    assert boot(lab, a, confdir).returncode == 0
    assert "agrport: re0" in ok(lab, a, "agr3")
    proc = lab.agr(a, "--halt", f"--confdir={confdir}")
    assert proc.returncode == 0, proc.stderr
    assert lab.ip(a, "link", "show", "agr3", check=False).returncode != 0


def test_monitor_waits_until_distributing(lab):
    a, b = host_pair(lab)
    for ns in (a, b):
        for p in ("re0", "re1"):
            strip_addresses(lab, ns, p)
        ok(lab, ns, "agr0", "create", "agrport", "re0", "agrport", "re1")
    proc = lab.agr(a, "--json", "agr0", "monitor", "until", "distributing", "timeout", "20", timeout=30)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(l) for l in proc.stdout.splitlines()]
    assert {e["port"] for e in events if e["event"] == "port-attached"} == {"re0", "re1"}
    lab.ip(b, "link", "set", "re1", "down")
    proc = lab.agr(a, "agr0", "monitor", "until", "distributing", "timeout", "1", timeout=30)
    assert proc.returncode == 2 and "ETIMEDOUT" in proc.stderr


def test_completion_and_unit_files_are_shipped():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    unit = open(os.path.join(root, "systemd", "agrconfig.service")).read()
    assert "ExecStart=/usr/local/sbin/agrconfig --boot" in unit and "Before=network.target network-online.target" in unit
    out = subprocess.run(["bash", "-c", f"source {root}/completion/agrconfig.bash; "
                          "COMP_WORDS=(agrconfig agr0 agr); COMP_CWORD=2; _agrconfig; echo ${COMPREPLY[@]}"],
                         capture_output=True, text=True)
    assert "agrport" in out.stdout.split(), out


def test_worker_logs_and_debug_traces_transitions(lab):
    a, _b = host_pair(lab)
    for p in ("re0", "re1"):
        strip_addresses(lab, a, p)
    ok(lab, a, "agr0", "create", "debug", "agrport", "re0")
    assert "DEBUG" in ok(lab, a, "agr0").splitlines()[0]
    lab.ip(a, "link", "set", "re0", "down")

    def logged():
        text = worker_log(lab, a)
        return text if "carrier down" in text else None

    text = lab.wait_for(logged, timeout=10, what="the worker logging re0's carrier loss")
    assert "port re0 attached" in text
    assert "rx: PORT_DISABLED -> EXPIRED" in text and "(port enabled, LACP enabled)" in text
    assert "carrier down" in text
    ok(lab, a, "agr0", "-debug")
    assert "DEBUG" not in ok(lab, a, "agr0").splitlines()[0]
