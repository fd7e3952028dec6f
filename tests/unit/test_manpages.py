"""The manual pages are clean mdoc and describe every word the command knows."""
import os
import re
import shutil
import subprocess

from agrconfig import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = [os.path.join(ROOT, "man", p) for p in ("agr.4", "agrconfig.8")]


def test_mandoc_lint_is_clean():
    mandoc = shutil.which("mandoc")
    assert mandoc, "mandoc is required (apt install mandoc)"
    proc = subprocess.run([mandoc, "-Tlint", "-W", "warning", *PAGES], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


def usage_words():
    section = cli.__doc__.split("Words (applied left to right, as ifconfig does):")[1].split("\n\n")[0]
    words = set()
    for line in section.splitlines():
        if not line.startswith("  ") or line.startswith("   "):
            continue  # a continuation of the description above
        head = re.split(r"\s{2,}", line.strip())[0]
        words |= {w for w in re.findall(r"-?[a-z][a-z0-9]+", head) if w not in {"n", "port", "addr", "len", "mask"}}
    return words


def test_every_word_is_documented():
    text = subprocess.run(["mandoc", "-Tutf8", PAGES[1]], capture_output=True, text=True).stdout
    text = re.sub(r".\x08", "", text)
    words = usage_words()
    assert {"create", "agrport", "-agrport", "link1", "lacpstrict", "agrhash", "monitor"} <= words
    missing = [w for w in words if not re.search(rf"(?<![\w-]){re.escape(w)}(?![\w])", text)]
    assert not missing, missing
