"""Shared setups for the integration tests."""
import json
import re

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
    assert proc.returncode == 0, f"agrconfig {' '.join(words)}: {proc.stderr}"
    return proc.stdout


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
