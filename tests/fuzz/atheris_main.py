"""Coverage-guided fuzzing of one target with atheris (libFuzzer for Python):

    python -m tests.fuzz.atheris_main TARGET [libFuzzer options] [CORPUS_DIR ...]

The project's modules are instrumented (atheris.instrument_imports), so libFuzzer keeps the
inputs that reach new branches of agrconfig and mutates them further. A broken contract is
an uncaught exception: libFuzzer stops and writes the input to -artifact_prefix, which
scripts/fuzz and tests/fuzz/test_atheris.py set to tests/corpus/TARGET/ (crash-<sha1>; a
hang past -timeout is timeout-<sha1>). libFuzzer adds what it learns to the first corpus
directory given: a scratch one, so tests/corpus/ keeps only seeds and crashes.
"""
import sys

import atheris

from . import corpus


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.exit("usage: python -m tests.fuzz.atheris_main TARGET [libFuzzer options] [CORPUS_DIR ...]")
    name = argv.pop(1)
    with atheris.instrument_imports(include=["agrconfig"]):
        from .targets import TARGETS
        if name not in TARGETS:
            sys.exit(f"no target {name!r}: {', '.join(TARGETS)}")
        check = TARGETS[name].check
        # The targets import what they need on first use: import it now, instrumented.
        for _t, path in corpus.files(name)[:1]:
            with open(path, "rb") as f:
                check(f.read())
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(list(sys.argv))
