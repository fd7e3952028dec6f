"""The kernel fast path: tc eBPF programs on agrN egress and on each port's ingress.

agrN egress hashes the frame exactly as flowhash.py does (or takes the next port,
round robin), picks a port from the map the worker rewrites whenever the
distributing set changes, and bpf_redirect()s the frame to it (to the port's
egress).  No distributing port: counted and dropped.  Port ingress passes Slow
Protocols frames (untagged EtherType 0x8809: LACP, Marker) up to the worker's
AF_PACKET socket and redirects the rest into agrN (BPF_F_INGRESS), so the port's
own stack never sees them; frames from a port that is not collecting are
counted and dropped.  GSO frames cross whole; a frame whose headers are not all in
the linear part has them pulled in (bpf_skb_pull_data) before it is hashed.

Maps
  conf   ARRAY[3] of CONF.  Entry 0 holds only `active` (1 or 2); entries 1 and 2
         are two copies of the configuration: the worker writes the idle copy
         and then flips `active` (whose only changing byte is the lowest), so a
         program never sees half a change.  CONF:
           u32 n                 number of distributing ports
           u32 mode              policy bits L2|L3|L4 (flowhash), MODE_RR for round robin,
                                 MODE_PASS: every frame goes on to agrN's own queue (the relay),
                                 MODE_DRAIN: a frame goes on to that queue unless all that went
                                 there before it has been sent (join: passed == relayed)
           u32 collecting        bit s set: the port in counter slot s is collecting
           u32 pad
           u32 ifindex[max]      the distributing ports, in order (the worker's port order)
           u32 slot[max]         each one's counter slot
  stats  PERCPU_ARRAY[max + 1] of STATS (8 x u64), summed over CPUs on read:
           slots 0..max-1, one per port (given at first sight, freed by detach_port):
             tx_packets, tx_bytes     redirected to the port by agrN egress
             rx_packets, rx_bytes     redirected from the port into agrN
             rx_dropped               arrived while the port was not collecting, or runt
             rx_slow                  Slow Protocols frames passed up to the worker
           slot max (GLOBAL): tx_dropped (no distributing port) and the round-robin counter.
  join   ARRAY[1] of {u64 passed, u64 relayed}, mmap-able (BPF_F_MMAPABLE), for a port joining:
           passed    frames agrN egress handed on to agrN's own queue in MODE_PASS or
                     MODE_DRAIN (atomic add: every CPU counts into it)
           relayed   frames the worker's relay thread has read from that queue and finished
                     with (sent on a port, or failed), added after the send, through the
                     mapping (the relay is its only writer)
         In MODE_DRAIN the program redirects in the kernel only while passed == relayed:
         every frame it handed to the worker has left on a port, so none can be overtaken.
         Absent where the kernel has no mmap-able maps: then a join ends by dropping for a
         moment (Mode.DROP) instead of draining. When each mode is used: join.py.
  agrproto slb (slb.py's rules; MODE_SLB in conf's mode, the designated port's ifindex in
  conf's fourth u32):
  slb_buckets  ARRAY[256] of {u32 ifindex, u32 counter slot}: each bucket's port. agrN egress
               hashes the source MAC and VLAN (metadata or inline tag) as slb.slb_hash does
               and redirects to its bucket's port, broadcasts included.
  slb_learned  HASH {6-byte MAC, u16 VLAN} -> {u64 last seen, u64 gratuitous-ARP lock until}
               (ktime ns = the worker's monotonic clock): written by agrN egress, read by the
               ports' ingress (a learned source is a reflection: dropped, except a gratuitous
               ARP past its lock, which deletes the entry); the worker reads it for the moves
               and deletes what aged out. Port ingress also drops broadcast and multicast off
               the designated port. Drops count in the port slot's last two u64s.

Programs: one egress program on agrN; one small ingress program per port with
the port's counter slot and agrN's ifindex built in.  Filters are tc bpf in
direct-action mode under a clsact qdisc, priority PRIO, handle 1, named
agrconfig_egress / agrconfig_ingress: that is how cleanup() recognises ours.
Where the kernel has tcx (Linux 6.6) the same program is also attached to the
device's tcx hook, which runs before clsact and without tc's classifier (a third
of what the fast path adds to a round trip, bench/latency); the filter, then
never reached, names the program on the tcx hook that is ours (TCA_BPF_ID).
A program goes onto a tcx hook, or off it, after an RCU grace period (10-20 ms); for a port
that a control request adds or removes, that step can wait until after the reply (defer_tcx,
settle()): the filter alone moves an added port's frames right meanwhile, and a removed port's
program is replaced on tcx in place (no grace period) by PASS, which decides nothing.
"""
import ctypes
import errno
import os
import _socket as socket   # not socket.py: its enums and selectors cost each worker ~0.5 MiB
import struct

from ..net import rtnl, tc
from . import bpf, privs, slb
from .bpf import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Asm
from .flowhash import DEFAULT_POLICY, FNV_OFFSET, FNV_PRIME, L2, L3, L4
from .join import Mode
from ..logger import log

MAX_PORTS = 16
MODE_RR = 0x100
MODE_PASS = 0x200         # while a port joins: frames go to the worker, which holds them (no reordering)
MODE_DRAIN = 0x400        # then: to the worker while it has frames of ours unsent, else redirected
MODE_SLB = 0x800          # agrproto slb (slb.py): egress by the source MAC's bucket, ingress drops
PRIO = 0xA9               # our filters' priority: how we find (and remove) only our own
HANDLE = 1
ETH_P_ALL = 0x0003
EGRESS, INGRESS = tc.EGRESS, tc.INGRESS          # clsact's two hooks
EGRESS_NAME, INGRESS_NAME = "agrconfig_egress", "agrconfig_ingress"
TCX_HOOK = {EGRESS: bpf.BPF_TCX_EGRESS, INGRESS: bpf.BPF_TCX_INGRESS}

# struct __sk_buff offsets (include/uapi/linux/bpf.h)
SKB_LEN, SKB_VLAN_PRESENT, SKB_VLAN_TCI, SKB_VLAN_PROTO, SKB_DATA, SKB_DATA_END = 0, 20, 24, 28, 76, 80
SKB_IFINDEX = 40
# EtherTypes as a 16-bit little-endian load of their network-order bytes sees them
LE_VLAN, LE_IPV4, LE_IPV6, LE_SLOW = 0x0081, 0x0008, 0xDD86, 0x0988
LE_FRAG_MASK = 0xFF3F     # 0x3fff (fragment offset and MF) as seen by a little-endian load
# The longest header the hash reads: VLAN tag, IPv4 with options, 4 bytes of ports.
HASH_HEADROOM = 18 + 60 + 4

