"""lacpfallback against a plain Linux bridge (a switch without LAG or LACP; issue 13): one cable
carries traffic and the other none but LACPDUs, frames flooded to both ports are delivered
once; the traffic moves on a cut; against agrconfig with LACP there is no fallback."""
import json
import subprocess
import sys
import time

import pytest

from tests.integration.helpers import (aggregate, host_pair, ok, port_flags, status_json, strip_addresses,
                                       wait_distributing)
from tests.integration.test_worker import kill_worker

pytestmark = pytest.mark.integration

ETH_TEST = 0x88B5   # IEEE local experimental EtherType: nobody else sends it

# Counts, per interface, frames received (not sent) by type: Slow Protocols, our test type,
# anything else; prints "ready", then the counts as JSON after `seconds`.
COUNTER = r"""
import json, socket, sys, time
ifaces = sys.argv[2].split(",")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.settimeout(0.1)
names = {socket.if_nametoindex(n): n for n in ifaces}
counts = {n: {"slow": 0, "test": 0, "other": 0} for n in ifaces}
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        frame, addr = s.recvfrom(65536)
    except socket.timeout:
        continue
    name = names.get(socket.if_nametoindex(addr[0]) if isinstance(addr[0], str) else addr[0])
    if name is None or addr[2] == socket.PACKET_OUTGOING:
        continue
    kind = {0x8809: "slow", 0x88B5: "test"}.get(addr[1], "other")
    counts[name][kind] += 1
print(json.dumps(counts), flush=True)
"""

SENDER = r"""
import socket, sys, time
iface, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
src = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
for i in range(count):
    s.send(b"\xff" * 6 + src + (0x88B5).to_bytes(2, "big") + i.to_bytes(4, "big") + bytes(42))
    time.sleep(0.01)
"""


def count_frames(lab, ns, ifaces, seconds):
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", COUNTER, str(seconds),
                             ",".join(ifaces)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def counted(proc):
    out, _ = proc.communicate(timeout=60)
    return json.loads(out)


def send_frames(lab, ns, iface, count):
    lab.run(ns, sys.executable, "-c", SENDER, iface, str(count))


