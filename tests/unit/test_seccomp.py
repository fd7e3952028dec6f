"""The seccomp filter: its decisions through a small classic-BPF interpreter, its tables against
the kernel's headers, and the real thing installed in forked children."""
import errno
import os
import re
import signal
import struct
import threading

import pytest

from agrconfig.worker import seccomp

AUDIT_ARCH_I386 = 0x40000003
FORK_FLAGS = 0x01200011       # glibc's fork(): CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
THREAD_FLAGS = 0x003D0F00     # glibc's pthread_create: VM, FS, FILES, SIGHAND, THREAD, SYSVSEM, ...
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000


def run(program, nr, arch, args=(0,) * 6):
    """What the kernel would do: run `program` over a struct seccomp_data."""
    data = struct.pack("=IIQ6Q", nr, arch, 0, *(list(args) + [0] * 6)[:6])
    insns = [seccomp.INSN.unpack_from(program, i) for i in range(0, len(program), seccomp.INSN.size)]
    a, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == seccomp.LD_W_ABS:
            a = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code in (seccomp.JEQ_K, seccomp.JGE_K, seccomp.JSET_K):
            taken = {seccomp.JEQ_K: a == k, seccomp.JGE_K: a >= k, seccomp.JSET_K: a & k != 0}[code]
            pc += 1 + (jt if taken else jf)
        elif code == seccomp.RET_K:
            return k
        else:
            raise AssertionError(f"opcode {code:#x} at {pc}")


def decide(which, arch, name, args=(0,) * 6, audit=None):
    program = seccomp.worker_filter(arch) if which == "worker" else seccomp.supervisor_filter(arch)
    return run(program, seccomp.table(arch)[name], seccomp.AUDIT_ARCH[arch] if audit is None else audit, args)


ARCHES = ["x86_64", "aarch64"]
ALLOW, KILL = seccomp.RET_ALLOW, seccomp.RET_KILL_PROCESS


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("which", ["worker", "supervisor"])
def test_the_listed_calls_pass_and_the_rest_kill(arch, which):
    listed = seccomp.WORKER if which == "worker" else seccomp.SUPERVISOR
    rules = seccomp.WORKER_ARGS if which == "worker" else seccomp.SUPERVISOR_ARGS
    numbers = seccomp.table(arch)
    for name in listed:
        if name in numbers and name not in rules and name not in seccomp.ERRORS:
            assert decide(which, arch, name) == ALLOW, name
    for name in ("execve", "execveat", "ptrace", "unshare", "setns", "mount", "init_module", "finit_module",
                 "process_vm_writev", "kexec_load", "setuid", "chown", "fchown", "memfd_create", "io_uring_setup",
                 "tgkill", "tkill"):
        assert name not in listed
        if name in numbers:
            assert decide(which, arch, name) == KILL, name
    for name in numbers.keys() - listed - set(rules) - set(seccomp.ERRORS):
        assert decide(which, arch, name) == KILL, name


@pytest.mark.parametrize("arch", ARCHES)
def test_only_the_supervisor_waits_and_installs_filters(arch):
    for name in ("wait4", "kill", "prctl", "seccomp"):
        assert decide("supervisor", arch, name) == ALLOW
        assert decide("worker", arch, name) == KILL
    assert seccomp.WORKER < seccomp.SUPERVISOR


@pytest.mark.parametrize("arch", ARCHES)
def test_another_abi_is_killed(arch):
    other = seccomp.AUDIT_ARCH["aarch64" if arch == "x86_64" else "x86_64"]
    for audit in (other, AUDIT_ARCH_I386, 0):
        assert decide("supervisor", arch, "read", audit=audit) == KILL


