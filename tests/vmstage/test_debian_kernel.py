"""The VM stage: the guest tests (tests/vmstage/guest) on Debian's own kernel, in one VM boot
for the session (tests/vm.py), each reported here as its own test with the guest's output. A VM
that cannot start fails every one of them with the reason."""
import os
import shutil
import tempfile

import pytest

from tests import vm

pytestmark = [pytest.mark.integration, pytest.mark.vm]

_collected = {}


def pytest_generate_tests(metafunc):
    if "guest_test" in metafunc.fixturenames:
        try:
            ids = vm.collect_guest_tests()
        except vm.VmError as e:
            _collected["error"] = str(e)
            ids = ["collecting the guest tests"]
        metafunc.parametrize("guest_test", ids, ids=[i.split("/")[-1] for i in ids])


@pytest.fixture(scope="module")
def guest_run(request):
    if os.geteuid() != 0:
        pytest.fail("the VM stage needs root")
    if "error" in _collected:
        return vm.VmError(_collected["error"])
    # Under /tmp: the guest writes its results through a shared directory (--rwdir).
    result_dir = tempfile.mkdtemp(prefix="agrconfig-vm-", dir="/tmp")
    try:
        run = vm.run_guest_suite(result_dir)
    except (vm.VmError, OSError) as e:
        return vm.VmError(str(e))
    finally:
        shutil.rmtree(result_dir, ignore_errors=True)
    plugins = request.config.pluginmanager
    reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():     # the stage's time, in CI's log too
            reporter.write_line(f"\nVM stage: Debian's kernel under {run.accel}, {len(run.results)} guest "
                                f"tests in {run.seconds:.0f} s (" + ", ".join(
                                    f"{r.nodeid.split('::')[-1]} {r.seconds:.0f} s" for r in run.results.values()) + ")")
    return run


def test_on_debian_kernel(guest_run, guest_test):
    if isinstance(guest_run, vm.VmError):
        pytest.fail(f"the VM stage could not run: {guest_run}", pytrace=False)
    result = guest_run.results.get(guest_test)
    if result is None:
        pytest.fail(f"the guest reported nothing for {guest_test} (it stopped early?)\n"
                    f"{guest_run.log[-6000:]}", pytrace=False)
    if result.outcome != "passed":
        pytest.fail(f"{guest_test} {result.outcome} in the VM ({guest_run.accel}, {result.seconds:.0f} s): "
                    f"{result.message}\n{result.details}", pytrace=False)
