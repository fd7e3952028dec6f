"""agr0's speed and a Linux bridge's STP path cost for it (agr(4) "Link speed"), on Debian's
kernel. agr0's ports are virtio-net NICs, whose speed `ethtool -s` sets (a veth's is fixed),
each cabled by its own QEMU hub (tests/vm.py CABLES) to a Linux bond in 802.3ad mode.

The bridge computes a port's cost from its speed when the port joins and when its carrier comes
on (net/bridge/br_if.c: port_cost, br_port_carrier_check), never in between."""
import json
import re

from tests.integration.helpers import ok
from tests.vm import CABLES
from tests.vmstage.guest.partner import agr_mac, bond, bond_aggregates_with, hub_cabled, shell

PORT_SPEED = 5000


class Seen:
    """agr0's carrier, its speed as ethtool reports it, and the bridge's path cost for it (as
    sysfs and `bridge link` give it): one process."""

    def __init__(self, lab, ns):
        out = shell(lab, ns, "cat /sys/class/net/agr0/carrier; ethtool agr0; echo '#'; "
                    "cat /sys/class/net/agr0/brport/path_cost; bridge -j link show dev agr0")
        head, _, tail = out.partition("\n#\n")
        carrier, _, ethtool = head.partition("\n")
        cost, _, link = tail.partition("\n")
        self.carrier = carrier.strip() == "1"
        self.speed = re.search(r"Speed: (\S+)", ethtool).group(1)
        self.cost = int(cost)
        (port,) = json.loads(link)
        assert port["cost"] == self.cost, (port, self.cost)

    def __repr__(self):
        return f"carrier {self.carrier}, speed {self.speed}, cost {self.cost}"


def test_a_bridge_costs_agr0_by_its_speed_at_carrier_up(lab):
    a, b = hub_cabled(lab, CABLES)
    speeds = "".join(f"ethtool -s {port} speed {PORT_SPEED} duplex full\n" for port in ("re0", "re1"))
    shell(lab, b, speeds)
    assert f"Speed: {PORT_SPEED}Mb/s" in shell(lab, a, speeds + "ip link set re0 up\nip link set re1 up\nethtool re1")
    # agrminports 2: the carrier comes on once both ports distribute, not with the first (LACP
    # may let them in one loop turn apart), so the bridge's one reading is of both.
    ok(lab, a, "agr0", "create", "lacptimeout", "fast", "agrminports", "2", "agrport", "re0",
       "agrport", "re1", "up")
    lab.run(a, "ip", "-batch", "-", input="link add br0 type bridge stp_state 1\n"
            "link set agr0 master br0\nlink set br0 up\n")
    seen = Seen(lab, a)                     # joined without a partner: no port distributes
    assert (seen.carrier, seen.speed, seen.cost) == (False, "Unknown!", 100), seen

    bond(lab, b)                            # the partner comes: LACP, then agr0's carrier
    mac = agr_mac(lab, a)
    lab.wait_for(lambda: bond_aggregates_with(lab, b, mac), timeout=90, interval=1,
                 what=f"the bond aggregating both ports with {mac}")
    lab.wait_for(lambda: Seen(lab, a).cost != 100, timeout=20, what="the bridge reading agr0's speed at carrier-up")
    seen = Seen(lab, a)
    assert (seen.carrier, seen.speed, seen.cost) == (True, f"{2 * PORT_SPEED}Mb/s", 2), seen

    # A cable cut: the bond's end goes down (a virtio NIC's carrier is QEMU's, so ours stays on
    # and LACP notices within its 3 s timeout). The speed follows; the cost does not.
    ok(lab, a, "agr0", "agrminports", "1")  # the carrier stays with one port
    lab.ip(b, "link", "set", "re1", "down")
    lab.wait_for(lambda: Seen(lab, a).speed == f"{PORT_SPEED}Mb/s", timeout=30,
                 what="agr0's speed down to one port's")
    seen = Seen(lab, a)
    assert (seen.carrier, seen.cost) == (True, 2), seen

    # A carrier change makes the bridge read again: off (one port distributes, two wanted),
    # which leaves the cost as it was, then on.
    ok(lab, a, "agr0", "agrminports", "2")
    lab.wait_for(lambda: not Seen(lab, a).carrier, timeout=10, what="agr0's carrier off")
    assert Seen(lab, a).cost == 2
    ok(lab, a, "agr0", "agrminports", "1")
    lab.wait_for(lambda: Seen(lab, a).cost != 2, timeout=10, what="the bridge reading agr0's speed again")
    seen = Seen(lab, a)
    assert (seen.carrier, seen.speed, seen.cost) == (True, f"{PORT_SPEED}Mb/s", 3), seen
