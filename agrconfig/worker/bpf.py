"""A tiny eBPF assembler and the bpf(2) calls we need, from Python with ctypes.

No clang and no object files: the fast path is a few dozen instructions,
assembled here with symbolic labels. Only what agrconfig uses is covered:
ALU (32 and 64 bit), jumps, loads and stores, atomic add, 64-bit immediate map
references, helper calls; array/hash maps; SCHED_CLS programs; test runs.
"""
import ctypes
import errno
import os
import platform
import struct

# -- instruction encoding -------------------------------------------------------------------
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_JMP32, BPF_ALU64 = 0, 1, 2, 3, 4, 5, 6, 7
BPF_W, BPF_H, BPF_B, BPF_DW = 0x00, 0x08, 0x10, 0x18
BPF_IMM, BPF_MEM, BPF_ATOMIC = 0x00, 0x60, 0xC0
BPF_K, BPF_X = 0x00, 0x08
ALU_OPS = {"add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "or": 0x40, "and": 0x50, "lsh": 0x60,
           "rsh": 0x70, "neg": 0x80, "mod": 0x90, "xor": 0xA0, "mov": 0xB0, "arsh": 0xC0}
JMP_OPS = {"ja": 0x00, "jeq": 0x10, "jgt": 0x20, "jge": 0x30, "jset": 0x40, "jne": 0x50, "jsgt": 0x60,
           "jsge": 0x70, "jlt": 0xA0, "jle": 0xB0, "jslt": 0xC0, "jsle": 0xD0}
BPF_CALL, BPF_EXIT = 0x80, 0x90
BPF_END, BPF_TO_BE = 0xD0, 0x08
SIZES = {1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW}
BPF_PSEUDO_MAP_FD = 1
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)

INSN = struct.Struct("<BBhi")


class AsmError(ValueError):
    pass


def _imm32(value):
    """Immediates are signed 32-bit; accept unsigned spellings of the same bits."""
    if not -(1 << 31) <= value < (1 << 32):
        raise AsmError(f"immediate {value:#x} does not fit in 32 bits")
    return value - (1 << 32) if value >= (1 << 31) else value


def _reg(r):
    if not isinstance(r, int) or not 0 <= r <= 10:
        raise AsmError(f"bad register {r!r}")
    return r


class Asm:
    """Collects instructions; jumps name labels, resolved by assemble()."""

    def __init__(self):
        self.insns = []      # [opcode, dst, src, off or label, imm]
        self.labels = {}

    def _emit(self, op, dst=0, src=0, off=0, imm=0):
        self.insns.append([op, _reg(dst), _reg(src), off, imm])
        return self

    def label(self, name):
        if name in self.labels:
            raise AsmError(f"label {name!r} defined twice")
        self.labels[name] = len(self.insns)
        return self

    # ALU: alu("add", dst, imm=5) or alu("add", dst, src=R3); alu32 for 32-bit.
    def alu(self, op, dst, imm=None, src=None, wide=True):
        cls = BPF_ALU64 if wide else BPF_ALU
        if src is not None:
            return self._emit(cls | ALU_OPS[op] | BPF_X, dst, src)
        return self._emit(cls | ALU_OPS[op] | BPF_K, dst, 0, 0, _imm32(imm or 0))

    def alu32(self, op, dst, imm=None, src=None):
        return self.alu(op, dst, imm, src, wide=False)

    def mov(self, dst, imm=None, src=None):
        return self.alu("mov", dst, imm, src)

    def be16(self, dst):
        """Swap a 16-bit value to network order (a byte swap on little-endian hosts)."""
        return self._emit(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, 16)

    def ldx(self, size, dst, src, off):
        return self._emit(BPF_LDX | BPF_MEM | SIZES[size], dst, src, off)

    def stx(self, size, dst, off, src):
        return self._emit(BPF_STX | BPF_MEM | SIZES[size], dst, src, off)

    def st(self, size, dst, off, imm):
        return self._emit(BPF_ST | BPF_MEM | SIZES[size], dst, 0, off, _imm32(imm))

    def atomic_add(self, size, dst, off, src):
        return self._emit(BPF_STX | BPF_ATOMIC | SIZES[size], dst, src, off, 0)

    def jmp(self, op, dst, label, imm=None, src=None, wide=True):
        cls = BPF_JMP if wide else BPF_JMP32
        if op == "ja":
            return self._emit(BPF_JMP | 0x00, 0, 0, label, 0)
        if src is not None:
            return self._emit(cls | JMP_OPS[op] | BPF_X, dst, src, label)
        return self._emit(cls | JMP_OPS[op] | BPF_K, dst, 0, label, _imm32(imm or 0))

    def ja(self, label):
        return self.jmp("ja", 0, label)

    def call(self, helper):
        return self._emit(BPF_JMP | BPF_CALL, 0, 0, 0, helper)

    def exit(self):
        return self._emit(BPF_JMP | BPF_EXIT)

    def ld_map_fd(self, dst, fd):
        """The 16-byte load of a map reference (the kernel swaps the fd for the map)."""
        self._emit(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd)
        return self._emit(0, 0, 0, 0, 0)

    def assemble(self):
        out = bytearray()
        for i, (op, dst, src, off, imm) in enumerate(self.insns):
            if isinstance(off, str):
                if off not in self.labels:
                    raise AsmError(f"unknown label {off!r}")
                off = self.labels[off] - i - 1
            if not -(1 << 15) <= off < (1 << 15):
                raise AsmError(f"jump offset {off} out of range")
            out += INSN.pack(op, dst | (src << 4), off, imm)
        return bytes(out)


