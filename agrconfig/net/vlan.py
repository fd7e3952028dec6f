"""The VLANs agrN carries, and the ports' hardware VLAN filters (rtnetlink and ethtool).

A NIC with `rx-vlan-filter` on drops tagged frames of every VLAN not registered on it. agrN is
a TAP: VLANs on agrN (VLAN uppers, or agrN a tagged port of a VLAN-filtering bridge) are
registered on agrN, never on its ports. From userspace, a VLAN ID is registered on a device by
a VLAN device on it; one left down receives nothing (our raw socket and tc hook see the frame
first). So for each such VLAN and filtering port we make one, named `agrvid<n>`, down, and
marked by its ifalias so that we, and only we, remove it again.
"""
import struct

from ..record import Record
from . import ethtool, netlink, rtnl

ALIAS = "agrconfig: VLAN filter entry"        # ours, whatever the interface is called
NAME = "agrvid%d"                              # the kernel picks the number
ETH_P_8021Q, ETH_P_8021AD = 0x8100, 0x88A8

IFLA_LINK, IFLA_IFALIAS, IFLA_AF_SPEC, IFLA_EXT_MASK = 5, 20, 26, 29
IFLA_INFO_DATA = 2
IFLA_VLAN_ID, IFLA_VLAN_PROTOCOL = 1, 5
IFLA_BR_VLAN_FILTERING, IFLA_BR_VLAN_PROTOCOL = 7, 8
RTEXT_FILTER_BRVLAN = 1 << 1
IFLA_BRIDGE_VLAN_INFO = 2
BRIDGE_VLAN_INFO_UNTAGGED = 1 << 2
BRIDGE_VLAN_INFO = struct.Struct("=HH")       # flags, vid

RX_VLAN_FILTER = "rx-vlan-filter"       # ethtool's name: its bit differs between kernels


class Vlan(Record):
    """A VLAN on the wire: its TPID (802.1Q or 802.1ad) and ID."""
    __slots__ = ("proto", "vid")

    def __str__(self):
        return str(self.vid) if self.proto == ETH_P_8021Q else f"{self.vid} (802.1ad)"


class VlanLink(Record):
    """A VLAN device: on `lower`, for `vlan`; `ours` when it is one of our filter entries."""
    __slots__ = ("index", "name", "lower", "vlan", "ours")


def _info_data(at):
    info = at.get(rtnl.IFLA_LINKINFO, b"")
    inner = netlink.attrs(info)
    kind = netlink.get_string(inner, rtnl.IFLA_INFO_KIND)
    data = inner.get(IFLA_INFO_DATA, b"")
    return kind, netlink.attrs(data)


def vlan_links():
    """Every VLAN device of this namespace."""
    out = []
    msgs = netlink.request(rtnl.RTM_GETLINK, rtnl.IFINFOMSG.pack(0, 0, 0, 0, 0), dump=True)
    for mtype, msg in msgs:
        if mtype != rtnl.RTM_NEWLINK or rtnl.link_family(msg) != rtnl.AF_UNSPEC:
            continue
        _fam, _type, index, _flags, _change = rtnl.IFINFOMSG.unpack_from(msg, netlink.NLMSG.size)
        at = netlink.attrs(msg, netlink.NLMSG.size + rtnl.IFINFOMSG.size)
        kind, data = _info_data(at)
        if kind != "vlan" or len(data.get(IFLA_VLAN_ID, b"")) < 2:
            continue
        proto = data.get(IFLA_VLAN_PROTOCOL, b"")
        out.append(VlanLink(index=index, name=netlink.get_string(at, rtnl.IFLA_IFNAME),
                            lower=netlink.get_u32(at, IFLA_LINK, 0),
                            vlan=Vlan(proto=struct.unpack("!H", proto)[0] if len(proto) == 2 else ETH_P_8021Q,
                                      vid=struct.unpack("=H", data[IFLA_VLAN_ID][:2])[0]),
                            ours=netlink.get_string(at, IFLA_IFALIAS) == ALIAS))
    return out


def _bridge_filtering(index):
    """The TPID of bridge `index` if it filters VLANs, else None."""
    msgs = netlink.request(rtnl.RTM_GETLINK, rtnl.IFINFOMSG.pack(0, 0, index, 0, 0))
    if not msgs:
        return None
    at = netlink.attrs(msgs[0][1], netlink.NLMSG.size + rtnl.IFINFOMSG.size)
    kind, data = _info_data(at)
    if kind != "bridge" or not data.get(IFLA_BR_VLAN_FILTERING, b"\0")[0]:
        return None
    proto = data.get(IFLA_BR_VLAN_PROTOCOL, b"")
    return struct.unpack("!H", proto)[0] if len(proto) == 2 else ETH_P_8021Q