def test_x32_calls_are_killed():
    program = seccomp.supervisor_filter("x86_64")
    read = seccomp.table("x86_64")["read"]
    assert run(program, read, seccomp.AUDIT_ARCH["x86_64"]) == ALLOW
    assert run(program, read | seccomp.X32_SYSCALL_BIT, seccomp.AUDIT_ARCH["x86_64"]) == KILL
    assert run(program, 0xFFFFFFFF, seccomp.AUDIT_ARCH["x86_64"]) == KILL
    # killed by the x32 check itself, not the list's end: even under AGRCONFIG_SECCOMP=log
    logging = seccomp.supervisor_filter("x86_64", seccomp.RET_LOG)
    assert run(logging, read | seccomp.X32_SYSCALL_BIT, seccomp.AUDIT_ARCH["x86_64"]) == KILL
    assert run(logging, seccomp.table("x86_64")["execve"], seccomp.AUDIT_ARCH["x86_64"]) == seccomp.RET_LOG


@pytest.mark.parametrize("arch", ARCHES)
def test_clone_makes_threads_in_the_worker_and_processes_in_the_supervisor_never_namespaces(arch):
    assert decide("worker", arch, "clone", (THREAD_FLAGS,)) == ALLOW
    assert decide("worker", arch, "clone", (FORK_FLAGS,)) == KILL
    assert decide("supervisor", arch, "clone", (FORK_FLAGS,)) == ALLOW
    assert decide("supervisor", arch, "clone", (THREAD_FLAGS,)) == ALLOW
    for which in ("worker", "supervisor"):
        for flags in (THREAD_FLAGS | CLONE_NEWUSER, FORK_FLAGS | CLONE_NEWUSER, FORK_FLAGS | CLONE_NEWNET,
                      0x80 | FORK_FLAGS, 0x20000 | THREAD_FLAGS):
            assert decide(which, arch, "clone", (flags,)) == KILL, (which, hex(flags))
        # the high word of the flags is not looked at; there are no flags there for clone(2)
        assert decide(which, arch, "clone", (THREAD_FLAGS | 1 << 40,)) == ALLOW


@pytest.mark.parametrize("arch", ARCHES)
def test_sockets_of_the_families_we_use_only(arch):
    for which in ("worker", "supervisor"):
        for family in (1, 16, 17):    # unix, netlink, packet
            assert decide(which, arch, "socket", (family, 3)) == ALLOW, family
        for family in (2, 10, 38, 40, 0, 3, 4, 9, 31):   # inet, inet6, alg, vsock, ax25, ipx, ..., bluetooth
            assert decide(which, arch, "socket", (family, 3)) == KILL, family
        assert decide(which, arch, "socketpair", (1, 2)) == ALLOW
        assert decide(which, arch, "socketpair", (2, 2)) == KILL


@pytest.mark.parametrize("arch", ARCHES)
def test_ioctls_of_the_tap_ethtool_and_python_only(arch):
    from agrconfig.net import ethtool
    from agrconfig.worker import tap
    used = [tap.TUNSETIFF, tap.TUNSETPERSIST, tap.TUNSETOFFLOAD, tap.TUNSETVNETHDRSZ, tap.TUNGETIFF,
            tap.TUNSETCARRIER, ethtool.SIOCETHTOOL, 0x5401, 0x5421, 0x5451, 0x5450]
    for which in ("worker", "supervisor"):
        for request in used:
            assert decide(which, arch, "ioctl", (3, request)) == ALLOW, hex(request)
        # TIOCSTI (typing into a terminal), SIOCSIFFLAGS, TUNSETOWNER, SIOCGIFCONF...
        for request in (0x5412, 0x8914, 0x400454CC, 0x8912, 0):
            assert decide(which, arch, "ioctl", (3, request)) == KILL, hex(request)


@pytest.mark.parametrize("arch", ARCHES)
def test_clone3_fails_with_enosys(arch):
    for which in ("worker", "supervisor"):
        assert decide(which, arch, "clone3") == seccomp.RET_ERRNO | errno.ENOSYS


