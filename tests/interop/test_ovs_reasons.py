"""Why a port is not distributing, against Open vSwitch: one OVS system whose two links lead to
two bonds (two keys), or to two single-link LACP ports (individual links) (issue 14)."""
import re

import pytest

from tests.integration.helpers import ok, status_json, strip_addresses
from tests.ovslab import OvsPartner

pytestmark = pytest.mark.interop


def cabled(lab):
    """agr0 over re0 and re1 in `a`, cabled to ov0 and ov1 of an OVS in its own namespace."""
    a = lab.netns("a")
    ovs = OvsPartner(lab, ns_suffix="o")
    for i, port in enumerate(("re0", "re1")):
        lab.veth(a, port, ovs.ns, f"ov{i}")
        strip_addresses(lab, a, port)
    ok(lab, a, "agr0", "create", "lacptimeout", "fast", "agrport", "re0", "agrport", "re1")
    return a, ovs


def one_reason(lab, a, pattern):
    def reasons():
        return {p["ifname"]: p["reason"] for p in status_json(lab, a)["agrports"]}
    lab.wait_for(lambda: sorted(map(bool, reasons().values())) == [False, True]
                 and re.fullmatch(pattern, [r for r in reasons().values() if r][0]),
                 timeout=30, what=f"one port distributing, the other /{pattern}/ (last: {reasons()})")
    return [r for r in reasons().values() if r][0]


def test_partner_key_differs(lab):
    a, ovs = cabled(lab)
    try:
        for i in (2, 3):   # second members, cabled to nothing of ours: OVS bonds need two
            lab.veth(ovs.ns, f"ov{i}", ovs.ns, f"dv{i}")
        ovs.add_bond("bond0", ["ov0", "ov2"])
        ovs.add_bond("bond1", ["ov1", "ov3"])     # same OVS system, another key
        why = one_reason(lab, a, r"partner key 0x[0-9a-f]+ differs from the aggregation's 0x[0-9a-f]+")
        keys = {p["partner_key"] for p in status_json(lab, a)["agrports"]}
        assert len(keys) == 2 and all(f"{k:#x}" in why for k in keys), (why, keys)
    finally:
        ovs.close()


def test_partner_individual(lab):
    a, ovs = cabled(lab)
    try:
        for i in (0, 1):   # an OVS LACP port of one link says it is individual
            lab.ip(ovs.ns, "link", "set", f"ov{i}", "up")
            ovs.vsctl("add-port", "br0", f"ov{i}", "--", "set", "port", f"ov{i}", "lacp=active",
                      "other_config:lacp-time=fast")
        one_reason(lab, a, "partner individual")
    finally:
        ovs.close()