# conf entry layout (CONF_DESIGNATED: agrproto slb's designated port's ifindex, 0 for none)
CONF_N, CONF_MODE, CONF_COLLECTING, CONF_DESIGNATED, CONF_IFINDEX = 0, 4, 8, 12, 16
# stats entry layout (u64 each)
TX_PACKETS, TX_BYTES, RX_PACKETS, RX_BYTES, RX_DROPPED, RX_SLOW, TX_DROPPED, RR_NEXT = range(0, 64, 8)
STATS = struct.Struct("<8Q")
JOIN_PASSED, JOIN_RELAYED = 0, 8   # join entry layout (u64 each)
JOIN = struct.Struct("<QQ")
PORT_COUNTERS = ("tx_packets", "tx_bytes", "rx_packets", "rx_bytes", "rx_dropped", "rx_slow")
# agrproto slb's drops, in a port slot's last two fields (the GLOBAL slot's tx_dropped and
# round-robin counter: unused in a port's)
SLB_NOT_DESIGNATED, SLB_REFLECTED = TX_DROPPED, RR_NEXT
SLB_COUNTERS = ("rx_slb_not_designated", "rx_slb_reflected")
# slb maps: bucket -> {u32 ifindex, u32 counter slot}; learned: {6-byte MAC, u16 VLAN} ->
# {u64 last seen, u64 gratuitous-ARP lock until} in ktime ns (CLOCK_MONOTONIC, as the worker's)
SLB_BUCKET = struct.Struct("<II")
SLB_KEY = struct.Struct("<6sH")
SLB_SEEN = struct.Struct("<QQ")
NS = 1_000_000_000
# stack slots of the slb code (below emit_hash's PULLED at -16 and _lookup's key at -4)
SLB_K, SLB_GARP, SLB_NOW, SLB_VALUE = -24, -28, -40, -56


def conf_struct(max_ports):
    return struct.Struct(f"<IIII{max_ports}I{max_ports}I")


def conf_slot_offset(max_ports):
    return CONF_IFINDEX + 4 * max_ports


# -- code -------------------------------------------------------------------------------------------
def _mix(a):
    """FNV-1a step: h (R5) = (h ^ word (R4)) * prime, 32-bit."""
    a.alu32("xor", R5, src=R4).alu32("mul", R5, FNV_PRIME)


def _unless(a, bit, label):
    """Jump to label when policy bit `bit` (policy in R2) is clear."""
    a.mov(R0, src=R2).alu("and", R0, bit).jmp("jeq", R0, label, 0)


def _ip(a, l3, short, fmix):
    """Mix IP (L3) and port (L4) fields when the L3 header starts at constant offset l3.
    R3 = EtherType (little-endian load), R7 = data, R8 = data_end, R2 = policy.
    A field beyond data_end goes to `short`, the end of the fields to `fmix`."""
    v6, ok4, ok6, no_l3_4, no_l3_6 = (a.fresh(s) for s in ("v6", "ok4", "ok6", "nol3v4", "nol3v6"))
    a.jmp("jne", R3, v6, LE_IPV4)
    a.mov(R1, src=R7).alu("add", R1, l3 + 20).jmp("jgt", R1, short, src=R8)
    _unless(a, L3, no_l3_4)
    for pos in (12, 16):
        a.ldx(4, R4, R7, l3 + pos)
        _mix(a)
    a.label(no_l3_4)
    _unless(a, L4, fmix)
    a.ldx(1, R4, R7, l3 + 9).jmp("jeq", R4, ok4, 6).jmp("jne", R4, fmix, 17).label(ok4)
    a.ldx(2, R4, R7, l3 + 6).alu("and", R4, LE_FRAG_MASK).jmp("jne", R4, fmix, 0)   # fragment: no ports
    a.ldx(1, R4, R7, l3).alu("and", R4, 0x0F).alu("lsh", R4, 2)                      # IHL * 4
    a.mov(R1, src=R7).alu("add", R1, src=R4)
    a.mov(R3, src=R1).alu("add", R3, l3 + 4).jmp("jgt", R3, short, src=R8)
    a.ldx(4, R4, R1, l3)
    _mix(a)
    a.ja(fmix)
    a.label(v6)
    a.jmp("jne", R3, fmix, LE_IPV6)
    a.mov(R1, src=R7).alu("add", R1, l3 + 40).jmp("jgt", R1, short, src=R8)
    _unless(a, L3, no_l3_6)
    for pos in range(8, 40, 4):
        a.ldx(4, R4, R7, l3 + pos)
        _mix(a)
    a.label(no_l3_6)
    _unless(a, L4, fmix)
    a.ldx(1, R4, R7, l3 + 6).jmp("jeq", R4, ok6, 6).jmp("jne", R4, fmix, 17).label(ok6)
    a.mov(R1, src=R7).alu("add", R1, l3 + 44).jmp("jgt", R1, short, src=R8)
    a.ldx(4, R4, R7, l3 + 40)
    _mix(a)
    a.ja(fmix)


PULLED = -16     # stack slot: the headers were pulled once already


def emit_slb_key(a, short):
    """agrproto slb: the learned-table key {source MAC, VLAN id} at R10+SLB_K, its bucket
    (slb.bucket_of) in R5, and at R10+SLB_GARP 1 if the frame is a gratuitous ARP, else 0.
    In: R6 = skb. Uses R0-R5, R7 = data, R8 = data_end. A frame shorter than 14: `short`.
    The VLAN is the metadata tag, or an inline 802.1Q tag."""
    tagged, untagged, have, garp14, garp18, done = (a.fresh(x) for x in (
        "tagged", "untagged", "havevlan", "garp14", "garp18", "keydone"))
    a.ldx(4, R7, R6, SKB_DATA).ldx(4, R8, R6, SKB_DATA_END)
    a.mov(R1, src=R7).alu("add", R1, 14).jmp("jgt", R1, short, src=R8)
    a.ldx(4, R1, R7, 6).stx(4, R10, SLB_K, R1)
    a.ldx(2, R1, R7, 10).stx(2, R10, SLB_K + 4, R1)
    a.st(4, R10, SLB_GARP, 0)
    a.mov(R2, 0)
    a.ldx(4, R4, R6, SKB_VLAN_PRESENT).jmp("jeq", R4, untagged, 0)
    a.ldx(4, R4, R6, SKB_VLAN_PROTO).jmp("jne", R4, garp14, LE_VLAN)   # 802.1ad: VLAN 0, as slb.py
    a.ldx(4, R2, R6, SKB_VLAN_TCI).alu("and", R2, 0xFFF)
    a.ja(garp14)                                      # metadata tag: the EtherType is at 12
    a.label(untagged)
    a.ldx(2, R3, R7, 12).jmp("jne", R3, garp14, LE_VLAN)
    a.mov(R1, src=R7).alu("add", R1, 18).jmp("jgt", R1, garp14, src=R8)
    a.ldx(2, R2, R7, 14).be16(R2).alu("and", R2, 0xFFF)
    a.ja(tagged)
    for l3, label in ((14, garp14), (18, tagged)):
        a.label(label)
        a.stx(2, R10, SLB_K + 6, R2)
        a.ldx(2, R3, R7, l3 - 2).jmp("jne", R3, have, 0x0608)          # ARP
        a.mov(R1, src=R7).alu("add", R1, l3 + 28).jmp("jgt", R1, have, src=R8)
        a.ldx(4, R3, R7, l3 + 14).ldx(4, R4, R7, l3 + 24).jmp("jne", R3, have, src=R4)
        a.st(4, R10, SLB_GARP, 1)
        a.ja(have)
    del garp18
    a.label(have)                                     # slb.slb_hash of (MAC, VLAN)
    a.mov32(R5, FNV_OFFSET)
    a.ldx(4, R4, R10, SLB_K)
    _mix(a)
    a.ldx(2, R4, R10, SLB_K + 4).ldx(2, R2, R10, SLB_K + 6).alu32("lsh", R2, 16).alu32("or", R4, src=R2)
    _mix(a)
    for shift, mul in ((16, 0x85EBCA6B), (13, 0xC2B2AE35), (16, None)):
        a.mov32(R4, src=R5).alu32("rsh", R4, shift).alu32("xor", R5, src=R4)
        if mul:
            a.alu32("mul", R5, mul)
    a.alu32("and", R5, 0xFF)
    a.label(done)


