"""Upper devices take agr0 or a port and let go of it: agr0, its ports and its traffic stay.

A link leaving a bridge (nomaster, moved to another bridge, the bridge deleted) gets an
RTM_DELLINK of family AF_BRIDGE, which is not its deletion; joining one, an RTM_NEWLINK of
family AF_BRIDGE, which carries no carrier. This lab's kernel has bridge and macvlan, tested
here; it has no 802.1Q or VRF driver: VLAN and VRF uppers belong to the Debian-kernel VM stage
(issue 21), not to a test that would always skip here.

Each test ends with a barrier: an address put on a port by "another tool" is removed and logged
by the worker, and its netlink event comes after the upper's, so once that is logged the worker
has read the upper's events too (and had it taken them for agr0's deletion, it would be gone).
"""
import pytest

from tests.integration.helpers import agr_pair, port_flags, status_json, worker_log

pytestmark = pytest.mark.integration


def barrier(lab, ns, n):
    address = f"198.51.100.{n}/24"
    lab.ip(ns, "addr", "add", address, "dev", "re1")
    lab.wait_for(lambda: f"{address} added to port re1; removed" in worker_log(lab, ns), timeout=10,
                 what="the worker reading its events up to the barrier")


def aggregated(lab):
    """agr_pair, and where the worker's log of a's stood then (start-up's own lines before)."""
    a, _b = agr_pair(lab)
    return a, len(worker_log(lab, a))


def still_there(lab, a, n, since, via="agr0"):
    """agr0, both ports, their aggregation and its traffic (through `via`, the upper that holds
    agr0 if one does) are all still there, and since `since` the worker has logged no deletion
    nor carrier loss."""
    barrier(lab, a, n)
    log = worker_log(lab, a)[since:]
    assert "deleted by someone else" not in log, log
    assert "went away" not in log and "carrier down" not in log, log
    doc = status_json(lab, a)
    assert [p["ifname"] for p in doc["agrports"]] == ["re0", "re1"]
    assert port_flags(lab, a) == {"re0": 3, "re1": 3}
    lab.wait_for(lambda: lab.run(a, "ping", "-c", "1", "-W", "1", "-I", via, "192.0.2.2", check=False).returncode == 0,
                 timeout=20, what=f"ping through {via}")


def new_bridge(lab, ns, name):
    """A bridge, up, with 192.0.2.11 (the bridge's traffic crosses agr0 while agr0 is in it)."""
    lab.ip(ns, "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    lab.ip(ns, "addr", "add", "192.0.2.11/24", "dev", name)
    lab.ip(ns, "link", "set", name, "up")


def test_agr_set_nomaster(lab):
    a, since = aggregated(lab)
    new_bridge(lab, a, "br0")
    lab.ip(a, "link", "set", "agr0", "master", "br0")
    still_there(lab, a, 1, since, via="br0")
    lab.ip(a, "addr", "flush", "dev", "br0")
    lab.ip(a, "link", "set", "agr0", "nomaster")
    still_there(lab, a, 2, since)


def test_agr_bridge_deleted(lab):
    a, since = aggregated(lab)
    new_bridge(lab, a, "br0")
    lab.ip(a, "link", "set", "agr0", "master", "br0")
    still_there(lab, a, 1, since, via="br0")
    lab.ip(a, "link", "del", "br0")
    still_there(lab, a, 2, since)


def test_agr_moved_to_another_bridge(lab):
    a, since = aggregated(lab)
    new_bridge(lab, a, "br0")
    lab.ip(a, "link", "set", "agr0", "master", "br0")
    lab.ip(a, "addr", "flush", "dev", "br0")
    new_bridge(lab, a, "br1")
    lab.ip(a, "link", "set", "agr0", "master", "br1")     # leaves br0 on the way
    still_there(lab, a, 1, since, via="br1")
    lab.ip(a, "link", "del", "br1")
    lab.ip(a, "link", "del", "br0")
    still_there(lab, a, 2, since)


def test_agr_under_a_macvlan_created_and_deleted(lab):
    a, since = aggregated(lab)
    lab.ip(a, "link", "add", "link", "agr0", "name", "mv0", "type", "macvlan", "mode", "bridge")
    lab.ip(a, "link", "set", "mv0", "up")
    still_there(lab, a, 1, since)
    lab.ip(a, "link", "del", "mv0")
    still_there(lab, a, 2, since)


def test_port_put_in_a_bridge_by_another_tool_keeps_its_carrier(lab):
    """A port's own AF_BRIDGE messages are no carrier loss and no deletion either."""
    a, since = aggregated(lab)
    lab.ip(a, "link", "add", "br9", "type", "bridge", "stp_state", "0", "forward_delay", "0")
    lab.ip(a, "link", "set", "br9", "up")
    lab.ip(a, "link", "set", "re0", "master", "br9")
    still_there(lab, a, 1, since)
    lab.ip(a, "link", "set", "re0", "nomaster")
    still_there(lab, a, 2, since)
    lab.ip(a, "link", "set", "re0", "master", "br9")
    lab.ip(a, "link", "del", "br9")
    still_there(lab, a, 3, since)
