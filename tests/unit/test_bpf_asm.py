"""The eBPF assembler (encodings, labels, errors) and the bpf(2) wrapper."""
import errno
import os
import struct

import types

import pytest

from agrconfig.worker import bpf
from agrconfig.worker.bpf import R0, R1, R2, R3, R5, R10, Asm, AsmError


def one(a):
    return a.assemble().hex()


# Expected bytes: opcode, dst|src<<4, off (le16), imm (le32), as in the kernel's
# include/uapi/linux/bpf.h and the encodings llvm-objdump prints for the same instructions.
ENCODINGS = [
    (Asm().mov(R0, 7), "b700000007000000"),                     # r0 = 7
    (Asm().mov32(R0, 1), "b400000001000000"),                   # w0 = 1
    (Asm().mov(R1, src=R2), "bf21000000000000"),                # r1 = r2
    (Asm().mov32(R5, src=R3), "bc35000000000000"),              # w5 = w3
    (Asm().alu("add", R1, -4), "07010000fcffffff"),             # r1 += -4
    (Asm().alu("and", R0, 0x3F), "570000003f000000"),           # r0 &= 63
    (Asm().alu("lsh", R1, 2), "6701000002000000"),              # r1 <<= 2
    (Asm().alu("add", R1, src=R5), "0f51000000000000"),         # r1 += r5
    (Asm().alu32("mul", R0, 0x85EBCA6B), "240000006bcaeb85"),   # w0 *= 0x85ebca6b
    (Asm().alu32("rsh", R1, 16), "7401000010000000"),           # w1 >>= 16
    (Asm().alu32("xor", R5, src=R1), "ac15000000000000"),       # w5 ^= w1
    (Asm().alu32("mod", R5, src=R3), "9c35000000000000"),       # w5 %= w3
    (Asm().alu("neg", R2), "8702000000000000"),                 # r2 = -r2
    (Asm().be16(R1), "dc01000010000000"),                       # r1 = be16 r1
    (Asm().be(32, R1), "dc01000020000000"),                     # r1 = be32 r1
    (Asm().ldx(1, R0, R1, 9), "7110090000000000"),              # r0 = *(u8 *)(r1 + 9)
    (Asm().ldx(2, R0, R1, 12), "69100c0000000000"),             # r0 = *(u16 *)(r1 + 12)
    (Asm().ldx(4, R0, R1, 76), "61104c0000000000"),             # r0 = *(u32 *)(r1 + 76)
    (Asm().ldx(8, R1, R0, 56), "7901380000000000"),             # r1 = *(u64 *)(r0 + 56)
    (Asm().stx(4, R10, -4, R1), "631afcff00000000"),            # *(u32 *)(r10 - 4) = r1
    (Asm().stx(8, R0, 8, R1), "7b10080000000000"),              # *(u64 *)(r0 + 8) = r1
    (Asm().st(4, R10, -4, 16), "620afcff10000000"),             # *(u32 *)(r10 - 4) = 16
    (Asm().atomic_add(8, R0, 16, R1), "db10100000000000"),      # lock *(u64 *)(r0 + 16) += r1
    (Asm().atomic_add(4, R0, 4, R1), "c310040000000000"),       # lock *(u32 *)(r0 + 4) += r1
    (Asm().atomic_fetch_add(8, R0, 0, R3), "db30000001000000"),  # r3 = atomic_fetch_add((u64 *)(r0 + 0), r3)
    (Asm().call(23), "8500000017000000"),                       # call bpf_redirect
    (Asm().exit(), "9500000000000000"),                         # exit
    (Asm().ld_map_fd(R1, 9), "1811000009000000" "0000000000000000"),
    (Asm().ld_imm64(R2, 0x1122334455667788), "1802000088776655" "0000000044332211"),
    (Asm().ld_imm64(R2, -1), "18020000ffffffff" "00000000ffffffff"),
]


@pytest.mark.parametrize("asm,expected", ENCODINGS, ids=[e for _a, e in ENCODINGS])
def test_encoding(asm, expected):
    assert one(asm) == expected