def bridge_vlans(index):
    """The tagged VLANs of link `index` as a port of a VLAN-filtering bridge (none when it is in
    no bridge, or in one that does not filter: then it carries whatever comes, and registers
    nothing, as the kernel's own bridge does)."""
    body = rtnl.IFINFOMSG.pack(rtnl.AF_BRIDGE, 0, 0, 0, 0) + netlink.u32(IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN)
    for mtype, msg in netlink.request(rtnl.RTM_GETLINK, body, dump=True):
        fam, _type, ifindex, _flags, _change = rtnl.IFINFOMSG.unpack_from(msg, netlink.NLMSG.size)
        if mtype != rtnl.RTM_NEWLINK or fam != rtnl.AF_BRIDGE or ifindex != index:
            continue
        at = netlink.attrs(msg, netlink.NLMSG.size + rtnl.IFINFOMSG.size)
        master = netlink.get_u32(at, rtnl.IFLA_MASTER, 0)
        proto = _bridge_filtering(master) if master else None
        if proto is None:
            return frozenset()
        return frozenset(Vlan(proto=proto, vid=vid) for flags, vid in parse_vlan_info(at.get(IFLA_AF_SPEC, b""))
                         if not flags & BRIDGE_VLAN_INFO_UNTAGGED)
    return frozenset()


def parse_vlan_info(spec):
    """(flags, vid) of each IFLA_BRIDGE_VLAN_INFO in an IFLA_AF_SPEC (not compressed: one a VLAN)."""
    return [BRIDGE_VLAN_INFO.unpack_from(payload) for kind, payload in netlink.attr_list(spec)
            if kind == IFLA_BRIDGE_VLAN_INFO and len(payload) >= BRIDGE_VLAN_INFO.size]


def carried(agr_index, links=None):
    """The VLANs agrN carries: its VLAN uppers' and its tagged VLANs in a filtering bridge."""
    links = vlan_links() if links is None else links
    return frozenset(l.vlan for l in links if l.lower == agr_index) | bridge_vlans(agr_index)


def register(port_index, vlan):
    """A down VLAN device on the port: the port's filter then passes `vlan`."""
    info = netlink.nested(rtnl.IFLA_LINKINFO, netlink.string(rtnl.IFLA_INFO_KIND, "vlan"),
                          netlink.nested(IFLA_INFO_DATA,
                                         netlink.attr(IFLA_VLAN_ID, struct.pack("=H", vlan.vid)),
                                         netlink.attr(IFLA_VLAN_PROTOCOL, struct.pack("!H", vlan.proto))))
    body = (rtnl.IFINFOMSG.pack(rtnl.AF_UNSPEC, 0, 0, 0, 0) + netlink.string(rtnl.IFLA_IFNAME, NAME)
            + netlink.u32(IFLA_LINK, port_index) + netlink.string(IFLA_IFALIAS, ALIAS) + info)
    netlink.request(rtnl.RTM_NEWLINK, body, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL)
    # The kernel applies IFLA_IFALIAS only to an existing link: mark the new one afterwards. It
    # is the port's only VLAN device of that VLAN (a second one is refused, EEXIST).
    for entry in vlan_links():
        if entry.lower == port_index and entry.vlan == vlan:
            body = rtnl.IFINFOMSG.pack(rtnl.AF_UNSPEC, 0, entry.index, 0, 0) + netlink.string(IFLA_IFALIAS, ALIAS)
            netlink.request(rtnl.RTM_NEWLINK, body)


def unregister(entry):
    rtnl.delete_link(entry.index)


def release(port_index, links=None):
    """Remove every filter entry of ours on the port; the errors, best effort."""
    errors = []
    try:
        links = vlan_links() if links is None else links
    except OSError as exc:
        return [exc]
    for entry in links:
        if entry.ours and entry.lower == port_index:
            try:
                unregister(entry)
            except OSError as exc:
                errors.append(exc)
    return errors


def filters_vlans(ifname):
    """Whether the port's hardware VLAN filter is on (ethtool's rx-vlan-filter)."""
    return bool(ethtool.feature(ifname, RX_VLAN_FILTER))
