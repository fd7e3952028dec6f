"""Linux bonding (802.3ad) as a third independent LACP partner, on Debian's kernel: one
aggregator with both cables, us as its partner, a cable cut and its return."""
import pytest

from tests.integration.helpers import ok
from tests.vmstage.guest.partner import agr_mac, bond, bond_aggregates_with, bonding_view, cabled, our_status


@pytest.mark.parametrize("rate", ["fast", "slow"])
def test_bonding_partner_with_a_cable_cut_and_return(lab, rate):
    a, b = cabled(lab)
    bond(lab, b, rate)
    ok(lab, a, "agr0", "create", "lacptimeout", rate, "agrport", "re0", "agrport", "re1", "inet", "192.0.2.1/24")
    mac = agr_mac(lab, a)
    lab.wait_for(lambda: bond_aggregates_with(lab, b, mac), timeout=90, interval=1,
                 what=f"the bond aggregating both ports with {mac}")
    _text, flags = our_status(lab, a)
    assert flags == {"re0": 3, "re1": 3}, _text
    assert lab.ping(a, "192.0.2.2", count=3)

    lab.ip(b, "link", "set", "re0", "down")     # the cable cut: carrier lost on both ends
    lab.wait_for(lambda: bonding_view(lab, b)["re0"]["mii"] == "down"
                 and bond_aggregates_with(lab, b, mac, ports=("re1",)), timeout=60, interval=1,
                 what="the bond carrying on with re1 alone")
    text, flags = our_status(lab, a)
    assert flags["re1"] == 3 and not flags["re0"] & 2, text
    assert lab.ping(a, "192.0.2.2", count=3)

    lab.ip(b, "link", "set", "re0", "up")       # and its return
    lab.wait_for(lambda: bond_aggregates_with(lab, b, mac), timeout=90, interval=1,
                 what="the bond taking re0 back into the aggregator")
    lab.wait_for(lambda: our_status(lab, a)[1] == {"re0": 3, "re1": 3}, timeout=60, interval=1,
                 what="both our ports distributing again")
    assert lab.ping(a, "192.0.2.2", count=3)
    view = bonding_view(lab, b)
    assert view["re0"]["aggregator"] == view["re1"]["aggregator"], view["text"]
