"""The pre-flight lab: host `h` with free ports cabled to far ends that the tests configure.

- p0, p1: agrconfig on host `f` (agr0 over f0, f1: lacpsysprio 4660, lacptimeout fast,
  agrportpri f1 100);
- p3: port s3 of a bridge without LACP in namespace `s` that sends LLDP (lldp_switch.py);
- p4: in use (an IPv4 address), cabled to s4 of the same bridge;
- p5: down.
Each p port keeps its automatic IPv6 link-local address (treated as free). The Open vSwitch
port p2 is the interop test's (tests/interop/test_preflight.py).
"""
import json
import os
import subprocess
import sys

from tests.integration.helpers import aggregate, ok, status_json

HERE = os.path.dirname(os.path.abspath(__file__))


def build(lab):
    h, f, s = lab.netns("h"), lab.netns("f"), lab.netns("s")
    for i in (0, 1):
        lab.veth(h, f"p{i}", f, f"f{i}")
    aggregate(lab, f, ports=("f0", "f1"), words=("lacpsysprio", "4660", "lacptimeout", "fast"))
    ok(lab, f, "agr0", "agrportpri", "f1", "100")
    ok(lab, f, "agr0", "up")
    lab.ip(s, "link", "add", "br0", "type", "bridge")
    lab.ip(s, "link", "set", "br0", "up")
    for i in (3, 4):
        lab.veth(h, f"p{i}", s, f"s{i}")
        lab.ip(s, "link", "set", f"s{i}", "master", "br0")
    lab.ip(h, "addr", "add", "192.0.2.9/24", "dev", "p4")
    lab.veth(h, "p5", s, "s5", up=False)
    return h, f, s


class Switch:
    """lldp_switch.py running in namespace `s`: LLDP out of s3, Slow Protocols frames counted
    on s3 and s4."""

    def __init__(self, lab, ns, tmp_path):
        self.path = str(tmp_path / "counts.json")
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable,
                                      os.path.join(HERE, "lldp_switch.py"), self.path, "s3", "s4"],
                                     stderr=subprocess.PIPE, text=True)
        lab.wait_for(lambda: os.path.exists(self.path) or self.proc.poll() is not None, what="LLDP switch")
        assert self.proc.poll() is None, self.proc.stderr.read()

    def counts(self):
        return json.load(open(self.path))

    def close(self):
        self.proc.kill()
        self.proc.wait()


def far_agr(lab, f):
    """What the far agrconfig is: {f0: (sysprio, system, key, port priority, port), f1: ...}."""
    doc = status_json(lab, f)
    info = doc["linkinfo"]["info_data"]
    return {p["ifname"]: (info["ad_actor_sys_prio"], info["ad_actor_system"], p["actor_key"],
                          p["actor_port_prio"], p["ifindex"]) for p in doc["agrports"]}


def preflight(lab, ns, *words):
    proc = lab.agr(ns, "-l", "--free", "--json", *words, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def partner_fields(port):
    p = port["lacp_partner"]
    return (p["system_priority"], p["system"], p["key"], p["port_priority"], p["port"])


def lacp_rx(lab, f):
    """LACPDUs the far agrconfig received, per port."""
    return {p["ifname"]: p["lacp_counters"] for p in status_json(lab, f)["agrports"]}
