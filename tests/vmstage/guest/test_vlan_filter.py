"""The ports' hardware VLAN filters (agr(4) VLANS) on virtio-net, whose rx-vlan-filter is fixed
on: two NICs on one QEMU hub (tests/vm.py HUB_NICS). agr0 is not promiscuous here (no bridge),
so QEMU's VLAN table applies: a tagged frame reaches the port only for a registered VLAN."""
import json
import subprocess
import sys

from tests.integration.helpers import ok, worker_logs_tail
from tests.vmstage.guest.partner import nic
from tests.lab import ROOT
from tests.vm import HUB_NICS

ALIAS = "agrconfig: VLAN filter entry"
SEND = """import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("pe0", 0))
vid, count = int(sys.argv[1]), int(sys.argv[2])
for i in range(count):
    s.send(b"\\xff" * 6 + bytes.fromhex("525400a60002") + struct.pack("!HHH", 0x8100, vid, 0x88b5) + bytes(46))
"""


def entries(lab, ns):
    """{VLAN id: its lower device} of our filter entries in `ns`."""
    out = {}
    links = json.loads(lab.run(ns, "ip", "-d", "-j", "link").stdout)
    for link in links:
        if link.get("ifalias") == ALIAS:
            data = link["linkinfo"]["info_data"]
            out[data["id"]] = link.get("link")
    return out


def wait_entries(lab, ns, want, what):
    try:
        lab.wait_for(lambda: entries(lab, ns) == want, timeout=30, what=what)
    except AssertionError as exc:
        seen = lab.run(ns, sys.executable, "-c", f"import sys; sys.path.insert(0, {ROOT!r})\n"
                       "from agrconfig.net import ethtool, rtnl, vlan\n"
                       "print(vlan.vlan_links(), vlan.carried(rtnl.link('agr0').index), ethtool.feature('re0', 'rx-vlan-filter'))",
                       check=False)
        raise AssertionError(f"{exc}: {entries(lab, ns)}; the filter reads {seen.stdout}{seen.stderr}"
                             f"{worker_logs_tail(lab, ns, ['agr0'])}") from None


def rx(lab, ns, dev):
    return int(lab.run(ns, "cat", f"/sys/class/net/{dev}/statistics/rx_packets").stdout)


def tagged_reach(lab, a, b, vid, count=20):
    """How many of `count` frames tagged `vid`, sent from the far NIC, reach re0."""
    before = rx(lab, a, "re0")
    lab.run(b, sys.executable, "-c", SEND, str(vid), str(count))
    lab.run(a, "sleep", "0.5")
    return rx(lab, a, "re0") - before


def test_a_filtering_port_passes_exactly_the_vlans_agr0_carries(lab):
    a, b = lab.netns("a"), lab.plain_netns("b")
    for ns in (a, b):
        lab.run(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    for mac, ns, name in zip(HUB_NICS, (a, b), ("re0", "pe0")):
        subprocess.run(["ip", "link", "set", nic(mac), "netns", ns], check=True)
        dev = [l["ifname"] for l in json.loads(lab.ip(ns, "-j", "link").stdout)
               if mac in (l.get("address"), l.get("permaddr"))][0]
        lab.ip(ns, "link", "set", dev, "name", name)
        lab.ip(ns, "link", "set", name, "up")
    assert "rx-vlan-filter: on [fixed]" in lab.run(a, "ethtool", "-k", "re0").stdout
    lab.ip(b, "link", "add", "link", "pe0", "name", "pe0.10", "type", "vlan", "id", "10")
    lab.ip(b, "addr", "add", "10.0.10.2/24", "dev", "pe0.10")
    lab.ip(b, "link", "set", "pe0.10", "up")
    ok(lab, a, "agr0", "create", "agrproto", "loadbalance", "agrport", "re0", "up")
    assert entries(lab, a) == {}                        # no VLAN carried: nothing registered
    assert tagged_reach(lab, a, b, 10) < 5              # QEMU's filter drops VLAN 10 so far
    lab.ip(a, "link", "add", "link", "agr0", "name", "agr0.10", "type", "vlan", "id", "10")
    lab.ip(a, "addr", "add", "10.0.10.1/24", "dev", "agr0.10")
    lab.ip(a, "link", "set", "agr0.10", "up")
    wait_entries(lab, a, {10: "re0"}, "VLAN 10 registered on re0")
    assert tagged_reach(lab, a, b, 10) >= 20
    assert tagged_reach(lab, a, b, 30) < 5              # an unregistered VLAN still filtered
    lab.wait_for(lambda: lab.ping(a, "10.0.10.2"), timeout=20, what="ping over VLAN 10")
    ok(lab, a, "agr0", "-agrport", "re0")
    assert entries(lab, a) == {}                        # given back with the port's other state
    ok(lab, a, "agr0", "agrport", "re0")
    assert entries(lab, a) == {10: "re0"}               # registered again as it joins
    lab.ip(a, "link", "del", "agr0.10")
    wait_entries(lab, a, {}, "the entry gone with agr0's VLAN")
    lab.ip(a, "link", "add", "link", "agr0", "name", "agr0.20", "type", "vlan", "id", "20", "protocol", "802.1ad")
    wait_entries(lab, a, {20: "re0"}, "802.1ad VLAN 20 registered")
    ok(lab, a, "agr0", "destroy")
    assert entries(lab, a) == {}


def test_the_vlans_of_agr0_in_a_filtering_bridge_are_its_tagged_ones(lab):
    """What the filter reads of a bridge: agr0's tagged VLANs, under the bridge's own TPID."""
    ns, far = lab.netns("c"), lab.plain_netns("d")
    lab.veth(ns, "re0", far, "pe0")
    lab.run(ns, "sysctl", "-qw", "net.ipv6.conf.re0.disable_ipv6=1")
    ok(lab, ns, "agr0", "create", "agrproto", "loadbalance", "agrport", "re0")
    code = (f"import sys, json; sys.path.insert(0, {ROOT!r})\n"
            "from agrconfig.net import rtnl, vlan\n"
            "print(json.dumps(sorted([v.proto, v.vid] for v in vlan.carried(rtnl.link('agr0').index))))")

    def carried():
        return json.loads(lab.run(ns, sys.executable, "-c", code).stdout)

    lab.ip(ns, "link", "add", "br0", "type", "bridge", "vlan_filtering", "0")
    lab.ip(ns, "link", "set", "agr0", "master", "br0")
    lab.run(ns, "bridge", "vlan", "add", "dev", "agr0", "vid", "20")
    first = carried()                                       # the bridge does not filter: nothing
    lab.ip(ns, "link", "set", "br0", "type", "bridge", "vlan_filtering", "1")
    lab.run(ns, "bridge", "vlan", "add", "dev", "agr0", "vid", "30", "untagged")
    second = carried()                                      # VLAN 1 and 30 leave untagged
    lab.ip(ns, "link", "set", "br0", "type", "bridge", "vlan_protocol", "802.1ad")
    third = carried()
    assert (first, second, third) == ([], [[0x8100, 20]], [[0x88A8, 20]])
