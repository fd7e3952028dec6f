"""The seccomp filter of the supervisor and the worker: the system calls they make, and nothing else.

A classic-BPF program of our own, built here from a list of names: no libseccomp (its Python
binding lives in Debian's system site-packages, which the bootstrap's venv cannot see, and its
C library through ctypes would be one more dependency to find at run time) for what is a
straight list of compares. The program checks the architecture first (a call made through
another ABI, x86_64's x32 or the 32-bit compat entry, has other numbers: killed), then
compares the call's number with each allowed one. A few calls are allowed with a condition
on an argument (clone: no new namespaces, and in the worker only threads; socket: five
address families; ioctl: the requests we make), clone3 fails
with ENOSYS (its flags sit in memory the filter cannot read; glibc then falls back to clone),
and anything else kills the whole process (SECCOMP_RET_KILL_PROCESS): the supervisor sees a
worker killed by SIGSYS, logs it, and restarts it.

Filters stack. The supervisor installs SUPERVISOR after dropping its capabilities; each
worker it forks inherits it, and after its start-up adds WORKER, which takes away what only
the supervisor needs (wait4, kill, forking): a call must pass both. SECCOMP_FILTER_FLAG_TSYNC puts
the worker's filter on its relay thread too.

AGRCONFIG_SECCOMP=log (diagnosis only) logs a call outside the list to the kernel log
(audit type 1326, "syscall=N") instead of killing the process.
"""
import ctypes
import errno
import os
import _signal   # not signal.py: its enums would cost the supervisor ~0.5 MiB
import struct

from ..logger import log
from ..record import Record

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
OFF_NR, OFF_ARCH, OFF_ARGS = 0, 4, 16

# Classic BPF: the few opcodes the filter needs.
LD_W_ABS = 0x20   # BPF_LD | BPF_W | BPF_ABS: A = seccomp_data[k:k+4]
JEQ_K = 0x15      # BPF_JMP | BPF_JEQ | BPF_K
JGE_K = 0x35      # BPF_JMP | BPF_JGE | BPF_K
JSET_K = 0x45     # BPF_JMP | BPF_JSET | BPF_K
RET_K = 0x06      # BPF_RET | BPF_K
INSN = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
MAX_INSNS = 4096               # BPF_MAXINSNS

RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

X32_SYSCALL_BIT = 0x40000000
CLONE_THREAD = 0x00010000
# CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: a new user
# namespace needs no capability and would give its creator every capability inside it.
CLONE_NAMESPACES = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

