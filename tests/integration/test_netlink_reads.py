"""netlink.py reads links and addresses itself (pyroute2's import is too slow for `-a`):
what it reads must be what pyroute2 reads, for every kind of link a host has."""
import json
import os
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COMPARE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from pyroute2 import IPRoute
    from agrconfig.net import rtnl as netlink
    ours, theirs = {}, {}
    for l in netlink.links():
        ours[l.index] = [l.name, l.mac, l.mtu, l.flags, l.type, l.carrier, l.operstate, l.kind,
                         l.stats.get("rx_packets"), l.stats.get("tx_bytes")]
    ipr = IPRoute()
    for m in ipr.get_links():
        info = m.get_attr("IFLA_LINKINFO")
        stats = m.get_attr("IFLA_STATS64") or {}
        theirs[m["index"]] = [m.get_attr("IFLA_IFNAME"), m.get_attr("IFLA_ADDRESS") or "", m.get_attr("IFLA_MTU"),
                              m["flags"], m["ifi_type"], bool(m.get_attr("IFLA_CARRIER")),
                              m.get_attr("IFLA_OPERSTATE"), (info.get_attr("IFLA_INFO_KIND") if info else "") or "",
                              stats.get("rx_packets"), stats.get("tx_bytes")]
    addrs_ours = sorted([i, a.family, a.address, a.prefixlen, a.broadcast, a.scope]
                        for i, lst in netlink.all_addresses().items() for a in lst)
    addrs_theirs = sorted([m["index"], m["family"], m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS"),
                           m["prefixlen"], m.get_attr("IFA_BROADCAST"), m["scope"]] for m in ipr.get_addr())
    print(json.dumps({"links": [ours, theirs], "addrs": [addrs_ours, addrs_theirs],
                      "one": [netlink.link("v0").name, netlink.link(index=1).name, netlink.link("nosuch")]}))
""")


def test_links_and_addresses_read_as_pyroute2_reads_them(lab):
    ns = lab.netns("n")
    lab.veth(ns, "v0", ns, "v1")
    lab.ip(ns, "link", "set", "v0", "address", "02:00:00:00:00:0a", "mtu", "1400")
    lab.ip(ns, "link", "set", "v1", "up")
    lab.ip(ns, "tuntap", "add", "dev", "t0", "mode", "tap")
    lab.ip(ns, "link", "set", "lo", "up")
    lab.ip(ns, "addr", "add", "192.0.2.5/24", "brd", "+", "dev", "v0")
    lab.ip(ns, "addr", "add", "198.51.100.1/32", "dev", "v1")
    lab.ip(ns, "addr", "add", "2001:db8::5/64", "dev", "v0", "nodad")
    lab.ping(ns, "192.0.2.5", count=1)  # some counters that are not zero
    out = json.loads(lab.run(ns, sys.executable, "-c", COMPARE, ROOT).stdout)
    ours, theirs = out["links"]
    assert len(ours) >= 4
    assert ours == theirs
    assert out["addrs"][0] == out["addrs"][1]
    assert out["one"] == ["v0", "lo", None]
