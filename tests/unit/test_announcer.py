"""agrannounce's frames (decoded by scapy, an independent decoder), its schedule on a fake
clock, the Announcer component with faked kernel facts, the LACP aggregator watch, and the
readers of /proc/net/igmp, /proc/net/igmp6 and a bridge's fdb messages."""
import struct
import warnings

import pytest
with warnings.catch_warnings():   # scapy 2.8 moves it; IGMPv3mr is only here so far
    warnings.simplefilter("ignore", DeprecationWarning)
    from scapy.contrib.igmpv3 import IGMPv3, IGMPv3mr
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, ICMPv6MLDMultAddrRec, ICMPv6MLReport2
from scapy.layers.l2 import ARP, Dot1Q, Ether

from agrconfig.lacp import SelectionChanged
from agrconfig.net import netlink, rtnl
from agrconfig.worker import announce
from agrconfig.worker.announcer import AggregatorWatch, AnnounceSchedule, Announcer, Facts, Listener, Round

MAC = b"\x02\x00\x00\x00\x00\x01"
VM = b"\x02\x00\x00\x00\x00\x42"
BRIDGE = b"\x02\x00\x00\x00\x00\x0b"


# -- frames ------------------------------------------------------------------------------------

def test_rarp_is_open_vswitchs_learning_frame():
    f = Ether(announce.rarp(VM))
    assert f.dst == "ff:ff:ff:ff:ff:ff" and f.src == "02:00:00:00:00:42" and f.type == 0x8035
    arp = ARP(bytes(f.payload))
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 3)
    assert arp.hwsrc == arp.hwdst == "02:00:00:00:00:42" and arp.psrc == arp.pdst == "0.0.0.0"
    assert len(announce.rarp(VM)) == 60, "padded to the shortest Ethernet frame"


def test_rarp_carries_the_macs_vlan_tag():
    raw = announce.rarp(VM, 42)
    f = Ether(raw)
    assert f.type == 0x8100 and f[Dot1Q].vlan == 42 and f[Dot1Q].type == 0x8035 and len(raw) == 64
    assert ARP(bytes(f[Dot1Q].payload)).hwsrc == "02:00:00:00:00:42"


def test_igmpv3_report_decodes_with_scapy():
    raw = announce.igmpv3_report(MAC, "192.0.2.1", ["239.1.2.3", "224.0.0.1", "239.255.0.9"])
    f = Ether(raw)
    assert f.dst == "01:00:5e:00:00:16" and f.src == "02:00:00:00:00:01"
    ip = f[IP]
    assert (ip.src, ip.dst, ip.ttl, ip.proto, ip.tos) == ("192.0.2.1", "224.0.0.22", 1, 2, 0xC0)
    assert ip.options and ip.options[0].option == 20, "Router Alert (RFC 2113)"
    again = IP(bytes(ip))
    del again.chksum
    assert IP(bytes(again)).chksum == ip.chksum, "the IPv4 header checksum is right"
    igmp = ip[IGMPv3]
    assert igmp.type == 0x22
    report = igmp[IGMPv3mr]
    assert [(r.rtype, r.maddr, r.numsrc) for r in report.records] == [(4, "239.1.2.3", 0), (4, "239.255.0.9", 0)], \
        "one CHANGE_TO_EXCLUDE (join) per group, never all-hosts"
    payload = bytes(igmp)
    assert announce.checksum(payload) == 0, "the IGMP checksum is right"


def test_mldv2_report_decodes_with_scapy():
    raw = announce.mldv2_report(MAC, "fe80::1", ["ff02::1", "ff02::1:ff00:1", "ff05::101", "ff01::5"])
    f = Ether(raw)
    assert f.dst == "33:33:00:00:00:16"
    ip6 = f[IPv6]
    assert (ip6.src, ip6.dst, ip6.hlim, ip6.nh) == ("fe80::1", "ff02::16", 1, 0)
    hbh = ip6[IPv6ExtHdrHopByHop]
    assert any(o.otype == 5 for o in hbh.options), "Router Alert (RFC 2711)"
    report = ip6[ICMPv6MLReport2]
    assert report.type == 143
    # scapy chains the records as payloads of one another
    records = [r for first in report.records for r in first.iterpayloads() if isinstance(r, ICMPv6MLDMultAddrRec)]
    assert report.records_number == 2 and [(r.rtype, r.dst) for r in records] == [(4, "ff02::1:ff00:1"),
                                                                                   (4, "ff05::101")], \
        "not all-nodes, not interface-local"
    good = report.cksum
    del report.cksum
    assert IPv6(bytes(ip6))[ICMPv6MLReport2].cksum == good, "the ICMPv6 checksum is right"


def test_no_group_no_report():
    assert announce.igmpv3_report(MAC, "0.0.0.0", ["224.0.0.1"]) is None
    assert announce.mldv2_report(MAC, "::", ["ff02::1"]) is None


def test_multicast_macs():
    assert announce.multicast_mac("239.129.2.3") == b"\x01\x00\x5e\x01\x02\x03"
    assert announce.multicast_mac("ff02::1:ff00:1") == b"\x33\x33\xff\x00\x00\x01"


