"""The manual pages are clean mdoc(7), and agrconfig(8) documents every word the command knows."""
import os
import re
import shutil
import subprocess

from agrconfig.cli import main as cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGR_4 = os.path.join(ROOT, "man", "agr.4")
AGRCONFIG_8 = os.path.join(ROOT, "man", "agrconfig.8")


def mandoc():
    path = shutil.which("mandoc")
    # Not a skip: a missing mandoc must not let broken pages through.
    assert path, "mandoc is required to check the manual pages (apt-get install mandoc)"
    return path


def test_mandoc_lint_is_clean():
    for page in (AGR_4, AGRCONFIG_8):
        proc = subprocess.run([mandoc(), "-Tlint", "-W", "warning", page], capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        assert output == "", output
        assert proc.returncode == 0, f"{page}: mandoc exited {proc.returncode}"


def test_man_formats_the_pages_at_80_columns_without_a_warning():
    """What man(1) shows a Debian user: groff at 80 columns, every warning on. A table wider
    than the terminal (lintian: groff-message "can't break line") is unreadable there."""
    groff = shutil.which("groff")
    assert groff, "groff is required to check the manual pages (apt-get install groff-base)"
    for page in (AGR_4, AGRCONFIG_8):
        proc = subprocess.run([groff, "-mandoc", "-Tutf8", "-rLL=80n", "-ww", "-z", page],
                              capture_output=True, text=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
        assert proc.stderr == "", f"{page}:\n{proc.stderr}"
        assert proc.returncode == 0


def usage_words():
    """The words of the usage text's 'Words' section: its lines up to the first blank line."""
    lines = cli.__doc__.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Words"))
    words = set()
    for line in lines[start + 1:]:
        if not line.strip():
            break
        if line.startswith("   "):
            continue  # the description of the line above, continued
        # The word column ends at the first run of two spaces; the description follows.
        head = re.split(r"\s{2,}", line.strip())[0]
        # Words are lower case; placeholders (PORT, N, ADDR, LEN, MASK) are upper case.
        words |= set(re.findall(r"(?<![\w-])-?[a-z][a-z0-9]*", head))
    return words


def rendered(page):
    proc = subprocess.run([mandoc(), "-Tascii", page], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return re.sub(r".\x08", "", proc.stdout)  # drop the overstrike of bold and underline


def test_usage_words_are_parsed():
    words = usage_words()
    assert {"create", "destroy", "agrport", "-agrport", "link0", "-link0", "link1", "-link1",
            "lacptimeout", "lacpstrict", "-lacpstrict", "agrhash", "debug", "-debug", "monitor"} <= words
    assert not {w for w in words if w.upper() == w}, "placeholders taken for words"


def test_every_word_is_documented():
    text = rendered(AGRCONFIG_8)
    missing = sorted(w for w in usage_words()
                     if not re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text))
    assert not missing, f"words of the usage text missing from agrconfig.8: {missing}"


def test_destroy_all_is_documented():
    assert "--destroy-all" in rendered(AGRCONFIG_8)