def bridge(lab, ns, ports):
    """A plain Linux bridge over `ports` (no STP, no LACP), with 192.0.2.2/24."""
    lab.ip(ns, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
    for p in ports:
        lab.ip(ns, "link", "set", p, "master", "br0")
    lab.ip(ns, "link", "set", "br0", "up")
    lab.ip(ns, "addr", "add", "192.0.2.2/24", "dev", "br0")


def in_fallback(lab, ns, want):
    doc = status_json(lab, ns)
    return port_flags(lab, ns) == want and doc["linkinfo"]["info_data"]["fallback_port"] == \
        next(p for p, f in want.items() if f == 3)


def fallback_behind_a_bridge(lab, datapath):
    """agr0 in a with lacpfallback, both cables to a plain bridge in b (no LACP): re0 carries."""
    a, b = host_pair(lab)
    bridge(lab, b, ("re0", "re1"))
    for p in ("re0", "re1"):
        strip_addresses(lab, a, p)
    ok(lab, a, "agr0", "create", "datapath", datapath, "lacptimeout", "fast", "lacpfallback",
       "agrport", "re0", "agrport", "re1", "inet", "192.0.2.1/24", "up")
    lab.wait_for(lambda: in_fallback(lab, a, {"re0": 3, "re1": 0}), timeout=15, what="fallback on re0")
    return a, b


@pytest.mark.parametrize("datapath", ["relay", "ebpf"])
def test_one_cable_carries_traffic_the_other_none(lab, datapath):
    a, b = fallback_behind_a_bridge(lab, datapath)
    text = ok(lab, a, "agr0")
    assert "; lacpfallback" in text and "selected, fallback, mux" in text, text
    assert lab.ping(a, "192.0.2.2", count=2)

    # Our frames: on re0 only (LACPDUs on both). Frames the bridge floods to both: delivered once.
    counter = count_frames(lab, b, ["re0", "re1"], 4)
    sink = count_frames(lab, a, ["agr0"], 4)
    lab.run(a, "ping", "-q", "-c", "20", "-i", "0.05", "192.0.2.2")
    send_frames(lab, b, "br0", 30)
    theirs, ours = counted(counter), counted(sink)
    assert theirs["re0"]["other"] >= 20 and theirs["re1"]["other"] == 0, theirs
    assert theirs["re0"]["slow"] >= 2 and theirs["re1"]["slow"] >= 2, "LACPDUs keep going out on both"
    assert ours["agr0"]["test"] == 30, ours

    # The cable in use is cut: the other port takes over; it comes back: re0 again (best).
    lab.ip(b, "link", "set", "re0", "down")
    lab.wait_for(lambda: in_fallback(lab, a, {"re0": 0, "re1": 3}), timeout=10, what="fallback on re1")
    assert lab.ping(a, "192.0.2.2", count=2, wait=3)
    lab.ip(b, "link", "set", "re0", "up")
    lab.wait_for(lambda: in_fallback(lab, a, {"re0": 3, "re1": 0}), timeout=15, what="fallback back on re0")
    assert lab.ping(a, "192.0.2.2", count=2, wait=3)
    # Off: no partner, no port distributes.
    ok(lab, a, "agr0", "-lacpfallback")
    lab.wait_for(lambda: port_flags(lab, a) == {"re0": 0, "re1": 0}, timeout=5, what="no fallback")


def test_a_partner_speaking_lacp_ends_fallback(lab):
    a, b = host_pair(lab)
    for p in ("re0", "re1"):
        strip_addresses(lab, a, p)
    ok(lab, a, "agr0", "create", "lacptimeout", "fast", "lacpfallback", "agrport", "re0", "agrport", "re1")
    ok(lab, a, "agr0", "agrportpri", "re1", "1")
    lab.wait_for(lambda: in_fallback(lab, a, {"re0": 0, "re1": 3}), timeout=15, what="fallback on re1 (priority)")
    aggregate(lab, b, words=("lacptimeout", "fast"))
    wait_distributing(lab, a, ["re0", "re1"])
    assert status_json(lab, a)["linkinfo"]["info_data"]["fallback_port"] is None
    assert ", fallback" not in ok(lab, a, "agr0")
    # The partner goes away: after the timeout, fallback again.
    ok(lab, b, "agr0", "destroy")
    lab.wait_for(lambda: in_fallback(lab, a, {"re0": 0, "re1": 3}), timeout=15, what="fallback again")


@pytest.mark.parametrize("datapath", ["relay", "ebpf"])
def test_a_worker_killed_during_fallback_carries_on_at_once(lab, datapath):
    """The restarted worker resumes the DEFAULTED ports from the state file: the plain link goes
    on carrying traffic, instead of waiting out the expiry (3 s) again."""
    a, b = fallback_behind_a_bridge(lab, datapath)
    assert lab.ping(a, "192.0.2.2", count=2)
    ping = subprocess.Popen(["ip", "netns", "exec", a, "ping", "-q", "-c", "500", "-i", "0.01", "-W", "1",
                             "192.0.2.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        kill_worker(lab, a)
        out, err = ping.communicate(timeout=60)
    finally:
        if ping.poll() is None:
            ping.kill()
            ping.wait()
    sent = int(out.split(" packets transmitted, ")[0].split()[-1])
    received = int(out.split(" received")[0].split()[-1])
    print(f"{datapath}: worker killed during fallback, {sent - received} of {sent} pings lost")
    # 3 s of expiry would lose some 300; a restart alone (relay) tens at most.
    assert sent - received < 30, out + err
    assert in_fallback(lab, a, {"re0": 3, "re1": 0})
