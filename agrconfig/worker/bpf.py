"""A tiny eBPF assembler and the bpf(2) calls agrconfig needs, from Python with ctypes.

No clang and no object files: the fast path is a few hundred instructions,
assembled here with symbolic labels.  Only what agrconfig uses is covered:

- encoding: ALU and ALU32 (register or immediate), byte swaps, jumps (64- and
  32-bit compares) to labels, LDX/STX/ST of 1/2/4/8 bytes, atomic add (and fetch-add), the
  16-byte ld_imm64 (plain or a map reference, BPF_PSEUDO_MAP_FD), helper calls,
  exit.  Instructions are 8 bytes: opcode, dst:4|src:4, signed 16-bit offset,
  signed 32-bit immediate, little-endian (we refuse big-endian hosts: the flow
  hash is defined over little-endian loads).
- bpf(2): map create/lookup/update (ARRAY, PERCPU_ARRAY, HASH; an ARRAY may be created
  mmap-able and mapped into the process), program load
  (SCHED_CLS, licence GPL so that bpf_redirect is allowed) with the verifier's
  log in the error, and BPF_PROG_TEST_RUN for tests.

Every failure of the system call is an OSError carrying the errno.
"""
import ctypes
import errno
import os
import struct
import sys

from . import privs

# -- instruction encoding -------------------------------------------------------------------
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_JMP32, BPF_ALU64 = range(8)
BPF_W, BPF_H, BPF_B, BPF_DW = 0x00, 0x08, 0x10, 0x18
BPF_IMM, BPF_MEM, BPF_ATOMIC = 0x00, 0x60, 0xC0
BPF_K, BPF_X = 0x00, 0x08
ALU_OPS = {"add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "or": 0x40, "and": 0x50, "lsh": 0x60,
           "rsh": 0x70, "neg": 0x80, "mod": 0x90, "xor": 0xA0, "mov": 0xB0, "arsh": 0xC0}
JMP_OPS = {"jeq": 0x10, "jgt": 0x20, "jge": 0x30, "jset": 0x40, "jne": 0x50, "jsgt": 0x60,
           "jsge": 0x70, "jlt": 0xA0, "jle": 0xB0, "jslt": 0xC0, "jsle": 0xD0}
BPF_JA, BPF_CALL, BPF_EXIT = 0x00, 0x80, 0x90
BPF_END, BPF_TO_LE, BPF_TO_BE = 0xD0, 0x00, 0x08
BPF_ADD = 0x00           # atomic operation codes live in the immediate
BPF_FETCH = 0x01         # ... with this bit, the old value comes back in the source register
SIZES = {1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW}
BPF_PSEUDO_MAP_FD = 1
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)

INSN = struct.Struct("<BBhi")


class AsmError(ValueError):
    """A program that cannot be encoded: bad register, immediate, offset or label."""


def _imm32(value):
    """Immediates are signed 32-bit; unsigned spellings of the same bits are accepted."""
    if not isinstance(value, int) or not -(1 << 31) <= value < (1 << 32):
        raise AsmError(f"immediate {value!r} does not fit in 32 bits")
    return value - (1 << 32) if value >= (1 << 31) else value


def _off16(value):
    if not isinstance(value, int) or not -(1 << 15) <= value < (1 << 15):
        raise AsmError(f"offset {value!r} does not fit in 16 bits")
    return value


def _reg(r):
    if not isinstance(r, int) or isinstance(r, bool) or not 0 <= r <= 10:
        raise AsmError(f"bad register {r!r}")
    return r


def _size(size):
    if size not in SIZES:
        raise AsmError(f"bad access size {size!r} (1, 2, 4 or 8)")
    return SIZES[size]


