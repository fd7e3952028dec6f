"""A first worker that ends before it says ready (a signal: seccomp's SIGSYS, the OOM killer's
SIGKILL) is reported to the front end with how it ended and where its log is, not only as
"died while starting". The supervisor runs in a forked child with its privileged steps
replaced (the tests run as root, in this process's namespace: nothing is dropped or created)."""
import json
import os
import signal

import pytest

from agrconfig.worker import privs, seccomp, supervisor


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_worker_dying_before_ready_is_reported_with_its_signal(tmp_path, monkeypatch, sig):
    def setup_logging(name):
        supervisor._log_where = str(tmp_path / f"{name}.log")

    monkeypatch.setattr(privs, "drop", lambda **kw: [])
    monkeypatch.setattr(supervisor, "_reach_path", lambda: None)
    monkeypatch.setattr(supervisor, "_check_readable", lambda ready_w: None)
    monkeypatch.setattr(supervisor, "_set_title", lambda name, what: None)
    monkeypatch.setattr(seccomp, "confine", lambda name, what: None)
    monkeypatch.setattr(supervisor, "setup_logging", setup_logging)
    monkeypatch.setattr(supervisor.paths, "state_file", lambda name: str(tmp_path / "none.state"))
    monkeypatch.setattr(supervisor.paths, "pid_file", lambda name: str(tmp_path / "agrT.pid"))
    monkeypatch.setattr(supervisor, "_worker_main", lambda *a: os.kill(os.getpid(), sig))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            supervisor._supervise("agrT", False, w)
        finally:
            os._exit(3)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        said = f.read()
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the supervisor ends: nothing to resume"
    err = json.loads(said)
    assert err["errno"] == "EIO" and err["ioctl"] == "SIOCIFCREATE", err
    name = signal.Signals(sig).name
    assert err["detail"] == (f"worker for agrT died while starting: killed by signal {int(sig)} ({name}); "
                             f"see {tmp_path / 'agrT.log'}"), err


def test_how_a_worker_ended_in_words():
    assert seccomp.describe_exit(-signal.SIGSYS) == "killed by signal SIGSYS (seccomp: a system call outside its filter)"
    assert seccomp.describe_exit(-signal.SIGKILL) == "killed by signal 9 (SIGKILL)"
    assert seccomp.describe_exit(-signal.SIGABRT) == "killed by signal 6 (SIGABRT)"
    assert seccomp.describe_exit(-40) == "killed by signal 40"
    assert seccomp.describe_exit(3) == "exited with status 3"
