"""Our netlink codec (net/netlink.py) and the requests rtnl.py and tc.py make with it.

pyroute2 is the independent decoder and encoder: what we send must read in pyroute2 as what we
meant, and what pyroute2 packs must read in ours as what it meant. The request loop runs
against a fake socket that hands out datagrams as the kernel would (peek with MSG_TRUNC first).
"""
import errno
import socket
import struct

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.tcmsg import tcmsg

from agrconfig.errors import AgrError
from agrconfig.net import netlink, rtnl, tc
from agrconfig.net.netlink import NLMSG, NetlinkError


# -- attributes -------------------------------------------------------------------------------------
def test_attributes_are_padded_and_nested():
    a = netlink.string(7, "ab")                     # 4 + 3 bytes, padded to 8
    assert a == struct.pack("=HH", 7, 7) + b"ab\0" + b"\0"
    n = netlink.nested(2, netlink.u32(6, 5), a)
    length, kind = struct.unpack_from("=HH", n)
    assert (length, kind) == (4 + 8 + 8, 2 | netlink.NLA_F_NESTED)
    outer = netlink.attrs(n)
    assert list(outer) == [2]                       # the nested flag is not part of the type
    inner = netlink.attrs(outer[2])
    assert netlink.get_u32(inner, 6) == 5 and netlink.get_string(inner, 7) == "ab"


def test_a_malformed_attribute_ends_the_list():
    good = netlink.u32(1, 9)
    assert netlink.attrs(good + struct.pack("=HH", 2, 3)) == {1: struct.pack("=I", 9)}        # length < 4
    assert netlink.attrs(good + struct.pack("=HH", 40, 3) + bytes(4)) == {1: struct.pack("=I", 9)}  # past the end
    assert netlink.get_u32({1: b"\1\0"}, 1) is None                                           # not 4 bytes


# -- what we send, read by pyroute2 -----------------------------------------------------------------
@pytest.fixture
def sent(monkeypatch):
    """The requests made, as (type, flags, bytes of the message); no socket opened."""
    out = []

    def request(mtype, body, flags=0, dump=False, sock=None):
        flags |= netlink.NLM_F_REQUEST | (netlink.NLM_F_DUMP if dump else netlink.NLM_F_ACK)
        out.append((mtype, flags, netlink.message(mtype, flags, 1, body)))
        return []
    monkeypatch.setattr(netlink, "request", request)
    return out


def decoded(cls, data):
    m = cls(data)
    m.decode()
    return m


def test_link_changes_read_by_pyroute2(sent):
    rtnl.set_mtu(7, 9000)
    rtnl.set_mac(7, "02:00:00:00:00:0a")
    rtnl.set_up(7, False)
    rtnl.set_flag(7, rtnl.IFF_PROMISC, True)
    mtu, mac, down, promisc = (decoded(ifinfmsg, m) for _t, _f, m in sent)
    assert all(t == rtnl.RTM_NEWLINK and f == netlink.NLM_F_REQUEST | netlink.NLM_F_ACK for t, f, _m in sent)
    assert (mtu["index"], mtu.get_attr("IFLA_MTU"), mtu["change"]) == (7, 9000, 0)
    assert mac.get_attr("IFLA_ADDRESS") == "02:00:00:00:00:0a"
    assert (down["flags"], down["change"]) == (0, rtnl.IFF_UP)
    assert (promisc["flags"], promisc["change"]) == (rtnl.IFF_PROMISC, rtnl.IFF_PROMISC)


def test_addresses_read_by_pyroute2(sent):
    import ipaddress
    rtnl.add_address(3, ipaddress.ip_interface("192.0.2.1/24"))
    rtnl.add_address(3, ipaddress.ip_interface("2001:db8::1/64"))
    rtnl.del_address(3, rtnl.Address(socket.AF_INET6, "2001:db8::1", 64, None, 0, 0))
    v4, v6, gone = (decoded(ifaddrmsg, m) for _t, _f, m in sent)
    assert sent[0][1] & (netlink.NLM_F_CREATE | netlink.NLM_F_EXCL) == netlink.NLM_F_CREATE | netlink.NLM_F_EXCL
    assert (v4["family"], v4["prefixlen"], v4["index"]) == (socket.AF_INET, 24, 3)
    assert (v4.get_attr("IFA_LOCAL"), v4.get_attr("IFA_ADDRESS"), v4.get_attr("IFA_BROADCAST")) == \
        ("192.0.2.1", "192.0.2.1", "192.0.2.255")
    assert (v6["family"], v6.get_attr("IFA_ADDRESS"), v6.get_attr("IFA_BROADCAST")) == (socket.AF_INET6, "2001:db8::1", None)
    assert sent[2][0] == rtnl.RTM_DELADDR and (gone["prefixlen"], gone.get_attr("IFA_ADDRESS")) == (64, "2001:db8::1")


