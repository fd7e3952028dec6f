"""agrmaxports between two agrconfig hosts (issue 13): one port distributes, the others are
standby on both ends, the standby takes over on a cable cut and gives back when it returns;
the limit through a worker restart, from a configuration file at boot, and its limits."""
import pytest

from tests.integration.helpers import aggregate, host_pair, ok, port_flags, status_json, strip_addresses
from tests.integration.test_worker import kill_worker

pytestmark = pytest.mark.integration


def ports_of(doc):
    return {p["ifname"]: p for p in doc["agrports"]}


def settle(lab, a, b, want, timeout=15):
    """Wait until both ends show exactly `want` ({port: flags}, 3 distributing, 0 idle)."""
    lab.wait_for(lambda: port_flags(lab, a) == want and port_flags(lab, b) == want, timeout=timeout,
                 what=f"port flags {want} on both ends")


def test_one_port_distributes_and_the_standby_takes_over_on_a_cable_cut(lab):
    a, b = host_pair(lab, ports=("re0", "re1", "re2"))
    # a's better system priority makes a's ranking the one both ends follow (802.1AX 6.7.1).
    aggregate(lab, a, ports=("re0", "re1", "re2"),
              words=("lacptimeout", "fast", "lacpsysprio", "1", "agrmaxports", "1"))
    aggregate(lab, b, ports=("re0", "re1", "re2"), words=("lacptimeout", "fast"))
    ok(lab, a, "agr0", "agrportpri", "re1", "10", "agrportpri", "re2", "20")
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")
    settle(lab, a, b, {"re0": 0, "re1": 3, "re2": 0})
    text = ok(lab, a, "agr0")
    assert "; maxports 1\n" in text
    assert text.count("standby (agrmaxports), mux WAITING") == 2, text
    doc = ports_of(status_json(lab, a))
    assert [doc[p]["standby_maxports"] for p in ("re0", "re1", "re2")] == [True, False, True]
    assert "SYNC" not in doc["re0"]["ad_actor_oper_port_state_str"], "standby: our Synchronization off"
    assert lab.ping(a, "192.0.2.2", count=2)

    # Cut re1 (carrier loss on both ends): the next best, re2 (priority 20), takes over.
    lab.ip(b, "link", "set", "re1", "down")
    settle(lab, a, b, {"re0": 0, "re1": 0, "re2": 3}, timeout=10)
    assert lab.ping(a, "192.0.2.2", count=2)
    # re1 comes back, ranked first again: it takes the traffic back, re2 is standby again.
    lab.ip(b, "link", "set", "re1", "up")
    settle(lab, a, b, {"re0": 0, "re1": 3, "re2": 0})
    assert lab.ping(a, "192.0.2.2", count=2)

    # A restarted worker keeps the limit and the same port.
    kill_worker(lab, a)
    doc = lab.wait_for(lambda: status_json(lab, a), what="the restarted worker")
    assert doc["linkinfo"]["info_data"]["flags"]["max_ports"] == 1
    settle(lab, a, b, {"re0": 0, "re1": 3, "re2": 0})

    # A new limit at once; 0 lifts it.
    ok(lab, a, "agr0", "agrmaxports", "2")
    settle(lab, a, b, {"re0": 0, "re1": 3, "re2": 3})
    ok(lab, a, "agr0", "agrmaxports", "0")
    settle(lab, a, b, {"re0": 3, "re1": 3, "re2": 3})
    assert "maxports" not in ok(lab, a, "agr0")


def test_the_limit_from_a_configuration_directory_at_boot_and_bad_values(lab, tmp_path):
    a, b = host_pair(lab)
    aggregate(lab, b, words=("lacptimeout", "fast"))
    for p in ("re0", "re1"):
        strip_addresses(lab, a, p)
    (tmp_path / "ifconfig.agr0").write_text(
        "create\nlacptimeout fast\nlacpsysprio 1\nagrmaxports 1\nagrport re0\nagrport re1\n")
    proc = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert proc.returncode == 3, proc.stderr
    assert "agrconfig agr0 agrmaxports 1" in proc.stdout.splitlines()
    ok(lab, a, "--boot", f"--confdir={tmp_path}")
    assert ok(lab, a, "-n", "--boot", f"--confdir={tmp_path}") == ""
    settle(lab, a, b, {"re0": 3, "re1": 0})
    before = status_json(lab, a)["linkinfo"]["info_data"]["flags"]
    for words in (("agrmaxports", "1025"), ("agrmaxports", "-1"), ("agrmaxports",),
                  ("agrmaxports", "2", "lacpsysprio", "70000")):
        proc = lab.agr(a, "agr0", *words)
        assert proc.returncode == 1 and "agrconfig: " in proc.stderr, (words, proc.stderr)
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"] == before
    # The file without agrmaxports: back to no limit.
    (tmp_path / "ifconfig.agr0").write_text("create\nlacptimeout fast\nlacpsysprio 1\nagrport re0\nagrport re1\n")
    proc = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert proc.returncode == 3 and proc.stdout.splitlines() == ["agrconfig agr0 agrmaxports 0"], proc
    ok(lab, a, "--boot", f"--confdir={tmp_path}")
    settle(lab, a, b, {"re0": 3, "re1": 3})
