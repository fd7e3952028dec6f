"""Workers seen from the client: find, spawn, revive, upgrade and destroy them; ask them."""
import errno
import os
import time

from .. import __version__, paths, worker
from ..errors import AgrError
from ..ipc import client as control
from ..ipc import protocol
from ..ipc.protocol import PROTOCOL_VERSION
from ..net import rtnl
from ..status import AggregateStatus
from ..logger import log



# -- who may do what ----------------------------------------------------------------------------
# Anyone may look, only root may change (issue 24). The workers decide per request from the
# peer's uid (ipc/protocol.refusal); the front end says the same earlier (commands.py), and
# a user's command reads nothing of the runtime directory, which is root's: it asks the
# workers over the control socket and the kernel over rtnetlink.

def privileged():
    """Is this command root's: may it change agr interfaces, read their state files and
    revive their workers?"""
    return os.geteuid() == 0


class Unserved(AgrError):
    """A user's command (not root's) found agrN but no worker that serves it: none answers, or
    one of an earlier release that answers root only. Only the kernel's view can be shown;
    root must revive or upgrade the worker."""


def _looks_ours(link):
    """What a user can tell of an agr interface without the runtime directory: agrN's TAP."""
    return link is not None and paths.is_agr_name(link.name) and link.kind == "tun"


def names():
    """The agr interfaces of this network namespace: root's from the state files, a user's
    from the kernel (a TAP named agrN; a dead worker's state without its TAP is root's to
    clean up)."""
    if privileged():
        return worker.all_names()
    return sorted((l.name for l in rtnl.links() if _looks_ours(l)), key=lambda n: int(n[3:]))


def members(statuses=None):
    """{port name: agr name} for every port of every agr interface: root's from the state
    files, a user's from what the workers say (`statuses`, worker_statuses()'s answer, when
    the caller has it already)."""
    if privileged():
        return worker.members()
    if statuses is None:
        statuses = worker_statuses(names())
    return {p.name: n for n, ws in statuses.items() if isinstance(ws, AggregateStatus) for p in ws.ports}


def owner_of(port_name):
    """The agr interface that has `port_name` as a port, or None."""
    if privileged():
        return worker.owner_of(port_name)
    return None if paths.is_agr_name(port_name) else members().get(port_name)


def exists(name):
    """Is `name` an agr interface of ours: a trustworthy state file, or a worker answering?

    A worker that answers while its state file is missing or was set aside as corrupt is
    asked to write it again from what it knows (its ports' original state is in memory).
    For a user, who may read neither: agrN's TAP is there (names()).
    """
    if not privileged():
        return _looks_ours(rtnl.link(name))
    if worker.load_state(name) is not None:
        return True
    try:
        control.request(name, "save", timeout=5.0)
    except (control.WorkerGone, AgrError):
        return False
    log.warning("agrconfig: %s: state file rewritten by its worker", name)
    return True


def manages(name, op):
    """Does operation `op` (cli/ops.py) on `name` go to an agr worker (rather than plain
    ifconfig)? It says whether it makes the interface (op.creates) and whether it has a plain
    form for any interface (op.plain)."""
    if not paths.is_agr_name(name):
        return False
    if op.creates or exists(name):
        return True
    # An agr-looking name that we did not create: plain words still work on it.
    return not op.plain or rtnl.link(name) is None


def _pid_from_file(name):
    for path in paths.places(paths.pid_file(name)):   # ours, then an earlier release's
        try:
            return int(paths.read_regular(path, 64).strip())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None
    return None


def _supervisor(name):
    """The live supervisor process of `name` (from the pid file), or None."""
    import psutil   # a status's path never needs it: several ms of every command's start
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


class _revive_lock:
    """Taken to revive a worker and to destroy one, so that a command that does not hold the
    namespace lock (status) cannot bring back a worker that `destroy` is stopping, and two
    commands never start two workers for one interface. Always taken after the namespace
    lock, never before it: no deadlock. (A class: contextlib is not a status's import.)"""

    def __enter__(self):
        self.fd = paths.take_lock(paths.revive_lock_file)

    def __exit__(self, *exc):
        os.close(self.fd)


def ensure_worker(name):
    """A worker of this release answers for `name`: start it again from its state file if it
    died, or restart it into this code if an older release runs it."""
    if _current(name):
        return
    with _revive_lock():
        # Someone else may have revived, upgraded or destroyed it while we waited.
        try:
            peer = control.ping(name)
        except control.WorkerGone:
            _revive(name)
            return
        if peer.older:
            _upgrade(name, peer)


def _current(name):
    """True when a worker answers and is not older than this front end."""
    try:
        peer = control.ping(name)
    except control.WorkerGone:
        return False
    if peer.newer:
        _warn_newer(name, peer)
    return not peer.older


def _warn_newer(name, peer):
    if name not in _warned:
        _warned.add(name)
        log.warning("agrconfig: %s: its worker runs a newer agrconfig (%s, protocol %d) than this "
                    "command (%s, protocol %d); left alone", name, peer.release, peer.version,
                    __version__, PROTOCOL_VERSION)