def test_tc_requests_read_by_pyroute2(sent):
    tc.replace_bpf(4, tc.EGRESS, 0xA9, 1, 17, "agrconfig_egress")
    tc.del_filter(4, tc.INGRESS, 0xA9, 1)
    tc.add_clsact(4)
    tc.del_clsact(4)
    (t1, f1, new), (t2, _f2, dele), (t3, f3, qdisc), (t4, _f4, qdel) = sent
    assert (t1, t2, t3, t4) == (tc.RTM_NEWTFILTER, tc.RTM_DELTFILTER, tc.RTM_NEWQDISC, tc.RTM_DELQDISC)
    assert f1 & (netlink.NLM_F_CREATE | netlink.NLM_F_REPLACE) == netlink.NLM_F_CREATE | netlink.NLM_F_REPLACE
    m = decoded(tcmsg, new)
    assert (m["index"], m["handle"], m["parent"], m["info"]) == (4, 1, 0xFFFFFFF3, 0xA9 << 16 | socket.htons(3))
    assert m.get_attr("TCA_KIND") == "bpf"
    opts = m.get_attr("TCA_OPTIONS")
    assert (opts.get_attr("TCA_BPF_FD"), opts.get_attr("TCA_BPF_NAME"), opts.get_attr("TCA_BPF_FLAGS"),
            opts.get_attr("TCA_BPF_CLASSID")) == (17, "agrconfig_egress", 1, 1)
    d = decoded(tcmsg, dele)
    assert (d["parent"], d["info"] >> 16, d["handle"], d.get_attr("TCA_KIND")) == (0xFFFFFFF2, 0xA9, 1, "bpf")
    q = decoded(tcmsg, qdisc)
    assert (q["handle"], q["parent"], q.get_attr("TCA_KIND")) == (0xFFFF0000, 0xFFFFFFF1, "clsact")
    assert f3 & netlink.NLM_F_EXCL and decoded(tcmsg, qdel).get_attr("TCA_KIND") == "clsact"


def test_a_filter_packed_by_pyroute2_reads_in_ours():
    m = tcmsg()
    m["header"]["type"] = tc.RTM_NEWTFILTER
    m["index"], m["handle"], m["parent"], m["info"] = 4, 1, 0xFFFFFFF2, 0xA9 << 16 | socket.htons(3)
    m["attrs"] = [("TCA_KIND", "bpf"), ("TCA_OPTIONS", {"attrs": [("TCA_BPF_NAME", "agrconfig_ingress"),
                                                                  ("TCA_BPF_FD", 9)]})]
    m.encode()
    assert tc.filter_from_msg(bytes(m.data)) == tc.Filter(kind="bpf", parent=0xFFFFFFF2, prio=0xA9, protocol=3,
                                                           handle=1, name="agrconfig_ingress")


# -- the request loop, on a fake socket -----------------------------------------------------------
class FakeSocket:
    """Hands out datagrams as the kernel does: MSG_PEEK leaves it, MSG_TRUNC tells its length."""

    def __init__(self, *datagrams):
        self.queue, self.sent = list(datagrams), []

    def send(self, data):
        self.sent.append(data)
        return len(data)

    def recv_into(self, buf, nbytes=0, flags=0):
        data = self.queue[0] if flags & socket.MSG_PEEK else self.queue.pop(0)
        n = min(len(buf), len(data))
        buf[:n] = data[:n]
        return len(data) if flags & socket.MSG_TRUNC else n


def reply(mtype, body, seq=1, flags=0):
    return netlink.message(mtype, flags, seq, body)


def link_reply(index, name, seq=1):
    body = rtnl.IFINFOMSG.pack(0, 1, index, 0, 0) + netlink.string(rtnl.IFLA_IFNAME, name)
    return reply(rtnl.RTM_NEWLINK, body, seq, netlink.NLM_F_MULTI)


def ack(code=0, seq=1, text=None):
    body = struct.pack("=i", -code) + NLMSG.pack(36, 16, 5, seq, 0)       # capped: the request's header
    flags = netlink.NLM_F_CAPPED
    if text:
        flags |= netlink.NLM_F_ACK_TLVS
        body += netlink.string(netlink.NLMSGERR_ATTR_MSG, text)
    return reply(netlink.NLMSG_ERROR, body, seq, flags)


