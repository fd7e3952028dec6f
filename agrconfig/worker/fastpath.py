"""The kernel fast path: tc eBPF programs on agrN egress and on each port's ingress.

agrN egress hashes the frame exactly as flowhash.py does (or takes the next
port, round robin), picks a port from a map the worker rewrites whenever the
distributing set changes, and bpf_redirect()s the frame to it. Port ingress
passes Slow Protocols frames up to the worker's socket and redirects the rest
into agrN (BPF_F_INGRESS), so the port's own IP stack never sees them; frames
from a port that is not collecting are dropped. GSO frames cross whole.

Maps:
  cfg   ARRAY[1]  u32 n, u32 pad, u64 dropped (no port), u64 round-robin counter,
                  u32 ifindex[16]  (the distributing ports, in order)
  ports HASH      ifindex -> u64 rx_packets, rx_bytes, tx_packets, tx_bytes, u32 collecting
"""
import errno
import os
import struct

from pyroute2.netlink.exceptions import NetlinkError

from .. import netlink
from . import bpf
from .bpf import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Asm
from .flowhash import FNV_OFFSET, FNV_PRIME, L2, L3, L4

MAX_PORTS = 16
CFG = struct.Struct("<IIQQ16I")
PORT = struct.Struct("<QQQQI4x")
PRIO = 0xA9            # our filters' priority: how we find (and remove) only our own
EGRESS, INGRESS = "ffff:fff3", "ffff:fff2"
# struct __sk_buff offsets
SKB_LEN, SKB_VLAN_PRESENT, SKB_VLAN_TCI, SKB_VLAN_PROTO, SKB_IFINDEX, SKB_DATA, SKB_DATA_END = 0, 20, 24, 28, 40, 76, 80
# EtherTypes as a little-endian u16 load of their network-order bytes sees them
LE_VLAN, LE_IPV4, LE_IPV6, LE_SLOW = 0x0081, 0x0008, 0xDD86, 0x0988


def _mix(a):
    a.alu32("xor", R5, src=R4).alu32("mul", R5, FNV_PRIME)


def _l3(a, policy, l3, fmix):
    """Mix the IP (and L4) fields for a frame whose L3 header starts at constant `l3`."""
    s = f"_{l3}"
    a.jmp("jne", R3, "v6" + s, LE_IPV4)
    a.mov(R1, src=R7).alu("add", R1, l3 + 20).jmp("jgt", R1, fmix, src=R8)
    if policy & L3:
        for pos in (12, 16):
            a.ldx(4, R4, R7, l3 + pos)
            _mix(a)
    if policy & L4:
        a.ldx(1, R4, R7, l3 + 9).jmp("jeq", R4, "l4ok" + s, 6).jmp("jne", R4, fmix, 17).label("l4ok" + s)
        a.ldx(1, R4, R7, l3 + 6).alu("and", R4, 0x3F).alu("lsh", R4, 8)
        a.ldx(1, R3, R7, l3 + 7).alu("or", R4, src=R3).jmp("jne", R4, fmix, 0)   # a fragment: no ports
        a.ldx(1, R4, R7, l3).alu("and", R4, 0x0F).alu("lsh", R4, 2)                 # IHL * 4
        a.mov(R1, src=R7).alu("add", R1, src=R4)
        a.mov(R3, src=R1).alu("add", R3, l3 + 4).jmp("jgt", R3, fmix, src=R8)
        a.ldx(4, R4, R1, l3)
        _mix(a)
    a.ja(fmix)
    a.label("v6" + s)
    a.jmp("jne", R3, fmix, LE_IPV6)
    a.mov(R1, src=R7).alu("add", R1, l3 + 40).jmp("jgt", R1, fmix, src=R8)
    if policy & L3:
        for pos in range(8, 40, 4):
            a.ldx(4, R4, R7, l3 + pos)
            _mix(a)
    if policy & L4:
        a.mov(R1, src=R7).alu("add", R1, l3 + 44).jmp("jgt", R1, fmix, src=R8)
        a.ldx(1, R4, R7, l3 + 6).jmp("jeq", R4, "v6l4" + s, 6).jmp("jne", R4, fmix, 17).label("v6l4" + s)
        a.ldx(4, R4, R7, l3 + 40)
        _mix(a)
    a.ja(fmix)