class Asm:
    """Collects instructions; jumps name labels, resolved by assemble().

    Every method returns self, so code reads as a chain:
        Asm().mov(R0, 0).jmp("jeq", R1, "out", imm=0).mov(R0, 1).label("out").exit()
    """

    def __init__(self):
        self.insns = []      # [opcode, dst, src, off (int or label), imm], one per 8-byte slot
        self.labels = {}
        self._fresh = 0

    def __len__(self):
        return len(self.insns)

    def _emit(self, op, dst=0, src=0, off=0, imm=0):
        if not isinstance(off, str):
            off = _off16(off)
        self.insns.append([op, _reg(dst), _reg(src), off, _imm32(imm)])
        return self

    def label(self, name):
        if name in self.labels:
            raise AsmError(f"label {name!r} defined twice")
        self.labels[name] = len(self.insns)
        return self

    def fresh(self, stem="L"):
        """A label name not used yet (for code emitted more than once)."""
        self._fresh += 1
        return f"{stem}.{self._fresh}"

    # -- ALU: alu("add", R1, 5) or alu("add", R1, src=R2); alu32 for the 32-bit forms --------
    def alu(self, op, dst, imm=None, src=None, wide=True):
        if op not in ALU_OPS:
            raise AsmError(f"unknown ALU operation {op!r}")
        cls = BPF_ALU64 if wide else BPF_ALU
        if src is not None:
            if imm is not None:
                raise AsmError("give an immediate or a source register, not both")
            return self._emit(cls | ALU_OPS[op] | BPF_X, dst, src)
        if imm is None and op != "neg":
            raise AsmError(f"{op} needs an immediate or a source register")
        return self._emit(cls | ALU_OPS[op] | BPF_K, dst, 0, 0, imm or 0)

    def alu32(self, op, dst, imm=None, src=None):
        return self.alu(op, dst, imm, src, wide=False)

    def mov(self, dst, imm=None, src=None):
        return self.alu("mov", dst, imm, src)

    def mov32(self, dst, imm=None, src=None):
        return self.alu32("mov", dst, imm, src)

    def be(self, bits, dst):
        """Host to big-endian (a byte swap here), zero-extending: be(16, R1)."""
        if bits not in (16, 32, 64):
            raise AsmError(f"bad swap width {bits}")
        return self._emit(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bits)

    def be16(self, dst):
        return self.be(16, dst)

    # -- memory -----------------------------------------------------------------------------
    def ldx(self, size, dst, src, off):
        """dst = *(size *)(src + off)"""
        return self._emit(BPF_LDX | BPF_MEM | _size(size), dst, src, off)

    def stx(self, size, dst, off, src):
        """*(size *)(dst + off) = src"""
        return self._emit(BPF_STX | BPF_MEM | _size(size), dst, src, off)

    def st(self, size, dst, off, imm):
        """*(size *)(dst + off) = imm"""
        return self._emit(BPF_ST | BPF_MEM | _size(size), dst, 0, off, imm)

    def atomic_add(self, size, dst, off, src):
        """*(size *)(dst + off) += src, atomically (size 4 or 8)."""
        if size not in (4, 8):
            raise AsmError("atomic add is 4 or 8 bytes")
        return self._emit(BPF_STX | BPF_ATOMIC | SIZES[size], dst, src, off, BPF_ADD)

    def atomic_fetch_add(self, size, dst, off, src):
        """src = *(size *)(dst + off), then that += the old src, atomically and fully ordered
        (Linux 5.12; with src 0 it is a load that no load before it can pass, on any CPU)."""
        if size not in (4, 8):
            raise AsmError("atomic add is 4 or 8 bytes")
        return self._emit(BPF_STX | BPF_ATOMIC | SIZES[size], dst, src, off, BPF_ADD | BPF_FETCH)

    def ld_imm64(self, dst, value, src=0):
        """The 16-byte load of a 64-bit immediate (two slots)."""
        if not -(1 << 63) <= value < (1 << 64):
            raise AsmError(f"immediate {value!r} does not fit in 64 bits")
        value &= (1 << 64) - 1
        lo, hi = value & 0xFFFFFFFF, value >> 32
        self._emit(BPF_LD | BPF_DW | BPF_IMM, dst, src, 0, lo)
        return self._emit(0, 0, 0, 0, hi)

    def ld_map_fd(self, dst, fd):
        """dst = the map behind file descriptor fd (the kernel swaps the fd for the map)."""
        return self.ld_imm64(dst, fd, src=BPF_PSEUDO_MAP_FD)

    # -- control flow -----------------------------------------------------------------------
    def jmp(self, op, dst, label, imm=None, src=None, wide=True):
        """if dst <op> imm|src: goto label.  wide=False compares the low 32 bits."""
        if op == "ja":
            return self.ja(label)
        if op not in JMP_OPS:
            raise AsmError(f"unknown jump {op!r}")
        cls = BPF_JMP if wide else BPF_JMP32
        if src is not None:
            if imm is not None:
                raise AsmError("give an immediate or a source register, not both")
            return self._emit(cls | JMP_OPS[op] | BPF_X, dst, src, label)
        if imm is None:
            raise AsmError(f"{op} needs an immediate or a source register")
        return self._emit(cls | JMP_OPS[op] | BPF_K, dst, 0, label, imm)

    def jmp32(self, op, dst, label, imm=None, src=None):
        return self.jmp(op, dst, label, imm, src, wide=False)

    def ja(self, label):
        return self._emit(BPF_JMP | BPF_JA, 0, 0, label, 0)

    def call(self, helper):
        return self._emit(BPF_JMP | BPF_CALL, 0, 0, 0, helper)

    def exit(self):
        return self._emit(BPF_JMP | BPF_EXIT)

    def assemble(self):
        """The program as bytes; labels become relative offsets (target - next instruction)."""
        out = bytearray()
        for i, (op, dst, src, off, imm) in enumerate(self.insns):
            if isinstance(off, str):
                if off not in self.labels:
                    raise AsmError(f"unknown label {off!r}")
                target = self.labels[off]
                if target >= len(self.insns):
                    raise AsmError(f"label {off!r} marks no instruction (end of program)")
                off = target - i - 1
                if not -(1 << 15) <= off < (1 << 15):
                    raise AsmError(f"jump to {self.insns[i][3]!r} out of range ({off})")
            out += INSN.pack(op, dst | (src << 4), off, imm)
        return bytes(out)


