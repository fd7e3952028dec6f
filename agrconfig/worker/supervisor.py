"""The supervisor: a small parent that restarts agrN's worker when it dies and holds agrN's TAP.

It runs in an interpreter of its own, exec'd by process.spawn with only the standard
library's start-up modules (-S): the front end's modules (the grammar, the client, docopt) stay
out of it. It imports what supervising needs and nothing more; each worker it forks imports the
worker's modules itself (loop.py and below), so that they are held once, by the worker, and a
crashed worker's replacement starts from a small, clean parent.
"""
import _signal   # not signal nor socket: their Python halves import enum and selectors (~1 MiB here)
import _socket
import array
import errno
import gc
import os
import sys
import time

from .. import logger, paths
from ..logger import log
from . import privs, proctitle, seccomp


def main():
    """Entry point after process.spawn's exec: argv is name, resume (0/1), the ready pipe's fd."""
    name, resume, ready_w = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
    _daemon(name, resume, ready_w)


def setup_logging(name):
    # AGRCONFIG_LOG=file: the runtime directory's log even where there is syslog (tests read it).
    # Opened after the uid change: the log is the workers' user's, which root (without
    # CAP_DAC_OVERRIDE) could not open for writing.
    global _log_where
    if os.path.exists("/dev/log") and os.environ.get("AGRCONFIG_LOG") != "file":
        logger.to_syslog(f"agrconfig/{name}")
        _log_where = f"syslog (journalctl -t agrconfig/{name})"
    else:
        if not paths.in_worker():
            paths.run_dir(create=True)
        logger.to_file(paths.log_file(name))
        _log_where = paths.log_file(name)


_log_where = "its log"   # where setup_logging sends it, for the front end's messages


def _refuse(ready_w, exc):
    """Tell the front end why no worker starts (it prints it as ifconfig would), and exit."""
    from ..errors import AgrError   # loaded already (privs.py): no file to read as _agrconfig
    if not isinstance(exc, AgrError):
        exc = AgrError(exc.errno or errno.EIO, "SIOCIFCREATE", f"cannot prepare the worker: {exc}")
    os.write(ready_w, _error_json(exc))
    os._exit(START_FAILED)


def _error_json(exc):
    """An AgrError as the JSON the front end reads from the ready pipe. By hand: the json
    package may be out of our reach after the uid change."""
    text = ", ".join(f'"{k}": "{_json_text(v)}"' for k, v in exc.to_dict().items())
    return ("{" + text + "}").encode()


def _died_starting(name, code):
    """What the front end is told when the first worker ended before it said ready or why not
    (a signal, seccomp's SIGSYS among them): how it ended and where its log is."""
    from ..errors import AgrError   # loaded already (privs.py)
    return _error_json(AgrError(errno.EIO, "SIOCIFCREATE",
                                f"worker for {name} died while starting: {seccomp.describe_exit(code)}; see {_log_where}"))


def _json_text(value):
    return "".join(c if c >= " " and c not in '"\\' else f"\\u{ord(c):04x}" for c in str(value))


_held_path = []   # (sys.path entry, a directory fd opened as root)


def _hold_path():
    """As root: a directory fd for each import path. The worker imports its modules after the
    uid change, and a tree root can read may be out of the workers' user's reach (a checkout or
    an interpreter under a 0700 /root)."""
    for entry in sys.path:
        try:
            _held_path.append((entry, os.open(entry or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)))
        except OSError:
            pass   # no such directory (python311.zip): nothing to import from there


def _reach_path():
    """After the uid change: an import path the user cannot reach is read through its fd as
    /proc/self/fd/N, which a process may always open (the worker inherits the fds)."""
    for i, (entry, fd) in enumerate(_held_path):
        if os.access(entry or ".", os.R_OK | os.X_OK):
            os.close(fd)
            continue
        through = f"/proc/self/fd/{fd}"
        sys.path[sys.path.index(entry)] = through
        _held_path[i] = (entry, through)
        for module in list(sys.modules.values()):   # a package's submodules come from its __path__
            where = getattr(module, "__path__", None)
            if isinstance(where, list):
                where[:] = [through + p[len(entry):] if p.startswith(entry + "/") else p for p in where]


