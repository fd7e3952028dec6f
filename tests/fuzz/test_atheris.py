"""Coverage-guided fuzzing in CI: every target under atheris (tests/fuzz/atheris_main.py) for a
fixed number of runs from a fixed seed (the same search on every run of the same code), with a
time bound as well. A crash or a hang fails the test and is kept in tests/corpus/TARGET/ by
libFuzzer; scripts/fuzz runs the same targets for longer.

CI's fuzzing budget is 3 minutes on 2 cores for everything in tests/fuzz/; the runs below take
about 6 s each here (see CI_RUNS), hypothesis's tests about 10 s in all.
"""
import os
import subprocess
import sys
import tempfile

import pytest

from . import corpus
from .targets import TARGETS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Runs per target: about 6 s each on this 2-core machine (executions per second differ by
# a factor of 100: the LACP core is copied for every frame, a configuration file is a file).
CI_RUNS = {"slow_pdu": 300000, "slow_frame": 5000, "preflight_frame": 70000, "data_frame": 40000,
           "control_request": 300000, "control_reply": 25000, "control_server": 20000,
           "state_file": 7000, "ifconfig_file": 2500, "ifupdown_stanza": 30000}
MAX_SECONDS = 10     # the bound whatever the machine's speed (a loaded one runs fewer inputs)
HANG = 10            # seconds for one input: a hang


def libfuzzer_args(name, scratch, seconds=None, runs=None, seed=None, seeds=None):
    """The command that fuzzes `name`: crashes to tests/corpus/NAME/, new inputs to `scratch`."""
    seeds = seeds or corpus.directory(name)
    args = [sys.executable, "-m", "tests.fuzz.atheris_main", name, f"-timeout={HANG}", "-rss_limit_mb=2048",
            f"-artifact_prefix={seeds}/", "-print_final_stats=1"]
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    if runs is not None:
        args.append(f"-runs={runs}")
    if seed is not None:
        args.append(f"-seed={seed}")
    return args + [scratch, seeds]


def test_every_target_has_a_ci_budget():
    assert set(CI_RUNS) == set(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_atheris(name):
    before = set(os.listdir(corpus.directory(name)))
    with tempfile.TemporaryDirectory(prefix="agrfuzz-") as scratch, tempfile.TemporaryDirectory(prefix="agrfuzz-") as tmp:
        # TMPDIR: the targets' files go where they are removed (libFuzzer exits without
        # Python's atexit).
        proc = subprocess.run(libfuzzer_args(name, scratch, MAX_SECONDS, CI_RUNS[name], seed=1), cwd=ROOT,
                              env={**os.environ, "TMPDIR": tmp}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace", timeout=MAX_SECONDS + 60)
    kept = sorted(set(os.listdir(corpus.directory(name))) - before)
    assert proc.returncode == 0 and not kept, (
        f"atheris broke {name}'s contract; input kept as {kept} in tests/corpus/{name}/\n" + proc.stdout[-4000:])
    assert "Done " in proc.stdout, proc.stdout[-2000:]


def test_a_crash_is_kept_and_fails(tmp_path):
    """The rule itself: atheris on a target that breaks on one input writes that input where
    its corpus is (tests/corpus/TARGET/ for the real ones) and exits non-zero."""
    seeds, scratch = tmp_path / "selftest", tmp_path / "scratch"
    seeds.mkdir()
    scratch.mkdir()
    (seeds / "seed-boom").write_bytes(b"boom")
    proc = subprocess.run(libfuzzer_args("selftest", str(scratch), 30, 1000, seed=1, seeds=str(seeds)), cwd=ROOT,
                          env={**os.environ, "AGRCONFIG_FUZZ_SELFTEST": "1", "TMPDIR": str(tmp_path)},
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace", timeout=120)
    crashes = [p for p in os.listdir(seeds) if p.startswith("crash-")]
    assert proc.returncode != 0 and "selftest: boom" in proc.stdout, proc.stdout[-2000:]
    assert [(seeds / c).read_bytes() for c in crashes] == [b"boom"]
