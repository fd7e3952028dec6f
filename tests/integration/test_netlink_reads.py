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


CHANGES = textwrap.dedent("""
    import ipaddress, json, subprocess, sys
    sys.path.insert(0, sys.argv[1])
    from pyroute2 import IPRoute
    from pyroute2.ethtool import Ethtool
    from agrconfig.errors import AgrError
    from agrconfig.net import rtnl
    v0 = rtnl.link("v0").index
    rtnl.set_mtu(v0, 1280)
    rtnl.set_mac(v0, "02:00:00:00:00:0b")
    rtnl.set_flag(v0, rtnl.IFF_PROMISC, True)
    rtnl.set_up(v0, True)
    rtnl.add_address(v0, ipaddress.ip_interface("192.0.2.5/24"))
    rtnl.add_address(v0, ipaddress.ip_interface("2001:db8::5/64"))
    try:
        rtnl.add_address(v0, ipaddress.ip_interface("192.0.2.5/24"))
        again = None
    except AgrError as exc:
        again = [exc.name, exc.ioctl]
    try:
        rtnl.set_mtu(v0, 10)
        small = None
    except AgrError as exc:
        small = [exc.name, exc.ioctl]
    ipr = IPRoute()
    m = ipr.get_links(v0)[0]
    link = [m.get_attr("IFLA_MTU"), m.get_attr("IFLA_ADDRESS"), bool(m["flags"] & rtnl.IFF_PROMISC),
            bool(m["flags"] & rtnl.IFF_UP)]
    addrs = sorted(a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=v0) if a["scope"] == 0)
    routes = []
    for dst, src in (("192.0.2.9", None), ("198.51.100.7", None), ("192.0.2.9", "192.0.2.5"), ("2001:db8::9", None)):
        r = ipr.route("get", dst=dst, **({"src": src} if src else {}))[0]
        routes.append([list(rtnl.route_to(dst, src)),
                       [r.get_attr("RTA_OIF"), r.get_attr("RTA_GATEWAY"), r.get_attr("RTA_PREFSRC")]])
    try:
        rtnl.route_to("203.0.113.1")
        unreachable = None
    except AgrError as exc:
        unreachable = [exc.name, exc.ioctl]
    # (after the MAC change, which flushes the neighbour table)
    subprocess.run(["ip", "neigh", "add", "192.0.2.9", "lladdr", "02:00:00:00:00:99", "dev", "v0", "nud", "permanent"],
                   check=True)
    subprocess.run(["ip", "neigh", "add", "192.0.2.10", "dev", "v0", "nud", "failed"], check=True)
    neigh = [rtnl.neighbour(v0, "192.0.2.9"), rtnl.neighbour(v0, "192.0.2.10"), rtnl.neighbour(v0 + 1, "192.0.2.9")]
    eth = Ethtool()
    mode = eth.get_link_mode("v0")
    ethtool = [list(rtnl.link_mode("v0")), [mode.speed, {"Full": True, "Half": False}.get(str(mode.duplex))],
               list(rtnl.link_mode("lo")), list(rtnl.link_mode("nosuch"))]
    rtnl.ETHTOOL_GLINKSETTINGS = 0xFFFF       # refused: the older ETHTOOL_GSET answers instead
    ethtool.append(list(rtnl.link_mode("v0")))
    for a in list(rtnl.addresses(v0)):
        rtnl.del_address(v0, a)
    left = [a.address for a in rtnl.addresses(v0)]
    rtnl.delete_link(v0)
    rtnl.delete_link(v0)
    print(json.dumps({"link": link, "addrs": addrs, "again": again, "small": small, "routes": routes,
                      "unreachable": unreachable, "neigh": neigh, "ethtool": ethtool, "left": left,
                      "gone": rtnl.link("v0")}))
""")


def test_changes_routes_neighbours_and_link_modes_as_pyroute2_sees_them(lab):
    ns = lab.netns("n")
    lab.veth(ns, "v0", ns, "v1")
    lab.ip(ns, "route", "add", "198.51.100.0/24", "via", "192.0.2.1", "dev", "v1", "onlink")
    lab.ip(ns, "-6", "route", "add", "2001:db8::/64", "dev", "v1", "metric", "2048")
    out = json.loads(lab.run(ns, sys.executable, "-c", CHANGES, ROOT).stdout)
    assert out["link"] == [1280, "02:00:00:00:00:0b", True, True]
    assert out["addrs"] == ["192.0.2.5", "2001:db8::5"]
    assert out["again"] == ["EEXIST", "SIOCAIFADDR"] and out["small"] == ["EINVAL", "SIOCSIFMTU"]
    for ours, theirs in out["routes"]:
        assert ours == theirs
    assert out["routes"][1][0][1] == "192.0.2.1"           # a gateway read
    assert out["unreachable"] == ["ENETUNREACH", "RTM_GETROUTE"]
    assert out["neigh"] == ["02:00:00:00:00:99", None, None]
    assert out["ethtool"] == [[10000, True], [10000, True], [None, None], [None, None], [10000, True]]
    assert out["left"] == [] and out["gone"] is None
