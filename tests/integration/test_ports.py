"""Ports: saved and restored state, agr0's MTU/promisc/multicast pushed, kept out of IP."""
import pytest

from tests.integration.helpers import aggregate, host_pair, ok, strip_addresses

pytestmark = pytest.mark.integration

SYSCTLS = ("net.ipv6.conf.{p}.disable_ipv6", "net.ipv6.conf.{p}.addr_gen_mode",
           "net.ipv4.conf.{p}.arp_ignore", "net.ipv4.conf.{p}.rp_filter")


def port_state(lab, ns, p):
    link = lab.ip(ns, "-o", "link", "show", p).stdout
    head, _, rest = link.partition(">")
    flags = head.split("<")[1].split(",")
    mtu = link.split(" mtu ")[1].split()[0]
    mac = link.split("link/ether ")[1].split()[0]
    sysctls = lab.run(ns, "sysctl", *[s.format(p=p) for s in SYSCTLS]).stdout
    return {"up": "UP" in flags, "promisc": "PROMISC" in flags, "mtu": mtu, "mac": mac, "sysctl": sysctls}


@pytest.mark.parametrize("how", ["-agrport", "destroy"])
def test_original_state_restored(lab, how):
    a, _b = host_pair(lab)
    # An unusual starting point, so that restoring cannot pass by accident.
    strip_addresses(lab, a, "re1")
    lab.ip(a, "link", "set", "re1", "down", "mtu", "1400", "promisc", "on")
    lab.run(a, "sysctl", "-qw", "net.ipv4.conf.re1.arp_ignore=2", "net.ipv4.conf.re1.rp_filter=2")
    strip_addresses(lab, a, "re0")
    before = {p: port_state(lab, a, p) for p in ("re0", "re1")}
    ok(lab, a, "agr0", "create")
    ok(lab, a, "agr0", "agrport", "re0", "agrport", "re1", "mtu", "1300")
    during = port_state(lab, a, "re1")
    assert during["mac"] == before["re0"]["mac"] and during["mtu"] == "1300" and during["up"]
    assert "disable_ipv6 = 1" in during["sysctl"] and "arp_ignore = 8" in during["sysctl"]
    if how == "destroy":
        ok(lab, a, "agr0", "destroy")
    else:
        ok(lab, a, "agr0", "-agrport", "re1", "-agrport", "re0")
    assert {p: port_state(lab, a, p) for p in ("re0", "re1")} == before


def test_member_never_gets_ip_of_its_own(lab):
    a, b = host_pair(lab)
    aggregate(lab, a)
    aggregate(lab, b)
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")
    assert lab.ping(a, "192.0.2.2", count=2)
    for p in ("re0", "re1"):
        assert lab.ip(a, "-o", "addr", "show", "dev", p).stdout.strip() == ""


def test_promisc_and_multicast_pushed_to_ports(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    ok(lab, a, "agr0", "up")
    lab.ip(a, "maddress", "add", "01:00:5e:01:02:03", "dev", "agr0")
    lab.wait_for(lambda: "01005e010203" in [l.split()[4] for l in lab.run(a, "cat", "/proc/net/dev_mcast").stdout.splitlines() if l.split()[1] == "re0"],
                 timeout=8, what="agr0's multicast group on re0")
    # Slow Protocols group is always there for LACP.
    groups = [l.split()[4] for l in lab.run(a, "cat", "/proc/net/dev_mcast").stdout.splitlines() if l.split()[1] == "re1"]
    assert "0180c2000002" in groups and "01005e010203" in groups
    lab.ip(a, "link", "set", "agr0", "promisc", "on")
    # The port socket holds promiscuity (ip -d shows the count), dropped with the socket.
    lab.wait_for(lambda: "promiscuity 1 " in lab.ip(a, "-d", "link", "show", "re0").stdout, timeout=8,
                 what="promiscuous mode on re0")
    lab.ip(a, "link", "set", "agr0", "promisc", "off")
    lab.wait_for(lambda: "promiscuity 0 " in lab.ip(a, "-d", "link", "show", "re0").stdout, timeout=8,
                 what="promiscuous mode off again")


def test_mtu_applies_to_every_port(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    ok(lab, a, "agr0", "mtu", "9000")
    for dev in ("agr0", "re0", "re1"):
        assert " mtu 9000 " in lab.ip(a, "link", "show", dev).stdout
    assert "mtu 9000" in ok(lab, a, "agr0")
