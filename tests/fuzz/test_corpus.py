"""Every input in tests/corpus/ (the seeds and every crash ever found) still keeps its target's
contract: a bug a fuzzer once found stays fixed."""
import os
import signal

import pytest

from . import corpus
from .targets import TARGETS

KEPT = corpus.files()
HANG = 10   # seconds: libFuzzer's -timeout in scripts/fuzz and test_atheris.py


@pytest.mark.parametrize("target,path", KEPT, ids=[os.path.relpath(p, corpus.CORPUS) for _t, p in KEPT])
def test_kept_input_keeps_the_contract(target, path):
    assert target in TARGETS, f"{path}: no fuzz target {target!r} (tests/fuzz/targets.py)"
    with open(path, "rb") as f:
        data = f.read()
    # A hang is a broken contract too (libFuzzer keeps it as timeout-*): fail, do not wait.
    def hang(_sig, _frame):
        raise TimeoutError(f"{path}: still running after {HANG} s")
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG)
    try:
        TARGETS[target].check(data)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_every_target_has_seeds():
    """A fuzzer starts from valid samples (tests/fuzz/seeds.py writes them)."""
    for name in TARGETS:
        seeds = [p for _t, p in corpus.files(name) if os.path.basename(p).startswith("seed-")]
        assert seeds, f"tests/corpus/{name}/ has no seed-* file: run python -m tests.fuzz.seeds"


def test_no_stray_directories():
    assert set(os.listdir(corpus.CORPUS)) <= set(TARGETS), "a corpus directory without its target"
