"""Issue 13's port limits and fallback against Open vSwitch (userspace datapath): with
agrmaxports 1, OVS enables one member only, the one we rank first, and the other when that one
is cut; lacpfallback carries traffic over one port until OVS starts LACP."""
import pytest

from tests.integration.helpers import ok, port_flags, status_json, strip_addresses, wait_distributing
from tests.interop.test_ovs import ovs_pair
from tests.ovslab import OvsPartner

pytestmark = pytest.mark.interop


def test_with_agrmaxports_1_ovs_enables_one_member(lab):
    a, ovs = ovs_pair(lab, "fast")
    with ovs:
        # OVS's system priority is 65534: ours (0x8000) is better, so our ranking counts.
        ok(lab, a, "agr0", "agrmaxports", "1", "agrportpri", "re1", "10")

        def enabled():
            members = ovs.bond_show("bond0")["members"]
            return {m: members.get(m, {}).get("enabled") for m in ("ov0", "ov1")}

        lab.wait_for(lambda: port_flags(lab, a) == {"re0": 0, "re1": 3} and enabled() == {"ov0": False, "ov1": True},
                     timeout=30, what="re1 alone distributing, OVS's ov1 alone enabled")
        assert lab.ping(a, "192.0.2.2", count=3)
        lab.ip(ovs.ns, "link", "set", "ov1", "down")
        lab.wait_for(lambda: port_flags(lab, a) == {"re0": 3, "re1": 0} and enabled()["ov0"],
                     timeout=15, what="the standby re0 taking over, OVS enabling ov0")
        assert lab.ping(a, "192.0.2.2", count=3)


def test_fallback_ends_when_ovs_starts_lacp(lab):
    a = lab.netns("a")
    ovs = OvsPartner(lab, ns_suffix="o")
    with ovs:
        for i, port in enumerate(("re0", "re1")):
            lab.veth(a, port, ovs.ns, f"ov{i}")
        # Two plain switch ports, as a switch whose LAG is not configured yet: it learns our MAC
        # where we send and floods the rest to both (re1, idle, drops it). An OVS bond without
        # LACP would not do: balance-slb sends to us on whichever member it enabled first.
        ovs.add_ports(["ov0", "ov1"])
        ovs.add_internal("int0", "192.0.2.2/24")
        for port in ("re0", "re1"):
            strip_addresses(lab, a, port)
        ok(lab, a, "agr0", "create", "lacptimeout", "fast", "lacpfallback", "agrport", "re0", "agrport", "re1")
        ok(lab, a, "agr0", "inet", "192.0.2.1/24")
        lab.wait_for(lambda: port_flags(lab, a) == {"re0": 3, "re1": 0}
                     and status_json(lab, a)["linkinfo"]["info_data"]["fallback_port"] == "re0",
                     timeout=20, what="fallback on re0")
        assert lab.ping(a, "192.0.2.2", count=3)
        ovs.bond_ports("bond0", ["ov0", "ov1"])
        wait_distributing(lab, a, ["re0", "re1"], timeout=30)
        ovs.wait_member_enabled("bond0", ["ov0", "ov1"], timeout=30)
        assert status_json(lab, a)["linkinfo"]["info_data"]["fallback_port"] is None
        assert lab.ping(a, "192.0.2.2", count=3)