# -- bpf(2) ---------------------------------------------------------------------------------------
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD, BPF_PROG_TEST_RUN = 0, 1, 2, 5, 10
BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY = 1, 2, 6
PERCPU_TYPES = {BPF_MAP_TYPE_PERCPU_ARRAY}
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_FUNC_map_lookup_elem, BPF_FUNC_redirect, BPF_FUNC_skb_pull_data = 1, 23, 39
BPF_FUNC_map_update_elem, BPF_FUNC_map_delete_elem, BPF_FUNC_ktime_get_ns = 2, 3, 5
BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY = 3, 4
BPF_F_INGRESS = 1
BPF_F_MMAPABLE = 1 << 10  # map_flags: the ARRAY's values can be mmap()ed (Linux 5.5)
BPF_ANY = 0
TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7
ATTR_SIZE = 144          # union bpf_attr as far as we use it; the kernel wants the rest zero
SYSCALL_NR = {"x86_64": 321, "amd64": 321, "aarch64": 280, "arm64": 280}
LOG_SIZE = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def syscall_number(machine):
    """bpf(2)'s number on `machine` (os.uname().machine)."""
    nr = SYSCALL_NR.get(machine.lower())
    if nr is None:
        raise OSError(errno.ENOSYS, f"bpf(2) number unknown for {machine}")
    return nr


_NR = []


def _nr():
    if not _NR:     # asked once: uname(2) at every bpf(2) call was a syscall for nothing
        _NR.append(ctypes.c_long(syscall_number(os.uname().machine)))
    return _NR[0]


def _bpf(cmd, attr):
    """bpf(cmd, attr): returns (result, attr buffer after the call); OSError on failure."""
    buf = ctypes.create_string_buffer(bytes(attr).ljust(ATTR_SIZE, b"\0"), ATTR_SIZE)
    with privs.raised():   # CAP_BPF and CAP_PERFMON for this call only (privs.py)
        ret = _libc.syscall(_nr(), ctypes.c_long(cmd), buf, ctypes.c_long(ATTR_SIZE))
        code = ctypes.get_errno()
    if ret < 0:
        raise OSError(code, os.strerror(code))
    return ret, buf


def _retry_memlock(fn):
    """Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: raise it once on EPERM."""
    try:
        return fn()
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
        import resource
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (OSError, ValueError):
            raise exc from None
        return fn()


def _addr(buf):
    return ctypes.addressof(buf)


def possible_cpus():
    """How many per-CPU copies a per-CPU map holds (/sys/devices/system/cpu/possible)."""
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