def slb_key_program():
    """For tests: returns bucket | garp << 8 | vlan << 16 of a frame, by emit_slb_key."""
    a = Asm().mov(R6, src=R1)
    emit_slb_key(a, "short")
    a.ldx(4, R0, R10, SLB_GARP).alu("lsh", R0, 8).alu("or", R0, src=R5)
    a.ldx(2, R1, R10, SLB_K + 6).alu("lsh", R1, 16).alu("or", R0, src=R1).exit()
    a.label("short").mov(R0, 0xFFFFFFFF).exit()
    return a.assemble()


def emit_hash(a, load_policy):
    """flowhash.flow_hash of the frame into R5 (32 bits).

    In: R6 = skb.  load_policy(a) must emit code that puts the policy bits in R2 (it is run
    again after a pull).  Uses R0-R4, R7 = data, R8 = data_end and the stack at R10-16.

    Non-linear frames: when a field falls beyond the linear part (data_end) but not beyond
    the frame (skb->len), the headers are pulled in (bpf_skb_pull_data, at most
    HASH_HEADROOM bytes) and the hash starts over, once.  Frames whose headers are linear,
    as the stack's own are, never call the helper.

    VLAN: the stack hands agrN a tag as skb metadata where the relay, reading the TAP, sees
    it inline after the MACs (tun puts it back).  With a metadata tag the hash mixes its TCI
    where flow_hash mixes the inline one and takes the EtherType at 12 as the inner one:
    exactly flow_hash of the frame the TAP would deliver."""
    start, short, fmix, l3_14, inline, macs, meta_l2, tag_l2, have = (a.fresh(s) for s in (
        "start", "short", "fmix", "l3_14", "inline", "macs", "metal2", "tagl2", "have"))
    a.st(4, R10, PULLED, 0)
    a.label(start)
    a.ldx(4, R7, R6, SKB_DATA).ldx(4, R8, R6, SKB_DATA_END)
    load_policy(a)
    a.mov32(R5, FNV_OFFSET)
    a.mov(R1, src=R7).alu("add", R1, 14).jmp("jgt", R1, short, src=R8)
    _unless(a, L2, macs)
    for pos in (0, 4, 8):
        a.ldx(4, R4, R7, pos)
        _mix(a)
    a.label(macs)
    a.ldx(2, R3, R7, 12)
    a.ldx(4, R4, R6, SKB_VLAN_PRESENT).jmp("jeq", R4, inline, 0)
    a.ldx(4, R4, R6, SKB_VLAN_PROTO).jmp("jne", R4, fmix, LE_VLAN)    # 802.1ad outer tag: as flow_hash
    _unless(a, L2, meta_l2)
    a.ldx(4, R4, R6, SKB_VLAN_TCI).be16(R4)
    _mix(a)
    a.label(meta_l2)
    a.ja(l3_14)
    a.label(inline)
    a.jmp("jne", R3, l3_14, LE_VLAN)
    a.mov(R1, src=R7).alu("add", R1, 18).jmp("jgt", R1, short, src=R8)
    _unless(a, L2, tag_l2)
    a.ldx(2, R4, R7, 14)
    _mix(a)
    a.label(tag_l2)
    a.ldx(2, R3, R7, 16)
    _ip(a, 18, short, fmix)
    a.label(l3_14)
    _ip(a, 14, short, fmix)
    a.label(short)                                   # a field beyond the linear part
    a.ldx(4, R1, R10, PULLED).jmp("jne", R1, fmix, 0)
    a.ldx(4, R2, R6, SKB_LEN).jmp("jle", R2, have, HASH_HEADROOM).mov(R2, HASH_HEADROOM).label(have)
    a.mov(R1, src=R7).alu("add", R1, src=R2).jmp("jle", R1, fmix, src=R8)   # all linear: a short frame
    a.st(4, R10, PULLED, 1)
    a.mov(R1, src=R6).call(bpf.BPF_FUNC_skb_pull_data)                        # failure: hash what is there
    a.ja(start)
    a.label(fmix)
    for shift, mul in ((16, 0x85EBCA6B), (13, 0xC2B2AE35), (16, None)):
        a.mov32(R4, src=R5).alu32("rsh", R4, shift).alu32("xor", R5, src=R4)
        if mul:
            a.alu32("mul", R5, mul)


def hash_program(policy):
    """For tests: a program that returns flow_hash(frame, policy) (BPF_PROG_TEST_RUN), made of
    the same emit_hash code as the egress program."""
    a = Asm().mov(R6, src=R1)
    emit_hash(a, lambda a: a.mov(R2, policy))
    a.mov(R0, src=R5).exit()
    return a.assemble()


def _lookup(a, map_fd, key_reg=None, key_imm=None, null=None):
    """R0 = lookup(map, u32 key) via the stack at R10-4; jump to `null` when absent."""
    if key_reg is not None:
        a.stx(4, R10, -4, key_reg)
    else:
        a.st(4, R10, -4, key_imm)
    a.mov(R2, src=R10).alu("add", R2, -4).ld_map_fd(R1, map_fd)
    a.call(bpf.BPF_FUNC_map_lookup_elem)
    if null is not None:
        a.jmp("jeq", R0, null, 0)


def _active_conf(a, conf_fd, null):
    """R0 = the active configuration entry."""
    _lookup(a, conf_fd, key_imm=0, null=null)
    a.ldx(4, R1, R0, 0)
    _lookup(a, conf_fd, key_reg=R1, null=null)


