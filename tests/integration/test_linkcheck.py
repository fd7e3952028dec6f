"""agrlinkcheck in failover and loadbalance: two access switches (bridges) with an uplink each
to a core switch where the target lives. The active cable's switch loses its uplink: the cable
keeps its carrier, the target stops answering behind it, and the standby takes over."""
import time

import pytest

from tests.integration.helpers import ok, status_json, strip_addresses

pytestmark = pytest.mark.integration


def two_switches(lab):
    """a: re0 -> s0 (br0) -uplink- c (brc, 192.0.2.2, 2001:db8::2) -uplink- s1 (br1) <- a: re1."""
    a, s0, s1, c = lab.netns("a"), lab.netns("s0"), lab.netns("s1"), lab.netns("c")
    lab.ip(c, "link", "add", "brc", "type", "bridge")
    for n, (port, s) in enumerate((("re0", s0), ("re1", s1))):
        lab.ip(s, "link", "add", f"br{n}", "type", "bridge")
        lab.veth(a, port, a, f"sw{n}", up=False)
        lab.ip(a, "link", "set", f"sw{n}", "netns", s)
        lab.ip(s, "link", "set", f"sw{n}", "master", f"br{n}", "up")
        lab.veth(s, f"up{n}", s, f"c{n}", up=False)
        lab.ip(s, "link", "set", f"c{n}", "netns", c)
        lab.ip(s, "link", "set", f"up{n}", "master", f"br{n}", "up")
        lab.ip(c, "link", "set", f"c{n}", "master", "brc", "up")
        lab.ip(s, "link", "set", f"br{n}", "up")
        lab.ip(a, "link", "set", port, "up")
    lab.ip(c, "link", "set", "brc", "up")
    lab.ip(c, "addr", "add", "192.0.2.2/24", "dev", "brc")
    lab.ip(c, "addr", "add", "2001:db8::2/64", "dev", "brc", "nodad")
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    return a, s0, s1, c


def ports(lab, ns):
    doc = status_json(lab, ns)
    return doc, {p["ifname"]: p for p in doc["agrports"]}


def linkcheck_up(lab, ns):
    return {name: p["linkcheck"]["up"] for name, p in ports(lab, ns)[1].items()}


@pytest.mark.parametrize("target, datapath", [("192.0.2.2", "ebpf"), ("2001:db8::2", "ebpf"),
                                              ("192.0.2.2", "relay")])
def test_failover_moves_when_the_target_stops_answering_behind_the_active_cable(lab, target, datapath):
    a, s0, _s1, c = two_switches(lab)
    ok(lab, a, "agr0", "create", "agrproto", "failover", "agrlinkcheck", target, "interval", "100",
       "datapath", datapath)
    ok(lab, a, "agr0", "agrport", "re0", "agrport", "re1", "inet", "192.0.2.1/24", "up")
    lab.wait_for(lambda: linkcheck_up(lab, a) == {"re0": True, "re1": True}, timeout=10,
                 what="both ports hear the target")
    doc, by = ports(lab, a)
    assert doc["linkinfo"]["info_data"]["active_slave"] == "re0"
    assert doc["linkinfo"]["info_data"]["datapath"] == datapath
    key = "ns_ip6_target" if ":" in target else "arp_ip_target"
    assert doc["linkinfo"]["info_data"][key] == [target] and doc["linkinfo"]["info_data"]["arp_interval"] == 100
    assert f"\tlinkcheck: {target} interval 100 ms" in ok(lab, a, "agr0")
    assert lab.ping(a, "192.0.2.2", count=2, wait=2)

    # The access switch of re0 loses its uplink: re0 keeps its carrier, the target is gone.
    lab.ip(s0, "link", "set", "up0", "down")
    lab.wait_for(lambda: ports(lab, a)[0]["linkinfo"]["info_data"]["active_slave"] == "re1", timeout=10,
                 what="re1 active once re0 hears the target no more")
    doc, by = ports(lab, a)
    assert by["re0"]["carrier"] is True, "the carrier stayed up: the check moved the traffic"
    assert by["re0"]["linkcheck"]["up"] is False and by["re0"]["flags"] == 0
    assert by["re1"]["flags"] == 3
    assert lab.ping(a, "192.0.2.2", count=3, wait=2), "the standby carries the traffic"

    # The uplink back: re0 hears the target again, and stays standby (sticky).
    lab.ip(s0, "link", "set", "up0", "up")
    lab.wait_for(lambda: linkcheck_up(lab, a)["re0"], timeout=10, what="re0 hears the target again")
    time.sleep(0.5)
    assert ports(lab, a)[0]["linkinfo"]["info_data"]["active_slave"] == "re1"
    # Turned off: carrier alone decides again, nothing moves.
    ok(lab, a, "agr0", "-agrlinkcheck")
    assert "linkcheck" not in ports(lab, a)[1]["re0"]
    assert ports(lab, a)[0]["linkinfo"]["info_data"]["active_slave"] == "re1"


def test_loadbalance_leaves_out_a_port_whose_target_is_silent(lab):
    a, s0, _s1, c = two_switches(lab)
    ok(lab, a, "agr0", "create", "link1", "agrlinkcheck", "192.0.2.2", "interval", "100")
    ok(lab, a, "agr0", "agrport", "re0", "agrport", "re1", "inet", "192.0.2.1/24", "up")
    lab.wait_for(lambda: {n: p["flags"] for n, p in ports(lab, a)[1].items()} == {"re0": 3, "re1": 3},
                 timeout=10, what="both distributing")
    lab.ip(s0, "link", "set", "up0", "down")
    lab.wait_for(lambda: {n: p["flags"] for n, p in ports(lab, a)[1].items()} == {"re0": 0, "re1": 3},
                 timeout=10, what="re0 out: its target is silent")
    assert lab.ping(a, "192.0.2.2", count=3, wait=2)
    # Under LACP the check does not apply (LACP has its own): status says so.
    ok(lab, a, "agr0", "-link1")
    assert "(not with lacp)" in ok(lab, a, "agr0")
    assert "linkcheck" not in ports(lab, a)[1]["re0"]


def test_bad_agrlinkcheck_exits_1_and_changes_nothing(lab):
    a, _s0, _s1, _c = two_switches(lab)
    ok(lab, a, "agr0", "create", "agrproto", "failover", "agrlinkcheck", "192.0.2.2")
    for words in (["agrlinkcheck", "192.0.2.2", "interval", "9"], ["agrlinkcheck", "224.0.0.1"],
                  ["agrlinkcheck", "192.0.2.300"], ["agrlinkcheck"], ["agrlinkcheck", "192.0.2.9", "interval"]):
        proc = lab.agr(a, "agr0", *words)
        assert proc.returncode == 1 and proc.stderr.startswith("agrconfig: "), (words, proc.stderr)
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["linkcheck"] == \
        {"targets": ["192.0.2.2"], "interval": 1000}
