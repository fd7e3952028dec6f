"""The world changes under the worker: other tools delete, rename and reconfigure its links."""
import json

import pytest

from agrconfig.worker.port import PORT_SYSCTLS
from tests.integration.helpers import (agr_pair, aggregate, host_pair, ok, port_flags, status_json, strip_addresses,
                                       wait_distributing, worker_log)

pytestmark = pytest.mark.integration


def link(lab, ns, name):
    out = lab.ip(ns, "-j", "link", "show", name, check=False)
    return json.loads(out.stdout)[0] if out.returncode == 0 else None


def agr_mac(lab, ns):
    return link(lab, ns, "agr0")["address"]


def alive(lab, ns):
    """The worker still answers and its view matches the kernel's."""
    doc = status_json(lab, ns)
    for p in doc["agrports"]:
        assert link(lab, ns, p["ifname"]) is not None, f"status lists {p['ifname']}, which is gone"
    return doc


def test_port_deleted_is_dropped_and_the_rest_carries_on(lab):
    a, b = agr_pair(lab)
    lab.ip(a, "link", "del", "re0")  # takes the peer in b with it
    lab.wait_for(lambda: [p["ifname"] for p in alive(lab, a)["agrports"]] == ["re1"], what="re0 dropped")
    wait_distributing(lab, a, ["re1"])
    assert lab.ping(a, "192.0.2.2", count=2)


def port_state(lab, ns, name):
    """What a port must get back when it leaves: MAC, MTU, up, promiscuity, and every sysctl
    the worker changes on a member."""
    info = json.loads(lab.ip(ns, "-d", "-j", "link", "show", name).stdout)[0]
    keys = [f"net.{fam}.conf.{name}.{key}" for fam, key, _ in PORT_SYSCTLS]
    values = lab.run(ns, "sysctl", "-n", *keys).stdout.split()
    return {"address": info["address"], "mtu": info["mtu"], "up": "UP" in info["flags"],
            "promiscuity": info["promiscuity"],
            **{f"{fam}/{key}": v for (fam, key, _), v in zip(PORT_SYSCTLS, values, strict=True)}}


def test_port_renamed_stays_a_port_under_its_new_name(lab):
    a, b = host_pair(lab)
    # re1 (not the first port, so its MAC is not agr0's) starts from values that are neither
    # the kernel's defaults nor what a member gets, so a restore to either is seen.
    lab.ip(a, "link", "set", "re1", "mtu", "1400")
    lab.run(a, "sysctl", "-qw", "net.ipv4.conf.re1.arp_ignore=2", "net.ipv4.conf.re1.rp_filter=2")
    orig = port_state(lab, a, "re1")
    for ns, addr in ((a, "192.0.2.1/24"), (b, "192.0.2.2/24")):
        aggregate(lab, ns)
        ok(lab, ns, "agr0", "inet", addr)
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])
    member = port_state(lab, a, "re1")
    changed = {k for k in orig if orig[k] != member[k]}
    assert {"address", "mtu", *(f"{fam}/{key}" for fam, key, _ in PORT_SYSCTLS)} <= changed, (orig, member)
    lab.ip(a, "link", "set", "re1", "name", "uplink1")
    lab.wait_for(lambda: [p["ifname"] for p in alive(lab, a)["agrports"]] == ["re0", "uplink1"],
                 what="the new name in status")
    assert lab.ping(a, "192.0.2.2", count=2)
    # And it leaves under its new name, given back exactly as it was.
    ok(lab, a, "agr0", "-agrport", "uplink1")
    assert link(lab, a, "re1") is None
    assert port_state(lab, a, "uplink1") == orig
    wait_distributing(lab, a, ["re0"])


@pytest.mark.parametrize("change", [("mtu", "1400"), ("address", "02:00:00:00:77:77")])
def test_port_mtu_or_mac_changed_by_another_tool_is_set_back(lab, change):
    a, b = agr_pair(lab)
    want = link(lab, a, "re1")
    lab.ip(a, "link", "set", "re1", *change)
    key = "mtu" if change[0] == "mtu" else "address"
    lab.wait_for(lambda: link(lab, a, "re1")[key] == want[key], timeout=5, what=f"re1 {key} set back")
    alive(lab, a)
    wait_distributing(lab, a, ["re0", "re1"])


def test_address_added_to_a_port_by_another_tool_is_removed(lab):
    a, b = agr_pair(lab)
    lab.ip(a, "addr", "add", "198.51.100.7/24", "dev", "re0")
    lab.wait_for(lambda: "198.51.100.7" not in lab.ip(a, "-o", "addr", "show", "dev", "re0").stdout,
                 timeout=5, what="the address removed from re0")
    assert port_flags(lab, a) == {"re0": 3, "re1": 3}
    # Logged just after the removal: waited for, not raced.
    lab.wait_for(lambda: "198.51.100.7/24 added to port re0; removed" in worker_log(lab, a), timeout=5,
                 what="the removal in the worker's log")


def test_port_set_down_by_another_tool_leaves_and_comes_back(lab):
    a, b = agr_pair(lab)
    lab.ip(a, "link", "set", "re0", "down")
    lab.wait_for(lambda: port_flags(lab, a).get("re0") == 0, timeout=5, what="re0 out of the aggregate")
    assert lab.ping(a, "192.0.2.2", count=2)
    lab.ip(a, "link", "set", "re0", "up")
    wait_distributing(lab, a, ["re0", "re1"])


def test_peer_moved_to_another_namespace_is_carrier_loss(lab):
    a, b = agr_pair(lab)
    elsewhere = lab.netns("c")
    lab.ip(b, "link", "set", "re0", "netns", elsewhere)
    lab.wait_for(lambda: port_flags(lab, a).get("re0") == 0, timeout=5, what="re0 out of the aggregate")
    assert alive(lab, a)["agrports"][0]["ifname"] == "re0"
    assert lab.ping(a, "192.0.2.2", count=2)


def test_agr_deleted_with_ip_gives_the_ports_back(lab):
    a, b = agr_pair(lab)
    before = {n: link(lab, a, n) for n in ("re0", "re1")}
    assert before["re0"]["address"] == agr_mac(lab, a)
    lab.ip(a, "link", "del", "agr0")
    lab.wait_for(lambda: link(lab, a, "re1")["address"] != before["re1"]["address"], timeout=5,
                 what="re1 given its own MAC back")
    proc = lab.agr(a, "agr0")
    assert proc.returncode == 2 and "agr0" in proc.stderr
    ok(lab, a, "agr0", "create")  # and the name is free again
    strip_addresses(lab, a, "re0")  # its link-local came back with it
    ok(lab, a, "agr0", "agrport", "re0")


def test_agr_mac_changed_with_ip_is_followed_by_the_ports(lab):
    a, b = agr_pair(lab)
    lab.ip(a, "link", "set", "agr0", "address", "02:00:00:00:99:99")
    lab.wait_for(lambda: {link(lab, a, n)["address"] for n in ("re0", "re1")} == {"02:00:00:00:99:99"},
                 timeout=5, what="ports following agr0's new MAC")
    wait_distributing(lab, a, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=2)
