"""monitor ends on SIGINT and SIGTERM, even when it inherited SIGINT ignored (a background job
of a non-interactive shell), and puts the handlers it found back."""
import os
import signal

import pytest

from agrconfig.cli import monitor
from tests.unit.statuses import aggregate

STATUS = aggregate({"ports": [{"name": "re0", "flags": 3}]})


def stray_sigterm(signum, frame):
    """Outside the monitor a SIGTERM must not end pytest: this one only marks the failure."""


@pytest.fixture
def sigint_ignored():
    before = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
              signal.SIGTERM: signal.signal(signal.SIGTERM, stray_sigterm)}
    yield
    for s, h in before.items():
        signal.signal(s, h)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_monitor_with_status_0(monkeypatch, sigint_ignored, sig):
    polls = []

    def status(name):
        polls.append(name)
        if len(polls) == 3:
            os.kill(os.getpid(), sig)   # delivered before the call returns, in the main thread
        assert len(polls) < 50, "the signal did not end the monitor"
        return STATUS

    monkeypatch.setattr(monitor.workers, "exists", lambda name: True)
    monkeypatch.setattr(monitor.workers, "worker_status", status)
    monkeypatch.setattr(monitor, "POLL", 0.001)
    lines = []
    assert monitor.run("agr0", [], out=lines.append) == 0
    assert len(polls) == 3
    assert lines and "port-attached" in lines[0]
    # What was there before is back.
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is stray_sigterm


def test_an_error_puts_the_handlers_back_too(monkeypatch, sigint_ignored):
    def status(name):
        raise monitor.AgrError(2, "status", "gone")

    monkeypatch.setattr(monitor.workers, "exists", lambda name: True)
    monkeypatch.setattr(monitor.workers, "worker_status", status)
    with pytest.raises(monitor.AgrError):
        monitor.run("agr0", [], out=lambda line: None)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is stray_sigterm
