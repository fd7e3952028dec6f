"""Runtime paths, keyed by network namespace so every netns has its own agr0."""
import errno
import fcntl
import os
import re
import socket
import stat

RUN_ROOT = os.environ.get("AGRCONFIG_RUNDIR", "/run/agrconfig")
NAME_RE = re.compile(r"agr(0|[1-9][0-9]{0,11})")
IFNAMSIZ = 15


def is_agr_name(name):
    return len(name) <= IFNAMSIZ and bool(NAME_RE.fullmatch(name))


def netns_id():
    """The inode of our network namespace: stable while the namespace exists."""
    return os.stat("/proc/self/ns/net").st_ino


SO_NETNS_COOKIE = 71  # Linux 5.14+; not in Python's socket module
STAMP = "netns-cookie"
_checked = set()


def netns_cookie():
    """The kernel's 64-bit cookie of our network namespace: unlike the inode, never reused
    by a later namespace. None on kernels without SO_NETNS_COOKIE."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            return str(int.from_bytes(s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), "little"))
    except OSError:
        return None


def run_dir(create=False):
    """This namespace's runtime directory; with `create`, made (or repaired) root-only:
    the directories 0700 and every file in them 0600, owned by us, no symbolic links."""
    path = os.path.join(RUN_ROOT, f"netns-{netns_id()}")
    if create:
        for d in (RUN_ROOT, path):
            _private_dir(d)
        with os.scandir(path) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o177:
                    os.chmod(entry.path, 0o600)
    if path not in _checked:
        _forget_dead_namespace(path)
    return path


def _forget_dead_namespace(path):
    """A namespace's inode is reused once it is gone, so the directory may hold the state,
    pid and log files of a dead namespace whose interfaces died with it. The directory is
    stamped with the namespace's cookie, which is never reused: on a mismatch, it is
    emptied before anything reads it. Checked once per process, under a lock on the
    directory so that two first commands in a new namespace do not both empty it."""
    cookie = netns_cookie()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # made, and stamped, by the first command that writes in it
    except OSError:
        _checked.add(path)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        stamp = os.path.join(path, STAMP)
        try:
            with open(stamp) as f:
                old = f.read().strip()
        except FileNotFoundError:
            old = None  # a directory from before stamps: its files are trusted as before
        if cookie is not None and old is not None and old != cookie:
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                        os.unlink(entry.path)
        if cookie is not None and old != cookie:
            tmp = f"{stamp}.tmp"
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600), "w") as f:
                f.write(cookie + "\n")
            os.replace(tmp, stamp)
    finally:
        os.close(fd)
    _checked.add(path)


def _private_dir(path):
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        from .errors import AgrError
        raise AgrError(errno.EPERM, "", f"{path}: not a directory of ours; remove it")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


def state_file(name):
    return os.path.join(run_dir(), f"{name}.state")


def pid_file(name):
    return os.path.join(run_dir(), f"{name}.pid")


def log_file(name):
    """Used where there is no syslog (/dev/log) or AGRCONFIG_LOG=file; removed with the interface."""
    return os.path.join(run_dir(), f"{name}.log")


def lock_file():
    """One lock per namespace: mutating commands are serialized, ports cannot race."""
    return os.path.join(run_dir(create=True), "lock")


def revive_lock_file():
    """Taken while a worker is revived or destroyed (see agr.ensure_worker)."""
    return os.path.join(run_dir(create=True), "revive.lock")


def control_address(name):
    # Abstract socket: Linux scopes it to the network namespace, and it leaves no file behind.
    return f"\0agrconfig/{name}"
