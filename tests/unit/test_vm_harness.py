"""The VM stage's harness (tests/vm.py) without a VM: the guest's JUnit results read back per
test, the guest script, the in-memory copy's paths, and guest tests refusing to run here."""
import os
import subprocess
import sys

from tests import vm

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.vmstage.guest.test_bonding" name="test_bond[fast]" time="41.5">
  <system-out>guest said hello</system-out></testcase>
<testcase classname="tests.vmstage.guest.test_vlans" name="test_vlan[relay]" time="12.0">
  <failure message="AssertionError: ping 10.0.10.2">Traceback...</failure>
  <system-err>stderr words</system-err></testcase>
<testcase classname="tests.vmstage.guest.test_demo" name="test_demo" time="1.0">
  <error message="fixture failed">setup trace</error></testcase>
</testsuite></testsuites>"""


def test_junit_results_by_node_id(tmp_path):
    path = tmp_path / "guest.xml"
    path.write_text(JUNIT)
    results = vm.parse_junit(str(path))
    assert sorted(results) == ["tests/vmstage/guest/test_bonding.py::test_bond[fast]",
                               "tests/vmstage/guest/test_demo.py::test_demo",
                               "tests/vmstage/guest/test_vlans.py::test_vlan[relay]"]
    ok = results["tests/vmstage/guest/test_bonding.py::test_bond[fast]"]
    assert (ok.outcome, ok.seconds) == ("passed", 41.5) and "guest said hello" in ok.details
    bad = results["tests/vmstage/guest/test_vlans.py::test_vlan[relay]"]
    assert bad.outcome == "failed" and bad.message == "AssertionError: ping 10.0.10.2"
    assert "Traceback..." in bad.details and "stderr words" in bad.details
    assert results["tests/vmstage/guest/test_demo.py::test_demo"].outcome == "error"


def test_the_guest_script_loads_modules_and_marks_the_guest():
    script = vm.guest_script("/tmp/r", ["/opt/venv", "/src"], ["tests/vmstage/guest"])
    assert "modprobe -a tun veth bonding 8021q bridge" in script
    assert "AGRCONFIG_VM_GUEST=1" in script and "--junitxml=/tmp/r/guest.xml" in script
    assert "lowerdir=/run/hvcopy/opt/venv:/opt/venv /opt/venv" in script
    assert f"export PATH={vm.GUEST_PATH}" in script


def test_copied_paths_are_not_nested():
    tops = vm.copied_paths()
    assert os.path.realpath(vm.ROOT) in tops or any(vm.ROOT.startswith(t + "/") for t in tops)
    assert not any(t != o and t.startswith(o + "/") for t in tops for o in tops)


def test_guest_tests_are_not_collected_on_the_host():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "tests/vmstage"], capture_output=True, text=True, cwd=vm.ROOT,
                          env={k: v for k, v in os.environ.items() if k != "AGRCONFIG_VM_GUEST"})
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert ids and all(i.startswith("tests/vmstage/test_debian_kernel.py::") for i in ids), proc.stdout


def test_a_guest_test_refuses_to_run_outside_the_vm():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/vmstage/guest/test_demo.py"], capture_output=True, text=True, cwd=vm.ROOT,
                          env=dict(os.environ, AGRCONFIG_VM_GUEST="1"), timeout=120)
    assert proc.returncode == 1 and "run only inside the VM stage" in proc.stdout, proc.stdout
