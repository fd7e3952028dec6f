import os

import pytest

from tests.lab import Lab

# tests/package needs the installed .deb: scripts/package-test runs it, with AGRCONFIG_CMD set.
collect_ignore = [] if os.environ.get("AGRCONFIG_CMD") == "/usr/sbin/agrconfig" else ["package"]


@pytest.fixture
def lab(monkeypatch):
    """A namespace lab with a unique prefix, torn down even when the test fails."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    # Every worker started from these tests (they inherit the front end's environment) logs
    # to its runtime directory, on hosts with syslog too: tests read the log (worker_log).
    monkeypatch.setenv("AGRCONFIG_LOG", "file")
    with Lab() as lab:
        yield lab
