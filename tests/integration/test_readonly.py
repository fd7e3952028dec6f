"""Read-only for everyone, changes for root only (issue 24 item 1), as user nobody.

Every read command works for nobody and shows the facts root's shows, with no warning; every
word that changes something is refused with EPERM in ifconfig's words and changes nothing
(the kernel's links and addresses, the worker's status); every control request that changes
something, sent as nobody straight to the worker's socket (no front end to refuse it first),
is refused by the worker. A dead worker, or one of an earlier release that answers root
only, gives nobody the kernel's view and says what root must do."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from agrconfig import options
from agrconfig.ipc import protocol
from agrconfig.ipc.server import LOOK_REUSE
from tests.integration.helpers import agr_pair, ok
from tests.lab import AGRCONFIG, ROOT

pytestmark = pytest.mark.integration

PROBE = os.path.join(os.path.dirname(__file__), "ctl_probe.py")
NOBODY = 65534
SETPRIV = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
# Where nobody cannot read the checkout or run the interpreter (a clone under /root), the
# command starts as root, imports everything a command may import, then gives up root for good
# (as setpriv --reuid does) before main() runs.
AS_NOBODY = """
import os, sys
sys.path.insert(0, sys.argv.pop(1))
import concurrent.futures, configparser, ipaddress, prometheus_client
from agrconfig.cli import diagnose, grammar, main, metrics, monitor, ops, provision, render, whichport
from agrconfig.client import commands, inspect, interface, workers
os.setgroups([]); os.setgid(65534); os.setuid(65534)
assert os.getuid() == os.geteuid() == 65534
sys.exit(main.main(sys.argv[1:]))
"""
ERROR = re.compile(r"^agrconfig: (SIOC[A-Z0-9_]+): Operation not permitted \(EPERM: .*only root may change.*\)$")


def _setpriv_works():
    proc = subprocess.run([*SETPRIV, *AGRCONFIG, "--version"], capture_output=True, text=True, timeout=60)
    return proc.returncode == 0


SETPRIV_WORKS = _setpriv_works()


def as_nobody(lab, ns, *words, timeout=60):
    if SETPRIV_WORKS or os.environ.get("AGRCONFIG_CMD"):
        return lab.run(ns, *SETPRIV, *AGRCONFIG, *words, check=False, timeout=timeout)
    return lab.run(ns, sys.executable, "-c", AS_NOBODY, ROOT, *words, check=False, timeout=timeout)


def as_root(lab, ns, *words):
    return lab.agr(ns, *words)


def probe(lab, ns, *cases):
    return json.loads(lab.run(ns, sys.executable, PROBE, json.dumps(list(cases))).stdout)


def leaves(value, path=()):
    """{path: scalar} of a JSON document."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in leaves(item, path + (key,)).items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in leaves(item, path + (i,)).items()}
    return {path: value}


def same_facts(before, theirs, after):
    """nobody's answer (`theirs`) has root's facts: the same shape, and every value that root's
    two answers around it agree on (a counter that moved meanwhile is not compared)."""
    b, t, a = before, theirs, after

    def shape(doc):   # lists (a port's history) may grow meanwhile
        return {tuple("*" if type(part) is int else part for part in path) for path in doc}
    assert shape(t) == shape(b) == shape(a), f"shape differs: {sorted(shape(t) ^ shape(b), key=str)[:10]}"
    differ = {k: (b[k], t[k]) for k in b if k in a and k in t and b[k] == a[k] and t[k] != b[k]}
    assert not differ, f"nobody sees other facts than root: {differ}"


def text_leaves(text):
    return {(i,): line for i, line in enumerate(text.splitlines())}


def compare(lab, ns, *words, json_out=False, normalize=None):
    """Run `words` as root, nobody, root: the same exit status, no warning for nobody, and the
    same facts."""
    # A state that comes and goes between root's two looks (a port's rejoin on a loaded host
    # passes through datapath_mode "pass") can make nobody's look differ from both: such a
    # difference goes with a new look; one that nobody sees every time does not.
    for attempt in range(3):
        r1 = as_root(lab, ns, *words)
        # A user's look may be answered with a reply up to LOOK_REUSE old, which may predate r1:
        # waiting that long first makes nobody's answer fresh, so it lies between root's two.
        time.sleep(2 * LOOK_REUSE)
        them = as_nobody(lab, ns, *words)
        r2 = as_root(lab, ns, *words)
        assert them.stderr == "", f"{words}: nobody was warned or refused: {them.stderr}"
        assert them.returncode == r1.returncode == r2.returncode, (words, them.returncode, r1.returncode, r1.stderr)
        read = normalize or (json.loads if json_out else (lambda out: out))
        docs = [read(p.stdout) for p in (r1, them, r2)]
        try:
            same_facts(*[leaves(d) if json_out or normalize else text_leaves(d) for d in docs])
        except AssertionError:
            if attempt == 2:
                raise
            continue
        return them.stdout


