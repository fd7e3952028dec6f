"""VLANs over agr0 on Debian's kernel (this lab's own has no 802.1Q): VLAN uppers on agr0 on
both data paths, and agr0 as a tagged member of a VLAN-aware bridge, against a Linux bond's
VLAN devices. arp_ignore=1 everywhere: an address answers only on its own device, so a VLAN
ping cannot pass untagged."""
import pytest

from tests.integration.helpers import ok
from tests.vmstage.guest.partner import agr_mac, bond, bond_aggregates_with, cabled, our_status


def vlan_devices(lab, ns, lower, vids, host):
    for vid in vids:
        name = f"{lower}.{vid}"
        lab.ip(ns, "link", "add", "link", lower, "name", name, "type", "vlan", "id", str(vid))
        lab.ip(ns, "addr", "add", f"10.0.{vid}.{host}/24", "dev", name)
        lab.ip(ns, "link", "set", name, "up")


def strict_arp(lab, *namespaces):
    for ns in namespaces:
        lab.run(ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1")


def ping_until(lab, ns, addr, via=None, timeout=40):
    argv = ["ping", "-c", "1", "-W", "1"] + (["-I", via] if via else []) + [addr]
    lab.wait_for(lambda: lab.run(ns, *argv, check=False).returncode == 0, timeout=timeout, interval=0.5,
                 what=f"ping {addr}" + (f" through {via}" if via else ""))


@pytest.mark.parametrize("datapath", ["relay", "ebpf"])
def test_vlan_uppers_on_agr0(lab, datapath):
    a, b = cabled(lab)
    strict_arp(lab, a, b)
    bond(lab, b)
    vlan_devices(lab, b, "bond0", (10, 20), 2)
    ok(lab, a, "agr0", "create", "lacptimeout", "fast", "datapath", datapath, "agrport", "re0",
       "agrport", "re1", "inet", "192.0.2.1/24")
    vlan_devices(lab, a, "agr0", (10, 20), 1)
    mac = agr_mac(lab, a)
    lab.wait_for(lambda: bond_aggregates_with(lab, b, mac), timeout=90, interval=1, what="the bond aggregating")
    text, flags = our_status(lab, a)
    assert f"datapath {datapath}" in text and flags == {"re0": 3, "re1": 3}, text
    for vid in (10, 20):
        ping_until(lab, a, f"10.0.{vid}.2", via=f"agr0.{vid}")
        assert lab.ping(b, f"10.0.{vid}.1", count=3)
    assert lab.ping(a, "192.0.2.2", count=3)


def test_agr0_tagged_in_a_vlan_aware_bridge(lab):
    """A host namespace v behind br0, untagged in VLAN 20; agr0 carries VLAN 20 tagged (and no
    untagged VLAN) to the bond's bond0.20."""
    a, b = cabled(lab)
    v = lab.plain_netns("v")
    strict_arp(lab, a, b, v)
    bond(lab, b)
    vlan_devices(lab, b, "bond0", (20,), 2)
    ok(lab, a, "agr0", "create", "lacptimeout", "fast", "agrport", "re0", "agrport", "re1", "up")
    lab.ip(a, "link", "add", "br0", "type", "bridge", "vlan_filtering", "1", "stp_state", "0",
           "forward_delay", "0")
    lab.ip(a, "link", "add", "vm0", "type", "veth", "peer", "name", "eth0")
    lab.ip(a, "link", "set", "eth0", "netns", v)
    for port in ("agr0", "vm0"):
        lab.ip(a, "link", "set", port, "master", "br0")
        lab.run(a, "bridge", "vlan", "del", "dev", port, "vid", "1")
    lab.run(a, "bridge", "vlan", "add", "dev", "agr0", "vid", "20")
    lab.run(a, "bridge", "vlan", "add", "dev", "vm0", "vid", "20", "pvid", "untagged")
    for dev in ("vm0", "br0"):
        lab.ip(a, "link", "set", dev, "up")
    lab.ip(v, "addr", "add", "10.0.20.3/24", "dev", "eth0")
    lab.ip(v, "link", "set", "eth0", "up")
    mac = agr_mac(lab, a)
    lab.wait_for(lambda: bond_aggregates_with(lab, b, mac), timeout=90, interval=1, what="the bond aggregating")
    assert "20" in lab.run(a, "bridge", "vlan", "show", "dev", "agr0").stdout
    ping_until(lab, v, "10.0.20.2")
    assert lab.ping(b, "10.0.20.3", count=3)
    _text, flags = our_status(lab, a)
    assert flags == {"re0": 3, "re1": 3}, _text
