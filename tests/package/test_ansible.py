"""examples/ansible/agrconfig.yml run by ansible-playbook against localhost, the command
prefixed with `ip netns exec` and the file written under tmp_path: the first run reports
changed and applies, the second reports nothing, a changed file is changed again."""
import os
import re
import subprocess

import pytest

from tests.integration.helpers import host_pair, ok, status_json, strip_addresses
from tests.lab import AGRCONFIG, ROOT

pytestmark = pytest.mark.integration
PLAYBOOK = os.path.join(ROOT, "examples", "ansible", "agrconfig.yml")
CONF = "create\nlacptimeout fast\nagrport re0\nagrport re1\ninet 192.0.2.10/24\n"


def play(ns, src, dest, *extra):
    argv = ["ansible-playbook", "-i", "localhost,", "-c", "local", PLAYBOOK,
            "-e", "agr_hosts=localhost", "-e", "ansible_become=false",
            "-e", f"agr_conf_src={src}", "-e", f"agr_conf_dest={dest}",
            "-e", f"agrconfig='ip netns exec {ns} {' '.join(AGRCONFIG)}'", *extra]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_GATHERING": "explicit",
           "ANSIBLE_LOCAL_TEMP": str(src.parent / "ansible-tmp"), "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0", proc.stdout)
    assert recap, proc.stdout
    return int(recap.group(2)), proc.stdout


def test_playbook_reports_changed_only_when_something_changed(lab, tmp_path):
    a, _b = host_pair(lab)
    for p in ("re0", "re1"):
        strip_addresses(lab, a, p)
    src, dest = tmp_path / "ifconfig.agr0", tmp_path / "etc-ifconfig.agr0"
    src.write_text(CONF)

    changed, out = play(a, src, dest, "--check")
    assert changed == 1 and not dest.exists(), out   # the copy would change; nothing did
    assert lab.ip(a, "link", "show", "agr0", check=False).returncode != 0

    changed, out = play(a, src, dest)
    assert changed == 3, out                          # copied, planned 3, applied
    doc = status_json(lab, a)
    assert [p["ifname"] for p in doc["agrports"]] == ["re0", "re1"]

    changed, out = play(a, src, dest)
    assert changed == 0, out                          # exit status 0: nothing to do
    changed, out = play(a, src, dest, "--check")
    assert changed == 0, out

    # The interface changed behind the file's back: the plan sees it (under --check too).
    ok(lab, a, "agr0", "lacptimeout", "slow")
    changed, out = play(a, src, dest, "--check")
    assert changed == 1, out
    changed, out = play(a, src, dest)
    assert changed == 2, out                          # planned, applied; the file was the same
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["lacp_fast"] is True

    src.write_text(CONF.replace("lacptimeout fast\n", ""))
    changed, out = play(a, src, dest)
    assert changed == 3, out
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["lacp_fast"] is False
