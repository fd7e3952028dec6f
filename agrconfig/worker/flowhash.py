"""Flow hash shared by the Python relay and the eBPF fast path.

The definition is deliberately simple so that the BPF program in bpf.py can
compute exactly the same value: FNV-1a over 32-bit little-endian words (the
native loads of the BPF VM on x86/arm64), each field mixed only when the frame
is long enough to hold it.

Fields, by policy layer (FreeBSD lagghash names; default l2,l3 as NetBSD agr):
  l2: u32 at 0, u32 at 4, u32 at 8 (destination and source MAC);
      if ethertype (bytes 12-13) is 0x8100: the u16 TCI at 14, and the inner
      ethertype is read at 16 (L3 starts at 18 instead of 14).
  l3: IPv4 (0x0800): u32 src at L3+12, u32 dst at L3+16.
      IPv6 (0x86dd): 4 u32 of src at L3+8, 4 u32 of dst at L3+24.
  l4: IPv4 whose protocol (L3+9) is TCP(6) or UDP(17) and which is not a
      fragment (u16 big-endian at L3+6 & 0x3fff == 0): u32 at L3 + IHL*4.
      IPv6 whose next header (L3+6) is TCP or UDP: u32 at L3+40.
Final step (murmur3's fmix32, since FNV alone never carries high input bits
down to the low bits that h % n looks at):
  h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35; h ^= h >> 16
(all 32-bit).  The port is h % n over the distributing ports.
"""

import struct

# The layers and their words belong to the option schema (agrhash).
from ..options import DEFAULT_POLICY, L2, L3, L4, format_policy, parse_policy  # noqa: F401

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
MASK32 = 0xFFFFFFFF

_W1 = struct.Struct("<I")
_W2 = struct.Struct("<2I")
_W3 = struct.Struct("<3I")
_W8 = struct.Struct("<8I")
_TCI = struct.Struct("<H")


def _fmix(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


def flow_hash(frame, policy=DEFAULT_POLICY, off=0):
    """Hash of the Ethernet frame starting at frame[off:] (off skips a vnet header).

    The relay calls this for every frame it sends: the words are read with precompiled
    structs and mixed inline (tests check it against a plain transcription of the
    definition above)."""
    end = len(frame)
    h = FNV_OFFSET
    if end < off + 14:
        return _fmix(h)
    ethertype = (frame[off + 12] << 8) | frame[off + 13]
    l3 = off + 14
    if policy & L2:
        for w in _W3.unpack_from(frame, off):
            h = ((h ^ w) * FNV_PRIME) & MASK32
    if ethertype == 0x8100:
        if end < off + 18:
            return _fmix(h)
        if policy & L2:
            h = ((h ^ _TCI.unpack_from(frame, off + 14)[0]) * FNV_PRIME) & MASK32
        ethertype = (frame[off + 16] << 8) | frame[off + 17]
        l3 = off + 18
    if ethertype == 0x0800 and end >= l3 + 20:
        if policy & L3:
            for w in _W2.unpack_from(frame, l3 + 12):
                h = ((h ^ w) * FNV_PRIME) & MASK32
        if policy & L4 and (frame[l3 + 9] == 6 or frame[l3 + 9] == 17) \
                and not (frame[l3 + 6] & 0x3F or frame[l3 + 7]):
            l4 = l3 + (frame[l3] & 0x0F) * 4
            if end >= l4 + 4:
                h = ((h ^ _W1.unpack_from(frame, l4)[0]) * FNV_PRIME) & MASK32
    elif ethertype == 0x86DD and end >= l3 + 40:
        if policy & L3:
            for w in _W8.unpack_from(frame, l3 + 8):
                h = ((h ^ w) * FNV_PRIME) & MASK32
        if policy & L4 and (frame[l3 + 6] == 6 or frame[l3 + 6] == 17) and end >= l3 + 44:
            h = ((h ^ _W1.unpack_from(frame, l3 + 40)[0]) * FNV_PRIME) & MASK32
    return _fmix(h)
