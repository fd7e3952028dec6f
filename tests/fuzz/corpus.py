"""tests/corpus/<target>/: the inputs every run replays (tests/fuzz/test_corpus.py).

Seeds (seed-*) are valid samples written by tests/fuzz/seeds.py; crash-* files are inputs that
once broke a contract, kept by whichever fuzzer found them (hypothesis through keep_crash(),
atheris through libFuzzer's -artifact_prefix) so that the bug stays fixed.
"""
import hashlib
import os

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpus")


def directory(target):
    return os.path.join(CORPUS, target)


def files(target=None):
    """(target, path) of every input kept, sorted."""
    out = []
    names = [target] if target else sorted(os.listdir(CORPUS)) if os.path.isdir(CORPUS) else []
    for name in names:
        d = directory(name)
        if os.path.isdir(d):
            out += [(name, os.path.join(d, f)) for f in sorted(os.listdir(d)) if not f.startswith(".")]
    return out


def keep_crash(target, data):
    """Write an input that broke `target`'s contract as tests/corpus/<target>/crash-<sha1>
    (libFuzzer's own naming); returns its path."""
    os.makedirs(directory(target), exist_ok=True)
    path = os.path.join(directory(target), "crash-" + hashlib.sha1(data).hexdigest())
    with open(path, "wb") as f:
        f.write(data)
    return path


def run_keeping(target, data):
    """Run `target` on `data`; on a broken contract keep the input, then fail as it did."""
    from .targets import TARGETS
    try:
        TARGETS[target].check(data)
    except Exception as exc:
        path = keep_crash(target, bytes(data))
        exc.add_note(f"input kept as {os.path.relpath(path)}")
        raise