IGMP = """Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
1\tlo        :     1      V3
\t\t\t\t010000E0     1 0:00000000\t\t0
9\tagr0      :     2      V2
\t\t\t\t030201EF     1 0:00000000\t\t1
\t\t\t\t010000E0     1 0:00000000\t\t0
10\tagr10     :     1      V3
\t\t\t\t040201EF     1 0:00000000\t\t1
"""

IGMP6 = """1    lo              ff020000000000000000000000000001     1 0000000C 0
9    agr0            ff0200000000000000000001ff000001     1 00000004 0
9    agr0            ff020000000000000000000000000001     1 0000000C 0
10   agr10           ff050000000000000000000000000101     1 00000004 0
"""


def test_proc_readers():
    assert announce.igmp_groups(IGMP, "agr0") == ["239.1.2.3", "224.0.0.1"]
    assert announce.igmp_groups(IGMP, "agr10") == ["239.1.2.4"]
    assert announce.igmp_groups(IGMP, "agr1") == []
    assert announce.igmp6_groups(IGMP6, 9) == ["ff02::1:ff00:1", "ff02::1"]
    assert announce.igmp6_groups(IGMP6, 10) == ["ff05::101"]


def fdb_msg(index, mac, master=None, vlan=None, flags=0x04, state=0x02):
    body = rtnl.NDMSG.pack(rtnl.AF_BRIDGE, index, state, flags, 0) + netlink.attr(rtnl.NDA_LLADDR, mac)
    if master is not None:
        body += netlink.attr(rtnl.NDA_MASTER, struct.pack("=I", master))
    if vlan is not None:
        body += netlink.attr(rtnl.NDA_VLAN, struct.pack("=H", vlan))
    return netlink.message(28, 0, 1, body)


def test_fdb_entries_of_the_bridge_only():
    e = rtnl.fdb_from_msg(fdb_msg(4, VM, master=2, vlan=7), 2)
    assert e == rtnl.FdbEntry(mac="02:00:00:00:00:42", vlan=7, port=4, state=0x02)
    assert rtnl.fdb_from_msg(fdb_msg(4, VM, master=3), 2) is None, "another bridge's"
    assert rtnl.fdb_from_msg(fdb_msg(4, VM, flags=0x02), 2) is None, "a port device's own list"
    assert rtnl.fdb_from_msg(fdb_msg(2, VM, flags=0x02), 2) is None, "the bridge device's own list"
    assert rtnl.fdb_from_msg(fdb_msg(2, VM, master=2, state=0x80), 2).port == 2, "the bridge's own address"


# -- the schedule --------------------------------------------------------------------------------

def test_schedule_rounds_interval_apart():
    s = AnnounceSchedule()
    assert s.deadline() is None and s.due(5.0) == []
    s.moved(10.0, 7, 3, 0.25)
    assert s.deadline() == 10.0
    assert s.due(10.0) == [Round(port=7, number=0)]
    assert s.deadline() == 10.25 and s.due(10.2) == []
    assert s.due(10.25) == [Round(port=7, number=1)]
    assert s.due(11.0) == [Round(port=7, number=2)], "late: the last round at once"
    assert s.deadline() is None and s.due(20.0) == []


def test_a_new_move_starts_over_and_a_port_leaving_stops_its_rounds():
    s = AnnounceSchedule()
    s.moved(0.0, 7, 5, 1.0)
    s.due(0.0)
    s.moved(0.5, 8, 2, 1.0)
    assert s.due(0.5) == [Round(port=8, number=0)] and s.deadline() == 1.5
    s.forget(7)
    assert s.deadline() == 1.5
    s.forget(8)
    assert s.deadline() is None and s.due(9.0) == []


def test_count_zero_still_has_the_first_round():
    s = AnnounceSchedule()
    s.moved(0.0, 7, 0, 0.1)
    assert s.due(1.0) == [Round(port=7, number=0)] and s.deadline() is None


# -- the component -------------------------------------------------------------------------------

class FakeFacts(Facts):
    def __init__(self, learned=(), groups=((), ()), bridge_groups=None):
        self._learned, self._groups, self._bridge = list(learned), groups, bridge_groups

    def mac(self):
        return MAC

    def addresses(self):
        return ["192.0.2.1", "fe80::1%agr0", "2001:db8::1"]

    def learned(self):
        return self._learned

    def listeners(self):
        out = [Listener(mac=MAC, addresses=self.addresses(), v4=list(self._groups[0]), v6=list(self._groups[1]))]
        if self._bridge is not None:
            out.append(Listener(mac=BRIDGE, addresses=["192.0.2.9"], v4=self._bridge, v6=[]))
        return out


def announcer(setting, **facts):
    sent = []
    a = Announcer(lambda port, frame: sent.append((port, frame)), FakeFacts(**facts), lambda: setting)
    return a, sent