def test_a_dump_split_over_several_datagrams():
    sock = FakeSocket(link_reply(1, "lo") + link_reply(2, "re0"),
                      link_reply(9, "old", seq=7),                          # not ours: skipped
                      link_reply(3, "re1"),
                      reply(netlink.NLMSG_DONE, struct.pack("=i", 0), flags=netlink.NLM_F_MULTI))
    got = netlink.request(rtnl.RTM_GETLINK, rtnl.IFINFOMSG.pack(0, 0, 0, 0, 0), dump=True, sock=sock)
    assert [rtnl.link_from_msg(m).name for _t, m in got] == ["lo", "re0", "re1"]
    length, mtype, flags, seq, _pid = NLMSG.unpack_from(sock.sent[0])
    assert (length, mtype, flags, seq) == (len(sock.sent[0]), rtnl.RTM_GETLINK,
                                           netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP, 1)
    assert sock.queue == []


def test_a_datagram_larger_than_the_buffer_is_read_whole():
    names = [f"if{i}" for i in range(2000)]                                 # ~64 KiB in one datagram
    big = b"".join(link_reply(i, n) for i, n in enumerate(names))
    assert len(big) > 32768
    sock = FakeSocket(big, reply(netlink.NLMSG_DONE, struct.pack("=i", 0)))
    got = netlink.request(rtnl.RTM_GETLINK, b"", dump=True, sock=sock)
    assert [rtnl.link_from_msg(m).name for _t, m in got] == names


def test_a_request_reads_its_reply_up_to_the_ack():
    sock = FakeSocket(link_reply(2, "re0") + ack())
    got = netlink.request(rtnl.RTM_GETLINK, b"", sock=sock)
    assert [rtnl.link_from_msg(m).name for _t, m in got] == ["re0"]
    assert NLMSG.unpack_from(sock.sent[0])[2] == netlink.NLM_F_REQUEST | netlink.NLM_F_ACK


def test_a_refusal_raises_its_errno_with_the_kernels_words():
    with pytest.raises(NetlinkError) as info:
        netlink.request(rtnl.RTM_NEWLINK, b"", sock=FakeSocket(ack(errno.EBUSY, text="Device is busy")))
    assert info.value.errno == errno.EBUSY and "Device is busy" in info.value.strerror
    assert isinstance(info.value, OSError)
    with pytest.raises(NetlinkError) as info:
        netlink.request(rtnl.RTM_NEWLINK, b"", sock=FakeSocket(ack(errno.ENODEV)))
    assert info.value.errno == errno.ENODEV


def test_an_uncapped_error_skips_the_echoed_request():
    request = netlink.message(rtnl.RTM_NEWLINK, 5, 1, bytes(16) + netlink.u32(4, 1500))
    body = struct.pack("=i", -errno.EINVAL) + request + netlink.string(netlink.NLMSGERR_ATTR_MSG, "bad mtu")
    code, text = netlink.error_of(reply(netlink.NLMSG_ERROR, body, flags=netlink.NLM_F_ACK_TLVS))
    assert (code, text) == (errno.EINVAL, "bad mtu")


def test_a_dump_that_fails_part_way_raises():
    done = reply(netlink.NLMSG_DONE, struct.pack("=i", -errno.EINTR) + netlink.string(1, "dump interrupted"),
                 flags=netlink.NLM_F_MULTI | netlink.NLM_F_ACK_TLVS)
    with pytest.raises(NetlinkError) as info:
        netlink.request(rtnl.RTM_GETLINK, b"", dump=True, sock=FakeSocket(link_reply(1, "lo"), done))
    assert info.value.errno == errno.EINTR and "dump interrupted" in info.value.strerror


# -- errors keep their names ---------------------------------------------------------------------------
@pytest.mark.parametrize("call, ioctl, detail", [
    (lambda: rtnl.set_mtu(7, 9000), "SIOCSIFMTU", "mtu 9000"),
    (lambda: rtnl.set_up(7), "SIOCSIFFLAGS", "set up"),
    (lambda: rtnl.set_mac(7, "02:00:00:00:00:01"), "SIOCALIFADDR", "link address 02:00:00:00:00:01"),
    (lambda: rtnl.del_address(7, rtnl.Address(2, "192.0.2.1", 24, None, 0, 0)), "SIOCDIFADDR", "192.0.2.1/24"),
])
def test_refusals_are_agr_errors_with_the_ioctl_names(monkeypatch, call, ioctl, detail):
    def refuse(*_a, **_k):
        raise NetlinkError(errno.EBUSY, "busy")
    monkeypatch.setattr(netlink, "request", refuse)
    with pytest.raises(AgrError) as info:
        call()
    assert (info.value.errno, info.value.ioctl, info.value.detail) == (errno.EBUSY, ioctl, detail)


def test_a_link_that_is_not_there_is_none(monkeypatch):
    def refuse(*_a, **_k):
        raise NetlinkError(errno.ENODEV, "No such device")
    monkeypatch.setattr(netlink, "request", refuse)
    assert rtnl.link("nosuch") is None
    rtnl.delete_link(9)                                 # gone already: nothing to do
