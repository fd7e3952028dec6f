"""Many agrconfig commands at once on one agr: serialized, nothing lost, nothing half done."""
import json
import random
import subprocess

import pytest

from tests.integration.helpers import PORT_LINE, ok
from tests.lab import AGRCONFIG

pytestmark = pytest.mark.integration

PORTS = [f"p{i}" for i in range(5)]


def link_json(lab, ns, name):
    return json.loads(lab.ip(ns, "-j", "link", "show", name).stdout)[0]


def port_view(lab, ns, name):
    link = link_json(lab, ns, name)
    return {"mac": link["address"], "mtu": link["mtu"], "flags": sorted(link["flags"]),
            "promisc": "PROMISC" in link["flags"]}


def setup(lab, ports=PORTS):
    a = lab.netns("a")
    b = lab.netns("b")
    for p in ports:
        lab.veth(a, p, b, f"x{p}", up=False)
        # No automatic IPv6 on the ports: their original state has no address, so they can
        # be attached again and again after being given back.
        lab.run(a, "sysctl", "-qw", f"net.ipv6.conf.{p}.addr_gen_mode=1")
        lab.run(a, "sysctl", "-qw", f"net.ipv6.conf.{p}.disable_ipv6=1")
        lab.ip(a, "link", "set", p, "mtu", "1400")
        lab.ip(a, "link", "set", p, "up")
        lab.ip(b, "link", "set", f"x{p}", "up")
    ok(lab, a, "agr0", "create")
    ok(lab, a, "agr0", "mtu", "1500")
    return a


def run_parallel(lab, ns, commands):
    procs = [subprocess.Popen(["ip", "netns", "exec", ns, *AGRCONFIG, *words],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for words in commands]
    results = []
    for words, proc in zip(commands, procs):
        out, err = proc.communicate(timeout=120)  # a deadlock fails here
        results.append((words, proc.returncode, out, err))
    return results


def check_consistent(lab, ns, originals, results):
    """Each port is wholly attached or wholly given back; status agrees with the kernel."""
    agr = link_json(lab, ns, "agr0")
    status = ok(lab, ns, "agr0")
    listed = {m.group(1) for m in PORT_LINE.finditer(status)}
    expected = {}
    for port in originals:
        attaches = [r for r in results if r[0][1:] == ["agrport", port]]
        detaches = [r for r in results if r[0][1:] == ["-agrport", port]]
        won = sum(r[1] == 0 for r in attaches) - sum(r[1] == 0 for r in detaches)
        # In any serial order, successful attaches and detaches alternate from "detached".
        assert won in (0, 1), (port, attaches, detaches)
        expected[port] = won == 1
        for words, code, _out, err in attaches + detaches:
            if code != 0:
                assert code == 2 and err.startswith("agrconfig: "), (words, code, err)
                assert ("EBUSY" in err) if words[1] == "agrport" else ("ENOENT" in err), (words, err)
    assert listed == {p for p, on in expected.items() if on}, (status, expected)
    for port, orig in originals.items():
        view = port_view(lab, ns, port)
        if expected[port]:
            assert view["mac"] == agr["address"], (port, view, agr)
            assert view["mtu"] == agr["mtu"], (port, view)
            assert "UP" in view["flags"], (port, view)
        else:
            assert view == orig, (port, view, orig)
    return expected


def test_twenty_commands_at_once(lab):
    a = setup(lab)
    originals = {p: port_view(lab, a, p) for p in PORTS}
    rnd = random.Random(7)
    for round_ in range(3):
        commands = []
        for i in range(20):
            kind = rnd.choice(["agrport", "agrport", "-agrport", "status"])
            port = rnd.choice(PORTS)
            commands.append(["agr0"] if kind == "status" else ["agr0", kind, port])
        results = run_parallel(lab, a, commands)
        for words, code, out, err in results:
            if words == ["agr0"]:
                assert code == 0 and out.startswith("agr0: "), (words, code, err)
            assert "Traceback" not in err, err
        # The next round starts from this state: count from it.
        state = check_consistent(lab, a, originals, results)
        for port, attached in state.items():
            if attached:
                ok(lab, a, "agr0", "-agrport", port)
        check_consistent(lab, a, originals, [])
    # One worker all along, still answering.
    ok(lab, a, "agr0", "destroy")
    for p in PORTS:
        assert port_view(lab, a, p) == originals[p]


def test_attach_detach_same_port_racing(lab):
    a = setup(lab, ports=PORTS[:2])
    originals = {p: port_view(lab, a, p) for p in PORTS[:2]}
    commands = [["agr0", "agrport" if i % 2 == 0 else "-agrport", PORTS[i % 4 // 2]] for i in range(20)]
    results = run_parallel(lab, a, commands)
    check_consistent(lab, a, originals, results)


def test_create_destroy_and_status_racing(lab):
    """Two agrs created and destroyed while status is asked: never a crash, never a stray worker."""
    a = lab.netns("a")
    commands = []
    for i in range(4):
        commands += [["agr1", "create"], ["agr1"], ["-a"], ["agr1", "destroy"], ["agr2", "create"]]
    results = run_parallel(lab, a, commands)
    for words, code, _out, err in results:
        assert "Traceback" not in err, (words, err)
        assert code in (0, 2), (words, code, err)
        if code:
            assert err.startswith("agrconfig: "), (words, err)
    created = [r for r in results if r[0] == ["agr1", "create"] and r[1] == 0]
    destroyed = [r for r in results if r[0] == ["agr1", "destroy"] and r[1] == 0]
    assert len(created) - len(destroyed) in (0, 1)
    exists = lab.ip(a, "link", "show", "agr1", check=False).returncode == 0
    assert exists == (len(created) - len(destroyed) == 1)
    assert lab.ip(a, "link", "show", "agr2", check=False).returncode == 0
    ok(lab, a, "--destroy-all")
    assert "agr" not in lab.ip(a, "-o", "link", "show").stdout
    import psutil
    lab.wait_for(lambda: not [p for p in lab.run(a, "ip", "netns", "pids", a).stdout.split()
                              if psutil.pid_exists(int(p)) and "agrconfig" in " ".join(psutil.Process(int(p)).cmdline())],
                 timeout=5, what="no agrconfig process left")
