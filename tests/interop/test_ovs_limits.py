"""Issue 13's port limits against Open vSwitch (userspace datapath): with agrmaxports 1, OVS
enables one member only, the one we rank first, and the other when that one is cut."""
import pytest

from tests.integration.helpers import ok, port_flags
from tests.interop.test_ovs import ovs_pair

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
