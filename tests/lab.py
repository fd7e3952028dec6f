"""Network-namespace lab for integration tests.

Every name starts with a per-run prefix so that parallel or aborted runs never
meet, and Lab.close() removes whatever was made even after a failed test.
"""
import os
import shlex
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# AGRCONFIG_CMD runs the tests against an installed command (scripts/package-test: the .deb's
# /usr/sbin/agrconfig); by default, the checkout's code under this interpreter.
AGRCONFIG = (shlex.split(os.environ["AGRCONFIG_CMD"]) if os.environ.get("AGRCONFIG_CMD")
             else [sys.executable, os.path.join(ROOT, "bin", "agrconfig")])


def unique_prefix():
    # 't' + 5 hex digits: short enough to leave room in 15-character link names.
    # AGRCONFIG_TEST_PREFIX (at most 5 characters) takes the place of the 't', so one run's
    # namespaces can be told from another's (and cleaned up) by name.
    base = os.environ.get("AGRCONFIG_TEST_PREFIX", "t")[:5] or "t"
    return base + uuid.uuid4().hex[:max(2, 6 - len(base))]


def sh(*argv, check=True, timeout=60, input=None):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


class Lab:
    def __init__(self, prefix=None):
        self.prefix = prefix or unique_prefix()
        self.namespaces = []

    # -- building ---------------------------------------------------------
    def netns(self, suffix):
        name = f"{self.prefix}{suffix}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.ip(name, "link", "set", "lo", "up")
        return name

    def veth(self, ns_a, name_a, ns_b, name_b, up=True):
        """A veth pair with one end in each namespace (made in ns_a, then moved)."""
        self.ip(ns_a, "link", "add", name_a, "type", "veth", "peer", "name", name_b)
        if ns_b != ns_a:
            self.ip(ns_a, "link", "set", name_b, "netns", ns_b)
        if up:
            self.ip(ns_a, "link", "set", name_a, "up")
            self.ip(ns_b, "link", "set", name_b, "up")

    # -- running ----------------------------------------------------------
    def run(self, ns, *argv, check=True, timeout=60, input=None):
        return sh("ip", "netns", "exec", ns, *argv, check=check, timeout=timeout, input=input)

    def ip(self, ns, *argv, check=True):
        return self.run(ns, "ip", *argv, check=check)

    def agr(self, ns, *words, check=False, timeout=60):
        """Run agrconfig in a namespace; returns the CompletedProcess."""
        return self.run(ns, *AGRCONFIG, *words, check=check, timeout=timeout)

    def ping(self, ns, addr, count=1, wait=2):
        return self.run(ns, "ping", "-c", str(count), "-W", str(wait), addr, check=False).returncode == 0

    def wait_for(self, predicate, timeout=10.0, interval=0.1, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    # -- tearing down -----------------------------------------------------
    def close(self):
        for ns in reversed(self.namespaces):
            # Stop agrconfig workers first so they restore ports and exit.
            try:
                self.run(ns, *AGRCONFIG, "--destroy-all", check=False, timeout=30)
            except subprocess.TimeoutExpired:
                pass  # the namespace is deleted anyway, its processes killed first
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