def test_jump_encodings():
    a = Asm().label("t")
    a.jmp("jeq", R1, "t", 0)             # if r1 == 0 goto t        (-1)
    a.jmp("jne", R1, "t", src=R2)        # if r1 != r2 goto t       (-2)
    a.jmp("jgt", R1, "t", src=R5)        # if r1 > r5 goto t        (-3)
    a.jmp("jset", R1, "t", 0x100)        # if r1 & 0x100 goto t     (-4)
    a.jmp32("jeq", R1, "t", 6)           # if w1 == 6 goto t        (-5)
    a.ja("t")                            # goto t                   (-6)
    a.jmp("jle", R2, "t", 82)            # if r2 <= 82 goto t       (-7)
    code = a.exit().assemble()
    assert [code[i:i + 8].hex() for i in range(0, len(code) - 8, 8)] == [
        "1501ffff00000000", "5d21feff00000000", "2d51fdff00000000", "4501fcff00010000",
        "1601fbff06000000", "0500faff00000000", "b502f9ff52000000"]


def test_labels_resolve_forward_and_back():
    a = Asm().label("top").mov(R0, 0).jmp("jeq", R0, "out", 1).ja("top").label("out").exit()
    code = a.assemble()
    assert struct.unpack_from("<h", code, 8 + 2)[0] == 1      # jeq skips the ja
    assert struct.unpack_from("<h", code, 16 + 2)[0] == -3    # ja back to the top


def test_ld_imm64_takes_two_slots_in_offsets():
    a = Asm().ja("after").ld_map_fd(R1, 3).label("after").exit()
    assert len(a) == 4
    assert struct.unpack_from("<h", a.assemble(), 2)[0] == 2


def test_fresh_labels_are_distinct():
    a = Asm()
    assert len({a.fresh("x") for _ in range(5)}) == 5


def test_unknown_and_duplicate_labels():
    with pytest.raises(AsmError, match="unknown label 'nowhere'"):
        Asm().ja("nowhere").exit().assemble()
    with pytest.raises(AsmError, match="defined twice"):
        Asm().label("x").label("x")
    with pytest.raises(AsmError, match="marks no instruction"):
        Asm().mov(R0, 0).jmp("jeq", R0, "end", 0).exit().label("end").assemble()


def test_jump_out_of_range():
    a = Asm().ja("far")
    for _ in range(1 << 15):
        a.mov(R0, 0)
    a.label("far").exit()
    with pytest.raises(AsmError, match="out of range"):
        a.assemble()
    b = Asm().ja("near")                 # 32767 instructions away: the largest forward jump
    for _ in range((1 << 15) - 1):
        b.mov(R0, 0)
    assert struct.unpack_from("<h", b.label("near").exit().assemble(), 2)[0] == (1 << 15) - 1


@pytest.mark.parametrize("build", [
    lambda: Asm().ldx(4, R0, R1, 1 << 15),          # memory offset beyond 16 bits
    lambda: Asm().stx(4, R10, -(1 << 15) - 1, R1),
    lambda: Asm().mov(R0, 1 << 32),                 # immediate beyond 32 bits
    lambda: Asm().mov(R0, -(1 << 31) - 1),
    lambda: Asm().ld_imm64(R0, 1 << 64),
    lambda: Asm().mov(11, 0),                       # no such register
    lambda: Asm().mov(True, 0),
    lambda: Asm().ldx(3, R0, R1, 0),                # no such size
    lambda: Asm().atomic_add(2, R0, 0, R1),
    lambda: Asm().atomic_fetch_add(1, R0, 0, R1),
    lambda: Asm().alu("rol", R0, 1),                # no such operation
    lambda: Asm().alu("add", R0),                   # no operand
    lambda: Asm().alu("add", R0, 1, src=R1),        # two operands
    lambda: Asm().jmp("jeq", R0, "x"),              # nothing to compare with
    lambda: Asm().jmp("jbogus", R0, "x", 1),
    lambda: Asm().be(8, R0),
])
def test_encoding_errors(build):
    with pytest.raises(AsmError):
        build()


