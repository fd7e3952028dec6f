"""agrN's link speed (issue 21 item 4): `ethtool agr0` (the ethtool binary) shows the sum of the
distributing ports' speeds (veth reports 10000 Mb/s), 10000 after a cable cut, Unknown when no
port distributes; status, JSON and --metrics say the same; a bridge with agr0 in it computes
the port's path cost from the speed when agr0's carrier comes on (the worker sets the speed
first), and keeps it after (agr(4) says to set the cost where it matters)."""
import json
import re

import pytest

from tests.integration.helpers import host_pair, ok, status_json, strip_addresses, wait_distributing

pytestmark = pytest.mark.integration


def ethtool(lab, ns, name="agr0"):
    """(speed, duplex) as the ethtool binary prints them: ('20000Mb/s', 'Full'), ('Unknown!', ...)."""
    out = lab.run(ns, "ethtool", name).stdout
    speed = re.search(r"^\s*Speed: (\S+)", out, re.M).group(1)
    duplex = re.search(r"^\s*Duplex: (\S+)", out, re.M).group(1)
    return speed, duplex


def bridge_cost(lab, ns, name="agr0"):
    (entry,) = json.loads(lab.run(ns, "bridge", "-j", "link", "show", "dev", name).stdout)
    return entry["cost"]


def carrier(lab, ns, name="agr0"):
    flags = lab.ip(ns, "-o", "link", "show", name).stdout.split("<", 1)[1].split(">", 1)[0].split(",")
    return "NO-CARRIER" not in flags and "LOWER_UP" in flags


def test_ethtool_shows_the_distributing_ports_sum_and_a_bridge_costs_it_at_carrier_up(lab):
    a, b = host_pair(lab)
    assert ethtool(lab, a, "re0") == ("10000Mb/s", "Full"), "this lab's veth speed, which the sums below assume"
    for ns in (a, b):
        for p in ("re0", "re1"):
            strip_addresses(lab, ns, p)
    ok(lab, b, "agr0", "create", "lacptimeout", "fast", "agrport", "re0", "agrport", "re1")
    # a: agr0 in a bridge before any port: no carrier, speed unknown (the bridge's cost 100).
    ok(lab, a, "agr0", "create", "lacptimeout", "fast", "up")
    lab.ip(a, "link", "add", "br0", "type", "bridge")
    lab.ip(a, "link", "set", "agr0", "master", "br0")
    lab.ip(a, "link", "set", "br0", "up")
    assert ethtool(lab, a)[0] == "Unknown!" and not carrier(lab, a)
    assert bridge_cost(lab, a) == 100

    # agrminports 2: the carrier comes on when both ports distribute, so at 20000 Mb/s (with
    # 1 it would come on with whichever port is first, at 10000).
    ok(lab, a, "agr0", "agrminports", "2", "agrport", "re0", "agrport", "re1")
    wait_distributing(lab, a, ["re0", "re1"])
    lab.wait_for(lambda: carrier(lab, a), what="agr0's carrier")
    assert ethtool(lab, a) == ("20000Mb/s", "Full")
    # The kernel's cost for a port faster than 10000 Mb/s is 1, read when the carrier came on.
    lab.wait_for(lambda: bridge_cost(lab, a) == 1, timeout=3, what="the bridge's cost from 20000 Mb/s")
    ok(lab, a, "agr0", "agrminports", "1")
    text = ok(lab, a, "agr0")
    assert "\tmedia: Ethernet 20000Mb/s full-duplex\n\tstatus: active" in text, text
    doc = status_json(lab, a)
    assert doc["linkinfo"]["info_data"]["speed"] == 20000
    assert [(p["speed"], p["duplex"]) for p in doc["agrports"]] == [(10000, "full")] * 2
    metrics = ok(lab, a, "--metrics")
    assert 'agr_speed_bytes{agr="agr0"} 2.5e+09' in metrics
    assert 'agr_port_speed_bytes{agr="agr0",port="re0"} 1.25e+09' in metrics

    lab.ip(b, "link", "set", "re1", "down")          # a cable cut: re1 loses its carrier
    lab.wait_for(lambda: ethtool(lab, a)[0] == "10000Mb/s", timeout=5, what="agr0 at 10000Mb/s")
    assert carrier(lab, a) and bridge_cost(lab, a) == 1, "the bridge does not follow while the carrier stays"
    assert status_json(lab, a)["linkinfo"]["info_data"]["speed"] == 10000

    lab.ip(b, "link", "set", "re0", "down")          # none left
    lab.wait_for(lambda: ethtool(lab, a)[0] == "Unknown!", timeout=5, what="agr0's speed unknown")
    lab.wait_for(lambda: not carrier(lab, a), timeout=5, what="agr0's carrier off")
    assert "\tmedia: Ethernet (speed unknown: no port distributing)" in ok(lab, a, "agr0")
    assert "speed" in status_json(lab, a)["linkinfo"]["info_data"]
    assert status_json(lab, a)["linkinfo"]["info_data"]["speed"] is None
    assert 'agr_speed_bytes{' not in ok(lab, a, "--metrics")

    lab.ip(b, "link", "set", "re0", "up")             # one port back: carrier on at 10000 Mb/s
    wait_distributing(lab, a, ["re0"])
    lab.wait_for(lambda: carrier(lab, a), what="agr0's carrier back")
    assert ethtool(lab, a) == ("10000Mb/s", "Full")
    lab.wait_for(lambda: bridge_cost(lab, a) == 2, timeout=3, what="the bridge's cost from 10000 Mb/s")