# The numbers of the calls named here, per architecture (from the kernel's
# asm/unistd_64.h and asm-generic/unistd.h; tests/unit/test_seccomp.py compares them). A name
# missing from an architecture's table is a call that architecture does not have (aarch64 has
# openat but no open): the filter skips it there.
_X86_64 = """
    accept=43 accept4=288 access=21 acct=163 add_key=248 bind=49 bpf=321 brk=12 capget=125 capset=126
    chdir=80 chown=92 chroot=161 clock_getres=229 clock_gettime=228 clock_nanosleep=230 clone=56
    clone3=435 close=3 close_range=436 connect=42 delete_module=176 dup=32 dup2=33 dup3=292
    epoll_create1=291 epoll_ctl=233 epoll_pwait=281 epoll_pwait2=441 epoll_wait=232 eventfd2=290
    execve=59 execveat=322 exit=60 exit_group=231 faccessat=269 faccessat2=439 fadvise64=221
    fallocate=285 fchdir=81 fchmod=91 fchown=93 fchownat=260 fcntl=72 fdatasync=75 finit_module=313
    flock=73 fork=57 fsmount=432 fsopen=430 fstat=5 fstatfs=138 fsync=74 ftruncate=77 futex=202
    get_mempolicy=239 getcwd=79 getdents64=217 getegid=108 geteuid=107 getgid=104 getgroups=115
    getpeername=52 getpgid=121 getpid=39 getppid=110 getpriority=140 getrandom=318 getresgid=120
    getresuid=118 getrlimit=97 getrusage=98 getsid=124 getsockname=51 getsockopt=55 gettid=186
    gettimeofday=96 getuid=102 init_module=175 inotify_init1=294 io_uring_enter=426
    io_uring_register=427 io_uring_setup=425 ioctl=16 ioperm=173 iopl=172 ioprio_set=251 kcmp=312
    kexec_load=246 keyctl=250 kill=62 listen=50 lookup_dcookie=212 lseek=8 lstat=6 madvise=28 mbind=237
    membarrier=324 memfd_create=319 mincore=27 mkdir=83 mkdirat=258 mlock=149 mmap=9 mount=165
    move_mount=429 mprotect=10 mremap=25 msync=26 munlock=150 munmap=11 nanosleep=35 newfstatat=262
    nfsservctl=180 open=2 open_tree=428 openat=257 perf_event_open=298 personality=135 pidfd_open=434
    pidfd_send_signal=424 pipe2=293 pivot_root=155 poll=7 ppoll=271 prctl=157 pread64=17 prlimit64=302
    process_vm_readv=310 process_vm_writev=311 pselect6=270 ptrace=101 pwrite64=18 quotactl=179 read=0
    readlink=89 readlinkat=267 readv=19 reboot=169 recvfrom=45 recvmmsg=299 recvmsg=47 rename=82
    renameat=264 renameat2=316 request_key=249 restart_syscall=219 rseq=334 rt_sigaction=13
    rt_sigprocmask=14 rt_sigqueueinfo=129 rt_sigreturn=15 rt_sigtimedwait=128 sched_getaffinity=204
    sched_getparam=143 sched_getscheduler=145 sched_setaffinity=203 sched_setscheduler=144
    sched_yield=24 seccomp=317 select=23 sendfile=40 sendmmsg=307 sendmsg=46 sendto=44 set_mempolicy=238
    set_robust_list=273 set_tid_address=218 setdomainname=171 setgid=106 setgroups=116 sethostname=170
    setns=308 setpgid=109 setpriority=141 setresgid=119 setresuid=117 setrlimit=160 setsid=112
    setsockopt=54 setuid=105 shutdown=48 sigaltstack=131 signalfd4=289 socket=41 socketpair=53
    splice=275 stat=4 statfs=137 statx=332 swapoff=168 swapon=167 sysfs=139 sysinfo=99 syslog=103
    tgkill=234 timerfd_create=283 timerfd_gettime=287 timerfd_settime=286 times=100 tkill=200
    truncate=76 umask=95 umount2=166 uname=63 unlink=87 unlinkat=263 unshare=272 uselib=134
    userfaultfd=323 ustat=136 vfork=58 vhangup=153 wait4=61 waitid=247 write=1 writev=20"""
