"""agrproto slb: switch-independent load sharing, Open vSwitch's balance-slb rules (sans-IO).

Pure: no sockets, no clock (`now` is passed in), so a fake clock tests every rule; the relay
(dataplane.py) and the worker (loop.py) only call it, and the eBPF programs (fastpath.py)
compute the same hash, bucket and drops in the kernel.

- Placement: a frame leaves by the port chosen from its source MAC and VLAN, broadcasts
  included: (MAC, VLAN) hashes to one of BUCKETS buckets, and each bucket has a home port among
  all of agrN's ports (in order of addition). A bucket whose home port is not distributing goes
  to one of those that are; so when a port goes, only its MACs move, and they come home when it
  returns. The placement is a function of (ports, distributing ports): whichport computes it
  from status alone.
- Designated port: broadcast and multicast are accepted on one port only (OVS's active member):
  the first distributing port, kept while it distributes (sticky).
- Learned table: the (MAC, VLAN) pairs agrN sends from, with the time last seen; entries age out
  after AGING seconds. A frame received from a learned source is our own come back (a
  reflection) and is dropped, except a gratuitous ARP (a VM that moved to another host), unless
  it is one of ours sent in the last GRAT_ARP_LOCK seconds.
- Moves: each learned MAC whose port changed, with its new port; the worker has the announcer
  (announcer.py) send a RARP learning frame from it, with its VLAN tag, on the new port, so
  that the switches learn the move at once.
"""
import struct

from ..record import Record

BUCKETS = 256
AGING = 300.0          # seconds: Open vSwitch's default mac-aging-time
GRAT_ARP_LOCK = 5.0    # seconds: our own gratuitous ARPs coming back are reflections meanwhile
MAX_LEARNED = 8192     # entries: a bound on what forged source addresses can cost (OVS: 2048)
SWEEP = 30.0           # seconds between two sweeps of aged entries by the worker (eBPF's table)
BROADCAST = b"\xff" * 6

FNV_OFFSET, FNV_PRIME, MASK32 = 0x811C9DC5, 0x01000193, 0xFFFFFFFF
_U32, _U16 = struct.Struct("<I"), struct.Struct("<H")


def slb_hash(mac, vlan=0):
    """32-bit hash of a source MAC (6 bytes) and VLAN id: FNV-1a over two little-endian words
    (the MAC's first four bytes; its last two with the VLAN id above), then murmur3's fmix32
    (as flowhash.py, so an eBPF program can compute the same)."""
    h = FNV_OFFSET
    h = ((h ^ _U32.unpack_from(mac, 0)[0]) * FNV_PRIME) & MASK32
    h = ((h ^ (_U16.unpack_from(mac, 4)[0] | (vlan & 0xFFF) << 16)) * FNV_PRIME) & MASK32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


def bucket_of(mac, vlan=0):
    return slb_hash(mac, vlan) % BUCKETS