def _count(a, field, by=None):
    """stats entry in R0: *(u64 *)(R0 + field) += by (a register) or 1.  Uses R1."""
    a.ldx(8, R1, R0, field)
    if by is None:
        a.alu("add", R1, 1)
    else:
        a.alu("add", R1, src=by)
    a.stx(8, R0, field, R1)


def counting():
    """Count frames in the maps (agrN's totals come from them). Off only for bench/throughput's
    comparison (AGRCONFIG_BPF_COUNTERS=0): it is what the counters cost."""
    return os.environ.get("AGRCONFIG_BPF_COUNTERS", "1") != "0"


def _slb_learn(a, learned_fd):
    """agrproto slb, agrN egress: the key at R10+SLB_K is seen now (and locked for
    GRAT_ARP_LOCK if the frame is a gratuitous ARP). A full table learns nothing new."""
    found, new, nolock, done = (a.fresh(x) for x in ("found", "new", "nolock", "learned"))
    a.call(bpf.BPF_FUNC_ktime_get_ns).stx(8, R10, SLB_NOW, R0)
    a.mov(R2, src=R10).alu("add", R2, SLB_K).ld_map_fd(R1, learned_fd).call(bpf.BPF_FUNC_map_lookup_elem)
    a.jmp("jeq", R0, new, 0)
    a.label(found)
    a.ldx(8, R1, R10, SLB_NOW).stx(8, R0, 0, R1)
    a.ldx(4, R2, R10, SLB_GARP).jmp("jeq", R2, done, 0)
    a.ld_imm64(R2, int(slb.GRAT_ARP_LOCK * NS)).alu("add", R1, src=R2).stx(8, R0, 8, R1)
    a.ja(done)
    a.label(new)
    a.ldx(8, R1, R10, SLB_NOW).stx(8, R10, SLB_VALUE, R1)
    a.st(4, R10, SLB_VALUE + 8, 0).st(4, R10, SLB_VALUE + 12, 0)
    a.ldx(4, R2, R10, SLB_GARP).jmp("jeq", R2, nolock, 0)
    a.ld_imm64(R2, int(slb.GRAT_ARP_LOCK * NS)).alu("add", R1, src=R2).stx(8, R10, SLB_VALUE + 8, R1)
    a.label(nolock)
    a.mov(R2, src=R10).alu("add", R2, SLB_K).mov(R3, src=R10).alu("add", R3, SLB_VALUE).mov(R4, bpf.BPF_ANY)
    a.ld_map_fd(R1, learned_fd).call(bpf.BPF_FUNC_map_update_elem)
    a.label(done)


def egress_program(conf_fd, stats_fd, max_ports=MAX_PORTS, count=True, join_fd=None, slb_fds=None):
    """agrN's egress. join_fd: the join map (MODE_PASS counts into it and MODE_DRAIN is
    possible); None: MODE_PASS passes uncounted. Either way a frame in neither join mode
    costs the one test of the mode it always had. slb_fds: (buckets, learned) maps for
    MODE_SLB (None: no slb code)."""
    slots = conf_slot_offset(max_ports)
    a = Asm().mov(R6, src=R1)
    _active_conf(a, conf_fd, "shot")
    a.mov(R9, src=R0)
    a.ldx(4, R1, R9, CONF_MODE).jmp("jset", R1, "join", MODE_PASS | MODE_DRAIN)
    a.label("direct")                                   # R6 = skb, R9 = the configuration
    a.ldx(4, R1, R9, CONF_N).jmp("jeq", R1, "drop", 0)
    if slb_fds is not None:
        a.ldx(4, R1, R9, CONF_MODE).jmp("jset", R1, "slb", MODE_SLB)
    a.ldx(4, R1, R9, CONF_MODE).jmp("jset", R1, "rr", MODE_RR)
    emit_hash(a, lambda a: a.ldx(4, R2, R9, CONF_MODE))
    a.ja("pick")
    a.label("rr")
    _lookup(a, stats_fd, key_imm=max_ports, null="shot")
    a.ldx(8, R5, R0, RR_NEXT).mov(R1, src=R5).alu("add", R1, 1).stx(8, R0, RR_NEXT, R1)
    a.label("pick")                                     # R5 = hash or round-robin number
    a.ldx(4, R3, R9, CONF_N).jmp("jeq", R3, "drop", 0)
    a.alu32("mod", R5, src=R3).jmp("jge", R5, "drop", max_ports)
    a.alu("lsh", R5, 2).mov(R1, src=R9).alu("add", R1, src=R5)
    a.ldx(4, R8, R1, CONF_IFINDEX).ldx(4, R7, R1, slots)
    a.label("chosen")                                   # R8 = the port's ifindex, R7 = its slot
    a.jmp("jeq", R8, "drop", 0)
    if count:
        _lookup(a, stats_fd, key_reg=R7, null="send")   # no counter slot: send uncounted
        a.ldx(4, R2, R6, SKB_LEN)
        _count(a, TX_PACKETS)
        _count(a, TX_BYTES, by=R2)
    a.label("send").mov(R1, src=R8).mov(R2, 0).call(bpf.BPF_FUNC_redirect).exit()
    a.label("drop")
    _lookup(a, stats_fd, key_imm=max_ports, null="shot")
    _count(a, TX_DROPPED)
    a.label("shot").mov(R0, bpf.TC_ACT_SHOT).exit()
    a.label("join")                                     # R1 = mode: MODE_PASS or MODE_DRAIN
    if join_fd is not None:
        a.mov(R7, src=R1)
        _lookup(a, join_fd, key_imm=0, null="pass")
        a.jmp("jset", R7, "count", MODE_PASS)
        # MODE_DRAIN: when everything handed to the worker has been sent, this frame cannot
        # overtake one of its flow (each earlier frame of the flow went through here before
        # it, and was counted then): redirect it. relayed is read first and passed after it
        # (a fetch-add of 0: fully ordered, so not read early even on a weakly ordered CPU).
        # A frame is counted in passed before it is relayed, so relayed(then) == passed(now)
        # means every frame counted until now had been relayed by then.
        a.ldx(8, R2, R0, JOIN_RELAYED)
        a.mov(R3, 0).atomic_fetch_add(8, R0, JOIN_PASSED, R3)
        a.jmp("jeq", R2, "direct", src=R3)
        a.label("count").mov(R1, 1).atomic_add(8, R0, JOIN_PASSED, R1)
    a.label("pass").mov(R0, bpf.TC_ACT_OK).exit()
    if slb_fds is not None:                             # agrproto slb: the source MAC's bucket
        buckets_fd, learned_fd = slb_fds
        a.label("slb")
        emit_slb_key(a, "drop")
        a.stx(4, R10, SLB_GARP - 4, R5)                 # the bucket, past the helpers' calls
        _slb_learn(a, learned_fd)
        a.ldx(4, R1, R10, SLB_GARP - 4)
        _lookup(a, buckets_fd, key_reg=R1, null="drop")
        a.ldx(4, R8, R0, 0).ldx(4, R7, R0, 4)
        a.ja("chosen")
    return a.assemble()


