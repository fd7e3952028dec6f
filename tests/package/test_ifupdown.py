"""ifup and ifdown of an agr stanza, in a namespace, through the hooks the installed package put
in /etc/network/if-pre-up.d and if-post-down.d (ifupdown runs hooks only from there). Run by
scripts/package-test with the .deb installed."""
import os

import pytest

from tests.integration.helpers import aggregate, host_pair, ok, status_json, wait_distributing

pytestmark = pytest.mark.integration

STANZA = """\
iface agr0 inet static
    address 192.0.2.1/24
    agr-ports re0 re1
    agr-lacp-timeout fast
"""
SYSCTLS = ("net.ipv6.conf.{}.disable_ipv6", "net.ipv6.conf.{}.addr_gen_mode",
           "net.ipv4.conf.{}.arp_ignore", "net.ipv4.conf.{}.rp_filter")


def ifupdown(lab, ns, tmp_path, cmd, text=STANZA, iface="agr0"):
    conf = tmp_path / "interfaces"
    conf.write_text(text)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return lab.run(ns, cmd, "-i", str(conf), "--state-dir", str(state), iface, check=False, timeout=90)


def port_state(lab, ns, port):
    link = lab.ip(ns, "-o", "link", "show", "dev", port).stdout
    values = lab.run(ns, "sysctl", "-n", *[s.format(port) for s in SYSCTLS]).stdout.split()
    return link.split("link/ether ")[1].split()[0], "mtu " + link.split(" mtu ")[1].split()[0], values


def test_hooks_are_the_packages():
    for phase in ("if-pre-up.d", "if-post-down.d"):
        path = f"/etc/network/{phase}/agrconfig"
        assert os.access(path, os.X_OK), f"{path}: install the .deb (scripts/package-test)"
        assert "agrconfig.cli.ifupdown" in open(path).read()


def test_ifup_and_ifdown(lab, tmp_path):
    a, b = host_pair(lab)
    lab.ip(a, "addr", "add", "198.51.100.1/24", "dev", "re0")
    lab.wait_for(lambda: all("fe80" in lab.ip(a, "-6", "addr", "show", "dev", p).stdout for p in ("re0", "re1")),
                 what="link-local addresses")
    before = {p: port_state(lab, a, p) for p in ("re0", "re1")}
    aggregate(lab, b, words=("lacptimeout", "fast"))
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")

    proc = ifupdown(lab, a, tmp_path, "ifup")
    assert proc.returncode == 0, proc.stderr
    # The ports' addresses were removed, and that was logged.
    assert "re0: addresses removed for agr0: 198.51.100.1/24, fe80::" in proc.stderr, proc.stderr
    assert "re1: addresses removed for agr0: fe80::" in proc.stderr, proc.stderr
    doc = status_json(lab, a)
    assert [p["ifname"] for p in doc["agrports"]] == ["re0", "re1"]
    assert doc["linkinfo"]["info_data"]["flags"]["lacp_fast"] is True
    assert any(x["local"] == "192.0.2.1" for x in doc["addr_info"])
    for p in ("re0", "re1"):
        assert lab.ip(a, "-o", "addr", "show", "dev", p).stdout == "", f"{p} has addresses again"
    wait_distributing(lab, a, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=3)

    proc = ifupdown(lab, a, tmp_path, "ifdown")
    assert proc.returncode == 0, proc.stderr
    assert lab.ip(a, "link", "show", "agr0", check=False).returncode != 0, "agr0 is still there"
    for p in ("re0", "re1"):
        assert port_state(lab, a, p) == before[p], p
    # IPv6 enabled again: the kernel gives the port its link-local address back.
    lab.wait_for(lambda: "fe80" in lab.ip(a, "-6", "addr", "show", "dev", "re1").stdout, what="link-local back")


def test_a_misspelt_option_fails_ifup_and_creates_nothing(lab, tmp_path):
    a, _b = host_pair(lab)
    proc = ifupdown(lab, a, tmp_path, "ifup", text=STANZA.replace("agr-lacp-timeout", "agr-lacp-timout"))
    assert "unknown stanza option agr-lacp-timout" in proc.stderr, proc.stderr
    assert lab.ip(a, "link", "show", "agr0", check=False).returncode != 0


def test_a_second_stanza_changes_nothing(lab, tmp_path):
    """inet and inet6 stanzas for agr0: both run pre-up; the second finds it all done."""
    a, b = host_pair(lab)
    # inet6 waits for DAD, which needs agr0's carrier: a partner, so that a port distributes.
    aggregate(lab, b, words=("lacptimeout", "fast"))
    text = STANZA + "\niface agr0 inet6 static\n    address 2001:db8::1/64\n    agr-ports re0 re1\n"
    proc = ifupdown(lab, a, tmp_path, "ifup", text=text)
    assert proc.returncode == 0, proc.stderr
    doc = status_json(lab, a)
    assert [p["ifname"] for p in doc["agrports"]] == ["re0", "re1"]
    assert {x["local"] for x in doc["addr_info"]} >= {"192.0.2.1", "2001:db8::1"}
    proc = ifupdown(lab, a, tmp_path, "ifdown", text=text)
    assert proc.returncode == 0, proc.stderr
    assert lab.ip(a, "link", "show", "agr0", check=False).returncode != 0