def placement(ports, distributing):
    """The port of each bucket: a tuple of BUCKETS port numbers, () when none distributes.
    `ports`: all of agrN's ports in order of addition; `distributing`: those that may send.
    Bucket b's home is ports[b % n]; if the home does not distribute, the bucket goes to
    up[(b // n) % len(up)] (b // n, not b: the homeless buckets spread over all live ports)."""
    ports = list(ports)
    up = [p for p in ports if p in distributing]
    if not up:
        return ()
    n = len(ports)
    out = []
    for b in range(BUCKETS):
        home = ports[b % n]
        out.append(home if home in distributing else up[(b // n) % len(up)])
    return tuple(out)


def frame_source(frame, off=0):
    """(source MAC bytes, VLAN id) of an Ethernet frame at frame[off:] (VLAN 0: untagged);
    None if too short."""
    if len(frame) < off + 14:
        return None
    vlan = 0
    if frame[off + 12] == 0x81 and frame[off + 13] == 0x00 and len(frame) >= off + 16:
        vlan = ((frame[off + 14] << 8) | frame[off + 15]) & 0xFFF
    return bytes(frame[off + 6:off + 12]), vlan


def is_gratuitous_arp(frame, off=0):
    """An ARP (request or reply, tagged or not) whose sender and target IPv4 addresses are the
    same: an announcement of where an address is."""
    l3 = off + 14
    if len(frame) < l3:
        return False
    if frame[off + 12] == 0x81 and frame[off + 13] == 0x00:
        l3 += 4
    if len(frame) < l3 + 28 or frame[l3 - 2] != 0x08 or frame[l3 - 1] != 0x06:
        return False
    return bytes(frame[l3 + 14:l3 + 18]) == bytes(frame[l3 + 24:l3 + 28])


class Learned:
    """The aging table of (MAC, VLAN) pairs agrN sends from: key -> last seen; locked: key ->
    until when a received gratuitous ARP from it is still ours coming back."""

    def __init__(self, aging=AGING, limit=MAX_LEARNED):
        self.aging = aging
        self.limit = limit
        self.seen = {}
        self.locked = {}

    def learn(self, now, mac, vlan, grat_arp=False):
        """Returns False when the table is full and the pair new: it is not learned (until
        the next age() makes room), so its reflections are not recognised meanwhile."""
        key = (mac, vlan)
        if key not in self.seen and len(self.seen) >= self.limit:
            return False
        self.seen[key] = now
        if grat_arp:
            self.locked[key] = now + GRAT_ARP_LOCK
        return True

    def knows(self, now, mac, vlan):
        seen = self.seen.get((mac, vlan))
        return seen is not None and now - seen < self.aging

    def forget(self, mac, vlan):
        self.seen.pop((mac, vlan), None)
        self.locked.pop((mac, vlan), None)

    def age(self, now):
        """Drop the entries not seen for AGING seconds (and expired locks)."""
        for key in [k for k, t in self.seen.items() if now - t >= self.aging]:
            del self.seen[key]
        for key in [k for k, t in self.locked.items() if t <= now]:
            del self.locked[key]

    def entries(self, now):
        """The live (MAC, VLAN) pairs, sorted."""
        return sorted(k for k, t in list(self.seen.items()) if now - t < self.aging)

    def admit(self, now, frame, off=0):
        """Is a frame received from the network (at frame[off:]) accepted? Not when its source
        is one we send from (a reflection), unless it is a gratuitous ARP not our own: then
        the MAC has moved away from us, and is forgotten."""
        src = frame_source(frame, off)
        if src is None or not self.knows(now, *src):
            return True
        if is_gratuitous_arp(frame, off) and self.locked.get(src, 0.0) <= now:
            self.forget(*src)
            return True
        return False


class Plan(Record):
    """What the data path needs: the port of each bucket and the designated port (None: none)."""
    __slots__ = ("buckets", "designated")


class Move(Record):
    """A learned MAC whose port changed: send a learning frame from it on `port`."""
    __slots__ = ("port", "mac", "vlan")


class Balance:
    """The slb state between two changes of the distributing set: the sticky designated port
    and the last placement."""

    def __init__(self):
        self.designated = None
        self.buckets = ()

    def preview(self, ports, distributing):
        """The Plan update() would give, changing nothing (no moves are lost to it)."""
        designated = self.designated
        if designated not in distributing:
            designated = next((p for p in ports if p in distributing), None)
        return Plan(placement(ports, distributing), designated)

    def update(self, ports, distributing, learned):
        """The new Plan for agrN's ports (in order) and the distributing set, and the Moves for
        the learned (MAC, VLAN) pairs whose port changed (none on the first placement).
        `learned` may be a function giving them: called only when the placement changed."""
        ports = list(ports)
        if self.designated not in distributing:
            self.designated = next((p for p in ports if p in distributing), None)
        old, self.buckets = self.buckets, placement(ports, distributing)
        moves = []
        if old and self.buckets and old != self.buckets:
            for mac, vlan in (learned() if callable(learned) else learned):
                b = bucket_of(mac, vlan)
                if old[b] != self.buckets[b]:
                    moves.append(Move(self.buckets[b], mac, vlan))
        return Plan(self.buckets, self.designated), moves
