"""What a command imports is what it uses (issue 23): a status, `-a`, `--json -a` and
`--metrics` run in a fresh interpreter, and the modules they loaded are checked against the
set they need. Each import below cost every such command milliseconds of its start
(python -X importtime); a regression fails here, not in a benchmark. No times are asserted.

The interpreter runs with -S (no site: nothing loaded before the command but the interpreter's
own start), its path set to this checkout and the site-packages of the one running the tests.
The commands run against this host's network namespace and read only: an agr interface that
does not exist (the whole front end up to asking its worker), then the rendering of recorded
worker replies (tests/unit/data/status) as text, JSON and metrics, which a real status runs.
"""
import itertools
import os
import site
import subprocess
import sys

import pytest
from docopt import DocoptExit, docopt

from agrconfig.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "unit", "data", "status")

RUN = r"""
import sys
before = set(sys.modules)
sys.path[:0] = sys.argv[1].split(":")
fixtures, argv = sys.argv[2], sys.argv[3:]
import io, os
out, sys.stdout = sys.stdout, io.StringIO()
from agrconfig.cli.main import main
main(argv)
if "--metrics" in argv or "agr0" in argv or "-a" in argv:
    # what a status of a live agr interface runs after asking its worker
    from agrconfig import jsontext
    from agrconfig.net import rtnl
    from agrconfig.status import AggregateStatus
    if "--metrics" in argv:
        from agrconfig.cli import metrics
    else:
        from agrconfig.cli import render
        from agrconfig.client.inspect import Facts
    for name in sorted(os.listdir(fixtures)):
        with open(os.path.join(fixtures, name)) as f:
            ws = AggregateStatus.from_json(jsontext.loads(f.read())["worker_reply"])
        if "--metrics" in argv:
            metrics.text({"agr0": ws})
        else:
            doc = render.document(Facts(rtnl.link("lo"), [], None, ws))
            render.render_text(doc, verbose=True) if "--json" not in argv else jsontext.dumps(render.json_doc(doc), indent=2)
sys.stdout = out
print("\n".join(sorted(set(sys.modules) - before)))
"""

# What a status needs: the front end, the client's reading of workers and state files, the
# control protocol, rtnetlink, the status model and its base.
STATUS = {
    "agrconfig", "agrconfig.checks", "agrconfig.errors", "agrconfig.logger", "agrconfig.options", "agrconfig.paths",
    "agrconfig.record", "agrconfig.enumerated", "agrconfig.status", "agrconfig.jsontext", "agrconfig.lacp", "agrconfig.lacp.states",
    "agrconfig.cli", "agrconfig.cli.main", "agrconfig.cli.render", "agrconfig.cli.stats",
    "agrconfig.client", "agrconfig.client.inspect", "agrconfig.client.workers",
    "agrconfig.ipc", "agrconfig.ipc.client", "agrconfig.ipc.protocol",
    "agrconfig.net", "agrconfig.net.netlink", "agrconfig.net.rtnl",
    "agrconfig.worker", "agrconfig.worker.statefile",
}
METRICS = STATUS - {"agrconfig.cli.render", "agrconfig.cli.stats"} | {"agrconfig.cli.metrics"}

# Heavy modules that none of these commands uses (each cost ms at every start): the LACP core,
# the worker's own modules, dataclasses (and inspect), argument parsing by docopt, process and
# logging machinery, prometheus_client (http.server, ssl, email), pyroute2.
DENIED = {
    "dataclasses", "inspect", "ast", "dis", "typing", "subprocess", "ctypes", "logging", "docopt", "psutil",
    "ipaddress", "concurrent.futures", "prometheus_client", "pyroute2", "datetime", "shlex", "tempfile",
    "pathlib", "email", "http", "ssl", "asyncio", "traceback", "argparse", "uuid", "random", "hashlib",
    "contextlib", "importlib", "warnings",
    "enum", "functools", "collections", "operator", "types",   # choice.Choice: StrEnum without enum (~3 ms)
    "json", "re",   # jsontext reads and writes JSON with _json: json imports re and compiles its patterns
    "agrconfig.lacp.core", "agrconfig.lacp.port", "agrconfig.lacp.pdu", "agrconfig.lacp.events",
    "agrconfig.lacp.machine", "agrconfig.cli.grammar", "agrconfig.cli.ops", "agrconfig.cli.provision",
    "agrconfig.client.commands", "agrconfig.worker.port", "agrconfig.worker.process", "agrconfig.worker.loop",
    "agrconfig.worker.slb", "agrconfig.worker.flowhash", "agrconfig.net.vlan", "agrconfig.net.ethtool",
}


