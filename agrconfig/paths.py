"""Runtime paths, keyed by network namespace so every netns has its own agr0."""
import errno
import os
import re
import stat

RUN_ROOT = os.environ.get("AGRCONFIG_RUNDIR", "/run/agrconfig")
NAME_RE = re.compile(r"agr(0|[1-9][0-9]{0,11})")
IFNAMSIZ = 15


def is_agr_name(name):
    return len(name) <= IFNAMSIZ and bool(NAME_RE.fullmatch(name))


def netns_id():
    """The inode of our network namespace: stable while the namespace exists."""
    return os.stat("/proc/self/ns/net").st_ino


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
    return path


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
    """Used only where there is no syslog (/dev/log); removed with the interface."""
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
