"""The worker speaks rtnetlink with our own code (net/): pyroute2's import alone is ~20 MiB of
private memory in every worker. Nothing the worker process imports may import pyroute2, at
start-up or later inside a function."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER_SIDE = ("worker", "ipc", "net", "lacp")          # the worker and every layer below it


def worker_modules():
    out = ["agrconfig", "agrconfig.options", "agrconfig.checks", "agrconfig.errors", "agrconfig.paths",
           "agrconfig.record"]
    for part in WORKER_SIDE:
        folder = os.path.join(ROOT, "agrconfig", part)
        for f in sorted(os.listdir(folder)):
            if f.endswith(".py"):
                out.append(f"agrconfig.{part}" if f == "__init__.py" else f"agrconfig.{part}.{f[:-3]}")
    return out


def test_the_worker_side_imports_no_pyroute2():
    code = ("import importlib, sys\n"
            "for m in sys.argv[1:]: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pyroute2'))")
    mods = worker_modules()
    assert "agrconfig.worker.fastpath" in mods and "agrconfig.worker.process" in mods
    out = subprocess.run([sys.executable, "-c", code, *mods], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_worker_side_module_imports_pyroute2_later_either():
    for name in worker_modules():
        path = os.path.join(ROOT, *name.split(".")) + ".py"
        if not os.path.exists(path):
            path = os.path.join(ROOT, *name.split("."), "__init__.py")
        for node in ast.walk(ast.parse(open(path).read())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "pyroute2" for n in names), f"{name}:{node.lineno} imports pyroute2"
