"""Least privilege: the supervisor and worker keep only the capabilities they use.

  CAP_NET_ADMIN  links, addresses, sysctls under net/, TAP persistence, tc qdiscs and filters
  CAP_NET_RAW    the AF_PACKET sockets on the ports
  CAP_BPF        creating the fast path's maps and loading its programs (with CAP_NET_ADMIN)
  CAP_PERFMON    the verifier refuses the programs' packet-pointer arithmetic without it

Everything else (CAP_SYS_ADMIN, CAP_DAC_OVERRIDE, CAP_SYS_MODULE, ...) is dropped from the
effective, permitted, inheritable, ambient and bounding sets, and no_new_privs is set, so
neither the worker nor anything it could be tricked into running gets them back. The
process stays uid 0: the files it writes are root's, in root's 0700 directory.
"""
import ctypes
import errno
import os

CAP_NET_ADMIN, CAP_NET_RAW, CAP_PERFMON, CAP_BPF = 12, 13, 38, 39
KEEP = (CAP_NET_ADMIN, CAP_NET_RAW, CAP_PERFMON, CAP_BPF)
NAMES = {CAP_NET_ADMIN: "cap_net_admin", CAP_NET_RAW: "cap_net_raw", CAP_PERFMON: "cap_perfmon", CAP_BPF: "cap_bpf"}

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc():
    # The interpreter's own symbols include libc's; ctypes.util would import subprocess,
    # tempfile and shutil (~1 MiB) into the supervisor to find the same library.
    return ctypes.CDLL(None, use_errno=True)


def last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def mask(caps):
    out = 0
    for cap in caps:
        out |= 1 << cap
    return out


def drop(keep=KEEP):
    """Keep only `keep`; raises OSError if the kernel refuses (the caller decides)."""
    libc = _libc()
    last = last_cap()
    keep = [c for c in keep if c <= last]  # an old kernel without CAP_BPF: net_admin covers bpf(2)
    for cap in range(last + 1):
        if cap not in keep and libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            if err != errno.EINVAL:
                raise OSError(err, f"PR_CAPBSET_DROP {cap}: {os.strerror(err)}")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    bits = mask(keep)
    data = (_Data * 2)()
    for i in range(2):
        word = (bits >> (32 * i)) & 0xFFFFFFFF
        data[i].effective = data[i].permitted = word
        data[i].inheritable = 0
    hdr = _Header(LINUX_CAPABILITY_VERSION_3, 0)
    if libc.capset(ctypes.byref(hdr), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"PR_SET_NO_NEW_PRIVS: {os.strerror(err)}")
    return keep
