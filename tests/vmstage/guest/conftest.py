"""Guest tests: run by tests/vm.py inside the VM on Debian's kernel, never on the host (where
tests/vmstage/test_debian_kernel.py reports their outcomes)."""
import os

import pytest

from tests.lab import Lab, sh


def inside_the_vm():
    with open("/proc/cmdline") as f:
        return os.environ.get("AGRCONFIG_VM_GUEST") == "1" and "virtme" in f.read()


@pytest.fixture(autouse=True)
def guest_only():
    if not inside_the_vm():
        pytest.fail(f"a guest test, run only inside the VM stage (tests/vm.py), not on {os.uname().release}")


class GuestLab(Lab):
    """A Lab whose plain namespaces (a Linux bond, hosts behind a bridge) are deleted without
    asking agrconfig first: each Python start costs seconds under TCG."""

    def plain_netns(self, suffix):
        name = f"{self.prefix}{suffix}"
        sh("ip", "netns", "add", name)
        self.plain.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def close(self):
        for ns in self.plain:
            sh("ip", "netns", "del", ns, check=False)
        self.plain.clear()
        super().close()

    def __init__(self, prefix=None):
        super().__init__(prefix)
        self.plain = []


@pytest.fixture
def lab(monkeypatch):
    monkeypatch.setenv("AGRCONFIG_LOG", "file")
    with GuestLab() as lab:
        yield lab
