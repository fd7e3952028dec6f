"""lacpmode, lacpsysprio, lacpsysid and agrportpri between two agrconfig hosts (issue 13):
passive against active and against passive on the wire, what the partner sees, a worker
restart, and the words from a configuration directory under --boot."""
import json
import subprocess
import sys

import pytest

from tests.integration.helpers import (aggregate, host_pair, ok, port_flags, status_json, strip_addresses,
                                       wait_distributing)
from tests.integration.test_worker import kill_worker

pytestmark = pytest.mark.integration

SYSID = "02:00:00:00:13:01"

# Counts every Slow Protocols frame (sent or received) on every interface of the namespace it
# runs in, for as many seconds as it is told; prints the count and what it saw.
SNIFFER = r"""
import socket, sys, time, json
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8809))
s.settimeout(0.2)
end = time.monotonic() + float(sys.argv[1])
seen = []
print("ready", flush=True)
while time.monotonic() < end:
    try:
        frame, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    seen.append([addr[0], addr[2], frame[14], frame[:14].hex()])
print(json.dumps(seen), flush=True)
"""


def sniff(lab, ns, seconds):
    """Start the sniffer in `ns`; returns the process (ready to listen when this returns)."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SNIFFER, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def sniffed(proc):
    out, _ = proc.communicate(timeout=60)
    return json.loads(out)


def ports_of(doc):
    return {p["ifname"]: p for p in doc["agrports"]}


def test_passive_against_active_aggregates(lab):
    a, b = host_pair(lab)
    aggregate(lab, a, words=("lacptimeout", "fast", "lacpmode", "passive"))
    aggregate(lab, b, words=("lacptimeout", "fast"))
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])
    da, db = status_json(lab, a), status_json(lab, b)
    assert da["linkinfo"]["info_data"]["ad_lacp_active"] == "off"
    assert db["linkinfo"]["info_data"]["ad_lacp_active"] == "on"
    assert "\tagr: lacp passive, timeout fast" in ok(lab, a, "agr0")
    for p in da["agrports"]:
        assert "ACTIVITY" not in p["ad_actor_oper_port_state_str"]
        assert "ACTIVITY" in p["ad_partner_oper_port_state_str"]
    for p in db["agrports"]:
        assert "ACTIVITY" not in p["ad_partner_oper_port_state_str"], "b sees a passive partner"
        assert {"SYNC", "COLLECTING", "DISTRIBUTING"} <= set(p["ad_partner_oper_port_state_str"])
    assert lab.ping(a, "192.0.2.2", count=2)


def test_passive_against_passive_stays_silent_until_one_end_turns_active(lab):
    a, b = host_pair(lab)
    for p in ("re0", "re1"):  # b's own stack must not send anything either (nor does it: 0x8809 only)
        lab.run(b, "sysctl", "-qw", f"net.ipv6.conf.{p}.disable_ipv6=1")
    sniffer = sniff(lab, b, 9)
    aggregate(lab, a, words=("lacptimeout", "fast", "lacpmode", "passive"))
    aggregate(lab, b, words=("lacptimeout", "fast", "lacpmode", "passive"))
    seen = sniffed(sniffer)      # > 3 short timeouts with both ends up
    assert seen == [], f"Slow Protocols frames on the wire: {seen[:5]}"
    for ns in (a, b):
        assert port_flags(lab, ns) == {"re0": 0, "re1": 0}
        for p in status_json(lab, ns)["agrports"]:
            assert p["lacp_counters"]["lacpdu_tx"] == 0 and p["lacp_counters"]["lacpdu_rx"] == 0
            assert p["rx_state"] == "DEFAULTED"
    # The same sniffer sees LACPDUs as soon as one end is active, and then the two aggregate:
    # the silence above was the passive mode's, not a deaf sniffer's.
    sniffer = sniff(lab, b, 3)
    ok(lab, a, "agr0", "lacpmode", "active")
    seen = sniffed(sniffer)
    assert {port for port, _type, subtype, _head in seen if subtype == 1} >= {"re0", "re1"}, seen
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])


def test_the_partner_sees_our_priorities_and_system_id_through_a_port_change_and_a_restart(lab):
    a, b = host_pair(lab, ports=("re0", "re1", "re2"))
    aggregate(lab, b, ports=("re0", "re1", "re2"), words=("lacptimeout", "fast"))
    aggregate(lab, a, ports=("re0", "re1"),
              words=("lacptimeout", "fast", "lacpsysprio", "0x1234", "lacpsysid", SYSID))
    ok(lab, a, "agr0", "agrportpri", "re0", "66")
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])

    def partner_view():
        theirs = ports_of(status_json(lab, b))
        return {n: (p["partner_mac"], p["partner_system_priority"], p["partner_port_priority"])
                for n, p in theirs.items() if n in ("re0", "re1")}

    lab.wait_for(lambda: partner_view() == {"re0": (SYSID, 0x1234, 66), "re1": (SYSID, 0x1234, 0x8000)},
                 timeout=10, what="b seeing our system and port priorities")
    text = ok(lab, b, "agr0")
    assert f"system 0x1234,{SYSID} key" in text and "port 0x0042," in text
    mine = status_json(lab, a)
    assert mine["linkinfo"]["info_data"]["ad_actor_sys_prio"] == 0x1234
    assert mine["linkinfo"]["info_data"]["ad_actor_system"] == SYSID
    assert ports_of(mine)["re0"]["options"] == {"port_priority": 66}
    assert ports_of(mine)["re0"]["actor_port_prio"] == 66
    assert f"system 0x1234,{SYSID} (lacpsysid);" in ok(lab, a, "agr0")
    assert "actor: state=" in ok(lab, a, "agr0") and "port 0x0042," in ok(lab, a, "agr0")

    # A worker restart keeps every setting, and the partner sees no change.
    kill_worker(lab, a)
    doc = lab.wait_for(lambda: status_json(lab, a), what="the restarted worker")
    flags = doc["linkinfo"]["info_data"]["flags"]
    assert (flags["lacp_sysprio"], flags["lacp_sysid"], flags["lacp_active"]) == (0x1234, SYSID, True)
    assert ports_of(doc)["re0"]["options"] == {"port_priority": 66}
    assert partner_view() == {"re0": (SYSID, 0x1234, 66), "re1": (SYSID, 0x1234, 0x8000)}

    # The first port (whose MAC agr0 took) is replaced: agr0's address changes, the system id
    # does not, and b still sees one partner system on every port.
    first_mac = doc["address"]
    ok(lab, a, "agr0", "-agrport", "re0", "-agrport", "re1")
    strip_addresses(lab, a, "re2")
    ok(lab, a, "agr0", "agrport", "re2")
    assert status_json(lab, a)["address"] != first_mac
    wait_distributing(lab, b, ["re2"])
    assert ports_of(status_json(lab, b))["re2"]["partner_mac"] == SYSID
    # re0 is no port of a's any more: its priority cannot be set (ENOENT, exit 2).
    proc = lab.agr(a, "agr0", "agrportpri", "re0", "1")
    assert proc.returncode == 2 and "No such file or directory" in proc.stderr, proc.stderr

    # Without lacpsysid the system id is agr0's own address again; b follows.
    ok(lab, a, "agr0", "-lacpsysid")
    now = status_json(lab, a)["address"]
    assert now != SYSID
    lab.wait_for(lambda: ports_of(status_json(lab, b))["re2"]["partner_mac"] == now, timeout=10,
                 what="b seeing agr0's MAC as our system")
    wait_distributing(lab, b, ["re2"])


def test_the_words_from_a_configuration_directory_at_boot(lab, tmp_path):
    a, b = host_pair(lab)
    aggregate(lab, b, words=("lacptimeout", "fast"))
    for p in ("re0", "re1"):
        strip_addresses(lab, a, p)
    (tmp_path / "ifconfig.agr0").write_text(
        "create\nlacptimeout fast\nlacpmode passive\nlacpsysprio 100\n"
        f"lacpsysid {SYSID}\nagrport re0\nagrportpri re0 7\nagrport re1\n")
    proc = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert proc.returncode == 3, proc.stderr    # -n: something would change
    dry = proc.stdout.splitlines()
    assert dry == ["agrconfig agr0 create", "agrconfig agr0 lacptimeout fast", "agrconfig agr0 lacpmode passive",
                   "agrconfig agr0 lacpsysprio 100", f"agrconfig agr0 lacpsysid {SYSID}",
                   "agrconfig agr0 agrport re0", "agrconfig agr0 agrportpri re0 7", "agrconfig agr0 agrport re1"]
    ok(lab, a, "--boot", f"--confdir={tmp_path}")
    assert ok(lab, a, "-n", "--boot", f"--confdir={tmp_path}") == "", "applied: nothing left to do"
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])
    theirs = ports_of(status_json(lab, b))
    assert {(p["partner_mac"], p["partner_system_priority"], p["partner_port_priority"])
            for p in theirs.values()} == {(SYSID, 100, 7), (SYSID, 100, 0x8000)}
    assert "ACTIVITY" not in theirs["re0"]["ad_partner_oper_port_state_str"]
    # The file without the port's priority line: the priority goes back to its default.
    (tmp_path / "ifconfig.agr0").write_text(
        "create\nlacptimeout fast\nlacpmode passive\nlacpsysprio 100\n"
        f"lacpsysid {SYSID}\nagrport re0\nagrport re1\n")
    proc = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert proc.returncode == 3 and proc.stdout.splitlines() == ["agrconfig agr0 agrportpri re0 32768"], proc
    ok(lab, a, "--boot", f"--confdir={tmp_path}")
    assert ports_of(status_json(lab, a))["re0"]["options"] == {"port_priority": 0x8000}
    lab.wait_for(lambda: ports_of(status_json(lab, b))["re0"]["partner_port_priority"] == 0x8000,
                 timeout=5, what="b seeing re0's default priority")


def test_out_of_range_values_exit_1_and_change_nothing(lab):
    a, _b = host_pair(lab, ports=("re0",))
    aggregate(lab, a, ports=("re0",))
    before = status_json(lab, a)
    for words in (("lacpsysprio", "65536"), ("agrportpri", "re0", "70000"), ("lacpsysid", "01:00:5e:00:00:01"),
                  ("lacpsysid", "00:00:00:00:00:00"), ("lacpmode", "quiet"),
                  ("lacpsysprio", "5", "agrportpri", "re0", "-1")):
        proc = lab.agr(a, "agr0", *words)
        assert proc.returncode == 1, (words, proc.stderr)
    after = status_json(lab, a)
    assert after["linkinfo"]["info_data"]["flags"] == before["linkinfo"]["info_data"]["flags"]
    assert ports_of(after)["re0"]["options"] == ports_of(before)["re0"]["options"] == {"port_priority": 0x8000}
    # A port of nobody: ENOENT, exit 2.
    proc = lab.agr(a, "agr0", "agrportpri", "re9", "1")
    assert proc.returncode == 2 and "ENOENT" in proc.stderr, proc.stderr
