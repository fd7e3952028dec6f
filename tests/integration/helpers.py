"""Shared setups for the integration tests."""
import json
import os
import re

from agrconfig import paths

PORT_LINE = re.compile(r"^\tagrport: (\S+), flags=(0x[0-9a-f]+)(<[A-Z,]*>)?$", re.M)


def host_pair(lab, ports=("re0", "re1"), up=True):
    """Two namespaces cabled with one veth pair per port name (same names on both sides)."""
    a, b = lab.netns("a"), lab.netns("b")
    for port in ports:
        lab.veth(a, port, a, f"x{port}", up=False)
        lab.ip(a, "link", "set", f"x{port}", "netns", b)
        lab.ip(b, "link", "set", f"x{port}", "name", port)
        if up:
            lab.ip(a, "link", "set", port, "up")
            lab.ip(b, "link", "set", port, "up")
    return a, b


def ok(lab, ns, *words):
    proc = lab.agr(ns, *words)
    assert proc.returncode == 0, f"agrconfig {' '.join(words)}: {proc.stderr}{worker_logs_tail(lab, ns, words)}"
    return proc.stdout


def worker_logs_tail(lab, ns, words, lines=40):
    """The end of the log of each agr interface the words name, for a failure's message (a
    worker's internal error is explained there, with its traceback)."""
    out = ""
    for name in dict.fromkeys(w for w in words if re.fullmatch(r"agr\d+", w)):
        try:
            tail = worker_log(lab, ns, name).splitlines()[-lines:]
        except (OSError, AssertionError, RuntimeError):
            continue
        out += f"\n--- {name}'s worker log, last {len(tail)} lines ---\n" + "\n".join(tail)
    return out


def status_json(lab, ns, name="agr0"):
    return json.loads(ok(lab, ns, "--json", name))


def port_flags(lab, ns, name="agr0"):
    """{port: flags int} from the text status."""
    return {m.group(1): int(m.group(2), 16) for m in PORT_LINE.finditer(ok(lab, ns, name))}


def wait_distributing(lab, ns, ports, name="agr0", timeout=15):
    want = {p: 3 for p in ports}
    return lab.wait_for(lambda: {p: f for p, f in port_flags(lab, ns, name).items() if p in want} == want,
                        timeout=timeout, what=f"{ports} distributing in {ns}")


def aggregate(lab, ns, ports=("re0", "re1"), name="agr0", words=()):
    """Create agr0 over bare ports (their automatic link-local removed first)."""
    for port in ports:
        strip_addresses(lab, ns, port)
    ok(lab, ns, name, "create", *words)
    for port in ports:
        ok(lab, ns, name, "agrport", port)


def strip_addresses(lab, ns, port):
    out = lab.ip(ns, "-o", "addr", "show", "dev", port).stdout
    for line in out.splitlines():
        fields = line.split()
        family, addr = fields[2], fields[3]
        ok(lab, ns, port, family, addr, "delete")


def agr_pair(lab, words=()):
    """Two hosts, agr0 over re0 and re1 on each, 192.0.2.1 <-> 192.0.2.2, both distributing."""
    a, b = host_pair(lab)
    for ns, addr in ((a, "192.0.2.1/24"), (b, "192.0.2.2/24")):
        aggregate(lab, ns, words=words)
        ok(lab, ns, "agr0", "inet", addr)
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])
    return a, b


def scale_pair(lab, aggs=16, ports=4, words=()):
    """Namespaces a and b joined by aggs*ports veth pairs; agr0..agr{aggs-1} with `ports` each on both.

    Port M of agrN is called sNpM on both sides (the two ends of one veth pair). The links are
    made with one `ip -batch` per namespace; IPv6 is off on the ports (no link-local: EBUSY).
    Returns (a, b, seconds spent in create+attach).
    """
    import time
    a, b = lab.netns("a"), lab.netns("b")
    names = [f"s{n}p{m}" for n in range(aggs) for m in range(ports)]
    lab.run(a, "ip", "-batch", "-", input="".join(
        f"link add {p} type veth peer name x{p}\nlink set x{p} netns {b}\n" for p in names))
    lab.run(b, "ip", "-batch", "-", input="".join(f"link set x{p} name {p}\n" for p in names))
    for ns in (a, b):
        lab.run(ns, "sh", "-c", "".join(f"sysctl -qw net.ipv6.conf.{p}.disable_ipv6=1\n" for p in names))
        lab.run(ns, "ip", "-batch", "-", input="".join(f"link set {p} up\n" for p in names))
    start = time.monotonic()
    for ns in (a, b):
        for n in range(aggs):
            argv = [f"agr{n}", "create", *words]
            for m in range(ports):
                argv += ["agrport", f"s{n}p{m}"]
            ok(lab, ns, *argv)
    return a, b, time.monotonic() - start


def netns_inode(lab, ns):
    return lab.run(ns, "stat", "-L", "-c", "%i", "/proc/self/ns/net").stdout.strip()


def worker_log(lab, ns, name="agr0"):
    """The worker's log, this namespace's only. The lab fixture sets AGRCONFIG_LOG=file, so
    the worker writes it to its runtime directory on hosts with syslog (/dev/log) too."""
    if os.environ.get("AGRCONFIG_LOG") != "file":
        raise AssertionError("worker_log needs AGRCONFIG_LOG=file (set by the lab fixture)")
    path = os.path.join(paths.RUN_ROOT, f"netns-{netns_inode(lab, ns)}", paths.WORKER_DIR, f"{name}.log")
    with open(path) as f:
        return f.read()


# What an earlier release imports, linked from our environment into its own (no network).
RELEASE_DEPENDENCIES = ("pyroute2", "docopt", "psutil", "setproctitle", "prometheus_client")


def install_release(top, commit, release):
    """An earlier release in a virtual environment of its own under `top`: its source from git,
    the libraries it needs linked from ours. Returns its agrconfig command, checked to say
    `release`."""
    import importlib.util
    import subprocess
    import sys
    from tests.lab import ROOT
    src, venv, deps = top / "src", top / "venv", top / "deps"
    src.mkdir()
    deps.mkdir()
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit], capture_output=True)
    assert archive.returncode == 0, f"the earlier release {commit} is not in this clone: " \
                                    f"{archive.stderr.decode()} (a shallow clone? fetch its history)"
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    for name in RELEASE_DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        origin = os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin
        os.symlink(origin, deps / os.path.basename(origin))
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "agrconfig-old.pth").write_text(f"{src}\n{deps}\n")
    # -I: not the current directory (this checkout) first on the path, only the venv's own
    command = [str(venv / "bin" / "python"), "-I", "-m", "agrconfig"]
    version = subprocess.run(command + ["--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"agrconfig {release}", version
    return command
