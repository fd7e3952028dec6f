"""The import graph keeps the layers pointing one way, with no cycle.

From the top: the command line (cli), the client (finding and asking workers, plain ifconfig
operations), the worker, the control protocol both ends share (ipc), and at the bottom the
sans-IO LACP core, rtnetlink (net) and the small shared modules. Imports inside functions count.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = os.path.join(ROOT, "agrconfig")
LAYERS = ["cli", "client", "worker", "ipc", "base"]
BASE = {"agrconfig", "agrconfig.jsontext", "agrconfig.options", "agrconfig.checks", "agrconfig.errors", "agrconfig.paths", "agrconfig.record", "agrconfig.enumerated",
        "agrconfig.status", "agrconfig.heard", "agrconfig.logger"}


def modules():
    out = {}
    for folder, _dirs, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[name.removesuffix(".__init__")] = path
    return out


MODULES = modules()


def layer(name):
    if name == "agrconfig.__main__":
        return "cli"
    if name in BASE or name.startswith(("agrconfig.lacp", "agrconfig.net")):
        return "base"
    part = name.split(".")[1]
    assert part in LAYERS, f"{name}: in no layer; place it in test_layers.py"
    return part


def imports(name):
    """(imported module, line) for every import of the project in module `name`."""
    path = MODULES[name]
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    tree = ast.parse(open(path).read())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "agrconfig":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in MODULES else target, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "agrconfig"]
    return out


GRAPH = {name: {target for target, _line in imports(name) if target != name} for name in MODULES}


def test_every_module_is_in_a_layer():
    for name in MODULES:
        layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down(name):
    mine = LAYERS.index(layer(name))
    for target, line in imports(name):
        assert target in MODULES, f"{name}:{line} imports {target}, which does not exist"
        theirs = LAYERS.index(layer(target))
        assert theirs >= mine, f"{name}:{line} imports {target}: up from {layer(name)} to {layer(target)}"
        if layer(name) in ("cli", "client") and layer(target) == "worker":
            assert target == "agrconfig.worker", \
                f"{name}:{line} imports {target}: the front end uses only the worker's entry point"


def test_the_lacp_core_is_sans_io():
    forbidden = {"socket", "select", "selectors", "threading", "time", "os", "asyncio", "subprocess"}
    for name, path in MODULES.items():
        if not name.startswith("agrconfig.lacp"):
            continue
        for target, line in imports(name):
            # Record and Choice: the value types, pure (no I/O, no imports of their own)
            assert target.startswith("agrconfig.lacp") or target in ("agrconfig.record", "agrconfig.enumerated"), \
                f"{name}:{line} imports {target}"
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad = {n.split(".")[0] for n in names} & forbidden
                assert not bad, f"{name}:{node.lineno} imports {bad}: the core takes time and bytes, no I/O"


def find_cycle(graph):
    """A cycle of `graph` ({node: {next nodes}}) as a list of nodes, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for name in sorted(graph):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # A worker importing the command line is an upward import.
    assert LAYERS.index(layer("agrconfig.worker.loop")) > LAYERS.index(layer("agrconfig.cli.main"))
    with pytest.raises(AssertionError, match="up from worker to cli"):
        MODULES["agrconfig.worker.fake"] = MODULES["agrconfig.worker.loop"]
        try:
            real = imports
            globals()["imports"] = lambda name: [("agrconfig.cli.main", 1)] if name.endswith("fake") else real(name)
            test_imports_point_down("agrconfig.worker.fake")
        finally:
            globals()["imports"] = real
            del MODULES["agrconfig.worker.fake"]