def emit_hash(a, policy, with_metadata=True):
    """flowhash.flow_hash into R5. Uses R1, R3, R4, R7 (data), R8 (data_end); R6 is the skb."""
    a.ldx(4, R7, R6, SKB_DATA).ldx(4, R8, R6, SKB_DATA_END)
    a.alu32("mov", R5, FNV_OFFSET)
    a.mov(R1, src=R7).alu("add", R1, 14).jmp("jgt", R1, "fmix", src=R8)
    if policy & L2:
        for pos in (0, 4, 8):
            a.ldx(4, R4, R7, pos)
            _mix(a)
    a.ldx(2, R3, R7, 12)
    if with_metadata:
        # The stack hands agrN a VLAN tag as skb metadata; the relay sees it inline after
        # the MACs (tun puts it back): mix it at the same place, in the same byte order.
        a.ldx(4, R4, R6, SKB_VLAN_PRESENT).jmp("jeq", R4, "nometa", 0)
        a.ldx(4, R4, R6, SKB_VLAN_PROTO).jmp("jne", R4, "nometa", LE_VLAN)
        if policy & L2:
            a.ldx(4, R4, R6, SKB_VLAN_TCI).be16(R4)
            _mix(a)
        a.label("nometa")
    a.jmp("jne", R3, "l3_14", LE_VLAN)
    a.mov(R1, src=R7).alu("add", R1, 18).jmp("jgt", R1, "fmix", src=R8)
    if policy & L2:
        a.ldx(2, R4, R7, 14)
        _mix(a)
    a.ldx(2, R3, R7, 16)
    _l3(a, policy, 18, "fmix")
    a.label("l3_14")
    _l3(a, policy, 14, "fmix")
    a.label("fmix")
    for shift, mul in ((16, 0x85EBCA6B), (13, 0xC2B2AE35), (16, None)):
        a.alu32("mov", R4, src=R5).alu32("rsh", R4, shift).alu32("xor", R5, src=R4)
        if mul:
            a.alu32("mul", R5, mul)


def hash_program(policy):
    """For tests: returns the flow hash of the frame (BPF_PROG_TEST_RUN)."""
    a = Asm().mov(R6, src=R1)
    emit_hash(a, policy, with_metadata=False)
    a.mov(R0, src=R5).exit()
    return a.assemble()


def egress_program(cfg_fd, ports_fd, policy, round_robin):
    a = Asm().mov(R6, src=R1)
    a.st(4, R10, -4, 0).mov(R2, src=R10).alu("add", R2, -4).ld_map_fd(R1, cfg_fd)
    a.call(bpf.BPF_FUNC_map_lookup_elem).jmp("jeq", R0, "shot", 0).mov(R9, src=R0)
    a.ldx(4, R3, R9, 0).jmp("jeq", R3, "drop", 0)
    if round_robin:
        a.mov(R5, 1)._emit(bpf.BPF_STX | bpf.BPF_ATOMIC | bpf.BPF_DW, R9, R5, 16, 0x01)  # fetch-add
    else:
        emit_hash(a, policy)
    a.ldx(4, R3, R9, 0).alu32("mod", R5, src=R3).alu("and", R5, MAX_PORTS - 1)
    a.alu("lsh", R5, 2).mov(R1, src=R9).alu("add", R1, src=R5).ldx(4, R8, R1, 24)
    a.ldx(4, R7, R6, SKB_LEN)
    a.stx(4, R10, -8, R8).mov(R2, src=R10).alu("add", R2, -8).ld_map_fd(R1, ports_fd)
    a.call(bpf.BPF_FUNC_map_lookup_elem).jmp("jeq", R0, "send", 0)
    a.mov(R1, 1).atomic_add(8, R0, 16, R1).atomic_add(8, R0, 24, R7)
    a.label("send").mov(R1, src=R8).mov(R2, 0).call(bpf.BPF_FUNC_redirect).exit()
    a.label("drop").mov(R1, 1).atomic_add(8, R9, 8, R1)
    a.label("shot").mov(R0, bpf.TC_ACT_SHOT).exit()
    return a.assemble()


def ingress_program(ports_fd, tap_ifindex):
    a = Asm().mov(R6, src=R1)
    a.ldx(4, R7, R6, SKB_DATA).ldx(4, R8, R6, SKB_DATA_END)
    a.mov(R1, src=R7).alu("add", R1, 14).jmp("jgt", R1, "shot", src=R8)
    a.ldx(2, R3, R7, 12).jmp("jeq", R3, "pass", LE_SLOW)          # LACP and Marker: to the worker
    a.ldx(4, R4, R6, SKB_IFINDEX).stx(4, R10, -4, R4)
    a.mov(R2, src=R10).alu("add", R2, -4).ld_map_fd(R1, ports_fd)
    a.call(bpf.BPF_FUNC_map_lookup_elem).jmp("jeq", R0, "shot", 0)
    a.ldx(4, R3, R0, 32).jmp("jeq", R3, "shot", 0)                # not collecting: discard
    a.ldx(4, R7, R6, SKB_LEN).mov(R1, 1).atomic_add(8, R0, 0, R1).atomic_add(8, R0, 8, R7)
    a.mov(R1, tap_ifindex).mov(R2, bpf.BPF_F_INGRESS).call(bpf.BPF_FUNC_redirect).exit()
    a.label("pass").mov(R0, bpf.TC_ACT_OK).exit()
    a.label("shot").mov(R0, bpf.TC_ACT_SHOT).exit()
    return a.assemble()


