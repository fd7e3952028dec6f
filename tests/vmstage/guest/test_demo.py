"""The README's lab demo (`sh scripts/bootstrap demo` runs examples/lab-demo once installed),
unchanged on Debian's kernel, with this checkout's agrconfig."""
import os
import subprocess
import sys

from tests.lab import ROOT


def test_the_readme_demo_completes():
    env = dict(os.environ, AGRCONFIG=f"{sys.executable} {ROOT}/bin/agrconfig")
    proc = subprocess.run(["sh", os.path.join(ROOT, "examples", "lab-demo")], capture_output=True, text=True,
                          env=env, timeout=480)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert "done: ports restored, agr0 gone" in proc.stdout
    assert "datapath ebpf" in proc.stdout, proc.stdout[-3000:]   # the fast path, on this kernel too