def kinds(frames):
    out = []
    for _port, raw in frames:
        f = Ether(raw)
        if f.haslayer(Dot1Q):
            f = Ether(dst=f.dst, src=f.src, type=f[Dot1Q].type) / f[Dot1Q].payload
        if f.type == 0x0806:
            out.append("garp")
        elif f.type == 0x8035:
            out.append("rarp " + f.src)
        elif f.haslayer(IGMPv3):
            out.append("igmp")
        elif f.haslayer(ICMPv6MLReport2):
            out.append("mld")
        else:
            out.append("na")
    return out


def test_a_move_sends_n_rounds_and_the_first_has_the_rest():
    a, sent = announcer({"count": 3, "interval": 200}, learned=[(VM, None), (VM[:5] + b"\x43", 5),
                                                                (MAC, None), (b"\x33\x33\0\0\0\1", None)],
                        groups=(["239.1.2.3"], ["ff02::1:ff00:1"]))
    assert a.deadline() is None
    a.moved(7)
    assert a.deadline() == 0.0 and sent == [], "taken up by the loop's next turn"
    a.on_timer(100.0)
    assert kinds(sent) == ["garp", "na", "na", "rarp 02:00:00:00:00:42", "rarp 02:00:00:00:00:43", "igmp", "mld"], \
        "agr0's own MAC and multicast MACs get no learning frame"
    assert {p for p, _f in sent} == {7}
    assert Ether(sent[4][1])[Dot1Q].vlan == 5
    assert a.deadline() == pytest.approx(100.2)
    del sent[:]
    a.on_timer(100.1)
    assert sent == []
    a.on_timer(100.2)
    assert kinds(sent) == ["garp", "na", "na"]
    a.on_timer(100.4)
    assert kinds(sent) == ["garp", "na", "na"] * 2 and a.deadline() is None
    assert a.sent == 13


def test_count_zero_sends_no_arp_but_the_learning_frames_and_reports():
    a, sent = announcer({"count": 0, "interval": 100}, learned=[(VM, None)], groups=(["239.1.2.3"], []))
    a.moved(7)
    a.on_timer(1.0)
    assert kinds(sent) == ["rarp 02:00:00:00:00:42", "igmp"] and a.deadline() is None


def test_an_slb_move_of_some_macs():
    a, sent = announcer({"count": 2, "interval": 100}, learned=[(b"\x02" * 6, None)], groups=(["239.1.2.3"], []))
    a.moved(5, [(VM, None), (VM[:5] + b"\x43", 9)])
    a.on_timer(1.0)
    assert kinds(sent) == ["rarp 02:00:00:00:00:42", "rarp 02:00:00:00:00:43"] and a.deadline() is None, \
        "only the MACs that moved; agr0's own did not"
    del sent[:]
    a.moved(6, [(MAC, None)])
    a.on_timer(2.0)
    assert kinds(sent) == ["rarp 02:00:00:00:00:01", "garp", "na", "na", "igmp"], \
        "agr0's MAC moved: its announcements too, not the bridge's other MACs"
    assert a.deadline() == pytest.approx(2.1)


def test_a_failed_read_costs_its_frames_only():
    class Broken(FakeFacts):
        def learned(self):
            raise OSError("netlink")
    sent = []
    a = Announcer(lambda port, frame: sent.append((port, frame)), Broken(), lambda: {"count": 1, "interval": 100})
    a.moved(3)
    a.on_timer(0.0)
    assert kinds(sent) == ["garp", "na", "na"]


def test_a_port_that_left_gets_nothing_more():
    a, sent = announcer({"count": 3, "interval": 100})
    a.moved(3)
    a.forget(3)
    a.on_timer(0.0)
    assert sent == [] and a.deadline() is None
    a.moved(4)
    a.on_timer(0.0)
    a.forget(4)
    assert a.deadline() is None


# -- a new LACP aggregation ----------------------------------------------------------------------

def selected(system, key=1, ports=(1,)):
    return SelectionChanged(0x100, system, key, ports) if system else SelectionChanged(None, None, None, ())


def test_a_new_aggregation_is_a_move_once_it_distributes():
    w = AggregatorWatch()
    w.selection(selected(b"\x02" * 6))
    assert w.distributing({3}) is None, "the first selection is no move"
    w.selection(selected(b"\x02" * 6, ports=(3, 4)))
    assert w.distributing({3, 4}) is None, "more ports in the same aggregation: no move"
    w.selection(selected(None))
    w.selection(selected(b"\x04" * 6))
    assert w.distributing(set()) is None, "not distributing yet"
    assert w.distributing({5, 4}) == 4, "the lowest distributing port, once"
    assert w.distributing({5, 4}) is None
    w.selection(selected(b"\x04" * 6, key=2))
    assert w.distributing({6}) == 6, "another partner key is another aggregation"


def test_the_bridges_memberships_are_reported_from_the_bridge():
    a, sent = announcer({"count": 1, "interval": 100}, groups=([], []), bridge_groups=["239.9.9.9"])
    a.moved(7)
    a.on_timer(0.0)
    (igmp,) = [Ether(f) for _p, f in sent if Ether(f).haslayer(IGMPv3)]
    assert igmp.src == "02:00:00:00:00:0b" and igmp[IP].src == "192.0.2.9"
    assert [r.maddr for r in igmp[IGMPv3mr].records] == ["239.9.9.9"]
