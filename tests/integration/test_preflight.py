"""Pre-flight, `agrconfig -l --free -v | --json [listen N]`, in namespaces: what each free port
reaches, checked against what each far end is configured with (preflight_lab.py). The Open
vSwitch partner's part is in tests/interop/test_preflight.py."""
import sys

from tests.integration import preflight_lab as pl
from tests.lab import ROOT

# agrconfig as user nobody. The interpreter lives under /root here, out of nobody's reach, so
# it starts as root, imports what the command needs, then gives up root for good (as setpriv
# --reuid would) before main() runs.
AS_NOBODY = """
import os, sys
sys.path.insert(0, sys.argv.pop(1))
from agrconfig.cli import main, preflight
import docopt   # main parses this form with docopt, imported on first use: here, while we can read it
os.setgroups([]); os.setgid(65534); os.setuid(65534)
assert os.getuid() == os.geteuid() == 65534
sys.exit(main.main(sys.argv[1:]))
"""


def as_nobody(lab, ns, *words):
    return lab.run(ns, sys.executable, "-c", AS_NOBODY, ROOT, *words, check=False)


def rx(lab, f):
    return {port: c["lacpdu_rx"] for port, c in pl.lacp_rx(lab, f).items()}


def test_preflight_elicits_groups_and_reads_lldp(lab, tmp_path):
    h, f, s = pl.build(lab)
    switch = pl.Switch(lab, s, tmp_path)
    try:
        far = pl.far_agr(lab, f)
        before_rx, before_sw = rx(lab, f), switch.counts()
        doc = pl.preflight(lab, h)
        ports = {p["ifname"]: p for p in doc["ports"]}
        assert sorted(ports) == ["p0", "p1", "p3", "p4", "p5"]
        # One LACPDU per free port with carrier, none elsewhere: the far ends counted them.
        assert {n: p["sent"] for n, p in ports.items()} == {"p0": True, "p1": True, "p3": True, "p4": False, "p5": False}
        assert {k: v - before_rx[k] for k, v in rx(lab, f).items()} == {"f0": 1, "f1": 1}
        lab.wait_for(lambda: switch.counts()["s3"] == before_sw["s3"] + 1, timeout=2, what="the switch heard one")
        assert switch.counts()["s4"] == before_sw["s4"] == 0     # in use: never sent to

        for mine, theirs in (("p0", "f0"), ("p1", "f1")):
            p = ports[mine]
            assert p["use"] == "free" and p["carrier"] and p["mtu"] == 1500
            assert (p["speed"], p["duplex"]) == (10000, "full")      # veth's ethtool answer
            assert pl.partner_fields(p) == far[theirs]
            assert far[theirs][0] == 4660
            lp = p["lacp_partner"]
            assert (lp["active"], lp["timeout"], lp["aggregation"]) == (True, "fast", True)
            assert p["answered"] is not None and p["answered"] < 1.0, p["answered"]   # update_NTT: at once
            assert p["lldp_neighbour"] is None
        assert far["f1"][3] == 100 and far["f0"][3] == 0x8000
        # The bridge: no LACP, LLDP heard (sent every 0.5 s by the switch, the window is 3 s).
        p3 = ports["p3"]
        s3_mac = lab.run(s, "cat", "/sys/class/net/s3/address").stdout.strip()
        assert p3["use"] == "free" and p3["lacp_partner"] is None and p3["answered"] is None
        assert p3["lldp_neighbour"] == {"chassis_id": s3_mac, "port_id": "s3", "system_name": "switch-s"}
        assert 2.9 <= doc["listened"] <= 3.5      # p3 never answers: the whole 3 s window
        p4, p5 = ports["p4"], ports["p5"]
        assert p4["use"] == "in use" and p4["addr_info"] == ["192.0.2.9/24"] and p4["lacp_partner"] is None
        assert p5["use"] == "down" and not p5["sent"] and p5["lacp_partner"] is None
        # One group: the two ports to the far agrconfig (same system, key and speed).
        assert doc["groups"] == [{"partner_system_priority": 4660, "partner_system": far["f0"][1],
                                  "partner_key": far["f0"][2], "speed": 10000, "ports": ["p0", "p1"]}]

        # The text form says the same.
        text = lab.agr(h, "-l", "--free", "-v", timeout=30)
        assert text.returncode == 0, text.stderr
        out = text.stdout
        assert f"\tlacp partner: system 0x1234,{far['f0'][1]}, key {far['f0'][2]}, port 0x8000,{far['f0'][4]}, " \
               "active, fast timeout, aggregatable" in out
        assert "p3: free, carrier up, 10000 Mb/s full duplex, mtu 1500\n\tno LACP heard\n" \
               f"\tlldp neighbour: chassis {s3_mac}, port s3, system name 'switch-s'\n" in out
        assert "p4: in use (192.0.2.9/24): nothing sent" in out
        assert "p5: down, mtu 1500: nothing sent, nothing heard" in out
        assert "can aggregate:\n\tp0 p1: partner 0x1234," in out

        # listen N sends nothing, waits N s, and still hears LLDP (and nothing of LACP now).
        before_rx, before_sw = rx(lab, f), switch.counts()
        doc = pl.preflight(lab, h, "listen", "2")
        assert rx(lab, f) == before_rx and switch.counts() == before_sw
        ports = {p["ifname"]: p for p in doc["ports"]}
        assert not doc["elicited"] and 1.9 <= doc["listened"] <= 2.5
        assert not any(p["sent"] for p in ports.values())
        assert ports["p3"]["lldp_neighbour"]["system_name"] == "switch-s"
        assert ports["p4"]["lldp_neighbour"] is None    # s4 sends no LLDP
    finally:
        switch.close()


def test_preflight_needs_root_and_changes_nothing(lab):
    h, f, s = pl.build(lab)
    before = lab.ip(h, "-d", "link", "show").stdout
    # As nobody: refused, in ifconfig's words, before anything is read or sent.
    proc = as_nobody(lab, h, "-l", "--free", "-v")
    assert proc.returncode == 2, proc
    assert proc.stderr == ("agrconfig: socket: Operation not permitted (EPERM: pre-flight opens raw sockets "
                           "(AF_PACKET): run it as root)\n")
    assert proc.stdout == ""
    assert lab.agr(h, "-l", "--free").stdout.split() == ["p0", "p1", "p3", "p4", "p5"]   # names, as before
    # As root it runs; no port changed (flags, promiscuity, MTU, state).
    assert pl.preflight(lab, h, "listen", "1")["ports"]
    assert pl.preflight(lab, h)["ports"]
    assert lab.ip(h, "-d", "link", "show").stdout == before
    # Bad listen values are usage errors.
    for bad in ("0", "x", "3601", "-1"):
        proc = lab.agr(h, "-l", "--free", "listen", bad)
        assert proc.returncode == 1 and proc.stderr.startswith("agrconfig: "), (bad, proc.stderr)


def test_free_ports_are_those_pre_flight_looks_at(lab):
    """`-l --free` and pre-flight agree: no bridge, no bridge port, no virtual link."""
    h = lab.netns("h")
    lab.ip(h, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    lab.ip(h, "link", "add", "br0", "type", "bridge")
    lab.ip(h, "link", "set", "v0", "master", "br0")
    lab.ip(h, "link", "add", "mv0", "link", "v1", "type", "macvlan")
    assert lab.agr(h, "-l", "--free").stdout.split() == ["v1"]
    doc = pl.preflight(lab, h, "listen", "1")
    assert [p["ifname"] for p in doc["ports"]] == ["v1"]