_AARCH64 = """
    accept=202 accept4=242 acct=89 add_key=217 bind=200 bpf=280 brk=214 capget=90 capset=91 chdir=49
    chroot=51 clock_getres=114 clock_gettime=113 clock_nanosleep=115 clone=220 clone3=435 close=57
    close_range=436 connect=203 delete_module=106 dup=23 dup3=24 epoll_create1=20 epoll_ctl=21
    epoll_pwait=22 epoll_pwait2=441 eventfd2=19 execve=221 execveat=281 exit=93 exit_group=94
    faccessat=48 faccessat2=439 fadvise64=223 fallocate=47 fchdir=50 fchmod=52 fchown=55 fchownat=54
    fcntl=25 fdatasync=83 finit_module=273 flock=32 fsmount=432 fsopen=430 fstat=80 fstatfs=44 fsync=82
    ftruncate=46 futex=98 get_mempolicy=236 getcwd=17 getdents64=61 getegid=177 geteuid=175 getgid=176
    getgroups=158 getpeername=205 getpgid=155 getpid=172 getppid=173 getpriority=141 getrandom=278
    getresgid=150 getresuid=148 getrlimit=163 getrusage=165 getsid=156 getsockname=204 getsockopt=209
    gettid=178 gettimeofday=169 getuid=174 init_module=105 inotify_init1=26 io_uring_enter=426
    io_uring_register=427 io_uring_setup=425 ioctl=29 ioprio_set=30 kcmp=272 kexec_load=104 keyctl=219
    kill=129 listen=201 lookup_dcookie=18 lseek=62 madvise=233 mbind=235 membarrier=283 memfd_create=279
    mincore=232 mkdirat=34 mlock=228 mmap=222 mount=40 move_mount=429 mprotect=226 mremap=216 msync=227
    munlock=229 munmap=215 nanosleep=101 newfstatat=79 nfsservctl=42 open_tree=428 openat=56
    perf_event_open=241 personality=92 pidfd_open=434 pidfd_send_signal=424 pipe2=59 pivot_root=41
    ppoll=73 prctl=167 pread64=67 prlimit64=261 process_vm_readv=270 process_vm_writev=271 pselect6=72
    ptrace=117 pwrite64=68 quotactl=60 read=63 readlinkat=78 readv=65 reboot=142 recvfrom=207
    recvmmsg=243 recvmsg=212 renameat=38 renameat2=276 request_key=218 restart_syscall=128 rseq=293
    rt_sigaction=134 rt_sigprocmask=135 rt_sigqueueinfo=138 rt_sigreturn=139 rt_sigtimedwait=137
    sched_getaffinity=123 sched_getparam=121 sched_getscheduler=120 sched_setaffinity=122
    sched_setscheduler=119 sched_yield=124 seccomp=277 sendfile=71 sendmmsg=269 sendmsg=211 sendto=206
    set_mempolicy=237 set_robust_list=99 set_tid_address=96 setdomainname=162 setgid=144 setgroups=159
    sethostname=161 setns=268 setpgid=154 setpriority=140 setresgid=149 setresuid=147 setrlimit=164
    setsid=157 setsockopt=208 setuid=146 shutdown=210 sigaltstack=132 signalfd4=74 socket=198
    socketpair=199 splice=76 statfs=43 statx=291 swapoff=225 swapon=224 sysinfo=179 syslog=116
    tgkill=131 timerfd_create=85 timerfd_gettime=87 timerfd_settime=86 times=153 tkill=130 truncate=45
    umask=166 umount2=39 uname=160 unlinkat=35 unshare=97 userfaultfd=282 vhangup=58 wait4=260 waitid=95
    write=64 writev=66"""
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_TABLES = {"x86_64": _X86_64, "aarch64": _AARCH64}
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
SECCOMP_NR = {"x86_64": 317, "aarch64": 277}
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
PR_SET_NO_NEW_PRIVS = 38


def table(arch):
    """{name: number} of `arch`'s calls named in this module."""
    return {name: int(nr) for name, _, nr in (item.partition("=") for item in _TABLES[arch].split())}


def native_arch():
    """This machine's architecture as the tables name it, or None."""
    return _MACHINES.get(os.uname().machine.lower())


# -- the lists ---------------------------------------------------------------------------
# What the worker does after its start-up, and Python under it (tracebacks import modules
# and read their source: files must stay readable). capset: privs.raised around bpf(2).
# flock: a process's first look at its namespace's runtime directory (paths.py) locks it;
# where there is syslog (/dev/log) that first look comes after the filter, and without flock
# every worker died at its start.
WORKER = frozenset("""
    read write readv writev pread64 pwrite64 close openat open lseek fstat newfstatat stat lstat statx
    fcntl ioctl dup dup2 dup3 pipe2 getdents64 readlink readlinkat getcwd access faccessat faccessat2
    unlink unlinkat rename renameat renameat2 fsync fdatasync ftruncate mkdir mkdirat fchmod
    flock
    mmap munmap mprotect mremap madvise brk
    rt_sigaction rt_sigprocmask rt_sigreturn sigaltstack restart_syscall
    getpid gettid getppid getuid geteuid getgid getegid uname prlimit64 sched_getaffinity sched_yield getrandom
    clock_gettime clock_getres gettimeofday clock_nanosleep nanosleep
    poll ppoll select pselect6 epoll_create1 epoll_ctl epoll_wait epoll_pwait
    futex set_robust_list rseq clone clone3 exit exit_group
    socket socketpair bind connect listen accept accept4 sendto recvfrom sendmsg recvmsg
    setsockopt getsockopt getsockname getpeername shutdown
    bpf eventfd2 capset
""".split())
# The supervisor forks workers, waits for them and passes SIGTERM on; its filter is the
# workers' too, and each worker installs its own filter under it (prctl for no_new_privs,
# seccomp). The worker signals no one: as uid 0, kill(2) would reach every root process.
SUPERVISOR = WORKER | frozenset("wait4 kill prctl seccomp".split())