class FastPath:
    def __init__(self, tap_ifindex, policy, round_robin):
        self.tap = tap_ifindex
        self.policy, self.round_robin = policy, round_robin
        self.cfg = bpf.map_create(bpf.BPF_MAP_TYPE_ARRAY, 4, CFG.size, 1)
        self.ports_map = bpf.map_create(bpf.BPF_MAP_TYPE_HASH, 4, PORT.size, 64)
        self.ingress_fd = bpf.prog_load(ingress_program(self.ports_map, tap_ifindex), "agr_ingress")
        self.egress_fd = None
        self.ports = []              # ifindexes attached
        self.distributing = []
        self.collecting = set()
        self._load_egress()

    def _load_egress(self):
        fd = bpf.prog_load(egress_program(self.cfg, self.ports_map, self.policy, self.round_robin), "agr_egress")
        old, self.egress_fd = self.egress_fd, fd
        return old

    # -- attaching ---------------------------------------------------------------------
    def _attach(self, index, parent, fd, name):
        ipr = netlink.ipr()
        try:
            ipr.tc("add", "clsact", index)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        _del_filter(index, parent)
        ipr.tc("add-filter", "bpf", index, ":1", fd=fd, name=name, parent=parent, classid=1,
               direct_action=True, prio=PRIO, protocol=0x0003)

    def attach_tap(self):
        self._attach(self.tap, EGRESS, self.egress_fd, "agrconfig_egress")

    def attach_port(self, index):
        bpf.map_update(self.ports_map, struct.pack("<I", index), PORT.pack(0, 0, 0, 0, index in self.collecting))
        self._attach(index, INGRESS, self.ingress_fd, "agrconfig_ingress")
        if index not in self.ports:
            self.ports.append(index)

    def detach_port(self, index):
        if index in self.ports:
            self.ports.remove(index)
        _remove(index)

    # -- the maps ---------------------------------------------------------------------------
    def set_ports(self, ifindices):
        self.distributing = list(ifindices)[:MAX_PORTS]
        table = self.distributing + [0] * (MAX_PORTS - len(self.distributing))
        old = bpf.map_lookup(self.cfg, struct.pack("<I", 0), CFG.size)
        _n, _pad, dropped, rr, *_ = CFG.unpack(old)
        bpf.map_update(self.cfg, struct.pack("<I", 0), CFG.pack(len(self.distributing), 0, dropped, rr, *table))

    def set_collecting(self, ifindices):
        self.collecting = set(ifindices)
        for index in self.ports:
            key = struct.pack("<I", index)
            raw = bpf.map_lookup(self.ports_map, key, PORT.size)
            values = PORT.unpack(raw) if raw else (0, 0, 0, 0, 0)
            bpf.map_update(self.ports_map, key, PORT.pack(*values[:4], index in self.collecting))

    def set_policy(self, policy, round_robin):
        if (policy, round_robin) == (self.policy, self.round_robin):
            return
        self.policy, self.round_robin = policy, round_robin
        old = self._load_egress()
        # While the filter is swapped, frames reach the TAP and the relay sends them.
        self.attach_tap()
        os.close(old)

    def counters(self):
        raw = bpf.map_lookup(self.cfg, struct.pack("<I", 0), CFG.size)
        out = {"tx_drop_no_port": CFG.unpack(raw)[2] if raw else 0, "ports": {}}
        for index in self.ports:
            raw = bpf.map_lookup(self.ports_map, struct.pack("<I", index), PORT.size)
            if raw:
                rxp, rxb, txp, txb, _c = PORT.unpack(raw)
                out["ports"][index] = {"rx_packets": rxp, "rx_bytes": rxb, "tx_packets": txp, "tx_bytes": txb}
        return out

    def close(self):
        for index in [self.tap, *self.ports]:
            _remove(index)
        self.ports = []
        for fd in (self.egress_fd, self.ingress_fd, self.cfg, self.ports_map):
            try:
                os.close(fd)
            except OSError:
                pass

    @staticmethod
    def cleanup(ifindices):
        """Remove what a killed worker left: our filters, and clsact when it holds no other."""
        for index in ifindices:
            _remove(index)


def _del_filter(index, parent):
    try:
        netlink.ipr().tc("del-filter", "bpf", index, ":1", parent=parent, prio=PRIO, protocol=0x0003)
    except NetlinkError:
        pass


def _remove(index):
    ipr = netlink.ipr()
    for parent in (EGRESS, INGRESS):
        _del_filter(index, parent)
    try:
        others = [f for parent in (EGRESS, INGRESS) for f in ipr.get_filters(index=index, parent=parent)]
    except NetlinkError:
        return
    if not others:
        try:
            ipr.tc("del", "clsact", index)
        except NetlinkError:
            pass
