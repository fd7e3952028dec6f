"""`agrconfig agr0 whichport`: the port it names is the port the frames take, on both data paths,
by the kernel's counters of the ports; the MAC addresses come from the neighbour table (the
gateway's for an off-link address); errors for what it cannot know."""
import json

import pytest

from tests.integration.helpers import agr_pair, ok

pytestmark = pytest.mark.integration

SENDER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.1", int(sys.argv[2])))
for _ in range(int(sys.argv[3])):
    s.sendto(b"x" * 64, (sys.argv[1], 9))
"""


def tx_packets(lab, ns, dev):
    (link,) = json.loads(lab.ip(ns, "-j", "-s", "link", "show", "dev", dev).stdout)
    return link["stats64"]["tx"]["packets"]


def which(lab, ns, *words):
    return json.loads(ok(lab, ns, "--json", "agr0", "whichport", *words))


@pytest.mark.parametrize("datapath", ["relay", "ebpf"])
def test_whichport_agrees_with_the_port_counters(lab, datapath):
    a, b = agr_pair(lab, words=("agrhash", "l2,l3,l4", "datapath", datapath, "lacptimeout", "slow"))
    assert lab.ping(a, "192.0.2.2", count=1, wait=2)    # the neighbour entry
    seen = set()
    for sport in range(40000, 40016):
        r = which(lab, a, "192.0.2.2", "udp", str(sport), "9")
        assert r["ports"] == ["re0", "re1"] and r["dst_mac_from"] == "neighbour 192.0.2.2"
        assert r["src"] == "192.0.2.1" and r["policy"] == "hash l2,l3,l4"
        before = {p: tx_packets(lab, a, p) for p in ("re0", "re1")}
        lab.run(a, "python3", "-c", SENDER, "192.0.2.2", str(sport), "50")
        after = {p: tx_packets(lab, a, p) for p in ("re0", "re1")}
        other = {"re0": "re1", "re1": "re0"}[r["port"]]
        assert after[r["port"]] - before[r["port"]] >= 50, (sport, r, before, after)
        assert after[other] - before[other] < 10, (sport, r, before, after)   # an LACPDU or so
        seen.add(r["port"])
    assert seen == {"re0", "re1"}, "16 flows all on one port: the test proved little"
    text = ok(lab, a, "agr0", "whichport", "192.0.2.2", "from", "192.0.2.1", "udp", "40000", "9")
    assert text.splitlines()[0].startswith("agr0: 192.0.2.2 from 192.0.2.1 udp 40000 9: re")
    assert "\tMAC addresses: " in text and "(neighbour 192.0.2.2)" in text


def test_whichport_off_link_uses_the_gateway_and_says_what_it_cannot_know(lab):
    a, b = agr_pair(lab)
    lab.ip(a, "route", "add", "198.51.100.0/24", "via", "192.0.2.2")
    missing = lab.agr(a, "agr0", "whichport", "198.51.100.7")
    assert missing.returncode == 2 and "no neighbour entry for 192.0.2.2" in missing.stderr, missing.stderr
    assert lab.ping(a, "192.0.2.2", count=1, wait=2)
    r = which(lab, a, "198.51.100.7")
    assert r["dst_mac_from"] == "gateway 192.0.2.2" and r["port"] in ("re0", "re1") and r["proto"] == "icmp"
    mac = json.loads(lab.ip(b, "-j", "link", "show", "agr0").stdout)[0]["address"]
    assert r["dst_mac"] == mac
    elsewhere = lab.agr(a, "agr0", "whichport", "127.0.0.1")
    assert elsewhere.returncode == 2 and "is reached through lo, not agr0" in elsewhere.stderr
    for words in (["whichport"], ["whichport", "nowhere"], ["whichport", "192.0.2.2", "tcp", "1"],
                  ["whichport", "192.0.2.2", "from", "2001:db8::1"], ["whichport", "192.0.2.2", "udp", "1", "70000"]):
        proc = lab.agr(a, "agr0", *words)
        assert proc.returncode == 1 and proc.stderr.startswith("agrconfig: whichport: "), (words, proc.stderr)
    assert lab.agr(a, "-n", "agr0", "whichport", "192.0.2.2").returncode == 1