class Arg(Record):
    """A condition on argument `index` (its low 32 bits: the kernel reads these as int or
    unsigned int): the bits `clear` clear, the bits `must` set, and where `values` is given,
    one of them."""
    __slots__ = ("index", "clear", "must", "values")
    DEFAULTS = {"clear": 0, "must": 0, "values": None}


# socket(2)'s families: AF_UNIX (control socket, syslog, ethtool's ioctls, glibc's
# if_nametoindex after netlink), AF_NETLINK (rtnetlink, link watch), AF_PACKET (ports). No
# inet socket: nothing of ours needs one (the sandboxed unit refuses them too).
FAMILIES = (1, 16, 17)
# ioctl(2)'s requests: the TAP's (tap.py), SIOCETHTOOL (speed, duplex, features, carrier),
# the interface name and index lookups of the socket module, and Python's own: TCGETS
# (isatty, in open()), FIONBIO (setblocking), FIOCLEX and FIONCLEX (set_inheritable).
IOCTLS = (0x400454CA, 0x400454CB, 0x400454D0, 0x400454D8, 0x800454D2, 0x400454E2,  # TUN*
          0x8946,                  # SIOCETHTOOL
          0x8933, 0x8910,          # SIOCGIFINDEX, SIOCGIFNAME
          0x5401, 0x5421, 0x5451, 0x5450)
_COMMON_ARGS = {"socket": Arg(0, values=FAMILIES), "socketpair": Arg(0, values=(1,)), "ioctl": Arg(1, values=IOCTLS)}
WORKER_ARGS = {**_COMMON_ARGS, "clone": Arg(0, clear=CLONE_NAMESPACES, must=CLONE_THREAD)}
SUPERVISOR_ARGS = {**_COMMON_ARGS, "clone": Arg(0, clear=CLONE_NAMESPACES)}
# Calls that fail instead (glibc retries clone3's ENOSYS with clone, whose flags we can read).
ERRORS = {"clone3": errno.ENOSYS}


# -- the program -------------------------------------------------------------------------
def _insn(code, k=0, jt=0, jf=0):
    return (code, jt, jf, k)


def build(allow, arch, args=None, errors=None, default=RET_KILL_PROCESS):
    """The classic-BPF program (bytes of struct sock_filter) that lets the calls named in
    `allow` through on `arch`, those in `errors` ({name: errno}) fail, those in `args`
    ({name: Arg}) through when their argument meets the condition (else `default`), and
    returns `default` for every other call."""
    args, errors = args or {}, errors or {}
    numbers = table(arch)
    unknown = (set(allow) | set(args) | set(errors)) - set(_all_names())
    if unknown:
        raise ValueError(f"no such system call: {', '.join(sorted(unknown))}")
    prog = [_insn(LD_W_ABS, OFF_ARCH),
            _insn(JEQ_K, AUDIT_ARCH[arch], jt=1),
            _insn(RET_K, RET_KILL_PROCESS),       # another ABI: other numbers, never allowed
            _insn(LD_W_ABS, OFF_NR)]
    if arch == "x86_64":
        prog += [_insn(JGE_K, X32_SYSCALL_BIT, jf=1),
                 _insn(RET_K, RET_KILL_PROCESS)]   # x32 calls share the arch, with this bit set
    for name in sorted(set(errors) & numbers.keys()):
        prog += [_insn(JEQ_K, numbers[name], jf=1),
                 _insn(RET_K, RET_ERRNO | errors[name])]
    for name in sorted((set(allow) - set(errors)) & numbers.keys()):
        rule = args.get(name)
        if rule is None:
            prog += [_insn(JEQ_K, numbers[name], jf=1),
                     _insn(RET_K, RET_ALLOW)]
            continue
        block = _arg_block(rule, default)
        prog += [_insn(JEQ_K, numbers[name], jf=len(block))] + block
    prog.append(_insn(RET_K, default))
    if len(prog) > MAX_INSNS:
        raise ValueError(f"seccomp filter of {len(prog)} instructions: more than {MAX_INSNS}")
    return b"".join(INSN.pack(*i) for i in prog)


