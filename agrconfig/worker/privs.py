"""Least privilege: the supervisor and worker run as the user _agrconfig and keep only the
capabilities they use.

  CAP_NET_ADMIN  links, addresses, sysctls under net/, TAP persistence, tc qdiscs and filters
  CAP_NET_RAW    the AF_PACKET sockets on the ports
  CAP_BPF        creating the fast path's maps and loading its programs (with CAP_NET_ADMIN)
  CAP_PERFMON    the verifier refuses the programs' packet-pointer arithmetic without it

Everything else (CAP_SYS_ADMIN, CAP_DAC_OVERRIDE, CAP_SETUID, ...) is dropped from the
effective, permitted, inheritable, ambient and bounding sets, and no_new_privs is set, so
neither the worker nor anything it could be tricked into running gets them back.

The supervisor is exec'd as root and changes its uid here, before the drop removes
CAP_SETUID: the bounding set first (that needs CAP_SETPCAP), then the groups, the gids and,
with PR_SET_KEEPCAPS, the uids; capset then raises the kept capabilities again (a uid change
clears the effective set). Workers are forked and inherit it all; ambient capabilities play
no part. CAP_BPF and CAP_PERFMON (they let a process read kernel memory) stay in the permitted
set only: `raised` puts them into the effective set for each bpf(2) call and takes them out
again, so the running worker's effective set is CAP_NET_ADMIN and CAP_NET_RAW.
"""
import _thread
import ctypes
import errno
import os

from .. import paths
from ..errors import AgrError

CAP_NET_ADMIN, CAP_NET_RAW, CAP_PERFMON, CAP_BPF = 12, 13, 38, 39
KEEP = (CAP_NET_ADMIN, CAP_NET_RAW, CAP_PERFMON, CAP_BPF)
EFFECTIVE = (CAP_NET_ADMIN, CAP_NET_RAW)          # the steady state; `raised` adds the rest
WHILE_LOADING = (CAP_BPF, CAP_PERFMON)
USER = paths.WORKER_USER
NAMES = {CAP_NET_ADMIN: "cap_net_admin", CAP_NET_RAW: "cap_net_raw", CAP_PERFMON: "cap_perfmon", CAP_BPF: "cap_bpf"}

PR_SET_KEEPCAPS, PR_CAPBSET_DROP = 8, 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_LIBC = []


def _libc():
    # The interpreter's own symbols include libc's; ctypes.util would import subprocess,
    # tempfile and shutil (~1 MiB) into the supervisor to find the same library. Made once:
    # a CDLL costs tens of microseconds, and `raised` runs around every bpf(2) call.
    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def permitted():
    """Our permitted set as a mask (CapPrm of /proc/self/status), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapPrm:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def mask(caps):
    out = 0
    for cap in caps:
        out |= 1 << cap
    return out


def user(environ=os.environ):
    """(uid, gid) of the workers' user, or AgrError saying how to create it. Never root and
    never a shared user (nobody): its other processes could signal and trace the worker.
    AGRCONFIG_TEST_USER names another user; only the tests set it (to a missing one)."""
    import pwd
    name = environ.get("AGRCONFIG_TEST_USER", USER)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise AgrError(errno.ENOENT, "SIOCIFCREATE",
                       f"user {name} does not exist; create it: useradd --system --no-create-home "
                       f"--home-dir /nonexistent --shell /usr/sbin/nologin {name} "
                       "(the package's postinst and scripts/bootstrap do)") from None
    if entry.pw_uid == 0 or entry.pw_gid == 0 or entry.pw_name in ("nobody", "nogroup") or entry.pw_uid == 65534:
        raise AgrError(errno.EPERM, "SIOCIFCREATE",
                       f"user {name} is uid {entry.pw_uid}, gid {entry.pw_gid}: the worker needs a "
                       f"user of its own (not root, not nobody); recreate {name}")
    return entry.pw_uid, entry.pw_gid


def _check(ret, what, libc):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _capset_args(effective, permitted):
    """capset(2)'s header and data for these masks (made once per state: `raised`)."""
    data = (_Data * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = 0
    return ctypes.byref(_Header(LINUX_CAPABILITY_VERSION_3, 0)), data


def _capset(libc, effective, permitted):
    _check(libc.capset(*_capset_args(effective, permitted)), "capset", libc)


_states = None    # capset's arguments for (outside, inside) `raised`, made by drop()
# Capabilities are a thread's own: each thread counts its running `raised` bodies (the
# outermost one raises and lowers). _thread's local, as threading is not imported here.
_running = _thread._local()


def drop(keep=KEEP, uid=None, gid=None):
    """Keep only `keep` (raised into the effective set except WHILE_LOADING), as `uid`/`gid`
    if given; raises OSError if the kernel refuses (the caller decides)."""
    global _states
    libc = _libc()
    last = last_cap()
    keep = [c for c in keep if c <= last]  # an old kernel without CAP_BPF: net_admin covers bpf(2)
    have = permitted()
    if have is not None:   # started without some (a bounding set without CAP_BPF): keep the rest
        keep = [c for c in keep if have >> c & 1]
    for cap in range(last + 1):
        if cap not in keep and libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            if err != errno.EINVAL:
                raise OSError(err, f"PR_CAPBSET_DROP {cap}: {os.strerror(err)}")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if uid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        _check(libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "PR_SET_KEEPCAPS", libc)
        os.setresuid(uid, uid, uid)   # keeps the permitted set; clears the effective one
        _check(libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "PR_SET_KEEPCAPS", libc)
    bits = mask(keep)
    lowered = bits & ~mask(WHILE_LOADING)
    states = (_capset_args(lowered, bits), _capset_args(bits, bits))
    _check(libc.capset(*states[0]), "capset", libc)
    _states = states
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS", libc)
    return keep


class raised:
    """CAP_BPF and CAP_PERFMON in the effective set for the body (bpf.py's calls, or a batch
    of them such as the data path's counters for a status), when drop() took them out of it;
    nothing otherwise (the front end, tests as root). Bodies nest: only the outermost raises
    and lowers. A class, not contextlib: the supervisor does not import contextlib."""

    def __enter__(self):
        depth = getattr(_running, "depth", 0)
        if _states is not None and depth == 0:
            libc = _libc()
            _check(libc.capset(*_states[1]), "capset", libc)
        _running.depth = depth + 1

    def __exit__(self, *exc):
        _running.depth -= 1
        if _states is not None and _running.depth == 0:
            libc = _libc()
            _check(libc.capset(*_states[0]), "capset", libc)
