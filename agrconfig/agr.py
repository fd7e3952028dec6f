"""Front-end side of agr interfaces: find (or revive) the worker and ask it."""
import errno
import time

import psutil

from . import control, ifconfig, netlink, paths
from .errors import AgrError
from .worker import daemon
from .worker import state as statefile

owner_of = statefile.owner_of


def exists(name):
    return statefile.load(name) is not None


def manages(name, op):
    """Does this word on `name` go to an agr worker (rather than plain ifconfig)?"""
    if not paths.is_agr_name(name):
        return False
    if op.word == "create" or exists(name):
        return True
    # An agr-looking name that we did not create: plain words still work on it.
    return op.word not in ("up", "down", "mtu", "address") or netlink.link(name) is None


def _pid_from_file(name):
    try:
        with open(paths.pid_file(name)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _supervisor(name):
    """The live supervisor process of `name` (from the pid file), or None."""
    pid = _pid_from_file(name)
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() != psutil.STATUS_ZOMBIE and f"agrconfig: supervisor {name}" in " ".join(proc.cmdline()):
            return proc
    except psutil.Error:
        pass
    return None


def ensure_worker(name):
    """A worker answers for `name`: start it again from its state file if it died."""
    try:
        control.request(name, "ping", timeout=5.0)
        return
    except control.WorkerGone:
        pass
    saved = statefile.load(name)
    if saved is None:
        raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no such interface")
    tap = netlink.link(name)
    if tap is None or (saved.get("ifindex") and tap.index != saved["ifindex"]):
        # The state belongs to an interface that no longer exists (namespace reused, or
        # agrN deleted while no worker ran): give the ports back and forget it.
        _restore_orphan(saved)
        raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no such interface (stale state removed)")
    supervisor = _supervisor(name)
    if supervisor is not None:
        # Its supervisor is restarting the worker: give it a moment before taking over.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                control.request(name, "ping", timeout=5.0)
                return
            except control.WorkerGone:
                time.sleep(0.05)
        for proc in [*supervisor.children(recursive=True), supervisor]:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs([supervisor], timeout=5)
    daemon.spawn(name, resume=True)


def _restore_orphan(saved):
    from .worker.port import Port
    for orig in saved["ports"]:
        link = netlink.link(index=orig.get("index"))
        if link is not None and link.name == orig.get("name"):
            Port(orig).restore()
    statefile.remove(saved["name"])


def require(name):
    ensure_worker(name)


def request(name, op, **args):
    ensure_worker(name)
    return control.request(name, op, **args)


def create(name):
    if exists(name) or netlink.link(name) is not None:
        if exists(name):
            ensure_worker(name)
        raise AgrError(errno.EEXIST, "SIOCIFCREATE", f"{name} already exists")
    daemon.spawn(name, resume=False)


def destroy(name):
    """Detach and restore every port (NetBSD would say EBUSY), remove agrN, stop the worker."""
    ensure_worker(name)
    pid = _pid_from_file(name)
    control.request(name, "shutdown")
    deadline = time.monotonic() + 10
    while pid and psutil.pid_exists(pid) and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.Error:
            break
        time.sleep(0.02)
    while netlink.link(name) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    if netlink.link(name) is not None:
        raise AgrError(errno.EBUSY, "SIOCIFDESTROY", f"{name} is still there")


def destroy_all():
    for name in statefile.all_names():
        try:
            destroy(name)
        except AgrError:
            pass


def apply(name, op):
    if op.word == "create":
        create(name)
    elif op.word == "destroy":
        destroy(name)
    elif op.word == "agrport":
        request(name, "addport", port=op.arg)
    elif op.word == "-agrport":
        request(name, "delport", port=op.arg)
    elif op.word == "flag":
        key, value = op.arg
        request(name, "setflags", flags={key: value})
    elif op.word == "mtu":
        request(name, "setmtu", mtu=op.arg)
    elif op.word in ("up", "down"):
        ensure_worker(name)
        ifconfig.set_up(name, op.word == "up")
    elif op.word == "address":
        st = request(name, "status")
        if not st["ports"]:
            raise AgrError(errno.EINVAL, "SIOCAIFADDR",
                           "no way to configure agr interfaces without attaching physical interfaces")
        ifconfig.apply_address(name, op.arg)
    else:
        raise AgrError(errno.EINVAL, "SIOCSETAGR", f"{op.word}: not supported")


def worker_status(name):
    """The worker's view of `name`, reviving the worker if needed; None if not ours."""
    if not exists(name):
        return None
    try:
        return control.request(name, "status")  # one round trip when the worker is there
    except control.WorkerGone:
        return request(name, "status")


def worker_statuses(names):
    """{name: status or AgrError} for several agr interfaces, their workers asked concurrently.

    One connection per worker, all at once; a worker that does not answer is then revived
    (serially, from this thread only: spawn() forks) and asked again.
    """
    if not names:
        return {}
    from concurrent.futures import ThreadPoolExecutor

    def ask(name):
        try:
            return control.request(name, "status", timeout=5.0)
        except control.WorkerGone as exc:
            return exc
        except AgrError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(len(names), 16)) as pool:
        out = dict(zip(names, pool.map(ask, names)))
    for name, result in out.items():
        if isinstance(result, control.WorkerGone):
            try:
                out[name] = worker_status(name)
            except AgrError as exc:
                out[name] = exc
    return out


def members():
    """{port name: agr name} for every port of every agr interface, from the state files."""
    out = {}
    for name in statefile.all_names():
        for p in (statefile.load(name) or {}).get("ports", []):
            out.setdefault(p.get("name"), name)
    return out
