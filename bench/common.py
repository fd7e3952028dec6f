"""Shared lab setup for the benchmarks: a plain veth pair and an agr0 pair, same run."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil  # noqa: E402

from tests.lab import Lab  # noqa: E402,F401 (the benchmarks import it from here)


def agr_pair(lab, ports=2, words=(), tag="", words_b=None):
    """Namespaces a/b with agr0 over `ports` veth pairs, 192.0.2.1 <-> 192.0.2.2; `words_b`,
    when given, replaces `words` on b."""
    a, b = lab.netns(f"a{tag}"), lab.netns(f"b{tag}")
    names = [f"p{i}" for i in range(ports)]
    for p in names:
        lab.ip(a, "link", "add", p, "type", "veth", "peer", "name", f"x{p}")
        lab.ip(a, "link", "set", f"x{p}", "netns", b)
        lab.ip(b, "link", "set", f"x{p}", "name", p)
        for ns in (a, b):
            lab.run(ns, "sysctl", "-qw", f"net.ipv6.conf.{p}.disable_ipv6=1")
            lab.ip(ns, "link", "set", p, "up")
    for ns, addr in ((a, "192.0.2.1/24"), (b, "192.0.2.2/24")):
        words_all = ["agr0", "create", *(words if ns == a or words_b is None else words_b)]
        for p in names:
            words_all += ["agrport", p]
        proc = lab.agr(ns, *words_all)
        if proc.returncode:
            raise SystemExit(f"agrconfig {' '.join(words_all)}: {proc.stderr}")
        lab.agr(ns, "agr0", "inet", addr, check=True)
    for ns in (a, b):
        proc = lab.agr(ns, "agr0", "monitor", "until", "distributing", "timeout", "30", timeout=40)
        if proc.returncode:
            raise SystemExit(f"{ns}: ports not distributing: {proc.stderr}")
    return a, b


def veth_pair(lab, tag=""):
    a, b = lab.netns(f"va{tag}"), lab.netns(f"vb{tag}")
    lab.ip(a, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    lab.ip(a, "link", "set", "v1", "netns", b)
    lab.ip(a, "addr", "add", "192.0.2.1/24", "dev", "v0")
    lab.ip(b, "addr", "add", "192.0.2.2/24", "dev", "v1")
    lab.ip(a, "link", "set", "v0", "up")
    lab.ip(b, "link", "set", "v1", "up")
    return a, b


def workers(lab, ns):
    pids = lab.run(ns, "ip", "netns", "pids", ns, check=False).stdout.split()
    out = []
    for pid in pids:
        try:
            p = psutil.Process(int(pid))
            if "agrconfig: worker" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


def iperf(lab, client_ns, server_ns, streams, seconds, extra=()):
    lab.run(server_ns, "iperf3", "-s", "-1", "-D")
    deadline = time.monotonic() + 5
    while "5201" not in lab.run(server_ns, "ss", "-ltn").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    proc = lab.run(client_ns, "iperf3", "-c", "192.0.2.2", "-t", str(seconds), "-P", str(streams), "-J",
                   *extra, check=False, timeout=seconds + 30)
    doc = json.loads(proc.stdout)
    if "error" in doc:
        raise RuntimeError(doc["error"])
    return doc["end"]["sum_received"]["bits_per_second"] / 1e9


def datapath(lab, ns):
    return json.loads(lab.agr(ns, "--json", "agr0", check=True).stdout)["linkinfo"]["info_data"]["datapath"]


def table(rows, headers):
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = lambda r: "  ".join(str(v).rjust(w) for v, w in zip(r, widths))
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def machine():
    import platform
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, kernel {platform.release()}"