def _check_readable(ready_w):
    """Say so plainly if an import path is out of reach even so."""
    for entry, now in _held_path:
        if isinstance(now, str) and not os.access(now, os.R_OK | os.X_OK):
            from ..errors import AgrError
            _refuse(ready_w, AgrError(errno.EACCES, "SIOCIFCREATE",
                                      f"{entry}: not readable by user {privs.USER}, as which the worker runs; "
                                      "make it (and the directories above it) readable by all"))


def _prepare(name, resume, ready_w):
    """As root, before the uid change: the workers' user and their directory (adopting an
    earlier release's root worker's files on an upgrade). (uid, gid), or a refusal."""
    from ..errors import AgrError
    try:
        uid, gid = privs.user()
        paths.open_worker_dir(uid)
        _hold_path()
        if resume:
            paths.adopt_legacy(name, uid)
    except (AgrError, OSError) as exc:
        _refuse(ready_w, exc)
    return uid, gid


def _set_title(name, role="worker"):
    if not proctitle.set_title(f"agrconfig: {role} {name}"):
        log.warning("%s: cannot set the %s's process title", name, role)


def _daemon(name, resume, ready_w):
    os.chdir("/")
    os.umask(0o027)   # files 0640 at most, group root: a root front end reads them (paths.py)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, ready_w)
    os.closerange(ready_w + 1, 65536)
    for sig in (_signal.SIGHUP, _signal.SIGPIPE):
        _signal.signal(sig, _signal.SIG_IGN)
    uid, gid = _prepare(name, resume, ready_w)
    _supervise(name, resume, ready_w, uid, gid)


RESTART_DELAY = 0.05     # first restart after a crash: well inside LACP's 3 s short timeout
RESTART_DELAY_MAX = 5.0  # a worker that keeps dying is restarted ever more slowly
STABLE_AFTER = 10.0      # a worker that ran this long resets the delay
START_FAILED = 2


