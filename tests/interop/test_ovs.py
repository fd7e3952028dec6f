"""LACP against an independent implementation: Open vSwitch (userspace datapath).

OVS must be installed: when it is not, these tests fail rather than skip.
"""
import pytest

from tests.integration.helpers import ok, port_flags, status_json, strip_addresses, wait_distributing
from tests.ovslab import OvsPartner

pytestmark = pytest.mark.interop


def ovs_pair(lab, lacp_time):
    """agrconfig in namespace `a` (ports re0, re1) cabled to an OVS bond in its own namespace."""
    a = lab.netns("a")
    ovs = OvsPartner(lab, ns_suffix="o")
    for i, port in enumerate(("re0", "re1")):
        lab.veth(a, port, ovs.ns, f"ov{i}")
    words = ("lacptimeout", "fast") if lacp_time == "fast" else ()
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    ok(lab, a, "agr0", "create", *words, "agrport", "re0", "agrport", "re1")
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    ovs.add_bond("bond0", ["ov0", "ov1"], lacp_time=lacp_time)
    ovs.add_internal("int0", "192.0.2.2/24")
    return a, ovs


@pytest.mark.parametrize("lacp_time", ["fast", "slow"])
def test_ovs_partner_negotiates_passes_traffic_and_survives_a_cut(lab, lacp_time):
    a, ovs = ovs_pair(lab, lacp_time)
    with ovs:
        wait_distributing(lab, a, ["re0", "re1"], timeout=30)
        ovs.wait_member_enabled("bond0", ["ov0", "ov1"], timeout=30)
        show = ovs.lacp_show("bond0")
        doc = status_json(lab, a)
        ours = {p["ifname"]: p for p in doc["agrports"]}
        # Both sides agree: OVS sees us as its partner, we see OVS as ours.
        for i, port in enumerate(("re0", "re1")):
            member = show["members"][f"ov{i}"]
            assert member["partner_sys_id"].lower() == doc["address"].lower()
            assert {"collecting", "distributing", "synchronized"} <= {w.lower() for w in member["partner_state"]}
            p = ours[port]
            assert p["partner_mac"].lower() == show["sys_id"].lower()
            assert p["partner_system_priority"] == show["sys_priority"]
            assert {"SYNC", "COLLECTING", "DISTRIBUTING"} <= set(p["ad_partner_oper_port_state_str"])
            assert {"ACTIVITY", "AGGREGATION", "SYNC", "COLLECTING", "DISTRIBUTING"} <= set(p["ad_actor_oper_port_state_str"])
            assert ("TIMEOUT" in p["ad_actor_oper_port_state_str"]) == (lacp_time == "fast")
        assert lab.ping(a, "192.0.2.2", count=3)
        tcp = lab.run(ovs.ns, "sh", "-c", "iperf3 -s -1 -D", check=False)
        assert tcp.returncode == 0
        lab.wait_for(lambda: "5201" in lab.run(ovs.ns, "ss", "-ltn").stdout, what="iperf3 server")
        assert lab.run(a, "iperf3", "-c", "192.0.2.2", "-t", "1", check=False, timeout=30).returncode == 0

        # A port cut at the far end leaves the bundle, traffic goes on, and it comes back.
        lab.ip(ovs.ns, "link", "set", "ov0", "down")
        lab.wait_for(lambda: port_flags(lab, a)["re0"] == 0, timeout=5, what="re0 out of the bundle")
        assert lab.ping(a, "192.0.2.2", count=3)
        lab.ip(ovs.ns, "link", "set", "ov0", "up")
        wait_distributing(lab, a, ["re0", "re1"], timeout=40)
        ovs.wait_member_enabled("bond0", ["ov0", "ov1"], timeout=40)
        assert lab.ping(a, "192.0.2.2", count=3)


def test_silent_partner_expires_the_port(lab):
    a, ovs = ovs_pair(lab, "fast")
    with ovs:
        wait_distributing(lab, a, ["re0", "re1"], timeout=30)
        ovs.drop_lacp("ov1")
        # Short timeout is 3 s; give the machines a little slack.
        lab.wait_for(lambda: port_flags(lab, a)["re1"] == 0, timeout=6, what="re1 expired")
        p = {x["ifname"]: x for x in status_json(lab, a)["agrports"]}["re1"]
        assert p["rx_state"] in ("EXPIRED", "DEFAULTED")
        # OVS still hears us on ov1 and keeps using it until we leave sync there (DEFAULTED,
        # one short timeout later): then traffic flows over ov0 alone.
        lab.wait_for(lambda: not ovs.bond_show("bond0")["members"]["ov1"]["enabled"], timeout=8,
                     what="OVS disables ov1")
        assert lab.ping(a, "192.0.2.2", count=3)
        ovs.allow_lacp("ov1")
        wait_distributing(lab, a, ["re0", "re1"], timeout=30)


def test_ovs_reports_our_system_and_port_priorities(lab):
    """lacpsysprio and agrportpri reach an independent partner: OVS's lacp/show lists them as
    its partner's (ours)."""
    a, ovs = ovs_pair(lab, "fast")
    with ovs:
        ok(lab, a, "agr0", "lacpsysprio", "4660", "agrportpri", "re1", "0x42")
        wait_distributing(lab, a, ["re0", "re1"], timeout=30)
        ovs.wait_member_enabled("bond0", ["ov0", "ov1"], timeout=30)

        def partner_priorities():
            members = ovs.lacp_show("bond0")["members"]
            return {m: (int(members[m]["partner_sys_priority"]), int(members[m]["partner_port_priority"]))
                    for m in ("ov0", "ov1")}

        lab.wait_for(lambda: partner_priorities() == {"ov0": (4660, 0x8000), "ov1": (4660, 0x42)},
                     timeout=10, what="OVS showing our priorities")
        show = ovs.lacp_show("bond0")
        assert show["members"]["ov1"]["partner_sys_id"].lower() == status_json(lab, a)["address"].lower()
        assert lab.ping(a, "192.0.2.2", count=2)


def test_an_ovs_passive_bond_aggregates_with_our_active_end(lab):
    a = lab.netns("a")
    ovs = OvsPartner(lab, ns_suffix="o")
    with ovs:
        for i, port in enumerate(("re0", "re1")):
            lab.veth(a, port, ovs.ns, f"ov{i}")
        ovs.add_bond("bond0", ["ov0", "ov1"], lacp_time="fast", lacp="passive")
        ovs.add_internal("int0", "192.0.2.2/24")
        for port in ("re0", "re1"):
            strip_addresses(lab, a, port)
        ok(lab, a, "agr0", "create", "lacptimeout", "fast", "agrport", "re0", "agrport", "re1")
        ok(lab, a, "agr0", "inet", "192.0.2.1/24")
        wait_distributing(lab, a, ["re0", "re1"], timeout=30)
        ovs.wait_member_enabled("bond0", ["ov0", "ov1"], timeout=30)
        for name, member in ovs.lacp_show("bond0")["members"].items():
            assert "activity" not in {w.lower() for w in member["actor_state"]}, (name, member)
            assert "activity" in {w.lower() for w in member["partner_state"]}, (name, member)
        for p in status_json(lab, a)["agrports"]:
            assert "ACTIVITY" not in p["ad_partner_oper_port_state_str"], "OVS is passive"
            assert {"SYNC", "COLLECTING", "DISTRIBUTING"} <= set(p["ad_partner_oper_port_state_str"])
        assert lab.ping(a, "192.0.2.2", count=3)
