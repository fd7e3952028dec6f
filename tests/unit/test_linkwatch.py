"""The link watch's reading of rtnetlink messages: a link message's family says what it is about.

Messages are encoded by pyroute2 (an independent encoder), as the kernel sends them: a link
leaving a bridge gets an RTM_DELLINK of family AF_BRIDGE (not a deletion), joining one an
RTM_NEWLINK of family AF_BRIDGE (with no IFLA_CARRIER: not a carrier loss).
"""
import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from agrconfig.net import rtnl
from agrconfig.worker import linkwatch

AF_INET, AF_INET6 = 2, 10


def link_msg(mtype, family, index, attrs, flags=0):
    m = ifinfmsg()
    m["header"]["type"] = mtype
    m["family"], m["index"], m["flags"] = family, index, flags
    m["attrs"] = attrs
    m.encode()
    return bytes(m.data)


def bridge_msg(mtype, index=5, state=None):
    attrs = [("IFLA_IFNAME", "agr0"), ("IFLA_MASTER", 9), ("IFLA_MTU", 1500), ("IFLA_OPERSTATE", "UP")]
    if state is not None:
        attrs.append(("IFLA_PROTINFO", {"attrs": [("IFLA_BRPORT_STATE", state)]}))
    return link_msg(mtype, rtnl.AF_BRIDGE, index, attrs)


def own_msg(mtype, index=5, carrier=1):
    return link_msg(mtype, rtnl.AF_UNSPEC, index, [("IFLA_IFNAME", "agr0"), ("IFLA_MTU", 1500),
                                                  ("IFLA_ADDRESS", "02:00:00:00:00:01"), ("IFLA_CARRIER", carrier)],
                    flags=rtnl.IFF_UP)


def test_leaving_a_bridge_is_not_the_link_deleted():
    [event] = linkwatch.events(bridge_msg(rtnl.RTM_DELLINK))
    assert event == linkwatch.BridgePortRemoved(5, rtnl.BridgePort(index=5, name="agr0", master=9, state=None))
    assert not isinstance(event, linkwatch.LinkGone)


def test_joining_a_bridge_is_no_carrier_change():
    [event] = linkwatch.events(bridge_msg(rtnl.RTM_NEWLINK, state=3))
    assert event == linkwatch.BridgePortChanged(5, rtnl.BridgePort(index=5, name="agr0", master=9, state=3))
    assert not isinstance(event, linkwatch.LinkChanged)


def test_the_link_itself_deleted_and_changed():
    gone, changed, down = linkwatch.events(own_msg(rtnl.RTM_DELLINK) + own_msg(rtnl.RTM_NEWLINK)
                                           + own_msg(rtnl.RTM_NEWLINK, carrier=0))
    assert isinstance(gone, linkwatch.LinkGone) and gone.index == 5
    assert isinstance(changed, linkwatch.LinkChanged) and changed.link.carrier and changed.link.up
    assert changed.link.mac == "02:00:00:00:00:01" and changed.link.name == "agr0"
    assert not down.link.carrier


def test_link_messages_of_other_families_are_not_read():
    # AF_INET6 link messages (RTNLGRP_IPV6_IFINFO) describe IPv6's view of a link.
    msg = link_msg(rtnl.RTM_NEWLINK, AF_INET6, 5, [("IFLA_IFNAME", "agr0")])
    assert linkwatch.events(msg + own_msg(rtnl.RTM_NEWLINK)) == [
        linkwatch.LinkChanged(5, rtnl.link_from_msg(own_msg(rtnl.RTM_NEWLINK)))]


def test_a_message_cut_short_means_look_at_everything():
    short = rtnl.NLMSG.pack(rtnl.NLMSG.size + 1, rtnl.RTM_DELLINK, 0, 0, 0) + bytes([rtnl.AF_BRIDGE])
    assert linkwatch.events(short) == [linkwatch.EventsLost()]


def test_the_parsers_refuse_the_other_family():
    with pytest.raises(ValueError):
        rtnl.link_from_msg(bridge_msg(rtnl.RTM_NEWLINK))
    with pytest.raises(ValueError):
        rtnl.bridge_port_from_msg(own_msg(rtnl.RTM_NEWLINK))


def test_addresses():
    m = ifaddrmsg()
    m["header"]["type"] = rtnl.RTM_NEWADDR
    m["family"], m["prefixlen"], m["index"] = AF_INET, 24, 5
    m["attrs"] = [("IFA_ADDRESS", "192.0.2.1"), ("IFA_LOCAL", "192.0.2.1"), ("IFA_BROADCAST", "192.0.2.255")]
    m.encode()
    [event] = linkwatch.events(bytes(m.data))
    assert isinstance(event, linkwatch.AddressAdded) and event.index == 5
    assert (event.address.address, event.address.prefixlen, event.address.broadcast) == ("192.0.2.1", 24, "192.0.2.255")
