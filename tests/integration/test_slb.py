"""agrproto slb between two access switches that have no LAG between them (issue 21, item 1).

    vm1, vm2 --- host bridge hbr --- agr0 (slb) --- re0 --- access switch A --+
                                                \\-- re1 --- access switch B --+-- core bridge --- far
Every bridge is a plain Linux bridge (no STP), each switch in its own namespace. Checks: both
ports carry VM traffic; each broadcast reaches each VM exactly once and comes back to no one;
the core sees no MAC move during 10 s of steady traffic; the far side sees no storm; a cable
cut loses under 1% of 10 ms pings from every VM, with a RARP learning frame for each moved MAC.
"""
import json
import re
import subprocess
import sys
import time

import pytest

from agrconfig.worker import slb
from tests.integration.helpers import ok, status_json, strip_addresses

pytestmark = pytest.mark.integration

ETHERTYPE = 0x88B5      # IEEE local experimental: our test broadcasts, told apart from all else
MARKS = 20              # broadcasts each sender sends

# argv: seconds, ifname, then "send MARKS INTERVAL" or "count". Counts every frame arriving on
# ifname (not our own outgoing) by (source MAC, ethertype), and sends MARKS broadcasts of
# ETHERTYPE (payload: the sender's MAC and a sequence number) when asked.
AGENT = r"""
import json, socket, sys, time
seconds, ifname, mode = float(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((ifname, 0))
s.settimeout(0.05)
mac = open(f"/sys/class/net/{ifname}/address").read().strip()
marks, interval = (int(sys.argv[4]), float(sys.argv[5])) if mode == "send" else (0, 0)
print("ready", flush=True)
seen, sent, next_send = {}, 0, time.monotonic() + 0.3
end = time.monotonic() + seconds
while time.monotonic() < end:
    if sent < marks and time.monotonic() >= next_send:
        s.send(b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) + (%d).to_bytes(2, "big")
               + mac.encode() + sent.to_bytes(2, "big") + bytes(30))
        sent += 1
        next_send += interval
    try:
        frame, addr = s.recvfrom(4096)
    except socket.timeout:
        continue
    if addr[2] == 4:   # PACKET_OUTGOING
        continue
    key = frame[6:12].hex(":") + "/" + frame[12:14].hex()
    seen[key] = seen.get(key, 0) + 1
print(json.dumps(seen), flush=True)
""" % ETHERTYPE


# Five broadcasts from agr0's own MAC, sent on agr0.
SEND_FROM_AGR0 = r"""
import socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("agr0", 0))
mac = bytes.fromhex(open("/sys/class/net/agr0/address").read().strip().replace(":", ""))
for i in range(5):
    s.send(b"\xff" * 6 + mac + (%d).to_bytes(2, "big") + bytes(46))
time.sleep(0.3)
""" % ETHERTYPE