def _slb_admit(a, learned_fd, slot, count, accept, stats_fd):
    """agrproto slb, port ingress (R9 = the configuration, R6 = skb): broadcast and multicast
    only on the designated port; a frame from a learned source is a reflection, unless it is
    a gratuitous ARP not locked as our own (then the source is forgotten). Dropped frames are
    counted and shot; the others go on to `accept`."""
    unicast, reflected, forget = (a.fresh(x) for x in ("unicast", "reflected", "forget"))
    a.ldx(4, R7, R6, SKB_DATA).ldx(4, R8, R6, SKB_DATA_END)
    a.mov(R1, src=R7).alu("add", R1, 14).jmp("jgt", R1, accept, src=R8)
    a.ldx(1, R1, R7, 0).alu("and", R1, 1).jmp("jeq", R1, unicast, 0)
    a.ldx(4, R2, R6, SKB_IFINDEX).ldx(4, R3, R9, CONF_DESIGNATED).jmp("jeq", R2, unicast, src=R3)
    if count:
        _lookup(a, stats_fd, key_imm=slot, null="shot")
        _count(a, SLB_NOT_DESIGNATED)
    a.ja("shot")
    a.label(unicast)
    emit_slb_key(a, accept)
    a.mov(R2, src=R10).alu("add", R2, SLB_K).ld_map_fd(R1, learned_fd).call(bpf.BPF_FUNC_map_lookup_elem)
    a.jmp("jeq", R0, accept, 0)
    a.mov(R9, src=R0)                                   # the learned entry
    a.call(bpf.BPF_FUNC_ktime_get_ns)
    a.ldx(8, R1, R9, 0).mov(R2, src=R0).alu("sub", R2, src=R1)
    a.ld_imm64(R3, int(slb.AGING * NS)).jmp("jge", R2, accept, src=R3)   # aged out: not ours now
    a.ldx(4, R1, R10, SLB_GARP).jmp("jeq", R1, reflected, 0)
    a.ldx(8, R1, R9, 8).jmp("jle", R1, forget, src=R0)
    a.label(reflected)
    if count:
        _lookup(a, stats_fd, key_imm=slot, null="shot")
        _count(a, SLB_REFLECTED)
    a.ja("shot")
    a.label(forget)                                     # a VM that moved away announces itself
    a.mov(R2, src=R10).alu("add", R2, SLB_K).ld_map_fd(R1, learned_fd).call(bpf.BPF_FUNC_map_delete_elem)
    a.ja(accept)


def ingress_program(conf_fd, stats_fd, slot, tap_ifindex, count=True, learned_fd=None):
    """The program for the port whose counters are in `slot`; learned_fd: agrproto slb's
    learned map (None: no slb code)."""
    a = Asm().mov(R6, src=R1)
    a.ldx(4, R7, R6, SKB_DATA).ldx(4, R8, R6, SKB_DATA_END)
    a.mov(R1, src=R7).alu("add", R1, 14).jmp("jgt", R1, "discard", src=R8)
    a.ldx(4, R1, R6, SKB_VLAN_PRESENT).jmp("jne", R1, "data", 0)      # tagged: never Slow Protocols
    a.ldx(2, R1, R7, 12).jmp("jne", R1, "data", LE_SLOW)
    _lookup(a, stats_fd, key_imm=slot, null="pass")                     # LACP and Marker: to the worker
    _count(a, RX_SLOW)
    a.label("pass").mov(R0, bpf.TC_ACT_OK).exit()
    a.label("data")
    _active_conf(a, conf_fd, "shot")
    a.ldx(4, R1, R0, CONF_COLLECTING).alu32("and", R1, 1 << slot).jmp("jeq", R1, "discard", 0)
    if learned_fd is not None:
        a.mov(R9, src=R0)
        a.ldx(4, R1, R9, CONF_MODE).jmp("jset", R1, "slb", MODE_SLB)
    a.label("admitted")
    if count:
        _lookup(a, stats_fd, key_imm=slot, null="redirect")
        a.ldx(4, R2, R6, SKB_LEN)
        _count(a, RX_PACKETS)
        _count(a, RX_BYTES, by=R2)
    a.label("redirect").mov(R1, tap_ifindex).mov(R2, bpf.BPF_F_INGRESS).call(bpf.BPF_FUNC_redirect).exit()
    a.label("discard")
    _lookup(a, stats_fd, key_imm=slot, null="shot")
    _count(a, RX_DROPPED)
    a.label("shot").mov(R0, bpf.TC_ACT_SHOT).exit()
    if learned_fd is not None:
        a.label("slb")
        _slb_admit(a, learned_fd, slot, count, "admitted", stats_fd)
    return a.assemble()