def kernel_view(lab, ns):
    links = lab.ip(ns, "-d", "link", "show").stdout
    addrs = lab.ip(ns, "addr", "show").stdout
    # The kernel's view of what a change could touch, without counters (none without -s)
    # and without the address lifetimes that count down.
    return links, re.sub(r"valid_lft \S+ preferred_lft \S+", "", addrs)


def worker_view(lab, ns, name="agr0"):
    (res,) = probe(lab, ns, {"name": name, "data": '{"op": "status"}'})
    st = res["reply"]["result"]
    return {"pid": st["pid"], "mac": st["mac"], "flags": st["flags"], "protocol": st["protocol"],
            "datapath": st["datapath"],
            "ports": [(p["name"], p["index"], p["original_mac"], p["options"]) for p in st["ports"]]}


def changing_commands(confdir, conffile):
    """Every word that changes something, on agr0, a port and a plain link; every word of every
    option of the schema (new options are covered as they come)."""
    cmds = [
        ("agr1", "create"), ("agr0", "destroy"), ("agr0", "agrport", "re2"), ("agr0", "-agrport", "re0"),
        ("agr0", "up"), ("agr0", "down"), ("agr0", "mtu", "1400"),
        ("agr0", "inet", "192.0.2.9/24"), ("agr0", "inet", "192.0.2.9/24", "alias"),
        ("agr0", "inet", "192.0.2.1/24", "delete"), ("agr0", "inet", "192.0.2.1", "-alias"),
        ("agr0", "inet6", "2001:db8::9/64"), ("agr0", "inet6", "2001:db8::1/64", "delete"),
        ("agr0", "link0"), ("agr0", "-link0"), ("agr0", "link1"), ("agr0", "-link1"),
        ("agr0", "lladdr", "02:00:00:00:00:99"), ("agr0", "-lladdr"),
        ("agr0", "link", "02:00:00:00:00:99", "active"),
        ("agr0", "agrport", "re2", "up", "mtu", "1400"),
        ("re2", "up"), ("re2", "down"), ("re2", "mtu", "1400"), ("re2", "inet", "192.0.2.50/24"),
        ("re0", "mtu", "1400"),
        ("--destroy-all",), ("--halt", f"--confdir={confdir}"), ("--boot", f"--confdir={confdir}"),
        ("-f", conffile, "agr0"),
    ]
    for option in options.OPTIONS:
        said = set()
        for value in option.kind.values():   # each of its words once (link0 and -link0, ...)
            words = options.file_words(option.key, value, "re0" if option.scope == "port" else None)
            if words[0] not in said:
                said.add(words[0])
                cmds.append(("agr0", *words))
    return cmds


EXPECTED_IOCTL = {
    ("agr1", "create"): "SIOCIFCREATE", ("agr0", "destroy"): "SIOCIFDESTROY", ("agr0", "agrport", "re2"): "SIOCSETAGR",
    ("agr0", "up"): "SIOCSIFFLAGS", ("agr0", "mtu", "1400"): "SIOCSIFMTU", ("agr0", "inet", "192.0.2.9/24"): "SIOCAIFADDR",
    ("agr0", "inet", "192.0.2.1/24", "delete"): "SIOCDIFADDR", ("agr0", "inet6", "2001:db8::9/64"): "SIOCAIFADDR_IN6",
    ("agr0", "link0"): "SIOCSIFFLAGS", ("agr0", "link1"): "SIOCSIFFLAGS", ("agr0", "lladdr", "02:00:00:00:00:99"): "SIOCALIFADDR",
    ("agr0", "lacptimeout", "fast"): "SIOCSETAGR", ("re2", "mtu", "1400"): "SIOCSIFMTU", ("--destroy-all",): "SIOCIFDESTROY",
}


def raw_requests():
    """One control request of every type of the protocol, every option as a setflags of its own."""
    args = {"port": "re0", "mtu": 1400}
    out = []
    for op, cls in protocol.REQUESTS.items():
        if "flags" in cls.FIELDS:
            scope = "port" if cls.CHECKS["flags"] is protocol.check_port_flags else "agr"
            out += [cls(**{f: args[f] for f in cls.FIELDS if f != "flags"}, flags={o.key: v})
                    for o in options.OPTIONS if o.scope == scope for v in o.kind.values()]
        else:
            out.append(cls(**{f: args[f] for f in cls.FIELDS}))
    return out


