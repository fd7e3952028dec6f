"""Shared lab setup for the benchmarks: a plain veth pair and an agr0 pair, same run."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil  # noqa: E402

from tests import lab as _lab  # noqa: E402


class Lab(_lab.Lab):
    """tests/lab.py's Lab (names prefixed by AGRCONFIG_TEST_PREFIX); `checkout[ns]`: the
    agrconfig command of that namespace when it is another checkout's (bench/throughput
    --checkout: the previous release beside this one, in the same run)."""

    def __init__(self, prefix=None):
        super().__init__(prefix)
        self.checkout = {}

    def agr(self, ns, *words, check=False, timeout=60):
        if ns not in self.checkout:
            return super().agr(ns, *words, check=check, timeout=timeout)
        return self.run(ns, *self.checkout[ns], *words, check=check, timeout=timeout)

    def close(self):
        for ns in self.checkout:   # each worker stopped by its own release's command
            self.run(ns, *self.checkout[ns], "--destroy-all", check=False, timeout=30)
        super().close()


def checkout_cmd(directory):
    """The agrconfig command of the checkout at `directory`, under this interpreter."""
    path = os.path.join(os.path.abspath(directory), "bin", "agrconfig")
    if not os.path.exists(path):
        raise SystemExit(f"{path}: no such file")
    return [sys.executable, path]


def agr_pair(lab, ports=2, words=(), tag="", words_b=None, checkout=None):
    """Namespaces a/b with agr0 over `ports` veth pairs, 192.0.2.1 <-> 192.0.2.2; `words_b`,
    when given, replaces `words` on b; `checkout`: another checkout's agrconfig command."""
    a, b = lab.netns(f"a{tag}"), lab.netns(f"b{tag}")
    if checkout:
        lab.checkout[a] = lab.checkout[b] = checkout
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


def processes(lab, ns, role):
    """Our processes of `role` ("worker" or "supervisor") in namespace `ns`."""
    pids = lab.run(ns, "ip", "netns", "pids", ns, check=False).stdout.split()
    out = []
    for pid in pids:
        try:
            p = psutil.Process(int(pid))
            if " ".join(p.cmdline()).startswith(f"agrconfig: {role} "):
                out.append(p)
        except psutil.Error:
            pass
    return out


def workers(lab, ns):
    return processes(lab, ns, "worker")


def pss_kib(proc):
    """Proportional set size: each page divided by the processes that map it (smaps_rollup);
    0 for a process that is gone."""
    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


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


FAR = "192.0.2.2"   # the far host of slb_lab: the address bench/failover's streams go to


def slb_macs(count):
    """`count` VM MACs that slb spreads evenly over 2 ports: agrconfig/worker/slb.py's placement
    gives bucket b to ports[b % 2] while both distribute, so alternately an even and an odd
    bucket (VM 1 on the first port, VM 2 on the second, ...)."""
    from agrconfig.worker import slb
    out, i = [], 0
    while len(out) < count:
        i += 1
        mac = bytes([0x02, 0, 0, 0, 0x21, i])
        if slb.bucket_of(mac) % 2 == len(out) % 2:
            out.append(mac)
    return [m.hex(":") for m in out]


def slb_lab(lab, datapath, ports=2, vms=4, tag="", words=(), rate=None):
    """tests/integration/test_slb.py's topology: VM namespaces on a host bridge hbr with agr0
    (agrproto slb) in it; each port reN to an access switch (a plain bridge) uplinked to a core
    bridge, the far host behind the core (FAR). `rate`: tbf on each port, both directions (our
    port's egress and its switch port's). Returns (host, [switches], far, [vms])."""
    host, core, far = lab.netns(f"h{tag}"), lab.netns(f"co{tag}"), lab.netns(f"f{tag}")
    switches = [lab.netns(f"s{i}{tag}") for i in range(ports)]
    vm_ns = [lab.netns(f"v{i}{tag}") for i in range(vms)]
    lab.ip(core, "link", "add", "br0", "type", "bridge", "stp_state", "0")
    for i, sw in enumerate(switches):
        lab.ip(sw, "link", "add", "br1", "type", "bridge", "stp_state", "0")
        lab.veth(sw, "down0", host, f"re{i}", up=False)
        lab.veth(sw, "up0", core, f"u{i}", up=False)
        for dev in ("down0", "up0"):
            lab.ip(sw, "link", "set", dev, "master", "br1", "up")
        lab.ip(sw, "link", "set", "br1", "up")
        lab.ip(core, "link", "set", f"u{i}", "master", "br0", "up")
        lab.run(host, "sysctl", "-qw", f"net.ipv6.conf.re{i}.disable_ipv6=1")
        lab.ip(host, "link", "set", f"re{i}", "up")
        if rate:
            for ns, dev in ((host, f"re{i}"), (sw, "down0")):
                lab.run(ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "64kb",
                        "latency", "50ms")
    lab.veth(core, "tofar", far, "eth0", up=False)
    lab.ip(core, "link", "set", "tofar", "master", "br0", "up")
    lab.ip(core, "link", "set", "br0", "up")
    lab.ip(far, "link", "set", "eth0", "up")
    lab.ip(far, "addr", "add", f"{FAR}/24", "dev", "eth0")
    lab.ip(host, "link", "add", "hbr", "type", "bridge", "stp_state", "0")
    for i, (vm, mac) in enumerate(zip(vm_ns, slb_macs(vms))):
        lab.veth(host, f"tap{i}", vm, "eth0", up=False)
        lab.ip(vm, "link", "set", "eth0", "address", mac, "up")
        lab.ip(vm, "addr", "add", f"192.0.2.{10 + i}/24", "dev", "eth0")
        lab.ip(host, "link", "set", f"tap{i}", "master", "hbr", "up")
    argv = ["agr0", "create", "agrproto", "slb", "datapath", datapath, *words]
    for i in range(ports):
        argv += ["agrport", f"re{i}"]
    proc = lab.agr(host, *argv, "up")
    if proc.returncode:
        raise SystemExit(f"agrconfig {' '.join(argv)}: {proc.stderr}")
    lab.ip(host, "link", "set", "agr0", "master", "hbr")
    lab.ip(host, "link", "set", "hbr", "up")
    proc = lab.agr(host, "agr0", "monitor", "until", "distributing", "timeout", "30", timeout=40)
    if proc.returncode:
        raise SystemExit(f"{host}: ports not distributing: {proc.stderr}")
    for vm in vm_ns:   # the switches learn every VM
        lab.run(vm, "ping", "-c", "2", "-i", "0.2", "-W", "2", FAR, check=False)
    return host, switches, far, vm_ns


def tx_bytes(lab, ns, dev):
    (link,) = json.loads(lab.ip(ns, "-j", "-s", "link", "show", "dev", dev).stdout)
    return link["stats64"]["tx"]["bytes"]