# -- the object the worker holds -----------------------------------------------------------------
class FastPath:
    """Maps, programs and tc filters of one agr interface's fast path.

    Nothing is attached until attach_tap()/attach_port(); each netlink request (net/tc.py)
    goes to the network namespace current when it is made (the worker's)."""

    def __init__(self, tap_ifindex, policy_mask=DEFAULT_POLICY, round_robin=False, max_ports=MAX_PORTS):
        if not 1 <= max_ports <= 32:
            raise ValueError("max_ports must be 1..32 (the collecting set is a 32-bit mask)")
        self.tap_ifindex = tap_ifindex
        self.max_ports = max_ports
        self.policy, self.round_robin = _check_policy(policy_mask), bool(round_robin)
        self.distributing, self.collecting = [], set()
        self.slots = {}                 # ifindex -> counter slot
        self.port_progs = {}            # ifindex -> ingress program fd (attached ports)
        self.tcx_pending = {}           # ifindex -> its program fd, not yet on tcx (settle() puts it)
        self.tcx_leaving = set()        # detached ports whose tcx hook holds PASS (settle() takes it off)
        self._pass_fd = None            # the PASS program, loaded at the first deferred detach
        self.tap_attached = False
        self._active = 1
        self.mode = Mode.NORMAL         # or PASS, DRAIN (frames to agrN's queue) or DROP (counted)
        self.conf_struct = conf_struct(max_ports)
        self.conf = self.stats = self.join = None
        self.slb_buckets = self.slb_learned = None
        self.slb_plan = None            # agrproto slb's Plan (slb.py) while it applies
        self.egress_fd = None
        self._join_mem = self.passed = self.relayed = None
        self.no_drain = ""              # why there is no join map (drain mode), if there is none
        try:
            self.conf = bpf.Map(bpf.BPF_MAP_TYPE_ARRAY, 4, self.conf_struct.size, 3, "agr_conf")
            self.stats = bpf.Map(bpf.BPF_MAP_TYPE_PERCPU_ARRAY, 4, STATS.size, max_ports + 1, "agr_stats")
            self.slb_buckets = bpf.Map(bpf.BPF_MAP_TYPE_ARRAY, 4, SLB_BUCKET.size, slb.BUCKETS, "agr_slb_bkt")
            self.slb_learned = bpf.Map(bpf.BPF_MAP_TYPE_HASH, SLB_KEY.size, SLB_SEEN.size, slb.MAX_LEARNED,
                                       "agr_slb_mac")
            self._write_conf()
            self.count = counting()
            self.egress_fd = self._load_egress()
        except BaseException:
            self._close_fds()
            raise

    def _load_egress(self):
        """The egress program with the join map (drain mode), or, on a kernel without
        mmap-able maps or BPF atomic fetch (before 5.5 / 5.12), without it."""
        try:
            self.join = bpf.Map(bpf.BPF_MAP_TYPE_ARRAY, 4, JOIN.size, 1, "agr_join", bpf.BPF_F_MMAPABLE)
            self._join_mem = self.join.mmap()
            fd = bpf.prog_load(egress_program(self.conf.fd, self.stats.fd, self.max_ports, self.count,
                                              self.join.fd, self._slb_fds()), "agr_egress")
        except OSError as exc:
            self._close_join()
            self.no_drain = str(exc)
        else:
            self.passed = ctypes.c_uint64.from_buffer(self._join_mem, JOIN_PASSED)
            self.relayed = ctypes.c_uint64.from_buffer(self._join_mem, JOIN_RELAYED)
            return fd
        return bpf.prog_load(egress_program(self.conf.fd, self.stats.fd, self.max_ports, self.count,
                                            slb_fds=self._slb_fds()), "agr_egress")

    def _slb_fds(self):
        return self.slb_buckets.fd, self.slb_learned.fd

    @property
    def drains(self):
        """A port joining can be handed over by "drain" (else by "drop")."""
        return self.join is not None

    def join_counts(self):
        """(passed, relayed) of the join map (see the module's docstring)."""
        return self.passed.value, self.relayed.value

    def rebase_join(self):
        """passed = relayed, before a join begins (the program counts nothing meanwhile: the
        mode is normal). Frames the relay read that were not counted here (a dead worker's,
        left in agrN's queue) would otherwise make them differ for good."""
        if self.mode is not Mode.NORMAL:
            raise ValueError("the join counters are rebased only in the normal mode")
        if self.join is not None:
            self.passed.value = self.relayed.value

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- attaching --------------------------------------------------------------------------
    def attach_tap(self, tap=None):
        """Put the egress program on agrN (tap: its ifindex or name; default the one given)."""
        if tap is not None and self._index(tap) != self.tap_ifindex:
            raise ValueError(f"{tap!r} is not the TAP this fast path redirects into")
        try:
            _attach(self.tap_ifindex, EGRESS, self.egress_fd, EGRESS_NAME)
        except BaseException:
            if not self.tap_attached:
                _remove_quietly(self.tap_ifindex, (EGRESS,))
            raise
        self.tap_attached = True

    def attach_port(self, ifindex, defer_tcx=False):
        """Put an ingress program on a port.  The port starts not collecting (its frames are
        dropped, Slow Protocols excepted) until set_collecting() names it.

        defer_tcx: the program goes on tcx later, by settle(), unless a program of ours runs
        there already (a dead worker's, which tcx runs before our filter: replaced at once).
        Putting it on tcx waits for an RCU grace period (10-20 ms) that a control request's
        reply need not wait for: meanwhile the clsact filter runs the same program."""
        ifindex = self._index(ifindex)
        slot = self._slot(ifindex)
        fd = bpf.prog_load(ingress_program(self.conf.fd, self.stats.fd, slot, self.tap_ifindex, self.count,
                                           self.slb_learned.fd), "agr_ingress")
        try:
            on_tcx = _attach(ifindex, INGRESS, fd, INGRESS_NAME, defer_tcx)
        except BaseException:
            os.close(fd)
            if ifindex not in self.port_progs:       # leave no clsact of ours half made
                _remove_quietly(ifindex, (INGRESS,))
            raise
        old = self.port_progs.pop(ifindex, None)
        self.port_progs[ifindex] = fd
        if on_tcx:
            self.tcx_pending.pop(ifindex, None)
        else:
            self.tcx_pending[ifindex] = fd
        if old is not None:
            os.close(old)

    @property
    def unsettled(self):
        """settle() has work: a deferred tcx step of an attach or a detach."""
        return bool(self.tcx_pending or self.tcx_leaving)

    def settle(self):
        """The tcx steps that attach_port and detach_port(defer_tcx=True) left: detached ports'
        PASS programs off their hooks, pending programs on theirs. A failure is logged, never
        raised: the clsact filter carries an attached port's frames, and PASS decides nothing."""
        while self.tcx_leaving:
            ifindex = self.tcx_leaving.pop()
            try:
                bpf.tcx_detach(ifindex, TCX_HOOK[INGRESS], prog_fd=self._pass_fd)
            except OSError as exc:
                if exc.errno not in TCX_ABSENT + (errno.ENOENT, errno.ENODEV):
                    log.warning("port %s: a program that passes every frame stays on its tcx hook (%s)",
                                _name(ifindex), exc)
        while self.tcx_pending:
            ifindex, fd = self.tcx_pending.popitem()
            try:
                _tcx_put(ifindex, INGRESS, fd, old=())
            except Exception as exc:  # the filter works without tcx
                log.warning("port %s: its fast path program is not on tcx (%s); the clsact filter "
                            "carries its frames", _name(ifindex), exc)

    def detach_port(self, ifindex, defer_tcx=False):
        """Remove a port's filter (and clsact, when nothing else uses it), take it out of the
        distributing and collecting sets and free its counters.  Netlink is used only for a port
        this object attached; any other is quietly taken out of the maps.

        defer_tcx: our program on the port's tcx hook is replaced in place by PASS (no grace
        period: at once, our program decides nothing more) and PASS is taken off later, by
        settle(): taking a program off tcx waits for an RCU grace period (10-20 ms)."""
        ifindex = self._index(ifindex)
        changed = ifindex in self.distributing or ifindex in self.collecting
        self.distributing = [i for i in self.distributing if i != ifindex]
        self.collecting.discard(ifindex)
        if changed:
            self._write_conf()
        fd = self.port_progs.pop(ifindex, None)
        self.tcx_pending.pop(ifindex, None)         # never put on tcx: nothing to take off there
        self.slots.pop(ifindex, None)
        if fd is not None:
            try:
                if defer_tcx and self._pass_off_later(ifindex, fd):
                    fd_on_tcx = None
                else:
                    fd_on_tcx = fd
                _remove(ifindex, (INGRESS,), own=fd_on_tcx)
            finally:
                os.close(fd)

    def _pass_off_later(self, ifindex, fd):
        """Put PASS in the place of our program `fd` on the port's tcx hook, for settle() to
        take off; False if that cannot be (no tcx, our program not there, PASS not loaded)."""
        try:
            if self._pass_fd is None:
                self._pass_fd = bpf.prog_load(PASS, "agr_pass")
            bpf.tcx_replace(ifindex, TCX_HOOK[INGRESS], self._pass_fd, fd)
        except OSError:
            return False
        self.tcx_leaving.add(ifindex)
        return True

    # -- configuration ---------------------------------------------------------------------
    def set_ports(self, ifindices):
        """The distributing ports, in order (frame -> ifindices[hash % n]); [] drops and counts."""
        ports = [self._index(i) for i in ifindices]
        if len(ports) > self.max_ports:
            raise ValueError(f"{len(ports)} distributing ports; the fast path takes {self.max_ports}")
        for i in ports:
            self._slot(i)
        self.distributing = ports
        self._write_conf()

    def set_collecting(self, ifindices):
        """The ports whose frames go into agrN (others: dropped)."""
        ports = {self._index(i) for i in ifindices}
        for i in ports:
            self._slot(i)
        self.collecting = ports
        self._write_conf()

    def set_mode(self, mode):
        """A join.Mode (or its value): NORMAL; PASS: agrN egress hands every frame on to agrN's
        own queue, where the worker reads it; DRAIN: it does so only while frames it handed on
        have not all been sent by the worker, else redirects; DROP: it drops and counts. When
        each is used is join.py's machine's to decide."""
        mode = Mode(mode)
        if mode is Mode.DRAIN and self.join is None:
            raise ValueError("drain needs the join map, which this kernel does not offer")
        self.mode = mode
        self._write_conf()

    def set_slb(self, plan):
        """agrproto slb's Plan (slb.py: the port of each bucket, the designated port), or
        None to hash flows again. The buckets are written before the mode says slb, so a
        frame never meets an unwritten bucket."""
        if plan is not None:
            for b, ifindex in enumerate(plan.buckets or (0,) * slb.BUCKETS):
                slot = self._slot(ifindex) if ifindex else 0
                self.slb_buckets.update(b, SLB_BUCKET.pack(ifindex, slot))
        self.slb_plan = plan
        self._write_conf()

    def slb_entries(self, now):
        """The learned (MAC, VLAN) pairs seen within slb.AGING of `now` (monotonic seconds, the
        programs' ktime); older ones are deleted."""
        out = []
        for key in bpf.map_keys(self.slb_learned.fd, SLB_KEY.size):
            value = self.slb_learned.lookup(key)
            if value is None:
                continue
            seen = SLB_SEEN.unpack(value)[0] / NS
            if now - seen >= slb.AGING:
                bpf.map_delete(self.slb_learned.fd, key)
            else:
                mac, vlan = SLB_KEY.unpack(key)
                out.append((mac, vlan))
        return sorted(out)

    def set_policy(self, policy_mask, round_robin):
        self.policy, self.round_robin = _check_policy(policy_mask), bool(round_robin)
        self._write_conf()

    def counters(self):
        """{"tx_drop_no_port": n, "ports": {ifindex: {tx_packets, tx_bytes, rx_packets,
        rx_bytes, rx_dropped, rx_slow}}} summed over CPUs, for every port with a slot. One
        raising of CAP_BPF for all the lookups (privs.raised), not two capset(2) calls each."""
        with privs.raised():
            out = {"tx_drop_no_port": self._sum(self.max_ports)[TX_DROPPED // 8], "ports": {}}
            for ifindex, slot in sorted(self.slots.items()):
                values = self._sum(slot)
                out["ports"][ifindex] = dict(zip(PORT_COUNTERS, values))
                if self.slb_plan is not None:
                    out["ports"][ifindex].update(zip(SLB_COUNTERS, values[SLB_NOT_DESIGNATED // 8:]))
        return out

    def close(self):
        """Remove our filters (and clsact where nothing else is left) and close every fd."""
        work = [(ifindex, INGRESS, fd) for ifindex, fd in self.port_progs.items()]
        if self.tap_attached:
            work.insert(0, (self.tap_ifindex, EGRESS, self.egress_fd))
        self.tap_attached = False
        self.tcx_pending.clear()
        first = None
        try:
            self.settle()                      # no PASS left behind
        except Exception as exc:  # settle() logs its own; anything else must not stop the rest
            first = exc
        try:
            for ifindex, parent, fd in work:       # every one, even after a failure
                try:
                    _remove(ifindex, (parent,), own=fd)
                except OSError as exc:
                    first = first or exc
        finally:
            self._close_fds()
        if first is not None:
            raise first

    @staticmethod
    def cleanup(ifindices):
        """Remove what a killed worker left on these interfaces: our filters (priority PRIO,
        named agrconfig_*) on both clsact hooks, and clsact when no other filter remains."""
        for ifindex in ifindices:
            _remove(ifindex, (EGRESS, INGRESS))

    # -- inside --------------------------------------------------------------------------------
    def _index(self, dev):
        if isinstance(dev, int):
            return dev
        found = rtnl.link(dev)
        if found is None:
            raise OSError(errno.ENODEV, f"no interface {dev}")
        return found.index

    def _slot(self, ifindex):
        slot = self.slots.get(ifindex)
        if slot is None:
            free = sorted(set(range(self.max_ports)) - set(self.slots.values()))
            if not free:
                raise OSError(errno.ENOSPC, f"the fast path takes {self.max_ports} ports")
            slot = self.slots[ifindex] = free[0]
            self.stats.fill(slot, bytes(STATS.size))
        return slot

    def _sum(self, slot):
        total = [0] * 8
        for value in self.stats.values(slot):
            total = [t + v for t, v in zip(total, STATS.unpack(value))]
        return total

    def _write_conf(self):
        """Write the idle copy of the configuration, then make it the active one."""
        ports = self.distributing if self.mode is not Mode.DROP else []
        pad = [0] * (self.max_ports - len(ports))
        collecting = 0
        for i in self.collecting:
            if i in self.slots:
                collecting |= 1 << self.slots[i]
        mode = self.policy | (MODE_RR if self.round_robin else 0) | \
            {Mode.PASS: MODE_PASS, Mode.DRAIN: MODE_DRAIN}.get(self.mode, 0)
        designated = 0
        if self.slb_plan is not None:
            mode |= MODE_SLB
            designated = self.slb_plan.designated or 0
        value = self.conf_struct.pack(len(ports), mode, collecting, designated, *ports, *pad,
                                      *[self.slots.get(i, 0xFFFFFFFF) for i in ports], *pad)
        idle = 3 - self._active
        self.conf.update(idle, value)
        self.conf.update(0, struct.pack("<I", idle).ljust(self.conf_struct.size, b"\0"))
        self._active = idle

    def _close_fds(self):
        for fd in [self.egress_fd, self._pass_fd, *self.port_progs.values()]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.egress_fd = self._pass_fd = None
        self.port_progs = {}
        for m in (self.conf, self.stats, self.slb_buckets, self.slb_learned):
            if m is not None:
                m.close()
        self._close_join()

    def _close_join(self):
        """Close the join map; its mapping goes when nothing uses it any more (the relay
        thread may still hold `relayed`, which keeps the mapping and the map alive)."""
        self.passed = self.relayed = None
        if self._join_mem is not None:
            try:
                self._join_mem.close()
            except BufferError:
                pass                    # still exported: freed with its last user
            self._join_mem = None
        if self.join is not None:
            self.join.close()
            self.join = None


def _check_policy(mask):
    if not isinstance(mask, int) or mask & ~(L2 | L3 | L4):
        raise ValueError(f"bad hash policy {mask!r} (a mask of L2|L3|L4)")
    return mask


def _attach(ifindex, parent, fd, name, defer_tcx=False):
    """clsact on the device (kept if there), then our filter: created or atomically replaced;
    where the kernel has tcx (Linux 6.6), the same program on the device's tcx hook too, in the
    place of a program of ours there. tcx runs first and our programs always decide, so the
    filter then never runs: it costs nothing and records which program on the tcx hook is ours
    (its id), which tcx itself cannot tell a worker without CAP_SYS_ADMIN.

    defer_tcx: leave the tcx step to the caller when no program of ours is there (the filter
    alone moves the frames right). True if the tcx step was done (or needs none)."""
    old = [f.prog_id for f in _filters(ifindex, parent) if _is_ours(f) and f.prog_id]
    tc.add_clsact(ifindex)
    tc.replace_bpf(ifindex, parent, PRIO, HANDLE, fd, name, protocol=ETH_P_ALL)
    if defer_tcx and not old:
        return False
    _tcx_put(ifindex, parent, fd, old)
    return True


TCX_ABSENT = (errno.EINVAL, errno.EOPNOTSUPP)     # a kernel before tcx: an unknown hook
# A program that decides nothing: TCX_NEXT (TC_ACT_UNSPEC), the next program on the hook, then
# clsact, then the stack, as if it were not there. A detached port's place holder on tcx.
PASS = Asm().mov(R0, -1).exit().assemble()
TCX_TRIES = 5                                     # the hook changed under us (ESTALE): look again


def _tcx_put(ifindex, parent, fd, old):
    """Program `fd` on the tcx hook: where a program of ours (ids `old`) runs, else last; then
    the old ones go. tcx runs before clsact and skips it when the program decides (ours always
    do): about a third of what the fast path adds to a round trip (bench/latency)."""
    hook = TCX_HOOK[parent]
    try:
        ids, _rev = bpf.tcx_query(ifindex, hook)
    except OSError as exc:
        if exc.errno in TCX_ABSENT:
            return
        raise
    bpf.tcx_attach(ifindex, hook, fd, before_id=next((i for i in ids if i in old), None))
    for prog_id in old:
        _tcx_detach_id(ifindex, hook, prog_id)


def _tcx_detach_id(ifindex, hook, prog_id):
    """Detach the program `prog_id` (no descriptor of it needed): named by its neighbour's id and
    the hook's revision, so that nothing else is taken if the hook changed meanwhile."""
    for _ in range(TCX_TRIES):
        try:
            ids, rev = bpf.tcx_query(ifindex, hook)
        except OSError as exc:
            if exc.errno in TCX_ABSENT + (errno.ENODEV,):
                return
            raise
        if prog_id not in ids:
            return
        i = ids.index(prog_id)
        if i + 1 < len(ids):
            how = (bpf.BPF_F_BEFORE, ids[i + 1])
        elif i > 0:
            how = (bpf.BPF_F_AFTER, ids[i - 1])
        else:
            how = (bpf.BPF_F_BEFORE, 0)                # alone: the first
        try:
            bpf.tcx_detach(ifindex, hook, flags=how[0], relative_id=how[1], revision=rev)
            return
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return
            if exc.errno != errno.ESTALE:
                raise
    raise OSError(errno.ESTALE, f"the tcx hook of interface {ifindex} keeps changing")


def tcx_ours(ifindex, parent):
    """The ids of our programs on a device's tcx hook (those of our filters); for tests."""
    try:
        ids, _rev = bpf.tcx_query(ifindex, TCX_HOOK[parent])
    except OSError as exc:
        if exc.errno in TCX_ABSENT + (errno.ENODEV,):
            return []
        raise
    ours = {f.prog_id for f in _filters(ifindex, parent) if _is_ours(f)}
    return [i for i in ids if i in ours]


def _name(ifindex):
    """A port's name for a message (its index if it has none now)."""
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return f"#{ifindex}"


def _is_ours(f):
    """One of our filters: bpf, our priority, our name (not the priority's header message)."""
    return f.kind == "bpf" and f.prio == PRIO and bool(f.handle) and f.name.startswith("agrconfig_")


def _filters(ifindex, parent):
    return [f for f in tc.filters(ifindex, parent) if f.kind]


def _remove_quietly(ifindex, parents):
    try:
        _remove(ifindex, parents)
    except OSError:
        pass


def _remove(ifindex, parents, own=None):
    """Delete our filters under the given clsact hooks, each program off the tcx hook first;
    then clsact itself when both of its hooks are empty.  An interface that is gone, or has no
    clsact or tcx, is quietly skipped. `own`: our program's descriptor, taken off tcx by itself
    too (even if somebody deleted the filter that names it)."""
    if own is not None:
        for parent in parents:
            try:
                bpf.tcx_detach(ifindex, TCX_HOOK[parent], prog_fd=own)
            except OSError as exc:
                if exc.errno not in TCX_ABSENT + (errno.ENOENT, errno.ENODEV):
                    raise
    for parent in parents:
        for f in _filters(ifindex, parent):
            if not _is_ours(f):
                continue
            if f.prog_id:               # off tcx first: the filter runs the same program meanwhile
                _tcx_detach_id(ifindex, TCX_HOOK[parent], f.prog_id)
            try:
                tc.del_filter(ifindex, parent, PRIO, f.handle, protocol=ETH_P_ALL)
            except tc.NetlinkError as exc:
                if exc.errno not in tc.GONE:
                    raise
    if any(_filters(ifindex, p) for p in (EGRESS, INGRESS)):
        return
    try:
        tc.del_clsact(ifindex)
    except tc.NetlinkError as exc:
        if exc.errno not in tc.GONE:
            raise