_warned = set()


def _upgrade(name, peer):
    """Restart an older release's worker into this code through the crash path: its supervisor
    and worker are killed (the supervisor first, so it cannot start the old code again), and a
    new pair resumes from the state file. agrN, its addresses and routes stay, the kernel fast
    path forwards meanwhile, and the partner sees no LACP change."""
    import psutil
    log.info("agrconfig: %s: restarting its worker (agrconfig %s) into %s", name,
             peer.release or "before 0.2.0", __version__)
    supervisor = _supervisor(name)
    old = psutil.Process(peer.pid) if peer.pid and psutil.pid_exists(peer.pid) else None
    if old is not None and f"agrconfig: worker {name}" not in " ".join(old.cmdline()):
        old = None   # not ours (a reused pid): leave it be
    procs = [p for p in (supervisor, old) if p is not None]
    for proc in procs:   # the supervisor first: it must not start the old code again
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)
    worker.spawn(name, resume=True)


def _revive(name):
    saved = worker.load_state(name)
    if saved is None:
        raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no such interface")
    tap = rtnl.link(name)
    if tap is None or (saved.get("ifindex") and tap.index != saved["ifindex"]):
        # The state belongs to an interface that no longer exists (namespace reused, or
        # agrN deleted while no worker ran): give the ports back and forget it. A supervisor
        # waiting to restart its worker would only fight a new agrN of the same name.
        _kill(_supervisor(name))
        _restore_orphan(saved)
        raise StaleState(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no such interface (stale state removed)")
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
        _kill(supervisor)
    worker.spawn(name, resume=True)


def _kill(supervisor):
    """SIGKILL a supervisor (from _supervisor(), so checked to be ours) and its worker."""
    import psutil
    if supervisor is None:
        return
    try:
        procs = [*supervisor.children(recursive=True), supervisor]
    except psutil.Error:
        procs = [supervisor]
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs([supervisor], timeout=5)


class StaleState(AgrError):
    """The state file named an interface that is gone; it has been cleaned up."""


def _restore_orphan(saved):
    """Give back the ports of a state whose agr is gone, but only ports that still look like
    ours (same index and name, and the sysctls we set on members): the state may be from an
    earlier namespace with the same inode, naming someone else's interfaces now."""
    for orig in saved["ports"]:
        link = rtnl.link(index=orig["index"])
        if link is None or link.name != orig["name"]:
            continue
        if not worker.restore_port(orig):
            log.warning("agrconfig: %s: %s does not look like a port of ours; left alone",
                        saved["name"], link.name)
    worker.remove_state(saved["name"])


def _remove_leftover(name):
    """agrN with neither a trustworthy state file nor a worker: a TAP left behind (say, its
    state file was corrupt when the worker died). Its ports cannot be restored as we do not
    know their original state; remove the interface itself."""
    link = rtnl.link(name)
    if link is None or link.kind != "tun":
        raise AgrError(errno.ENXIO, "SIOCIFDESTROY", f"{name}: no such agr interface")
    log.warning("agrconfig: %s: no usable state and no worker; removing the interface "
                "(its ports, if any, keep their current settings)", name)
    rtnl.delete_link(link.index)
    worker.remove_state(name)


def require(name):
    ensure_worker(name)


def request(name, op, **args):
    req = protocol.build(op, **args)
    for attempt in range(3):
        ensure_worker(name)
        try:
            return control.request(name, req)
        except control.WorkerGone as exc:
            # It went away between our ping and our request (destroyed, or it crashed): a
            # look is asked again, a change may have been made and is not.
            if exc.sent and req.CHANGES:
                raise AgrError(errno.EIO, "control", f"worker for {name} went away during {op}; "
                               "check the interface's state") from None
    raise AgrError(errno.EIO, "control", f"worker for {name} keeps going away")


def create(name):
    if exists(name):
        try:
            ensure_worker(name)
        except StaleState:
            pass  # its state was left by an agrN that is gone: create it afresh
        else:
            raise AgrError(errno.EEXIST, "SIOCIFCREATE", f"{name} already exists")
    if rtnl.link(name) is not None:
        raise AgrError(errno.EEXIST, "SIOCIFCREATE", f"{name} already exists")
    _sweep()
    worker.spawn(name, resume=False)


def _sweep():
    """A create also removes the runtime directories of namespaces that are gone (a namespace
    deleted with its workers killed leaves its directory behind); never fails the create."""
    try:
        for gone in paths.sweep():
            log.debug("agrconfig: removed %s: its network namespace is gone", gone)
    except OSError as exc:
        log.warning("agrconfig: cannot remove the runtime directories of namespaces that are gone: %s", exc)


def destroy(name):
    """Detach and restore every port (NetBSD would say EBUSY), remove agrN, stop the worker."""
    if not exists(name):
        with _revive_lock():
            _remove_leftover(name)
        return
    ensure_worker(name)
    with _revive_lock():
        _destroy(name)


def _destroy(name):
    import psutil
    supervisor = _supervisor(name)  # checked: a pid file naming another process is not waited for
    pid = supervisor.pid if supervisor else None
    try:
        control.request(name, "shutdown")
    except control.WorkerGone as exc:
        if not exc.sent:
            raise AgrError(errno.ENXIO, "SIOCIFDESTROY", f"{name}: worker went away") from None
        # A shutdown request answered by the worker's exit: wait for agrN to go, below.
    deadline = time.monotonic() + 10
    while pid and psutil.pid_exists(pid) and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.Error:
            break
        time.sleep(0.02)
    while rtnl.link(name) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    if rtnl.link(name) is not None:
        raise AgrError(errno.EBUSY, "SIOCIFDESTROY", f"{name} is still there")


def destroy_all():
    for name in worker.all_names():
        try:
            destroy(name)
        except AgrError:
            pass


def read_status(name, result):
    """A worker's status reply as an AggregateStatus (agrconfig.status); EIO if malformed."""
    try:
        return AggregateStatus.from_json(result)
    except ValueError as exc:
        raise AgrError(errno.EIO, "control", f"worker for {name} sent a malformed status: {exc}") from None


def look(name):
    """A user's view of agr interface `name`: what its worker says (an AggregateStatus), with
    no file read and no worker revived; None when the kernel shows no agrN of ours. Raises
    Unserved when no worker of ours answers the user."""
    try:
        result = control.request(name, "status", timeout=5.0)
    except control.WorkerGone:
        if not exists(name):
            return None
        raise Unserved(errno.ENXIO, "SIOCGIFFLAGS", f"{name}: no worker answers; root must revive it "
                       f"(agrconfig {name}, as root)") from None
    except AgrError as exc:
        if exc.errno != errno.EPERM:
            raise
        # Workers of 0.3.0 and earlier answer root only, whatever the request.
        peer = control.peer_of(name)
        release = f"agrconfig {peer.release}" if peer is not None and peer.release else "an earlier agrconfig"
        raise Unserved(errno.EPERM, "SIOCGIFFLAGS", f"{name}: its worker ({release}) answers root only; "
                       f"root must upgrade it (agrconfig {name}, as root)") from None
    _note_release(name)
    return read_status(name, result)


def _note_release(name):
    """Tell a user whose command met a worker of another release what root's next command
    does about it (root's own commands restart an older one at once)."""
    peer = control.peer_of(name)
    if peer is None or name in _warned:
        return
    if peer.older:
        _warned.add(name)
        log.warning("agrconfig: %s: its worker runs an earlier agrconfig (%s); root's next command "
                    "restarts it into %s", name, peer.release or "before 0.2.0", __version__)
    elif peer.newer:
        _warn_newer(name, peer)


def worker_status(name):
    """The worker's view of `name` (an AggregateStatus), reviving the worker if needed; None
    if not ours. A user's command only looks (look())."""
    if not privileged():
        return look(name)
    if not exists(name):
        return None
    try:
        result = control.request(name, "status")  # one round trip when the worker is there
    except control.WorkerGone:
        return read_status(name, request(name, "status"))
    if control.peer_of(name).older:
        return read_status(name, request(name, "status"))  # ensure_worker() restarts it into this release first
    return read_status(name, result)


def ask_statuses(names):
    """Root's status requests to the workers of `names`, sent now: worker_statuses(asked=...)
    reads the replies, and the caller does its own work meanwhile. None for a user (look())."""
    if not names or not privileged():
        return None
    return control.send_many(names, protocol.build("status"), timeout=5.0)


def worker_statuses(names, asked=None):
    """{name: AggregateStatus or AgrError} for several agr interfaces, their workers asked concurrently.

    One connection per worker, every request sent before any reply is read (no threads); a
    worker that does not answer is then revived (serially: spawn() forks) and asked again.
    `asked`: ask_statuses()'s answer for names that include these (the others' replies are
    read and dropped), or None to ask now.
    """
    if asked is not None:
        replies = control.receive_many(asked)
    if not names:
        return {}
    out = {}
    if not privileged():
        for name in names:   # a user revives nothing: Unserved says what root must do
            try:
                out[name] = look(name)
            except (control.WorkerGone, AgrError) as exc:
                out[name] = exc
        return out
    if asked is None:
        replies = control.exchange_many(names, protocol.build("status"), timeout=5.0)
    for name in names:
        reply = replies.get(name)
        if reply is None:   # not asked: a link that came since ask_statuses()
            reply = control.exchange_many([name], protocol.build("status"), timeout=5.0)[name]
        try:
            out[name] = reply if isinstance(reply, Exception) else read_status(name, reply.get("result"))
        except AgrError as exc:
            out[name] = exc
    for name, result in out.items():
        peer = control.peer_of(name)
        if isinstance(result, control.WorkerGone) or (peer is not None and peer.older):
            try:
                out[name] = worker_status(name)
            except AgrError as exc:
                out[name] = exc
    return out