def agent(lab, ns, ifname, seconds, send=False, interval=0.05):
    argv = ["ip", "netns", "exec", ns, sys.executable, "-c", AGENT, str(seconds), ifname]
    argv += ["send", str(MARKS), str(interval)] if send else ["count"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def collect(proc):
    return json.loads(proc.communicate(timeout=60)[0])


def marks_from(seen, mac):
    return seen.get(f"{mac}/{ETHERTYPE:04x}", 0)


def vm_macs():
    """Two VM MACs that slb places on different ports: re0 (attached first) takes the even
    buckets while both distribute, re1 the odd ones (slb.placement)."""
    def first(parity):
        for i in range(1, 256):
            mac = bytes([0x02, 0, 0, 0, 0x21, i])
            if slb.bucket_of(mac) % 2 == parity:
                return mac.hex(":")
    return first(0), first(1)


def topology(lab, datapath):
    sa, sb, core, host, far = (lab.netns(n) for n in ("sa", "sb", "co", "h", "f"))
    vms = [lab.netns("v1"), lab.netns("v2")]
    lab.ip(core, "link", "add", "br0", "type", "bridge", "stp_state", "0")
    for sw, br, port, up in ((sa, "bra", "re0", "ua"), (sb, "brb", "re1", "ub")):
        lab.ip(sw, "link", "add", br, "type", "bridge", "stp_state", "0")
        lab.veth(sw, "down0", host, port, up=False)
        lab.veth(sw, "up0", core, up, up=False)
        lab.ip(sw, "link", "set", "down0", "master", br, "up")
        lab.ip(sw, "link", "set", "up0", "master", br, "up")
        lab.ip(sw, "link", "set", br, "up")
        lab.ip(core, "link", "set", up, "master", "br0", "up")
    lab.veth(core, "tofar", far, "eth0", up=False)
    lab.ip(core, "link", "set", "tofar", "master", "br0", "up")
    lab.ip(core, "link", "set", "br0", "up")
    lab.ip(far, "link", "set", "eth0", "up")
    lab.ip(far, "addr", "add", "192.0.2.100/24", "dev", "eth0")
    lab.ip(host, "link", "add", "hbr", "type", "bridge", "stp_state", "0")
    for i, (vm, mac) in enumerate(zip(vms, vm_macs()), 1):
        lab.veth(host, f"tap{i}", vm, "eth0", up=False)
        lab.ip(vm, "link", "set", "eth0", "address", mac, "up")
        lab.ip(vm, "addr", "add", f"192.0.2.{10 + i}/24", "dev", "eth0")
        lab.ip(host, "link", "set", f"tap{i}", "master", "hbr", "up")
    for port in ("re0", "re1"):
        lab.ip(host, "link", "set", port, "up")
        strip_addresses(lab, host, port)
    ok(lab, host, "agr0", "create", "agrproto", "slb", "datapath", datapath, "agrport", "re0", "agrport", "re1",
       "up")
    lab.ip(host, "link", "set", "agr0", "master", "hbr")
    lab.ip(host, "link", "set", "hbr", "up")
    return sa, sb, core, host, far, vms


def counters(lab, ns, dev):
    (link,) = json.loads(lab.ip(ns, "-j", "-s", "link", "show", "dev", dev).stdout)
    return link["stats64"]["tx"]["packets"], link["stats64"]["rx"]["packets"]


def fdb(lab, ns, bridge="br0"):
    """{MAC: port} of the learned (not local) entries of a bridge."""
    out = {}
    for e in json.loads(lab.run(ns, "bridge", "-j", "fdb", "show", "br", bridge).stdout):
        if "self" not in e.get("flags", []) and e.get("state") != "permanent" and "vlan" not in e:
            out[e["mac"]] = e["ifname"]
    return out


def ping_loss(output):
    m = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    assert m, output
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("datapath", ("relay", "ebpf"))
def test_slb_between_two_access_switches(lab, datapath):
    started = time.monotonic()
    sa, sb, core, host, far, vms = topology(lab, datapath)
    macs = vm_macs()
    lab.wait_for(lambda: all(p["flags"] == 3 for p in status_json(lab, host)["agrports"]),
                 timeout=10, what="re0 and re1 distributing")
    doc = status_json(lab, host)
    info = doc["linkinfo"]["info_data"]
    assert info["mode"] == "balance-slb" and info["slb"]["designated"] == "re0"
    assert info["datapath"] == datapath and info["datapath_mode"] == ("normal" if datapath == "ebpf" else None)
    for i, vm in enumerate(vms, 1):
        assert lab.ping(vm, "192.0.2.100", count=2, wait=2), f"vm{i} cannot reach the far host"

    # -- steady traffic: every VM pings the far host every 10 ms, everyone broadcasts -----------
    steady = 10.0           # the acceptance's 10 s: the pings below last at least this long
    pings = int(steady * 100)
    lab.wait_for(lambda: set(macs) <= set(fdb(lab, core)), timeout=5, what="the core learned both VMs")
    learned_at = fdb(lab, core)
    assert learned_at[macs[0]] == "ua" and learned_at[macs[1]] == "ub", learned_at
    before = {p: counters(lab, host, p) for p in ("re0", "re1")}
    monitor = subprocess.Popen(["ip", "netns", "exec", core, "bridge", "monitor", "fdb"],
                               stdout=subprocess.PIPE, text=True)
    watch_from = time.monotonic()
    far_agent = agent(lab, far, "eth0", steady + 0.5, send=True)
    vm_agents = [agent(lab, vm, "eth0", steady + 0.5, send=True) for vm in vms]
    pingers = [subprocess.Popen(["ip", "netns", "exec", vm, "ping", "-q", "-c", str(pings), "-i",
                                 "0.01", "-W", "1", "192.0.2.100"], stdout=subprocess.PIPE, text=True)
               for vm in vms]
    for p in pingers:
        p.communicate(timeout=60)
    seen_far = collect(far_agent)
    seen_vms = [collect(a) for a in vm_agents]
    time.sleep(0.2)
    monitor.terminate()
    fdb_events = monitor.communicate(timeout=10)[0]
    watched = time.monotonic() - watch_from
    after = {p: counters(lab, host, p) for p in ("re0", "re1")}

    # Both ports carried VM traffic (each VM's pings leave by its own port).
    for port in ("re0", "re1"):
        assert after[port][0] - before[port][0] >= pings * 0.9, (port, before, after)
    # Each broadcast reached each VM exactly once: the far host's, and the other VM's (through
    # the host bridge; its copy that went round the switches came back and was dropped).
    far_mac = lab.run(far, "cat", "/sys/class/net/eth0/address").stdout.strip()
    for i, seen in enumerate(seen_vms):
        assert marks_from(seen, far_mac) == MARKS, (i, seen)
        assert marks_from(seen, macs[1 - i]) == MARKS, (i, seen)
        assert marks_from(seen, macs[i]) == 0, f"vm{i + 1} got its own broadcasts back: {seen}"
    # The far side: each VM's broadcasts once, its own never; no storm of anything else.
    assert marks_from(seen_far, macs[0]) == MARKS and marks_from(seen_far, macs[1]) == MARKS, seen_far
    assert marks_from(seen_far, far_mac) == 0, seen_far
    total = sum(seen_far.values())
    assert total < 2 * (2 * pings + 2 * MARKS) + 50, f"storm at the far host: {total} frames {seen_far}"
    # No MAC moved on the core during 10 s of steady traffic.
    assert watched >= steady, f"the core's fdb was watched {watched:.1f} s only"
    moves = [line for line in fdb_events.splitlines()
             if any(m in line for m in (*macs, doc["address"])) and "dev" in line]
    assert not moves, f"MAC moves seen by the core: {moves}"
    assert {m: fdb(lab, core).get(m) for m in macs} == {m: learned_at[m] for m in macs}
    drops = {p["ifname"]: p["counters"] for p in status_json(lab, host)["agrports"]}
    assert drops["re1"].get("rx_slb_not_designated", 0) >= MARKS, drops   # the far host's and vm1's
    assert drops["re0"].get("rx_slb_reflected", 0) >= MARKS, drops        # vm2's, come round

    # -- a cable cut: re0's switch port goes down while every VM pings at 10 ms --------------
    count = 400
    pingers = [subprocess.Popen(["ip", "netns", "exec", vm, "ping", "-c", str(count), "-i", "0.01", "-W", "1",
                                 "192.0.2.100"], stdout=subprocess.PIPE, text=True) for vm in vms]
    uplink_b = agent(lab, core, "ub", count * 0.01 + 1.5)
    time.sleep(1.0)
    lab.ip(sa, "link", "set", "down0", "down")
    outs = [p.communicate(timeout=60)[0] for p in pingers]
    seen_ub = collect(uplink_b)
    for i, out in enumerate(outs, 1):
        sent, got = ping_loss(out)
        assert sent == count and (sent - got) / sent < 0.01, f"vm{i} lost {sent - got} of {sent}:\n{out[-400:]}"
    doc = status_json(lab, host)
    info = doc["linkinfo"]["info_data"]
    assert info["slb"]["designated"] == "re1" and info["slb"]["moved"] >= 1, info
    # vm1's MAC moved to re1: its RARP learning frame came up switch B's uplink, and the core
    # learned the move.
    assert seen_ub.get(f"{macs[0]}/8035", 0) >= 1, seen_ub
    assert seen_ub.get(f"{macs[1]}/8035", 0) == 0, "vm2 did not move"
    assert fdb(lab, core).get(macs[0]) == "ub"
    elapsed = time.monotonic() - started
    print(f"slb integration test ({datapath}): {elapsed:.1f} s")


def test_slb_words_files_boot_and_the_data_path(lab, tmp_path):
    """agrproto slb from a file, under -n and --boot, on either data path, whichport; bad
    words change nothing."""
    from tests.integration.helpers import host_pair
    a, _b = host_pair(lab)
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    conf = tmp_path / "ifconfig.agr0"
    conf.write_text("create\nagrproto slb\nagrport re0\nagrport re1\n")
    dry = lab.agr(a, "-n", "-f", str(conf), "agr0")
    assert dry.returncode == 3 and "agrconfig agr0 agrproto slb" in dry.stdout, dry.stdout + dry.stderr
    ok(lab, a, "-f", str(conf), "agr0")
    info = status_json(lab, a)["linkinfo"]["info_data"]
    assert info["flags"]["proto"] == "slb" and info["mode"] == "balance-slb" and info["datapath"] == "ebpf"
    assert lab.agr(a, "-n", "-f", str(conf), "agr0").returncode == 0, "applied: nothing left to do"
    # whichport: agr0's own frames (broadcasts from its MAC) leave by its MAC's port.
    ok(lab, a, "agr0", "inet", "192.0.2.1/24", "up")
    doc = status_json(lab, a)
    indexes = {p["ifindex"]: p["ifname"] for p in doc["agrports"]}
    lab.wait_for(lambda: all(p["flags"] == 3 for p in status_json(lab, a)["agrports"]), timeout=10,
                 what="both ports distributing")
    mac = bytes.fromhex(doc["address"].replace(":", ""))
    want = indexes[slb.placement(list(indexes), set(indexes))[slb.bucket_of(mac)]]
    answer = json.loads(ok(lab, a, "--json", "agr0", "whichport", "192.0.2.9"))
    assert answer["port"] == want and answer["policy"].startswith("slb: source MAC"), answer
    before = {p: counters(lab, a, p)[0] for p in indexes.values()}
    lab.run(a, sys.executable, "-c", SEND_FROM_AGR0)
    sent = {p: counters(lab, a, p)[0] - before[p] for p in indexes.values()}
    other = next(p for p in indexes.values() if p != want)
    assert sent[want] >= 5 and sent[other] == 0, sent
    ok(lab, a, "agr0", "agrproto", "lacp")
    info = status_json(lab, a)["linkinfo"]["info_data"]
    assert info["flags"]["proto"] == "lacp" and "slb" not in info, info
    boot = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert boot.returncode == 3 and "agrconfig agr0 agrproto slb" in boot.stdout, boot.stdout + boot.stderr
    ok(lab, a, "--boot", f"--confdir={tmp_path}")
    info = status_json(lab, a)["linkinfo"]["info_data"]
    assert info["flags"]["proto"] == "slb" and info["datapath"] == "ebpf"
    # The relay and back: whichport's answer holds on both (agr0's MAC stays on its port).
    for path in ("relay", "ebpf", "restarted"):
        if path == "restarted":   # a worker killed: its successor takes slb up from the state file
            from tests.integration.test_worker import kill_worker
            kill_worker(lab, a)
            path = "ebpf"
            lab.wait_for(lambda: all(p["flags"] == 3 for p in status_json(lab, a)["agrports"]), timeout=10,
                         what="both ports distributing after the restart")
        else:
            ok(lab, a, "agr0", "datapath", path)
        info = status_json(lab, a)["linkinfo"]["info_data"]
        assert (info["flags"]["proto"], info["datapath"]) == ("slb", path)
        assert json.loads(ok(lab, a, "--json", "agr0", "whichport", "192.0.2.9"))["port"] == want
        before = {p: counters(lab, a, p)[0] for p in indexes.values()}
        lab.run(a, sys.executable, "-c", SEND_FROM_AGR0)
        sent = {p: counters(lab, a, p)[0] - before[p] for p in indexes.values()}
        assert sent[want] >= 5 and sent[other] == 0, (path, sent)
    bad = lab.agr(a, "agr0", "agrproto", "balance-slb")
    assert bad.returncode == 1 and bad.stderr.startswith("agrconfig: agrproto: "), bad.stderr
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["proto"] == "slb", "nothing changed"