class Map:
    """A BPF map file descriptor with its geometry; lookups and updates take bytes.

    For per-CPU maps a value is the concatenation of one value per possible CPU,
    each padded to 8 bytes (what bpf(2) reads and writes); see values()/fill().
    """

    def __init__(self, map_type, key_size, value_size, max_entries, name="", flags=0):
        self.map_type, self.key_size, self.value_size = map_type, key_size, value_size
        self.max_entries = max_entries
        self.percpu = map_type in PERCPU_TYPES
        self.ncpus = possible_cpus() if self.percpu else 1
        self.stride = (value_size + 7) & ~7 if self.percpu else value_size
        self.fd = map_create(map_type, key_size, value_size, max_entries, name, flags)

    def mmap(self):
        """The values of an ARRAY created with BPF_F_MMAPABLE, shared with the programs: value k
        at offset k * (value_size rounded up to 8). Aligned 8-byte loads and stores through it
        are single accesses, as the programs' own are."""
        import mmap
        size = -(-((self.value_size + 7) & ~7) * self.max_entries // mmap.PAGESIZE) * mmap.PAGESIZE
        return mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    @property
    def user_size(self):
        return self.stride * self.ncpus

    def _key(self, key):
        return key.to_bytes(self.key_size, sys.byteorder) if isinstance(key, int) else key

    def lookup(self, key):
        return map_lookup(self.fd, self._key(key), self.user_size)

    def update(self, key, value):
        if len(value) != self.user_size:
            raise ValueError(f"value of {len(value)} bytes for a map that takes {self.user_size}")
        map_update(self.fd, self._key(key), value)

    def values(self, key):
        """Per-CPU map: the list of per-CPU values (bytes of value_size); else [value]."""
        raw = self.lookup(key)
        if raw is None:
            return []
        return [raw[i * self.stride:i * self.stride + self.value_size] for i in range(self.ncpus)]

    def fill(self, key, value):
        """Set every CPU's copy (or the one value) to `value`."""
        self.update(key, value.ljust(self.stride, b"\0") * self.ncpus if self.percpu else value)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def map_create(map_type, key_size, value_size, max_entries, name="", flags=0):
    """A new map's file descriptor (close-on-exec, as every bpf(2) fd)."""
    attr = struct.pack("<IIIIIII16s", map_type, key_size, value_size, max_entries, flags, 0, 0,
                       name.encode()[:15])
    fd, _ = _retry_memlock(lambda: _bpf(BPF_MAP_CREATE, attr))
    return fd


def map_update(fd, key, value, flags=BPF_ANY):
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value, len(value))
    _bpf(BPF_MAP_UPDATE_ELEM, struct.pack("<IIQQQ", fd, 0, _addr(k), _addr(v), flags))


def map_lookup(fd, key, value_size):
    """The value as bytes (value_size of them: for per-CPU maps, all CPUs), None when absent."""
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value_size)
    try:
        _bpf(BPF_MAP_LOOKUP_ELEM, struct.pack("<IIQQ", fd, 0, _addr(k), _addr(v)))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return v.raw


def map_delete(fd, key):
    """Delete a key; False if it was not there."""
    k = ctypes.create_string_buffer(key, len(key))
    try:
        _bpf(BPF_MAP_DELETE_ELEM, struct.pack("<IIQ", fd, 0, _addr(k)))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    return True


def map_keys(fd, key_size):
    """Every key of a HASH map (BPF_MAP_GET_NEXT_KEY from none), as bytes."""
    out, nxt = [], ctypes.create_string_buffer(key_size)
    cur = None
    while True:
        attr = struct.pack("<IIQQ", fd, 0, 0 if cur is None else _addr(cur), _addr(nxt))
        try:
            _bpf(BPF_MAP_GET_NEXT_KEY, attr)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return out
            raise
        out.append(nxt.raw)
        cur = ctypes.create_string_buffer(nxt.raw, key_size)
        if len(out) > 1 << 20:
            return out


def _prog_attr(prog_type, code, license_, log, log_level, name):
    return struct.pack("<IIQQIIQII16s", prog_type, len(code) // 8, _addr(code), _addr(license_),
                       log_level, len(log) if log is not None else 0, _addr(log) if log is not None else 0,
                       0, 0, name.encode()[:15])


def prog_load(insns, name="agrconfig", prog_type=BPF_PROG_TYPE_SCHED_CLS):
    """Load a program; returns its fd.  A refusal raises OSError whose text ends with the
    verifier's log (the load is repeated with the log on only when the first one fails: a
    log that overflows its buffer would itself fail the load)."""
    if len(insns) % 8 or not insns:
        raise ValueError("a program is a non-empty sequence of 8-byte instructions")
    license_ = ctypes.create_string_buffer(b"GPL")  # bpf_redirect is a GPL-only helper
    code = ctypes.create_string_buffer(insns, len(insns))
    try:
        fd, _ = _retry_memlock(lambda: _bpf(BPF_PROG_LOAD, _prog_attr(prog_type, code, license_, None, 0, name)))
        return fd
    except OSError as exc:
        first = exc
    log = ctypes.create_string_buffer(LOG_SIZE)
    try:
        fd, _ = _bpf(BPF_PROG_LOAD, _prog_attr(prog_type, code, license_, log, 1, name))
    except OSError:
        pass
    else:          # loaded the second time: report the first failure anyway
        os.close(fd)
    text = log.value.decode(errors="replace").strip()
    raise OSError(first.errno, f"{first.strerror} loading {name}; verifier: {text[-3000:] or '(no log)'}")