@pytest.fixture
def world_readable_dir():
    path = tempfile.mkdtemp(prefix="agrconfig-readonly-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_nobody_reads_everything_and_changes_nothing(lab, world_readable_dir):
    a, b = agr_pair(lab, words=("lacptimeout", "fast"))
    lab.veth(a, "re2", a, "xre2")
    ok(lab, a, "agr0", "inet6", "2001:db8::1/64")
    ok(lab, a, "agr0", "agrportpri", "re1", "100")
    assert lab.ping(a, "192.0.2.2")

    # -- every read command, as nobody: root's facts, no warning ---------------------------------
    compare(lab, a, "agr0")
    compare(lab, a, "-v", "agr0")
    compare(lab, a, "re0")       # a port: "agr: agr0", from the workers, not the state files
    doc = compare(lab, a, "--json", "agr0", json_out=True)
    assert [p["ifname"] for p in json.loads(doc)["agrports"]] == ["re0", "re1"]
    compare(lab, a, "--json", "-v", "agr0", json_out=True)
    compare(lab, a, "-a")
    compare(lab, a, "-v", "-a")
    compare(lab, a, "--json", "-a", json_out=True)
    metrics = compare(lab, a, "--metrics")
    assert 'agr_port_distributing{agr="agr0",port="re0"} 1.0' in metrics, metrics
    assert compare(lab, a, "agr0", "whichport", "192.0.2.2").startswith("agr0: 192.0.2.2 from 192.0.2.1 icmp: re")
    compare(lab, a, "--json", "agr0", "whichport", "192.0.2.2", "udp", "1000", "2000", json_out=True)
    compare(lab, a, "agr0", "diagnose", "interval", "0")
    compare(lab, a, "--json", "agr0", "diagnose", "interval", "0", json_out=True)
    free = as_nobody(lab, a, "-l", "--free")
    assert free.returncode == 0 and free.stderr == "" and "re0" not in free.stdout.split() and "re2" in free.stdout.split()
    mon = as_nobody(lab, a, "--json", "agr0", "monitor", "until", "distributing", "timeout", "5")
    assert mon.returncode == 0 and mon.stderr == "", mon
    events = [json.loads(line) for line in mon.stdout.splitlines()]
    assert sorted(e["port"] for e in events if e["event"] == "port-attached") == ["re0", "re1"], events
    dry = as_nobody(lab, a, "-n", "agr0", "mtu", "1400")   # a dry run changes nothing: a look
    assert (dry.returncode, dry.stdout, dry.stderr) == (3, "agrconfig agr0 mtu 1400\n", ""), dry

    # -- every changing word, as nobody: EPERM in ifconfig's words, nothing changed ----------------
    confdir = world_readable_dir
    with open(os.path.join(confdir, "ifconfig.agr5"), "w") as f:
        f.write("create\nagrport re2\n")
    conffile = os.path.join(confdir, "agr0.conf")
    with open(conffile, "w") as f:
        f.write("agrport re0\nagrport re1\nagrport re2\n")
    for path in os.listdir(confdir):
        os.chmod(os.path.join(confdir, path), 0o644)
    kernel_before, worker_before = kernel_view(lab, a), worker_view(lab, a)
    for words in changing_commands(confdir, conffile):
        proc = as_nobody(lab, a, *words)
        assert proc.returncode == 2 and proc.stdout == "", (words, proc)
        lines = proc.stderr.splitlines()
        lines = [re.sub(r"^agrconfig: /[^:]*: ", "agrconfig: ", line) for line in lines]   # --boot names its file
        assert lines and all(ERROR.match(line) for line in lines), (words, proc.stderr)
        if words in EXPECTED_IOCTL:
            assert ERROR.match(lines[0]).group(1) == EXPECTED_IOCTL[words], (words, lines)
    assert kernel_view(lab, a) == kernel_before
    assert worker_view(lab, a) == worker_before

    # -- every control request, as nobody, straight to the worker ---------------------------------
    reqs = raw_requests()
    assert {r.OP for r in reqs} == set(protocol.REQUESTS)
    results = probe(lab, a, *[{"data": json.dumps(r.to_json()), "uid": NOBODY} for r in reqs])
    for req, res in zip(reqs, results):
        reply = res["reply"]
        assert reply is not None, (req, res)
        if req.CHANGES:
            assert reply.get("error", {}).get("errno") == "EPERM", (req, reply)
            assert reply["error"]["ioctl"] == req.ioctl()
        else:   # a ping is answered with who answers only: its name and pid
            assert reply["result"]["name"] == "agr0", (req, reply)
            assert req.OP != "ping" or set(reply["result"]) == {"name", "pid"}, (req, reply)
    assert len({res["reply"]["result"]["pid"] for req, res in zip(reqs, results) if not req.CHANGES}) == 1
    assert kernel_view(lab, a) == kernel_before
    assert worker_view(lab, a) == worker_before
    # Root still may: the same request as root is carried out.
    (res,) = probe(lab, a, {"data": json.dumps(protocol.SetFlags({"lacp_fast": False}).to_json())})
    assert res["reply"]["result"]["flags"]["lacp_fast"] is False


def kill_workers(lab, ns):
    """SIGKILL every agrconfig process of the namespace (supervisor first: no restart)."""
    import psutil
    procs = []
    for pid in lab.run(ns, "ip", "netns", "pids", ns, check=False).stdout.split():
        try:
            proc = psutil.Process(int(pid))
            if " ".join(proc.cmdline()).startswith("agrconfig: supervisor"):
                procs.insert(0, proc)
            elif " ".join(proc.cmdline()).startswith("agrconfig: worker"):
                procs.append(proc)
        except psutil.Error:
            pass
    assert len(procs) == 2, procs
    for proc in procs:
        proc.kill()
    psutil.wait_procs(procs, timeout=5)


def test_nobody_sees_the_kernels_view_of_a_dead_worker_and_root_revives_it(lab):
    a, _b = agr_pair(lab)
    kill_workers(lab, a)
    proc = as_nobody(lab, a, "agr0")
    assert proc.returncode == 0, proc
    assert proc.stderr == ("agrconfig: agr0: no worker answers; root must revive it (agrconfig agr0, as root); "
                           "shown: what the kernel knows\n")
    assert proc.stdout.startswith("agr0: flags=") and "\tinet 192.0.2.1/24" in proc.stdout, proc.stdout
    assert "agrport" not in proc.stdout
    doc = json.loads(as_nobody(lab, a, "--json", "agr0").stdout)
    assert doc["ifname"] == "agr0" and doc["addr_info"][0]["local"] == "192.0.2.1"
    for words in (("agr0", "monitor", "timeout", "1"), ("agr0", "whichport", "192.0.2.2")):
        proc = as_nobody(lab, a, *words)
        assert proc.returncode == 2 and "root must revive it" in proc.stderr, proc
    assert "root must revive it" in as_nobody(lab, a, "agr0", "diagnose", "interval", "0").stdout
    # Nobody revived nothing: no worker answers yet. Root's status revives it.
    assert "root must revive it" in as_nobody(lab, a, "agr0").stderr
    assert "agrport: re0" in ok(lab, a, "agr0")
    proc = as_nobody(lab, a, "agr0")
    assert proc.stderr == "" and "agrport: re0" in proc.stdout, proc


# An earlier release, whose workers answer root only: 0.2.0 (as test_upgrade.py installs it).
OLD_COMMIT, OLD_RELEASE = "0df1f40", "0.2.0"


@pytest.fixture(scope="module")
def old_release(tmp_path_factory):
    from tests.integration.helpers import install_release
    return install_release(tmp_path_factory.mktemp("old-release"), OLD_COMMIT, OLD_RELEASE)


def test_nobody_meets_a_worker_of_an_earlier_release_and_root_upgrades_it(lab, old_release):
    from tests.integration.helpers import host_pair, strip_addresses
    a, _b = host_pair(lab)
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    for words in (("agr0", "create"), ("agr0", "agrport", "re0"), ("agr0", "inet", "192.0.2.1/24")):
        proc = lab.run(a, *old_release, *words, check=False)
        assert proc.returncode == 0, proc
    proc = as_nobody(lab, a, "agr0")
    assert proc.returncode == 0, proc
    assert proc.stderr == (f"agrconfig: agr0: its worker (agrconfig {OLD_RELEASE}) answers root only; root must "
                           "upgrade it (agrconfig agr0, as root); shown: what the kernel knows\n")
    assert "\tinet 192.0.2.1/24" in proc.stdout and "agrport" not in proc.stdout
    assert as_nobody(lab, a, "agr0", "up").stderr.startswith("agrconfig: SIOCSIFFLAGS: Operation not permitted (EPERM")
    assert "agrport: re0" in ok(lab, a, "agr0")        # root's command restarts it into this release
    proc = as_nobody(lab, a, "agr0")
    assert proc.stderr == "" and "agrport: re0" in proc.stdout, proc