def test_log_mode_logs_instead_of_killing():
    assert seccomp.default_action({"AGRCONFIG_SECCOMP": "log"}) == seccomp.RET_LOG
    assert seccomp.default_action({}) == KILL
    assert seccomp.default_action({"AGRCONFIG_SECCOMP": "off"}) == KILL
    program = seccomp.worker_filter("x86_64", seccomp.RET_LOG)
    nr = seccomp.table("x86_64")["execve"]
    assert run(program, nr, seccomp.AUDIT_ARCH["x86_64"]) == seccomp.RET_LOG
    # another architecture is killed even then: its numbers mean other calls
    assert run(program, nr, AUDIT_ARCH_I386) == KILL


@pytest.mark.parametrize("arch", ARCHES)
def test_a_sleep_stopped_and_continued_goes_on(arch):
    """SIGSTOP and SIGCONT (or a debugger's attach) restart a sleep through restart_syscall."""
    for which in ("worker", "supervisor"):
        assert decide(which, arch, "restart_syscall") == ALLOW


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="no such system call: frobnicate"):
        seccomp.build({"read", "frobnicate"}, "x86_64")


def test_every_listed_name_is_a_call_somewhere_and_the_common_ones_everywhere():
    names = set(seccomp.table("x86_64")) | set(seccomp.table("aarch64"))
    for name in seccomp.SUPERVISOR | set(seccomp.ERRORS) | set(seccomp.SUPERVISOR_ARGS):
        assert name in names, name
    for name in ("read", "write", "openat", "close", "clone", "futex", "bpf", "socket", "recvmsg", "ppoll",
                 "newfstatat", "exit_group", "rt_sigreturn", "getdents64", "mmap"):
        for arch in ARCHES:
            assert name in seccomp.table(arch), (arch, name)


def _header(path):
    text = open(path).read()
    out = {m.group(1): int(m.group(2)) for m in re.finditer(r"#define __NR_(\w+)\s+(\d+)", text)}
    generic = {m.group(1): int(m.group(2)) for m in re.finditer(r"#define __NR3264_(\w+)\s+(\d+)", text)}
    for m in re.finditer(r"#define __NR_(\w+)\s+__NR3264_(\w+)", text):
        out.setdefault(m.group(1), generic.get(m.group(2)))
    return out


@pytest.mark.parametrize("arch, header", [
    ("x86_64", "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    ("aarch64", "/usr/include/asm-generic/unistd.h"),   # arm64's table is the generic one
])
def test_tables_match_the_kernel_headers(arch, header):
    assert os.path.exists(header), f"{header}: install linux-libc-dev to check the table"
    known = _header(header)
    for name, nr in seccomp.table(arch).items():
        assert known.get(name) == nr, (arch, name, nr, known.get(name))


def test_aarch64_has_no_legacy_calls():
    for name in ("open", "stat", "poll", "select", "dup2", "epoll_wait", "fork", "rename", "unlink"):
        assert name not in seccomp.table("aarch64")


def test_the_program_fits_and_is_whole_instructions():
    for arch in ARCHES:
        for program in (seccomp.worker_filter(arch), seccomp.supervisor_filter(arch)):
            assert len(program) % seccomp.INSN.size == 0
            assert len(program) // seccomp.INSN.size <= seccomp.MAX_INSNS


# -- the real kernel ----------------------------------------------------------------------------
def in_child(which, then):
    """Fork, install `which`'s filter, run `then`; the child's exit code (negative: a signal)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            os.close(r)
            (seccomp.install_worker if which == "worker" else seccomp.install_supervisor)()
            with open("/proc/self/status") as f:
                os.write(w, f.read().encode())
            os.close(w)
            code = then()
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        status = f.read()
    _pid, wstatus = os.waitpid(pid, 0)
    assert re.search(r"^Seccomp:\s+2$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    return os.waitstatus_to_exitcode(wstatus)


def _execve():
    os.execv("/bin/true", ["/bin/true"])
    return 1


def _fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return 0


def _thread():
    out = []
    t = threading.Thread(target=lambda: out.append(os.getpid()))
    t.start()
    t.join()
    return 0 if out == [os.getpid()] else 1


def _files():
    """What the worker does with files: a state file's write and rename, a directory read."""
    path = f"/run/seccomp-unit-{os.getpid()}"
    with open(path + ".tmp", "w") as f:
        f.write("x")
        f.flush()
        os.fsync(f.fileno())
    os.rename(path + ".tmp", path)
    os.unlink(path)
    os.listdir("/proc/self/fd")
    return 0


def _unshare_user():
    import ctypes
    ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWUSER)
    return 1


