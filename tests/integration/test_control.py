"""The control socket: anyone may look, only root may change, every bad request answered (or closed) and nothing changed,
and no client, however slow, can stall the worker's loop."""
import json
import os
import sys
import time

import pytest

from tests.integration.helpers import agr_pair, aggregate, host_pair, ok, port_flags

pytestmark = pytest.mark.integration

PROBE = os.path.join(os.path.dirname(__file__), "ctl_probe.py")


def probe(lab, ns, *cases, timeout=60):
    proc = lab.run(ns, sys.executable, PROBE, json.dumps(list(cases)), timeout=timeout)
    return json.loads(proc.stdout)


def errno_of(result):
    reply = result["reply"]
    assert reply is not None, result
    assert "error" in reply, reply
    return reply["error"]["errno"]


def worker_status(lab, ns):
    """The worker's own status document (it has the pid), asked over the socket."""
    return probe(lab, ns, {"data": '{"op": "status"}'})[0]["reply"]["result"]


def links(lab, ns):
    return sorted(lab.ip(ns, "-o", "link", "show").stdout.splitlines())


def test_non_root_peer_may_look_but_not_change_and_worker_keeps_serving(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    before = worker_status(lab, a)
    look, *changes = probe(lab, a, {"data": '{"op": "status"}', "uid": 65534},
                           {"data": '{"op": "shutdown"}', "uid": 65534},
                           {"data": '{"op": "delport", "port": "re0"}', "uid": 65534})
    assert look["reply"]["result"]["pid"] == before["pid"], look
    for r in changes:
        assert errno_of(r) == "EPERM", r
    after = worker_status(lab, a)
    assert [p["name"] for p in after["ports"]] == ["re0", "re1"]
    assert after["pid"] == before["pid"]


BAD_REQUESTS = [
    ("not json", "{op: status"),
    ("garbage bytes", "\udcff\x00\x01"),
    ("empty", ""),
    ("a list", '["status"]'),
    ("a string", '"status"'),
    ("a number", "42"),
    ("null", "null"),
    ("no op", '{"port": "re0"}'),
    ("op not a string", '{"op": 1}'),
    ("unknown op", '{"op": "exec", "argv": ["/bin/sh"]}'),
    ("unknown op 2", '{"op": "readfile", "path": "/etc/shadow"}'),
    ("port not a string", '{"op": "addport", "port": 5}'),
    ("port a list", '{"op": "delport", "port": ["re0"]}'),
    ("port missing", '{"op": "addport"}'),
    ("port a path", '{"op": "addport", "port": "../../../etc"}'),
    ("port dotdot", '{"op": "addport", "port": ".."}'),
    ("port too long", '{"op": "addport", "port": "abcdefghijklmnop"}'),
    ("port with space", '{"op": "addport", "port": "re 0"}'),
    ("mtu a string", '{"op": "setmtu", "mtu": "1400"}'),
    ("mtu a float", '{"op": "setmtu", "mtu": 1400.5}'),
    ("mtu a bool", '{"op": "setmtu", "mtu": true}'),
    ("mtu out of range", '{"op": "setmtu", "mtu": 10000000}'),
    ("flags a string", '{"op": "setflags", "flags": "link0"}'),
    ("flag value a string", '{"op": "setflags", "flags": {"link0": "yes"}}'),
    ("flag unknown", '{"op": "setflags", "flags": {"evil": true}}'),
    ("hash out of range", '{"op": "setflags", "flags": {"hash": 99}}'),
    ("datapath unknown", '{"op": "setflags", "flags": {"datapath": "bogus"}}'),
    ("extra argument", '{"op": "status", "file": "/etc/passwd"}'),
]


def test_bad_requests_get_einval_and_change_nothing(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    before = worker_status(lab, a)
    links_before = links(lab, a)
    cases = []
    for _what, text in BAD_REQUESTS:
        data = text.encode("utf-8", "surrogateescape").decode("latin-1") if "\udcff" in text else text
        cases.append({"data": data})
    res = probe(lab, a, *cases)
    for (what, _text), r in zip(BAD_REQUESTS, res):
        assert errno_of(r) == "EINVAL", (what, r)
        assert r["reply"]["error"]["ioctl"] == "control", (what, r)
    after = worker_status(lab, a)
    assert after["flags"] == before["flags"]
    assert [p["name"] for p in after["ports"]] == ["re0", "re1"]
    assert after["pid"] == before["pid"], "the worker did not restart"
    assert links(lab, a) == links_before


def test_oversized_request_is_refused(lab):
    a, _b = host_pair(lab)
    ok(lab, a, "agr0", "create")
    res = probe(lab, a, {"size": 70 * 1024}, {"size": 4 * 1024 * 1024}, {"data": '{"op": "ping"}'})
    for r in res[:2]:
        assert errno_of(r) == "EMSGSIZE", r
    assert "result" in res[2]["reply"], res[2]
    ok(lab, a, "agr0")


def test_request_at_the_limit_is_read(lab):
    a, _b = host_pair(lab)
    ok(lab, a, "agr0", "create")
    padded = '{"op": "ping"}' + " " * (64 * 1024 - 14)
    res = probe(lab, a, {"data": padded})
    assert "result" in res[0]["reply"], res[0]


def test_slow_clients_are_closed_and_do_not_block_others(lab):
    a, _b = host_pair(lab)
    ok(lab, a, "agr0", "create")
    slow = {"data": '{"op": "sta', "shut": False}   # half a request, then nothing
    silent = {"data": "", "shut": False}             # connects and says nothing
    start = time.monotonic()
    res = probe(lab, a, *[slow] * 5, *[silent] * 5,
                {"data": '{"op": "status"}', "hold": 0.3})
    elapsed = time.monotonic() - start
    for r in res[:10]:
        # Closed after the deadline (2 s), with no reply or a timeout reply; never served.
        assert r["reply"] is None or "error" in r["reply"], r
        assert 1.5 <= r["closed_after"] <= 5.0, r
    # The good request was answered at once, not after the slow ones.
    assert res[10]["reply"]["result"]["name"] == "agr0"
    assert res[10]["closed_after"] < 1.5, res[10]
    assert elapsed < 8


HANG_THEN_ASK = """
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import ctl_probe
t0 = time.monotonic()
slow = [None] * 8
def hang(i):
    slow[i] = ctl_probe.run({"data": '{"op": "st', "shut": False})
threads = [threading.Thread(target=hang, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
time.sleep(0.3)
quick = []
for _ in range(3):
    quick.append(ctl_probe.run({"data": '{"op": "status"}'}))
    quick[-1]["done_at"] = time.monotonic() - t0
for t in threads:
    t.join()
print(json.dumps({"slow": slow, "quick": quick}))
"""


def test_status_answers_quickly_while_slow_clients_hang(lab):
    """Timed inside one probe process (no Python start-up in the figures): 8 clients send half
    a request and hang, then 3 status requests are each answered well inside the 2 s that a
    worker serving clients one at a time would spend on the first slow one."""
    a, _b = host_pair(lab)
    ok(lab, a, "agr0", "create")
    res = json.loads(lab.run(a, sys.executable, "-c", HANG_THEN_ASK, os.path.dirname(PROBE), timeout=60).stdout)
    for r in res["quick"]:
        assert r["reply"]["result"]["name"] == "agr0", r
        assert r["closed_after"] < 1.0, r
    for r in res["slow"]:
        assert r["reply"] is None or "error" in r["reply"], r
        assert 1.5 <= r["closed_after"] < 5.0, r
    # And the quick ones were served while the slow ones still hung (their 2 s not over).
    assert res["quick"][-1]["done_at"] < min(r["closed_after"] for r in res["slow"]), res


def test_lacp_keeps_running_while_clients_hang(lab):
    """Fast LACP timeout (3 s): a loop stalled by slow clients would let the partner expire us."""
    a, b = agr_pair(lab, words=("lacptimeout", "fast"))
    for ns in (a, b):
        ok(lab, ns, "agr0", "lacptimeout", "fast")
    import subprocess
    slow = [{"data": '{"op": "sta', "shut": False}] * 30
    bg = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, PROBE, json.dumps(slow)],
                          stdout=subprocess.PIPE, text=True)
    bg2 = None
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            if bg.poll() is not None and bg2 is None:
                bg2 = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, PROBE, json.dumps(slow)],
                                       stdout=subprocess.PIPE, text=True)
            assert port_flags(lab, b) == {"re0": 3, "re1": 3}, "partner saw us stall"
            assert lab.ping(a, "192.0.2.2")
            time.sleep(0.3)
    finally:
        bg.communicate(timeout=60)
        if bg2:
            bg2.communicate(timeout=60)
