"""Starting a daemon: the front end's side of it.

`spawn` forks twice into a session of its own and execs a fresh interpreter there that runs
supervisor.py: a process that is not a copy of the front end (its grammar, client and docopt
stay out) and starts nothing but what supervising needs. The supervisor drops privileges,
keeps the TAP fd of the worker it forks, and restarts the worker when it dies. The worker
itself (loop.py) knows nothing of this.
"""
import errno
import json
import os
import sys

from ..errors import AgrError

# The supervisor's interpreter: no site (-S: no .pth files, no editable-install finders) and
# isolated (-I: no PYTHON* variables, no current directory in sys.path); sys.path gets exactly
# where agrconfig lives.
BOOT = "import sys; sys.path[:0] = sys.argv[4:]; from agrconfig.worker.supervisor import main; main()"


def _import_root():
    """The sys.path entry that holds agrconfig, for the exec'd supervisor."""
    import agrconfig
    return os.path.dirname(os.path.dirname(os.path.abspath(agrconfig.__file__)))


def spawn(name, resume):
    """Fork a daemonized, supervised worker for `name`; wait until it serves or fails."""
    roots = [_import_root()]
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _exec_supervisor(name, resume, ready_w, roots)
        finally:
            os._exit(1)
    os.close(ready_w)
    os.waitpid(pid, 0)
    with os.fdopen(ready_r, "rb") as f:
        data = f.read()
    if data.startswith(b"ok"):
        return int(data[2:] or 0)
    if data:
        raise AgrError.from_dict(json.loads(data))
    raise AgrError(errno.EIO, "SIOCIFCREATE", f"worker for {name} died while starting")


def _exec_supervisor(name, resume, ready_w, roots):
    os.set_inheritable(ready_w, True)
    python = sys.executable or "/usr/bin/python3"
    try:
        os.execv(python, [python, "-I", "-S", "-c", BOOT, name, "1" if resume else "0", str(ready_w), *roots])
    except OSError as exc:
        err = AgrError(errno.EIO, "SIOCIFCREATE", f"cannot start the supervisor ({python}): {exc.strerror}")
        os.write(ready_w, json.dumps(err.to_dict()).encode())
