"""Pre-flight with four free ports (issue 22): two to agrconfig on another host, one to Open
vSwitch with LACP at the slow rate, one to a bridge without LACP that sends LLDP; every field
checked against what each far end is configured with, and the grouping. The lab without OVS
(and the refusals) is tests/integration/test_preflight.py's."""
import pytest

from tests.integration import preflight_lab as pl
from tests.ovslab import OvsPartner

pytestmark = pytest.mark.interop

# What the OVS port is configured with (OVS's own defaults would be 65534, the bridge's MAC,
# 65535 and the port's id): set so that nothing matches by chance.
OVS_SYSPRIO, OVS_SYSID, OVS_PORTPRIO, OVS_PORT, OVS_KEY = 4096, "02:0a:0b:0c:0d:0e", 99, 77, 555


def ovs_port(lab, h):
    ovs = OvsPartner(lab, ns_suffix="o")
    try:
        lab.veth(h, "p2", ovs.ns, "o2")
        # A bond of two: OVS marks the only member of a one-port LACP port individual (no
        # Aggregation bit). Its second member o3 is cabled to nothing that speaks.
        lab.veth(ovs.ns, "o3", ovs.ns, "o3x")
        ovs.add_bond("bond2", ["o2", "o3"], lacp_time="slow")
        ovs.vsctl("set", "port", "bond2", f"other_config:lacp-system-priority={OVS_SYSPRIO}",
                  f"other_config:lacp-system-id={OVS_SYSID}", "--", "set", "interface", "o2",
                  f"other_config:lacp-port-priority={OVS_PORTPRIO}", f"other_config:lacp-port-id={OVS_PORT}",
                  f"other_config:lacp-aggregation-key={OVS_KEY}", "--", "set", "interface", "o3",
                  f"other_config:lacp-aggregation-key={OVS_KEY}")      # (the bond's key: its members')
        lab.wait_for(lambda: "o2" in ovs.lacp_show("bond2")["members"], timeout=20, what="OVS LACP on o2")
    except Exception:
        ovs.close()
        raise
    return ovs


def test_four_free_ports(lab, tmp_path):
    h, f, s = pl.build(lab)
    with ovs_port(lab, h) as ovs:
        switch = pl.Switch(lab, s, tmp_path)
        try:
            far = pl.far_agr(lab, f)
            doc = pl.preflight(lab, h)
            ports = {p["ifname"]: p for p in doc["ports"]}
            assert sorted(ports) == ["p0", "p1", "p2", "p3", "p4", "p5"]
            assert sorted(n for n, p in ports.items() if p["sent"]) == ["p0", "p1", "p2", "p3"]
            for mine, theirs in (("p0", "f0"), ("p1", "f1")):
                assert pl.partner_fields(ports[mine]) == far[theirs]
                lp = ports[mine]["lacp_partner"]
                assert (lp["active"], lp["timeout"], lp["aggregation"]) == (True, "fast", True)
            p2 = ports["p2"]
            assert pl.partner_fields(p2) == (OVS_SYSPRIO, OVS_SYSID, OVS_KEY, OVS_PORTPRIO, OVS_PORT)
            lp = p2["lacp_partner"]
            assert (lp["active"], lp["timeout"], lp["aggregation"]) == (True, "slow", True)
            # A slow partner sends every 30 s: heard within the 3 s window, it answered ours.
            assert p2["answered"] is not None and p2["answered"] < 1.0, p2    # OVS answers at once
            assert p2["lldp_neighbour"] is None and (p2["speed"], p2["duplex"], p2["mtu"]) == (10000, "full", 1500)
            # OVS took our LACPDU as its partner's: our port, never in sync.
            member = ovs.lacp_show("bond2")["members"]["o2"]
            assert member["partner_sys_id"].lower() == ports["p2"]["address"]
            assert "synchronized" not in {w.lower() for w in member["partner_state"]}
            p3 = ports["p3"]
            assert p3["lacp_partner"] is None and p3["lldp_neighbour"]["system_name"] == "switch-s"
            assert p3["lldp_neighbour"]["port_id"] == "s3"
            assert ports["p4"]["use"] == "in use" and ports["p5"]["use"] == "down"
            assert doc["groups"] == [
                {"partner_system_priority": 4660, "partner_system": far["f0"][1], "partner_key": far["f0"][2],
                 "speed": 10000, "ports": ["p0", "p1"]},
                {"partner_system_priority": OVS_SYSPRIO, "partner_system": OVS_SYSID, "partner_key": OVS_KEY,
                 "speed": 10000, "ports": ["p2"]},
            ]
            assert switch.counts() == {"s3": 1, "s4": 0}
            text = lab.agr(h, "-l", "--free", "-v", timeout=30).stdout
            assert (f"\tlacp partner: system 0x1000,{OVS_SYSID}, key {OVS_KEY}, port 0x0063,{OVS_PORT}, active, "
                    "slow timeout, aggregatable\n") in text
            assert f"\tp2: partner 0x1000,{OVS_SYSID}, key {OVS_KEY}, 10000 Mb/s\n" in text
        finally:
            switch.close()