def _exception():
    """A traceback imports and reads source after the filter: that must work."""
    import traceback
    try:
        raise ValueError("x")
    except ValueError:
        return 0 if "ValueError" in traceback.format_exc() else 1


@pytest.mark.parametrize("which", ["worker", "supervisor"])
def test_a_forbidden_call_kills_with_sigsys(which):
    assert in_child(which, _execve) == -signal.SIGSYS
    assert in_child(which, _unshare_user) == -signal.SIGSYS
    assert in_child(which, lambda: os.setuid(0) or 1) == -signal.SIGSYS


def _syslog():
    """Our log through syslog(3) (the integration tests log to a file): a unix datagram socket."""
    import syslog
    syslog.openlog("agrconfig-seccomp-test", 0, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_DEBUG, "a debug line from tests/unit/test_seccomp.py")
    syslog.closelog()
    return 0


def _first_look(d):
    """A process's first look at its namespace's runtime directory `d` (paths.py), which locks
    it: where there is syslog (/dev/log), a worker's first look comes after its filter."""
    from agrconfig import paths
    paths._forget_dead_namespace(d)
    return 0 if d in paths._checked else 1


@pytest.mark.parametrize("which", ["worker", "supervisor"])
def test_what_they_do_still_works(which, tmp_path):
    assert in_child(which, _thread) == 0        # clone3 -> ENOSYS -> clone with CLONE_THREAD
    assert in_child(which, _files) == 0
    assert in_child(which, _exception) == 0
    assert in_child(which, _syslog) == 0
    # flock: without it, every worker died at its start where there is syslog
    assert in_child(which, lambda: _first_look(str(tmp_path))) == 0


def _stopped_sleep():
    """A relative sleep (nanosleep; poll with a timeout is the same), stopped and continued:
    the kernel restarts it with restart_syscall (a debugger's attach does the same).
    time.sleep would not do: its absolute clock_nanosleep is restarted as itself."""
    import ctypes
    import time
    pid = os.getpid()
    r, w = os.pipe()
    if os.fork() == 0:   # the supervisor's filter: a helper that stops and continues us
        os.read(r, 1)
        time.sleep(0.2)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.2)
        os.kill(pid, signal.SIGCONT)
        os._exit(0)
    os.write(w, b"x")
    libc = ctypes.CDLL(None, use_errno=True)
    left = (ctypes.c_long * 2)()
    ret = libc.nanosleep(ctypes.byref((ctypes.c_long * 2)(1, 0)), left)
    os.wait()
    return 0 if ret == 0 else 1


def test_a_stopped_process_goes_on():
    assert in_child("supervisor", _stopped_sleep) == 0


def test_the_worker_cannot_fork_the_supervisor_can():
    assert in_child("worker", _fork) == -signal.SIGSYS
    assert in_child("supervisor", _fork) == 0
    # the supervisor's worker: both filters, stacked
    assert in_child("supervisor", lambda: in_child("worker", _fork) == -signal.SIGSYS and
                    in_child("worker", _thread) == 0 and 7) == 7


def test_the_filter_covers_threads_started_before_it():
    """TSYNC: the relay thread runs before the worker installs its filter."""
    def then():
        go, done = threading.Event(), []
        t = threading.Thread(target=lambda: (go.wait(), done.append(1), _execve()))
        t.start()
        seccomp.install_worker()
        go.set()
        t.join(5)
        return 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            then()
        finally:
            os._exit(1)
    os.close(w)
    os.close(r)
    _pid, wstatus = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wstatus) == -signal.SIGSYS
