"""The installed .deb (scripts/package-test): what it put where, that it runs on Debian's
libraries, and what its maintainer scripts do to running aggregates."""
import json
import os
import re
import shutil
import subprocess
import sys

import psutil
import pytest

from agrconfig import __version__
from tests.integration.helpers import host_pair, ok, strip_addresses
from tests.lab import AGRCONFIG, ROOT

pytestmark = pytest.mark.integration
SBIN = "/usr/sbin/agrconfig"
DIST = "/usr/lib/python3/dist-packages"
INFO = "/var/lib/dpkg/info/agrconfig"


def sh(*argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


def test_the_tests_run_the_installed_command():
    assert AGRCONFIG == [SBIN], "set AGRCONFIG_CMD=/usr/sbin/agrconfig (scripts/package-test)"


def test_command_runs_debians_python_and_libraries():
    assert open(SBIN).readline().strip() == "#!/usr/bin/python3"
    assert sh(SBIN, "--version").stdout.strip() == f"agrconfig {__version__}"
    code = ("import agrconfig, docopt, pyroute2, prometheus_client; print(agrconfig.__file__, docopt.__file__,"
            " pyroute2.__file__, prometheus_client.__file__)")
    files = sh("/usr/bin/python3", "-I", "-c", code).stdout.split()
    assert files and all(f.startswith(DIST + "/") for f in files), files
    changelog = open(os.path.join(ROOT, "debian", "changelog")).readline()
    assert changelog.startswith(f"agrconfig ({__version__})"), "debian/changelog and __version__ differ"


def test_files():
    for path in ("/usr/share/bash-completion/completions/agrconfig", "/usr/lib/NetworkManager/conf.d/agrconfig.conf",
                 "/etc/network/if-pre-up.d/agrconfig", "/etc/network/if-post-down.d/agrconfig",
                 "/usr/share/doc/agrconfig/README.Debian",
                 "/usr/share/doc/agrconfig/examples/agrconfig-metrics.timer",
                 "/usr/share/doc/agrconfig/examples/agrconfig-metrics.service"):
        assert os.path.exists(path), path
    # -M: a checkout's bootstrap links its pages into /usr/local/share/man, which man reads first.
    assert sh("man", "-M", "/usr/share/man", "-w", "agrconfig").stdout.strip() == "/usr/share/man/man8/agrconfig.8.gz"
    assert sh("man", "-M", "/usr/share/man", "-w", "4", "agr").stdout.strip() == "/usr/share/man/man4/agr.4.gz"
    unit = open("/lib/systemd/system/agrconfig.service").read()
    assert "ExecStart=/usr/sbin/agrconfig --boot" in unit and "ExecStop=/usr/sbin/agrconfig --halt" in unit
    assert "unmanaged-devices+=interface-name:agr*" in open("/usr/lib/NetworkManager/conf.d/agrconfig.conf").read()


def test_unit_installed_not_enabled():
    wants = [os.path.join(d, f) for d, _s, fs in os.walk("/etc/systemd/system") for f in fs
             if f == "agrconfig.service" and d.endswith(".wants")]
    assert wants == []
    if os.path.isdir("/run/systemd/system"):
        assert sh("systemctl", "is-enabled", "agrconfig").stdout.strip() == "disabled"
    for script in ("postinst", "prerm", "postrm"):
        text = open(f"{INFO}.{script}").read()
        assert "deb-systemd-invoke" not in text and "systemctl start" not in text, script


def test_the_workers_can_read_the_bytecode():
    """The workers run as _agrconfig: py3compile's .pyc files must be readable by it, whatever
    root's umask at the install (scripts/package-test installs with umask 077); else every
    worker compiles its modules at each start (~0.7 MiB more each, bench/RESULTS.md)."""
    pycs = [os.path.join(d, f) for d, _s, fs in os.walk(os.path.join(DIST, "agrconfig")) for f in fs
            if f.endswith(".pyc")]
    assert len(pycs) > 50, "py3compile wrote no bytecode"
    unreadable = [p for p in pycs if not os.stat(p).st_mode & 0o004]
    assert unreadable == [], unreadable[:5]


def test_checkout_command_still_works():
    """The bootstrap's /usr/local/sbin/agrconfig (the checkout's venv) is not the package's."""
    # scripts/package-test runs after scripts/bootstrap test, which links this command.
    assert os.path.exists("/usr/local/sbin/agrconfig"), "no checkout install: run scripts/bootstrap test first"
    assert os.path.realpath("/usr/local/sbin/agrconfig") != SBIN
    assert sh("/usr/local/sbin/agrconfig", "--version").returncode == 0


def package_worker(lab):
    """agr0 over re0 in a fresh namespace, made by the installed command: its supervisor."""
    a, _b = host_pair(lab, ports=("re0",))
    strip_addresses(lab, a, "re0")
    ok(lab, a, "agr0", "create", "agrport", "re0")
    return a, supervisor(lab, a)


def supervisor(lab, ns):
    for pid in lab.run(ns, "ip", "netns", "pids", ns).stdout.split():
        proc = psutil.Process(int(pid))
        if " ".join(proc.cmdline()).startswith("agrconfig: supervisor agr0"):
            return proc
    raise AssertionError(f"no supervisor in {ns}")


def test_removal_is_refused_while_the_packages_aggregates_run(lab):
    _a, sup = package_worker(lab)
    proc = sh("sh", f"{INFO}.prerm", "remove")
    assert proc.returncode == 1 and str(sup.pid) in proc.stderr and "--destroy-all" in proc.stderr, proc


def test_upgrade_hands_workers_to_the_new_code(lab, tmp_path):
    """postinst configure OLD restarts the workers of an older release in every namespace;
    agr0 and its port stay. The older release is this one with another version number."""
    old = tmp_path / "old"
    shutil.copytree(os.path.join(DIST, "agrconfig"), old / "agrconfig")
    init = old / "agrconfig" / "__init__.py"
    init.write_text(re.sub(r'__version__ = ".*"', '__version__ = "0.1.9"', init.read_text()))
    a, _b = host_pair(lab, ports=("re0",))
    strip_addresses(lab, a, "re0")
    proc = lab.run(a, "env", f"PYTHONPATH={old}", "/usr/bin/python3", SBIN, "agr0", "create", "agrport", "re0")
    before = supervisor(lab, a)
    assert peer_release(lab, a) == "0.1.9"
    proc = sh("sh", f"{INFO}.postinst", "configure", "0.1.9")
    assert proc.returncode == 0, proc.stderr
    after = supervisor(lab, a)
    assert after.pid != before.pid and not before.is_running()
    assert peer_release(lab, a) == __version__
    doc = json.loads(ok(lab, a, "--json", "agr0"))
    assert [p["ifname"] for p in doc["agrports"]] == ["re0"]


def peer_release(lab, ns):
    code = "from agrconfig.ipc import client; print(client.ping('agr0').release)"
    return lab.run(ns, "/usr/bin/python3", "-I", "-c", code).stdout.strip()
