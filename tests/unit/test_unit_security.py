"""The systemd units are sandboxed (issue 24 item 4): `systemd-analyze security --offline=true`
scores agrconfig.service, as debian/rules installs it, under 3 (agr(4) records the score), and
the properties the issue names are there. The unit's sandbox itself is booted in the VM stage."""
import os
import re
import shutil
import subprocess

import pytest

from agrconfig.worker import privs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "systemd", "agrconfig.service")
METRICS_UNIT = os.path.join(ROOT, "systemd", "agrconfig-metrics.service")
LIMIT = 3.0


def systemd_analyze():
    path = shutil.which("systemd-analyze")
    # Not a skip: without it the sandbox would go unchecked (scripts/bootstrap test installs it).
    assert path, "systemd-analyze is required to score the units (apt-get install systemd)"
    return path


def as_debian_installs(tmp_path):
    """systemd/agrconfig.service through debian/rules' own sed expression, as the .deb ships it."""
    rules = open(os.path.join(ROOT, "debian", "rules")).read()
    found = re.search(r"sed '([^']+)' systemd/agrconfig\.service", rules)
    assert found, "debian/rules no longer makes debian/agrconfig.service with sed"
    out = tmp_path / "agrconfig.service"   # the name systemd-analyze reports
    with open(out, "w") as f:
        subprocess.run(["sed", found.group(1), UNIT], stdout=f, check=True)
    text = out.read_text()
    assert "ExecStart=/usr/sbin/agrconfig --boot" in text, text
    return str(out)


def exposure(path):
    proc = subprocess.run([systemd_analyze(), "security", "--offline=true", "--no-pager", path],
                          capture_output=True, text=True, timeout=60)
    name = os.path.basename(path)
    found = re.search(rf"Overall exposure level for {re.escape(name)}: (\d+\.\d+)", proc.stdout)
    assert found, f"no score for {name} (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
    return float(found.group(1)), proc.stdout


def service(path):
    """The [Service] section's settings: {key: [value, ...]}, in order (keys may repeat)."""
    settings, section = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def words(settings, key):
    return [w for value in settings.get(key, []) for w in value.split()]


def test_the_installed_unit_scores_under_the_limit_and_agr4_says_so(tmp_path):
    score, report = exposure(as_debian_installs(tmp_path))
    assert score < LIMIT, f"agrconfig.service exposure {score} (limit {LIMIT}):\n{report}"
    page = open(os.path.join(ROOT, "man", "agr.4")).read()
    assert f"scores the unit {score:.1f}" in page, f"agr(4) does not record the unit's score {score:.1f}"
    assert f"scores it {score:.1f}" in open(UNIT).read(), "the unit's comment does not record its score"


def test_the_metrics_unit_scores_under_the_limit():
    score, report = exposure(METRICS_UNIT)
    assert score < LIMIT, f"agrconfig-metrics.service exposure {score}:\n{report}"
    assert service(METRICS_UNIT)["CapabilityBoundingSet"] == [""], "the metrics need no capability"


@pytest.mark.parametrize("key, value", [
    ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("PrivateDevices", "yes"),
    ("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"), ("ProtectKernelLogs", "yes"),
    ("ProtectClock", "yes"), ("ProtectControlGroups", "yes"), ("ProtectHostname", "yes"),
    ("SystemCallArchitectures", "native"), ("RestrictNamespaces", "yes"), ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"), ("RestrictRealtime", "yes"), ("RestrictSUIDSGID", "yes"),
    ("NoNewPrivileges", "yes"), ("UMask", "0077"), ("IPAddressDeny", "any"),
])
def test_the_unit_sets(key, value):
    assert service(UNIT).get(key) == [value]


def test_the_unit_leaves_writable_only_what_boot_writes_and_the_tap_device():
    s = service(UNIT)
    assert sorted(words(s, "ReadWritePaths")) == ["/proc/sys/net", "/run/agrconfig"]
    # PrivateDevices= hides /dev/net/tun: it comes back bound and allowed.
    assert words(s, "BindPaths") == ["-/dev/net/tun"] and s["DeviceAllow"] == ["/dev/net/tun rw"]
    # /run is read-only inside: systemd makes the directory first, as paths.py keeps it, and
    # keeps it at stop (workers started from a shell have their files there).
    assert (s["RuntimeDirectory"], s["RuntimeDirectoryMode"], s["RuntimeDirectoryPreserve"]) == (
        ["agrconfig"], ["0700"], ["yes"])
    assert "ExecStartPre" not in s


def test_the_unit_allows_the_families_and_calls_the_worker_uses():
    s = service(UNIT)
    assert sorted(words(s, "RestrictAddressFamilies")) == ["AF_NETLINK", "AF_PACKET", "AF_UNIX"]
    allowed = s["SystemCallFilter"][0].split()
    assert "@system-service" in allowed and {"bpf", "seccomp"} <= set(allowed)
    assert s["SystemCallErrorNumber"] == ["EPERM"]


def test_no_code_opens_an_inet_socket():
    """RestrictAddressFamilies has no inet: an AF_INET socket would fail under the unit."""
    found = []
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "agrconfig")):
        for f in files:
            if f.endswith(".py"):
                text = open(os.path.join(folder, f)).read()
                found += [f"{f}: {m}" for m in re.findall(r"socket\(\s*(?:socket\.)?AF_INET6?\b[^)]*\)", text)]
    assert not found, found


def test_the_bounding_set_keeps_what_the_worker_needs_and_not_dac_override():
    bounding = set(words(service(UNIT), "CapabilityBoundingSet"))
    kept = {privs.NAMES[c].upper() for c in privs.KEEP}
    assert kept <= bounding, kept - bounding
    assert {"CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"} <= bounding   # the supervisor's drop
    assert not bounding & {"CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_SYS_ADMIN", "CAP_SYS_MODULE",
                           "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_MKNOD"}
    comments = open(UNIT).read()
    for cap in bounding:   # each one says why
        assert re.search(rf"^#\s+(\S+ )?{cap}\b", comments, re.M), f"{cap} has no comment line"