def prog_test_run(fd, data, repeat=1):
    """Run a program on `data` (a frame) in the kernel (BPF_PROG_TEST_RUN); its return value."""
    inp = ctypes.create_string_buffer(data, len(data))
    out = ctypes.create_string_buffer(len(data) + 512)
    attr = struct.pack("<IIIIQQII", fd, 0, len(data), len(out), _addr(inp), _addr(out), repeat, 0)
    _ret, buf = _bpf(BPF_PROG_TEST_RUN, attr)
    return struct.unpack_from("<I", buf.raw, 4)[0]


# -- tcx (Linux 6.6): programs run straight from a device's hook, without tc's classifier --------
# Only what needs no CAP_SYS_ADMIN (which the worker drops): a program already attached is
# named by its id, as a relative position (BPF_F_ID), never turned into a descriptor.
BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_QUERY = 8, 9, 15, 16
BPF_TCX_INGRESS, BPF_TCX_EGRESS = 46, 47
BPF_F_REPLACE, BPF_F_BEFORE, BPF_F_AFTER, BPF_F_ID = 1 << 2, 1 << 3, 1 << 4, 1 << 5
TCX_MAX = 64                                 # programs read back from one hook


def tcx_attach(ifindex, attach_type, prog_fd, before_id=None):
    """Attach a SCHED_CLS program to a device's tcx hook: last, or just before the program
    whose id is `before_id`. It stays when our descriptors close, until detached or the device
    goes."""
    flags, rel = (BPF_F_BEFORE | BPF_F_ID, before_id) if before_id else (0, 0)
    _bpf(BPF_PROG_ATTACH, struct.pack("<IIIIIIQ", ifindex, prog_fd, attach_type, flags, 0, rel, 0))


def tcx_replace(ifindex, attach_type, prog_fd, old_fd):
    """Put `prog_fd` in the place of our program `old_fd` on the hook (BPF_F_REPLACE): in place,
    so unlike an attach or a detach no RCU grace period is waited for. ENOENT if `old_fd` is
    not there."""
    _bpf(BPF_PROG_ATTACH, struct.pack("<IIIIIIQ", ifindex, prog_fd, attach_type, BPF_F_REPLACE, old_fd, 0, 0))


def tcx_detach(ifindex, attach_type, prog_fd=0, flags=0, relative_id=0, revision=0):
    """Detach our program `prog_fd`, or (prog_fd 0) the one BPF_F_BEFORE/BPF_F_AFTER the
    program `relative_id` (none: the first / the last), if the hook is still at `revision`
    (else ESTALE)."""
    if relative_id:
        flags |= BPF_F_ID
    _bpf(BPF_PROG_DETACH, struct.pack("<IIIIIIQ", ifindex, prog_fd, attach_type, flags, 0, relative_id, revision))


def tcx_query(ifindex, attach_type):
    """(ids of the programs on a device's tcx hook in the order they run, the hook's revision);
    OSError EINVAL on a kernel without tcx."""
    ids = (ctypes.c_uint32 * TCX_MAX)()
    attr = struct.pack("<IIIIQI", ifindex, attach_type, 0, 0, _addr(ids), TCX_MAX)
    _ret, buf = _bpf(BPF_PROG_QUERY, attr)
    count, = struct.unpack_from("<I", buf.raw, 24)
    revision, = struct.unpack_from("<Q", buf.raw, 56)
    return list(ids[:count]), revision


def prog_id(fd):
    """The kernel's id of our program `fd`."""
    info = ctypes.create_string_buffer(8)          # struct bpf_prog_info: type, id
    _bpf(BPF_OBJ_GET_INFO_BY_FD, struct.pack("<IIQ", fd, len(info), _addr(info)))
    return struct.unpack_from("<I", info.raw, 4)[0]


def fastpath_supported():
    """(True, "") when this kernel takes our maps and a SCHED_CLS program; else (False, why)."""
    if sys.byteorder != "little":
        return False, "big-endian host (the flow hash is defined over little-endian loads)"
    fds = []
    step = "array map"       # the why names what failed (diagnose tells a map type from the rest)
    try:
        fds.append(map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1, "agr_probe"))
        step = "per-CPU array map"
        fds.append(map_create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 1, "agr_probe"))
        step = "SCHED_CLS program"
        fds.append(prog_load(Asm().mov(R0, TC_ACT_OK).exit().assemble(), "agr_probe"))
    except OSError as exc:
        return False, f"bpf(2) {step}: {exc.strerror or exc}"
    finally:
        for fd in fds:
            os.close(fd)
    return True, ""
