"""The README's Layout section names every module of the package, so it cannot drift from the
code unnoticed (issue 20: the Layout matches the code)."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def layout():
    text = open(os.path.join(ROOT, "README.md")).read()
    return text[text.index("## Layout"):text.index("## Licence")]


def test_every_module_is_named_in_the_layout():
    named = set(re.findall(r"[\w/]*?(\w+\.py)\b", layout()))
    missing = []
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "agrconfig")):
        for f in files:
            if f.endswith(".py") and f not in ("__init__.py", "__main__.py") and f not in named:
                missing.append(os.path.relpath(os.path.join(folder, f), ROOT))
    assert not missing, f"modules the README's Layout does not name: {sorted(missing)}"


def test_the_layout_names_no_module_that_is_gone():
    present = {f for top in ("agrconfig", "tests") for _d, _s, files in os.walk(os.path.join(ROOT, top))
               for f in files}
    gone = {name for name in re.findall(r"\b(\w+\.py)\b", layout()) if name not in present}
    assert not gone, f"the README's Layout names modules that do not exist: {sorted(gone)}"
