"""Traffic control through rtnetlink: the clsact qdisc and tc bpf filters in direct-action mode,
all the fast path needs (constants from linux/rtnetlink.h, pkt_sched.h and pkt_cls.h).

A filter is named by (ifindex, parent, prio, protocol, handle); `parent` is a clsact hook,
EGRESS or INGRESS. Refusals raise netlink.NetlinkError (an OSError).
"""
import errno
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB
import struct

from . import netlink
from .netlink import NLMSG, NetlinkError
from ..record import Record

TCMSG = struct.Struct("=BxxxiIII")          # family, ifindex, handle, parent, info
RTM_NEWQDISC, RTM_DELQDISC = 36, 37
RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER = 44, 45, 46
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_BPF_CLASSID, TCA_BPF_FD, TCA_BPF_NAME, TCA_BPF_FLAGS, TCA_BPF_ID = 3, 6, 7, 8, 11
TCA_BPF_FLAG_ACT_DIRECT = 1

TC_H_CLSACT = 0xFFFFFFF1                    # clsact's parent (TC_H_INGRESS); its handle is ffff:0
CLSACT_HANDLE = 0xFFFF0000
INGRESS, EGRESS = 0xFFFFFFF2, 0xFFFFFFF3    # TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS / _EGRESS)
ETH_P_ALL = 0x0003
GONE = (errno.ENOENT, errno.ENODEV, errno.EINVAL)   # no such device, qdisc or filter


class Filter(Record):
    """A filter as a dump lists it: `handle` 0 is the header the kernel sends per priority;
    `prog_id`: a bpf filter's program."""
    __slots__ = ("kind", "parent", "prio", "protocol", "handle", "name", "prog_id")
    DEFAULTS = {"prog_id": 0}


def _info(prio, protocol):
    return (prio << 16) | socket.htons(protocol)


def add_clsact(ifindex):
    """A clsact qdisc on the device; one already there is kept (True: we made it)."""
    body = TCMSG.pack(socket.AF_UNSPEC, ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0) + netlink.string(TCA_KIND, "clsact")
    try:
        netlink.request(RTM_NEWQDISC, body, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL)
    except NetlinkError as exc:
        if exc.errno != errno.EEXIST:
            raise
        return False
    return True


def del_clsact(ifindex):
    body = TCMSG.pack(socket.AF_UNSPEC, ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0) + netlink.string(TCA_KIND, "clsact")
    netlink.request(RTM_DELQDISC, body)


def replace_bpf(ifindex, parent, prio, handle, fd, name, protocol=ETH_P_ALL, classid=1):
    """A bpf filter running program `fd` in direct-action mode, created or atomically replaced."""
    options = netlink.nested(TCA_OPTIONS, netlink.u32(TCA_BPF_CLASSID, classid), netlink.u32(TCA_BPF_FD, fd),
                             netlink.string(TCA_BPF_NAME, name), netlink.u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT))
    body = TCMSG.pack(socket.AF_UNSPEC, ifindex, handle, parent, _info(prio, protocol))
    netlink.request(RTM_NEWTFILTER, body + netlink.string(TCA_KIND, "bpf") + options,
                    netlink.NLM_F_CREATE | netlink.NLM_F_REPLACE)


def del_filter(ifindex, parent, prio, handle, kind="bpf", protocol=ETH_P_ALL):
    body = TCMSG.pack(socket.AF_UNSPEC, ifindex, handle, parent, _info(prio, protocol))
    netlink.request(RTM_DELTFILTER, body + netlink.string(TCA_KIND, kind))


def filter_from_msg(msg):
    _fam, _ifindex, handle, parent, info = TCMSG.unpack_from(msg, NLMSG.size)
    at = netlink.attrs(msg, NLMSG.size + TCMSG.size)
    kind = netlink.get_string(at, TCA_KIND)
    name, prog_id = "", 0
    if kind == "bpf" and TCA_OPTIONS in at:
        options = netlink.attrs(at[TCA_OPTIONS])
        name = netlink.get_string(options, TCA_BPF_NAME)
        prog_id = netlink.get_u32(options, TCA_BPF_ID, 0)
    return Filter(kind=kind, parent=parent, prio=info >> 16, protocol=socket.ntohs(info & 0xFFFF),
                  handle=handle, name=name, prog_id=prog_id)


def filters(ifindex, parent):
    """The filters on a clsact hook; [] where there is no device or no clsact."""
    try:
        msgs = netlink.request(RTM_GETTFILTER, TCMSG.pack(socket.AF_UNSPEC, ifindex, 0, parent, 0), dump=True)
    except NetlinkError as exc:
        if exc.errno in GONE:
            return []
        raise
    return [filter_from_msg(msg) for t, msg in msgs if t == RTM_NEWTFILTER]
