"""Runtime paths, keyed by network namespace so every netns has its own agr0."""
import os
import re

RUN_ROOT = os.environ.get("AGRCONFIG_RUNDIR", "/run/agrconfig")
NAME_RE = re.compile(r"^agr(0|[1-9][0-9]{0,11})$")
IFNAMSIZ = 15


def is_agr_name(name):
    return len(name) <= IFNAMSIZ and bool(NAME_RE.match(name))


def netns_id():
    """The inode of our network namespace: stable while the namespace exists."""
    return os.stat("/proc/self/ns/net").st_ino


def run_dir(create=False):
    path = os.path.join(RUN_ROOT, f"netns-{netns_id()}")
    if create:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(RUN_ROOT, 0o700)
    return path


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