def _arg_block(rule, default):
    """The instructions after a call's number matched: A = the argument's low word; refuse
    on a bit of `clear` set, a bit of `must` missing, a value not listed; else allow."""
    block = [_insn(LD_W_ABS, OFF_ARGS + 8 * rule.index)]
    if rule.clear:
        block += [_insn(JSET_K, rule.clear, jf=1),
                  _insn(RET_K, default)]
    for bit in _bits(rule.must):
        block += [_insn(JSET_K, bit, jt=1),
                  _insn(RET_K, default)]
    if rule.values is not None:
        n = len(rule.values)
        block += [_insn(JEQ_K, v, jt=n - i) for i, v in enumerate(rule.values)]
        block += [_insn(RET_K, default)]
    return block + [_insn(RET_K, RET_ALLOW)]


def _bits(mask):
    return [1 << i for i in range(32) if mask >> i & 1]


def _all_names():
    names = set()
    for arch in _TABLES:
        names |= table(arch).keys()
    return names


def worker_filter(arch, default=RET_KILL_PROCESS):
    return build(WORKER, arch, WORKER_ARGS, ERRORS, default)


def supervisor_filter(arch, default=RET_KILL_PROCESS):
    return build(SUPERVISOR, arch, SUPERVISOR_ARGS, ERRORS, default)


def default_action(environ=os.environ):
    """RET_KILL_PROCESS; RET_LOG under AGRCONFIG_SECCOMP=log, to find a missing call."""
    return RET_LOG if environ.get("AGRCONFIG_SECCOMP") == "log" else RET_KILL_PROCESS


# -- installing it -------------------------------------------------------------------------
class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program, arch=None):
    """Install `program` on every thread of this process (no_new_privs first: seccomp needs it
    without CAP_SYS_ADMIN). Raises OSError where the kernel refuses."""
    arch = arch or _native()
    # The interpreter's own symbols include libc's (ctypes.util would run ldconfig).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"PR_SET_NO_NEW_PRIVS: {os.strerror(err)}")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _Prog(len(program) // INSN.size, ctypes.cast(buf, ctypes.c_void_p))
    ret = libc.syscall(ctypes.c_long(SECCOMP_NR[arch]), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                       ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(prog))
    if ret != 0:
        err = ctypes.get_errno() if ret < 0 else errno.EBUSY  # > 0: a thread that cannot sync
        raise OSError(err, f"seccomp: {os.strerror(err)}")


def _native():
    arch = native_arch()
    if arch is None:
        raise OSError(errno.ENOSYS, f"seccomp: no system call table for {os.uname().machine}")
    return arch


def install_worker():
    """The worker's filter, after its start-up (supervisor.py)."""
    arch = _native()
    install(worker_filter(arch, default_action()), arch)


def install_supervisor():
    """The supervisor's filter (every worker's too), after the capability drop (supervisor.py)."""
    arch = _native()
    install(supervisor_filter(arch, default_action()), arch)


def confine(name, role):
    """Install `role`'s filter ("supervisor" or "worker"); a kernel without seccomp filters
    gets a warning, as a refused capability drop does (privs.py)."""
    try:
        (install_supervisor if role == "supervisor" else install_worker)()
    except OSError as exc:
        log.warning("%s: no seccomp filter for the %s: %s", name, role, exc)


def describe_exit(code):
    """How a worker ended, from os.waitstatus_to_exitcode: a filter's kill in words."""
    if code == -_signal.SIGSYS:
        return "killed by signal SIGSYS (seccomp: a system call outside its filter)"
    if code < 0:
        name = next((n for n in dir(_signal) if n.startswith("SIG") and not n.startswith(("SIG_", "SIGRT"))
                     and getattr(_signal, n) == -code), None)
        return f"killed by signal {-code}" + (f" ({name})" if name else "")
    return f"exited with status {code}"
