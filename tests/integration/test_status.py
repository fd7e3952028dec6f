"""Status as NetBSD ifconfig prints it, and as JSON."""
import re

import pytest

from tests.integration.helpers import aggregate, host_pair, ok, status_json, wait_distributing

pytestmark = pytest.mark.integration


def test_status_text(lab):
    a, b = host_pair(lab)
    aggregate(lab, a)
    aggregate(lab, b)
    ok(lab, a, "agr0", "inet", "192.0.2.1/24", "inet6", "2001:db8::1/64")
    wait_distributing(lab, a, ["re0", "re1"])
    out = ok(lab, a, "agr0")
    lines = out.splitlines()
    assert re.match(r"^agr0: flags=0x[0-9a-f]+<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500$", lines[0]), lines[0]
    ports = [l for l in lines if l.startswith("\tagrport: ")]
    assert ports == ["\tagrport: re0, flags=0x3<COLLECTING,DISTRIBUTING>",
                     "\tagrport: re1, flags=0x3<COLLECTING,DISTRIBUTING>"]
    assert re.search(r"^\taddress: ([0-9a-f]{2}:){5}[0-9a-f]{2}$", out, re.M)
    assert "\tinet 192.0.2.1/24 broadcast 192.0.2.255" in out
    assert "\tinet6 2001:db8::1/64" in out
    assert re.search(r"^\tinet6 fe80::\S+%agr0/64", out, re.M)
    lab.ip(b, "link", "set", "re1", "down")
    lab.wait_for(lambda: "\tagrport: re1, flags=0x0\n" in ok(lab, a, "agr0"), timeout=5, what="flags=0x0")


def test_status_json(lab):
    a, b = host_pair(lab)
    aggregate(lab, a)
    aggregate(lab, b)
    wait_distributing(lab, a, ["re0", "re1"])
    doc = status_json(lab, a)
    assert doc["ifname"] == "agr0"
    assert doc["linkinfo"]["info_kind"] == "agr"
    assert [p["ifname"] for p in doc["agrports"]] == ["re0", "re1"]
    assert doc["agrports"][0]["flags_str"] == ["COLLECTING", "DISTRIBUTING"]


def test_list_all_and_cloners(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    names = ok(lab, a, "-l").split()
    assert set(names) >= {"lo", "re0", "re1", "agr0"}
    assert ok(lab, a, "-C").strip() == "agr"
    out = ok(lab, a, "-a")
    for name in ("lo", "re0", "re1", "agr0"):
        assert re.search(rf"^{name}: flags=", out, re.M), name
    assert "\tagrport: re0," in out
    assert "\tagr: agr0" in out  # a port names its aggregate