def test_unsigned_and_signed_spellings_agree():
    assert one(Asm().mov(R0, 0xFFFFFFFF)) == one(Asm().mov(R0, -1))


# -- bpf(2), needs root ------------------------------------------------------------------------
def test_fastpath_supported():
    assert bpf.fastpath_supported() == (True, "")


def test_program_runs_and_returns_its_value():
    fd = bpf.prog_load(Asm().mov(R0, 42).exit().assemble(), "t_ret")
    try:
        assert bpf.prog_test_run(fd, bytes(60)) == 42
    finally:
        os.close(fd)


def test_verifier_refusal_carries_errno_and_log():
    with pytest.raises(OSError) as info:
        bpf.prog_load(Asm().exit().assemble(), "t_bad")         # R0 never set
    assert info.value.errno == errno.EACCES
    assert "verifier" in str(info.value) and "R0 !read_ok" in str(info.value)


def test_helper_needing_gpl_and_map_reference_load():
    m = bpf.Map(bpf.BPF_MAP_TYPE_ARRAY, 4, 8, 1, "t_arr")
    a = Asm().st(4, R10, -4, 0).mov(R2, src=R10).alu("add", R2, -4).ld_map_fd(R1, m.fd)
    a.call(bpf.BPF_FUNC_map_lookup_elem).jmp("jeq", R0, "out", 0)
    a.mov(R1, 5).atomic_add(8, R0, 0, R1)
    a.label("out").mov(R1, 1).mov(R2, 0).call(bpf.BPF_FUNC_redirect).exit()
    fd = bpf.prog_load(a.assemble(), "t_map")
    try:
        assert bpf.prog_test_run(fd, bytes(60), repeat=3) == bpf.TC_ACT_REDIRECT
        assert struct.unpack("<Q", m.lookup(0)) == (15,)
    finally:
        os.close(fd)
        m.close()


def test_maps_array_percpu_hash():
    arr = bpf.Map(bpf.BPF_MAP_TYPE_ARRAY, 4, 12, 2, "t_arr")
    arr.update(1, b"abcdefghijkl")
    assert arr.lookup(1) == b"abcdefghijkl" and arr.lookup(0) == bytes(12)
    with pytest.raises(OSError) as info:
        arr.update(2, bytes(12))                       # beyond max_entries
    assert info.value.errno == errno.E2BIG
    pc = bpf.Map(bpf.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 12, 1, "t_pc")
    assert pc.ncpus == bpf.possible_cpus() >= 1 and pc.stride == 16
    pc.fill(0, b"x" * 12)
    assert pc.values(0) == [b"x" * 12] * pc.ncpus
    with pytest.raises(ValueError):
        pc.update(0, bytes(12))                        # one CPU's worth is not enough
    h = bpf.Map(bpf.BPF_MAP_TYPE_HASH, 4, 4, 4, "t_hash")
    assert h.lookup(7) is None
    for m in (arr, pc, h):
        m.close()
        m.close()                                      # closing twice is harmless


def test_syscall_number_by_machine(monkeypatch):
    assert bpf.syscall_number("aarch64") == 280 and bpf.syscall_number("x86_64") == 321
    with pytest.raises(OSError) as info:
        bpf.syscall_number("vax")
    assert info.value.errno == errno.ENOSYS
    # asked of uname once, then kept
    monkeypatch.setattr(bpf, "_NR", [])
    asked = []
    monkeypatch.setattr(bpf.os, "uname", lambda: asked.append(1) or types.SimpleNamespace(machine="aarch64"))
    assert bpf._nr().value == 280 and bpf._nr().value == 280 and asked == [1]
    monkeypatch.setattr(bpf, "_NR", [])
    monkeypatch.setattr(bpf.os, "uname", lambda: types.SimpleNamespace(machine="vax"))
    with pytest.raises(OSError) as info:
        bpf._nr()
    assert info.value.errno == errno.ENOSYS