def imported(*argv):
    path = os.pathsep.join([ROOT, *site.getsitepackages()])
    proc = subprocess.run([sys.executable, "-S", "-c", RUN, path, FIXTURES, *argv], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def check(mods, agrconfig_modules, allowed_extra=frozenset()):
    ours = {m for m in mods if m.split(".")[0] == "agrconfig"}
    assert ours == agrconfig_modules | allowed_extra, (sorted(ours - agrconfig_modules - allowed_extra),
                                                       sorted(agrconfig_modules - ours))
    heavy = {m for m in mods if m in DENIED or m.split(".")[0] in DENIED}
    assert not heavy, f"a status-path command imported {sorted(heavy)}"


@pytest.mark.parametrize("argv", [["agr9999"], ["-v", "agr9999"], ["--json", "agr9999"]])
def test_a_status_imports_only_what_it_uses(argv):
    # agr9999: no such interface here; the front end goes as far as asking its worker
    mods = imported(*argv)
    check(mods, STATUS)
    assert "threading" not in mods   # one worker asked: no threads


@pytest.mark.parametrize("argv", [["-a"], ["--json", "-a"], ["-v", "-a"]])
def test_every_interfaces_status_imports_only_what_it_uses(argv):
    check(imported(*argv), STATUS)


def test_metrics_import_only_what_they_use():
    check(imported("--metrics"), METRICS)


# -- the quick parser (main.quick_args) against docopt -----------------------------------------

TOKENS = ["-n", "-v", "--json", "-a", "--metrics", "agr0", "agrport", "-agrport", "--help", "-h", "--",
          "--version", "-l", "--js", "-vn", "-f"]


def test_the_quick_parser_answers_as_docopt_does():
    checked = 0
    for length in range(4):
        for argv in itertools.product(TOKENS, repeat=length):
            quick = main.quick_args(list(argv))
            if quick is None:
                continue   # docopt's to parse
            checked += 1
            try:
                parsed = dict(docopt(main.__doc__, list(argv), options_first=True, version="x"))
            except (DocoptExit, SystemExit) as exc:
                raise AssertionError(f"{argv}: quick parse {quick}, docopt {exc!r}") from None
            assert quick == parsed, argv
    assert checked > 500


def test_the_quick_parser_leaves_the_rest_to_docopt():
    for argv in (["-l"], ["--help"], ["agr0", "-x"] and ["-x", "agr0"], ["-n", "-a"], ["--metrics", "-v"],
                 ["-f", "file", "agr0"], ["-v", "-v", "agr0"], [], ["-a", "agr0"], ["--metrics-file=x"]):
        assert main.quick_args(argv) is None, argv
    assert main.quick_args(["agr0", "-agrport", "re0"])["<word>"] == ["-agrport", "re0"]


WORKER = r"""
import sys
sys.path[:0] = sys.argv[1].split(":")
before = set(sys.modules)
from agrconfig.worker import supervisor
supervised = set(sys.modules)
# what supervisor._worker_main imports in the worker, after the fork
from agrconfig import jsontext
from agrconfig.errors import AgrError
from agrconfig.worker import statefile
from agrconfig.worker.loop import Worker
from agrconfig.worker import datapath, fastpath   # the eBPF data path's, imported when it starts
print(" ".join(sorted(supervised - before)))
print(" ".join(sorted(set(sys.modules) - supervised)))
"""

# Each of these would cost every aggregate's worker or supervisor memory (bench/RESULTS.md,
# issue 23): json and re (~0.5 MiB; jsontext uses _json), threading (the relay runs on _thread),
# socket.py's enums, logging, dataclasses, typing, pyroute2, psutil.
NOT_IN_A_WORKER = {"json", "re", "threading", "socket", "logging", "dataclasses", "typing", "inspect",
                   "subprocess", "ipaddress", "pyroute2", "psutil", "docopt", "ctypes.util", "tempfile",
                   # signal.py's and selectors' imports (~0.5 MiB a worker): _signal and select.epoll
                   "enum", "functools", "selectors", "signal"}
NOT_IN_A_SUPERVISOR = NOT_IN_A_WORKER | {"enum", "selectors", "agrconfig.lacp", "agrconfig.status",
                                         "agrconfig.options", "agrconfig.worker.loop"}


def test_a_worker_imports_only_what_it_runs():
    """The supervisor (python -I -S, as process.spawn starts it) and the worker it forks."""
    out = subprocess.run([sys.executable, "-I", "-S", "-c", WORKER, ROOT], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    supervisor, worker = set(out[0].split()), set(out[1].split())
    assert "agrconfig.worker.supervisor" in supervisor and "agrconfig.worker.loop" in worker
    assert not supervisor & NOT_IN_A_SUPERVISOR
    assert not worker & NOT_IN_A_WORKER