def _supervise(name, resume, ready_w, uid=None, gid=None):
    """A small parent that restarts the worker when it crashes or is killed.

    The TAP is persistent and the state file has the ports, so a restarted
    worker picks up where the dead one stopped; agr0 and its addresses stay.
    SIGTERM is passed on: the worker restores the ports and exits cleanly.
    """
    _set_title(name, "supervisor")
    try:  # inherited by every worker it starts
        kept = privs.drop(uid=uid, gid=gid)
        _reach_path()
    except OSError as exc:
        if uid is not None and os.getuid() != uid:
            _refuse(ready_w, exc)   # never as root
        setup_logging(name)
        log.warning("%s: cannot drop capabilities (%s); running with those we were given", name, exc)
    else:
        setup_logging(name)
        log.debug("%s: capabilities kept: %s", name, ", ".join(privs.NAMES[c] for c in kept))
    _check_readable(ready_w)
    seccomp.confine(name, "supervisor")  # after everything that runs helpers; inherited by workers
    child = None
    stopping = False

    def on_term(sig, _frame):
        nonlocal stopping
        stopping = True
        if child:
            try:
                os.kill(child, _signal.SIGTERM)
            except ProcessLookupError:
                pass

    _signal.signal(_signal.SIGTERM, on_term)
    _signal.signal(_signal.SIGINT, on_term)
    delay = RESTART_DELAY
    first = True
    # Each worker hands us its TAP fd and we keep it open: while a worker is dead and
    # restarting, agrN keeps its carrier (so its neighbours and qdisc stay) and frames
    # wait in the TAP's queue for the next worker, which inherits the fd.
    keeper_r, keeper_w = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    keeper_r.setblocking(False)
    held_tap = None
    while not stopping:
        r, w = os.pipe2(os.O_CLOEXEC)
        started = time.monotonic()
        # The worker's collector then leaves what we share alone: fewer pages copied, less
        # memory held twice by the two processes.
        gc.freeze()
        child = os.fork()
        if child == 0:
            os.close(r)
            if first:
                os.close(ready_w)  # the front end waits for EOF on it: only we may hold it
            _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
            _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
            keeper_r.close()
            _worker_main(name, resume, w, held_tap, keeper_w)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            ready = f.read()
        held_tap = _take_tap(keeper_r, held_tap)
        status = None
        if first:
            if not ready:   # it ended without a word: say how
                _pid, status = os.waitpid(child, 0)
                child = None
                ready = _died_starting(name, os.waitstatus_to_exitcode(status))
            if ready.startswith(b"ok"):
                with open(paths.pid_file(name), "w") as f:
                    f.write(f"{os.getpid()}\n")
            os.write(ready_w, ready)
            os.close(ready_w)
            first = False
        if status is None:
            _pid, status = os.waitpid(child, 0)
        child = None
        code = os.waitstatus_to_exitcode(status)
        if code == 0 or stopping or not os.path.exists(paths.state_file(name)):
            break  # a clean shutdown, or there is nothing left to resume
        if not ready.startswith(b"ok") and code == START_FAILED and delay >= RESTART_DELAY_MAX:
            log.error("%s: worker cannot start again; giving up", name)
            break
        how = seccomp.describe_exit(code)
        log.error("%s: worker %s; restarting in %.2f s", name, how, delay)
        time.sleep(delay)
        delay = RESTART_DELAY if time.monotonic() - started > STABLE_AFTER else min(delay * 4, RESTART_DELAY_MAX)
        resume = True
    os._exit(0)


def _recv_fds(sock, maxfds=1):
    """socket.recv_fds's fds, on a bare _socket."""
    _msg, ancdata, _flags, _addr = sock.recvmsg(16, _socket.CMSG_LEN(maxfds * 4))
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return list(fds)


def _take_tap(keeper, held):
    """The TAP fd the worker just sent (if any) replaces the one we held."""
    while True:
        try:
            fds = _recv_fds(keeper)
        except (BlockingIOError, InterruptedError):
            return held
        for fd in fds:
            if held is not None and held != fd:
                os.close(held)
            held = fd


def _worker_main(name, resume, ready_w, held_tap=None, keeper=None):
    _set_title(name)
    # The worker's modules are imported here, in the worker, not in the supervisor.
    from .. import jsontext
    from ..errors import AgrError
    from . import statefile
    from .loop import Worker
    worker = None
    try:
        saved = statefile.load(name) if resume else None
        if resume and saved is None:
            raise AgrError(errno.ENXIO, "SIOCGIFFLAGS", f"no saved state for {name}")
        worker = Worker(name, saved, held_tap, keeper)
        worker.start()
        seccomp.confine(name, "worker")  # after the start-up: TAP, sockets, programs, relay thread
    except AgrError as exc:
        os.write(ready_w, jsontext.dumps(exc.to_dict()).encode())
        log.error("%s: worker failed to start: %s", name, exc)
        os._exit(START_FAILED)
    except Exception:
        import traceback
        os.write(ready_w, jsontext.dumps(AgrError(errno.EIO, "SIOCIFCREATE", traceback.format_exc()).to_dict()).encode())
        log.exception("%s: worker failed to start", name)
        os._exit(START_FAILED)

    def on_term(_sig, _frame):
        worker.stopping = True

    _signal.signal(_signal.SIGTERM, on_term)
    _signal.signal(_signal.SIGINT, on_term)
    os.write(ready_w, f"ok{os.getpid()}".encode())
    os.close(ready_w)
    try:
        worker.run()
    except Exception:
        log.exception("%s: worker crashed", name)
        os._exit(3)
    os._exit(0)
