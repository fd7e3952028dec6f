"""agrselect (issue 21 item 5) with ports towards two partner systems: host a's re0 goes to host
b (one port), re1 and re2 to host c (two ports), every end agrconfig with LACP. b's aggregation
distributes first. `stable` keeps it while its port is up; `count` (set at run time) moves the
traffic to c's two ports; the carrier cut of c's ports brings it back to b. veth ports all
report 10000 Mb/s, so `bandwidth` (the default) would choose as `count` there: the second test
cables TAP ports (tapwire.py) whose speeds it sets, 10000 Mb/s to b and 2 x 1000 to c, where
`bandwidth` chooses b and `count` c. The unit tests (tests/unit/test_lacp_select.py) cover
every policy in detail."""
import os
import time

import pytest

from tests.integration.helpers import ok, port_flags, status_json, strip_addresses, wait_distributing

pytestmark = pytest.mark.integration


def three_hosts(lab):
    a, b, c = lab.netns("a"), lab.netns("b"), lab.netns("c")
    for mine, peer, theirs in (("re0", b, "re0"), ("re1", c, "re0"), ("re2", c, "re1")):
        lab.veth(a, mine, a, f"x{mine}", up=False)
        lab.ip(a, "link", "set", f"x{mine}", "netns", peer)
        lab.ip(peer, "link", "set", f"x{mine}", "name", theirs)
        lab.ip(a, "link", "set", mine, "up")
        lab.ip(peer, "link", "set", theirs, "up")
    return a, b, c


def agr(lab, ns, ports, *words):
    for p in ports:
        strip_addresses(lab, ns, p)
    ok(lab, ns, "agr0", "create", "lacptimeout", "fast", *words, *[w for p in ports for w in ("agrport", p)])


def distributing(lab, ns):
    return {p for p, f in port_flags(lab, ns).items() if f == 3}


def test_stable_keeps_the_first_partner_count_moves_to_the_most_ports(lab):
    a, b, c = three_hosts(lab)
    agr(lab, b, ["re0"])
    agr(lab, a, ["re0"], "agrselect", "stable")
    wait_distributing(lab, a, ["re0"])
    agr(lab, c, ["re0", "re1"])
    for p in ("re1", "re2"):
        strip_addresses(lab, a, p)
    ok(lab, a, "agr0", "agrport", "re1", "agrport", "re2")
    # c's ports hear their partner and wait in standby: stable stays with b.
    lab.wait_for(lambda: all(p["selected"] == "STANDBY" for p in status_json(lab, a)["agrports"][1:]),
                 timeout=10, what="re1 and re2 standby")
    time.sleep(3)   # more than aggregate_wait: nothing moves
    assert distributing(lab, a) == {"re0"}
    text = ok(lab, a, "agr0")
    assert "; select stable" in text.splitlines()[1]
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["select"] == "stable"

    # -n says what would change, and changes nothing; a bad value exits 1 and changes nothing.
    assert lab.agr(a, "-n", "agr0", "agrselect", "stable").stdout.strip() == ""
    assert "agrselect count" in lab.agr(a, "-n", "agr0", "agrselect", "count").stdout
    bad = lab.agr(a, "agr0", "agrselect", "most")
    assert bad.returncode == 1 and "agrselect" in bad.stderr
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["select"] == "stable"

    ok(lab, a, "agr0", "agrselect", "count")
    wait_distributing(lab, a, ["re1", "re2"], timeout=10)
    assert distributing(lab, a) == {"re1", "re2"}
    assert distributing(lab, c) == {"re0", "re1"}
    assert "; select count" in ok(lab, a, "agr0").splitlines()[1]

    # Both of c's cables cut: b's port is what is left.
    lab.ip(c, "link", "set", "re0", "down")
    lab.ip(c, "link", "set", "re1", "down")
    wait_distributing(lab, a, ["re0"], timeout=10)
    assert distributing(lab, a) == {"re0"}


def tap_hosts(lab, speeds):
    """a's TAP ports tp0.. cabled by tapwire.py to b (tp0) and c (tp1, tp2) under the same
    names, each end at `speeds[i]` Mb/s."""
    import subprocess
    import sys
    from tests.lab import ROOT
    a, b, c = lab.netns("a"), lab.netns("b"), lab.netns("c")
    ends = [(f"tp{i}", f"xp{i}") for i in range(len(speeds))]
    wire = subprocess.Popen(["ip", "netns", "exec", a, sys.executable,
                             os.path.join(ROOT, "tests", "integration", "tapwire.py"),
                             *[f"{m}:{x}" for m, x in ends]], stdout=subprocess.PIPE, text=True)
    assert wire.stdout.readline().strip() == "ready"
    for (mine, far), peer, speed in zip(ends, (b, c, c), speeds):
        lab.ip(a, "link", "set", far, "netns", peer)
        lab.ip(peer, "link", "set", far, "name", mine)
        for ns in (a, peer):
            lab.run(ns, "ethtool", "-s", mine, "speed", str(speed), "duplex", "full")
            lab.run(ns, "sysctl", "-qw", f"net.ipv6.conf.{mine}.disable_ipv6=1")
            lab.ip(ns, "link", "set", mine, "up")
    return a, b, c, wire


def test_bandwidth_and_count_choose_differently_with_ports_of_other_speeds(lab):
    a, b, c, wire = tap_hosts(lab, [10000, 1000, 1000])
    try:
        agr(lab, b, ["tp0"])
        agr(lab, c, ["tp1", "tp2"])
        agr(lab, a, ["tp0", "tp1", "tp2"])      # agrselect bandwidth, the default
        wait_distributing(lab, a, ["tp0"], timeout=10)
        assert distributing(lab, a) == {"tp0"}, "10000 Mb/s to b beats 2 x 1000 to c"
        doc = status_json(lab, a)
        assert [p["speed"] for p in doc["agrports"]] == [10000, 1000, 1000]
        assert doc["linkinfo"]["info_data"]["speed"] == 10000
        assert "not distributing: " in ok(lab, a, "agr0")
        ok(lab, a, "agr0", "agrselect", "count")
        wait_distributing(lab, a, ["tp1", "tp2"], timeout=10)
        assert distributing(lab, a) == {"tp1", "tp2"}, "two ports to c beat one to b"
        lab.wait_for(lambda: status_json(lab, a)["linkinfo"]["info_data"]["speed"] == 2000, timeout=3,
                     what="agr0 at 2000 Mb/s")
        assert "Speed: 2000Mb/s" in lab.run(a, "ethtool", "agr0").stdout
        # b's link renegotiates at 25000 Mb/s: its port is read again when its carrier comes back.
        for ns in (a, b):
            lab.run(ns, "ethtool", "-s", "tp0", "speed", "25000", "duplex", "full")
        lab.ip(a, "link", "set", "tp0", "down")
        lab.wait_for(lambda: not status_json(lab, a)["agrports"][0]["carrier"], timeout=5, what="tp0 down")
        lab.ip(a, "link", "set", "tp0", "up")
        lab.wait_for(lambda: status_json(lab, a)["agrports"][0]["speed"] == 25000, timeout=5,
                     what="tp0 read again at 25000 Mb/s")
        ok(lab, a, "agr0", "agrselect", "bandwidth")
        wait_distributing(lab, a, ["tp0"], timeout=10)
        lab.wait_for(lambda: "Speed: 25000Mb/s" in lab.run(a, "ethtool", "agr0").stdout, timeout=3,
                     what="agr0 at 25000Mb/s")
    finally:
        wire.kill()
        wire.wait()
