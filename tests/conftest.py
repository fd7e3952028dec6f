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


@pytest.fixture(autouse=True)
def _agrconfig_log_to_logging():
    """agrconfig's own log (agrconfig/logger.py) hands its records to logging's "agrconfig"
    logger in tests, so that caplog sees them."""
    import logging

    from agrconfig import logger
    std = logging.getLogger("agrconfig")
    saved = logger.log.sinks, logger.log.level
    logger.log.sinks = [lambda level, text, exc_info: std.log(level, text, exc_info=exc_info)]
    logger.log.level = logger.DEBUG
    yield
    logger.log.sinks, logger.log.level = saved
