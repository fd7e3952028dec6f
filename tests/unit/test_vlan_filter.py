"""The ports' VLAN filters: what is registered where (plan), the netlink and ethtool parsing
behind it, and which link events make the worker look again."""
import struct

from agrconfig.net import ethtool, netlink, rtnl, vlan
from agrconfig.net.vlan import ETH_P_8021AD, ETH_P_8021Q, Vlan, VlanLink
from agrconfig.worker import vlanfilter
from agrconfig.worker.linkwatch import BridgePortChanged, BridgePortRemoved, EventsLost, LinkChanged, LinkGone
from agrconfig.worker.vlanfilter import plan

V10, V20, AD10 = Vlan(proto=ETH_P_8021Q, vid=10), Vlan(proto=ETH_P_8021Q, vid=20), Vlan(proto=ETH_P_8021AD, vid=10)


def entry(index, lower, v, ours=True):
    return VlanLink(index=index, name=f"agrvid{index}", lower=lower, vlan=v, ours=ours)


def test_every_filtering_port_gets_every_carried_vlan():
    make, remove = plan({V10, V20}, filtering={3, 4}, entries=[], ports={3, 4, 5})
    assert make == [(3, V10), (3, V20), (4, V10), (4, V20)] and remove == []


def test_what_exists_is_kept_and_what_is_not_carried_goes():
    old = entry(50, 3, V20)
    make, remove = plan({V10}, filtering={3}, entries=[entry(51, 3, V10), old], ports={3})
    assert make == [] and remove == [old]


def test_no_vlans_carried_removes_everything_of_ours():
    entries = [entry(50, 3, V10), entry(51, 4, AD10)]
    assert plan(frozenset(), filtering=set(), entries=entries, ports={3, 4}) == ([], entries)


def test_a_port_that_stopped_filtering_loses_its_entries():
    e = entry(50, 4, V10)
    assert plan({V10}, filtering={3}, entries=[e], ports={3, 4}) == ([(3, V10)], [e])


def test_entries_on_links_that_are_not_our_ports_are_left_alone():
    assert plan(frozenset(), filtering=set(), entries=[entry(50, 9, V10)], ports={3}) == ([], [])


def test_a_duplicate_entry_goes_and_one_stays():
    a, b = entry(50, 3, V10), entry(51, 3, V10)
    assert plan({V10}, filtering={3}, entries=[a, b], ports={3}) == ([], [b])


def test_802_1q_and_802_1ad_of_one_id_are_two_vlans():
    make, _ = plan({V10, AD10}, filtering={3}, entries=[entry(50, 3, V10)], ports={3})
    assert make == [(3, AD10)]
    assert str(V10) == "10" and str(AD10) == "10 (802.1ad)"


def test_bridge_vlan_info_is_read_one_attribute_a_vlan():
    spec = (netlink.attr(vlan.IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", 6, 1))     # pvid, untagged
            + netlink.attr(1, b"\0\0\0\0")                                          # IFLA_BRIDGE_FLAGS
            + netlink.attr(vlan.IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", 0, 20)))
    assert vlan.parse_vlan_info(spec) == [(6, 1), (0, 20)]
    assert vlan.parse_vlan_info(spec[:-3]) == [(6, 1)]   # a cut tail is not read


def test_a_feature_is_found_by_its_name_whatever_its_bit():
    names = b"".join(n.encode().ljust(ethtool.ETH_GSTRING_LEN, b"\0") for n in ("tx-scatter-gather", "rx-vlan-filter"))
    assert ethtool.feature_bit(names, 2, "rx-vlan-filter") == 1
    assert ethtool.feature_bit(names, 2, "rx-gro") is None


def test_feature_reads_the_active_bit_of_its_block(monkeypatch):
    count = 40
    names = [f"f{i}" for i in range(count)]
    names[35] = "rx-vlan-filter"
    table = b"".join(n.encode().ljust(32, b"\0") for n in names)

    def ioctl(_ifname, data):
        cmd = struct.unpack_from("=I", data)[0]
        if cmd == ethtool.ETHTOOL_GSSET_INFO:
            return data[:16] + struct.pack("=I", count)
        if cmd == ethtool.ETHTOOL_GSTRINGS:
            return data[:12] + table
        blocks = [struct.pack("=IIII", 0xFFFFFFFF, 0, 0, 0), struct.pack("=IIII", 0, 0, 1 << 3, 0)]
        return data[:8] + b"".join(blocks)

    monkeypatch.setattr(ethtool, "_ioctl", ioctl)
    assert vlan.filters_vlans("re0") is True
    assert ethtool.feature("re0", "f3") is False       # available, not active
    assert ethtool.feature("re0", "nosuch") is None


def test_a_link_without_ethtool_filters_nothing(monkeypatch):
    def ioctl(_ifname, _data):
        raise OSError(95, "Operation not supported")
    monkeypatch.setattr(ethtool, "_ioctl", ioctl)
    assert vlan.filters_vlans("re0") is False


class Agr:
    name, tap_index = "agr0", 7
    members = ()


def link(index, kind):
    return rtnl.Link(index=index, name="x", mac="", mtu=1500, flags=0, kind=kind, type=1, addrlen=6,
                     carrier=True, operstate="UP")


def looks(events):
    f = vlanfilter.VlanFilter(Agr())
    calls = []
    f.sync = lambda: calls.append(1)
    f.on_events(0.0, events)
    return len(calls)


def test_the_filter_looks_again_at_vlan_devices_agr_and_its_bridge_port_only():
    assert looks([LinkChanged(20, link(20, "vlan"))]) == 1          # a VLAN upper came or changed
    assert looks([LinkGone(20, link(20, "vlan"))]) == 1
    assert looks([LinkChanged(7, link(7, "tun"))]) == 1             # agrN itself
    assert looks([BridgePortChanged(7, None), BridgePortRemoved(7, None)]) == 1   # once a batch
    assert looks([EventsLost()]) == 1
    assert looks([LinkChanged(3, link(3, "veth")), BridgePortChanged(3, None)]) == 0