# -- bpf(2) ---------------------------------------------------------------------------------------
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD, BPF_PROG_TEST_RUN = 0, 1, 2, 5, 10
BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY = 1, 2
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_FUNC_map_lookup_elem, BPF_FUNC_redirect = 1, 23
BPF_F_INGRESS = 1
TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7
ATTR_SIZE = 128
_NR = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "riscv64": 280, "ppc64le": 361, "s390x": 351}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd, attr):
    nr = _NR.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, f"bpf(2) number unknown for {platform.machine()}")
    buf = ctypes.create_string_buffer(bytes(attr).ljust(ATTR_SIZE, b"\0"), ATTR_SIZE)
    ret = _libc.syscall(nr, cmd, buf, ATTR_SIZE)
    if ret < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return ret, buf


def _addr(buf):
    return ctypes.addressof(buf)


def map_create(map_type, key_size, value_size, max_entries):
    fd, _ = _bpf(BPF_MAP_CREATE, struct.pack("<IIIII", map_type, key_size, value_size, max_entries, 0))
    return fd


def map_update(fd, key, value):
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value, len(value))
    _bpf(BPF_MAP_UPDATE_ELEM, struct.pack("<IIQQQ", fd, 0, _addr(k), _addr(v), 0))


def map_lookup(fd, key, value_size):
    """The value as bytes, or None when the key is absent."""
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value_size)
    try:
        _bpf(BPF_MAP_LOOKUP_ELEM, struct.pack("<IIQQ", fd, 0, _addr(k), _addr(v)))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return v.raw


def prog_load(insns, name="agrconfig", prog_type=BPF_PROG_TYPE_SCHED_CLS):
    """Load a program; a verifier refusal raises OSError with the verifier's log."""
    license_ = ctypes.create_string_buffer(b"GPL")  # bpf_redirect is a GPL-only helper
    code = ctypes.create_string_buffer(insns, len(insns))
    log = ctypes.create_string_buffer(1 << 16)
    attr = struct.pack("<IIQQIIQII16s", prog_type, len(insns) // 8, _addr(code), _addr(license_), 1,
                       len(log), _addr(log), 0, 0, name.encode()[:15])
    try:
        fd, _ = _bpf(BPF_PROG_LOAD, attr)
    except OSError as exc:
        text = log.value.decode(errors="replace").strip()
        raise OSError(exc.errno, f"{exc.strerror}; verifier: {text[-2000:]}") from None
    return fd


def prog_test_run(fd, data):
    """Run a program once on `data` (a frame); returns its return value."""
    inp = ctypes.create_string_buffer(data, len(data))
    out = ctypes.create_string_buffer(len(data) + 256)
    attr = struct.pack("<IIIIQQII", fd, 0, len(data), len(out), _addr(inp), _addr(out), 1, 0)
    _ret, buf = _bpf(BPF_PROG_TEST_RUN, attr)
    return struct.unpack_from("<I", buf.raw, 4)[0]


def fastpath_supported():
    """(True, "") when a SCHED_CLS program loads here; else (False, why)."""
    try:
        fd = prog_load(Asm().mov(R0, 0).exit().assemble(), "agrprobe")
    except OSError as exc:
        return False, f"bpf(2): {exc.strerror}"
    os.close(fd)
    return True, ""
