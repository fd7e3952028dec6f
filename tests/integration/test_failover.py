"""agrproto failover against a plain Linux bridge (a switch without LAG), on both data paths:
one port carries the traffic and the standby none; ping survives the active cable's cut; the
gratuitous ARP and unsolicited NA are seen on the wire at the new port; sticky and priority;
the words from a configuration file under -n."""
import json
import re
import subprocess
import sys
import time

import pytest

from tests.integration.helpers import ok, status_json, strip_addresses

pytestmark = pytest.mark.integration

DATAPATHS = ("relay", "ebpf")

# Records the ARP and ICMPv6 frames arriving (not leaving) on the interfaces named in argv[2:],
# for argv[1] seconds: [ifname, ethertype, frame hex].
SNIFFER = r"""
import socket, sys, time, json
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.settimeout(0.2)
end = time.monotonic() + float(sys.argv[1])
names = set(sys.argv[2:])
seen = []
print("ready", flush=True)
while time.monotonic() < end:
    try:
        frame, addr = s.recvfrom(4096)
    except socket.timeout:
        continue
    etype = int.from_bytes(frame[12:14], "big")
    if addr[0] in names and addr[2] != 4 and etype in (0x0806, 0x86DD):
        seen.append([addr[0], etype, frame.hex()])
print(json.dumps(seen), flush=True)
"""


def switched(lab):
    """a: re0, re1 -> s: bridge br0 (sw0, sw1, sw2) <- b: eth0 192.0.2.2 (and 2001:db8::2)."""
    a, s, b = lab.netns("a"), lab.netns("s"), lab.netns("b")
    lab.ip(s, "link", "add", "br0", "type", "bridge")
    for port, sw in (("re0", "sw0"), ("re1", "sw1")):
        lab.veth(a, port, a, sw, up=False)
        lab.ip(a, "link", "set", sw, "netns", s)
        lab.ip(s, "link", "set", sw, "master", "br0", "up")
        lab.ip(a, "link", "set", port, "up")
    lab.veth(b, "eth0", b, "sw2", up=False)
    lab.ip(b, "link", "set", "sw2", "netns", s)
    lab.ip(s, "link", "set", "sw2", "master", "br0", "up")
    lab.ip(s, "link", "set", "br0", "up")
    lab.ip(b, "link", "set", "eth0", "up")
    lab.ip(b, "addr", "add", "192.0.2.2/24", "dev", "eth0")
    lab.ip(b, "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad")
    return a, s, b


def kernel_counters(lab, ns, dev):
    (link,) = json.loads(lab.ip(ns, "-j", "-s", "link", "show", "dev", dev).stdout)
    return link["stats64"]["tx"]["packets"], link["stats64"]["rx"]["packets"]


def roles(lab, ns):
    doc = status_json(lab, ns)
    return doc["linkinfo"]["info_data"].get("active_slave"), {p["ifname"]: (p["flags"], p.get("state"))
                                                              for p in doc["agrports"]}


def wait_active(lab, ns, port, datapath):
    other = {"re0": "re1", "re1": "re0"}[port]

    def settled():
        doc = status_json(lab, ns)
        info = doc["linkinfo"]["info_data"]
        flags = {p["ifname"]: p["flags"] for p in doc["agrports"]}
        return info["active_slave"] == port and flags[port] == 3 and flags[other] == 0 and \
            info["datapath"] == datapath and info["datapath_mode"] == ("normal" if datapath == "ebpf" else None)
    lab.wait_for(settled, timeout=20, interval=0.2, what=f"{port} active on {datapath} ({roles(lab, ns)})")


def sniff(lab, ns, seconds, *names):
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SNIFFER, str(seconds), *names],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def replies(output):
    return sorted({int(m) for m in re.findall(r"icmp_seq=(\d+)", output)})


@pytest.mark.parametrize("datapath", DATAPATHS)
def test_failover_against_a_bridge(lab, datapath):
    a, s, b = switched(lab)
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    ok(lab, a, "agr0", "create", "agrproto", "failover", "datapath", datapath)
    ok(lab, a, "agr0", "agrport", "re0", "agrport", "re1", "inet", "192.0.2.1/24", "up")
    ok(lab, a, "agr0", "inet6", "2001:db8::1/64")
    # re0 has the lower index (made first): with equal priorities it is the active port.
    wait_active(lab, a, "re0", datapath)
    text = ok(lab, a, "agr0")
    assert "\tagr: failover (no LACP), active re0;" in text and f"datapath {datapath}" in text
    assert "LINK1" not in text.splitlines()[0]
    assert "\t\tactive, priority 0x8000," in text and "\t\tstandby, priority 0x8000," in text
    assert lab.ping(b, "192.0.2.1", count=3, wait=2)

    # The standby neither sends nor delivers: with ageing 0 the bridge floods every frame to
    # both cables (a hub), yet no reply is duplicated, and nothing leaves on re1.
    lab.ip(s, "link", "set", "br0", "type", "bridge", "ageing_time", "0")
    tx1, rx1 = kernel_counters(lab, a, "re1")
    tx0, _rx0 = kernel_counters(lab, a, "re0")
    out = lab.run(b, "ping", "-c", "20", "-i", "0.02", "-W", "2", "192.0.2.1", check=False).stdout
    assert "DUP" not in out and len(replies(out)) >= 18, out
    assert kernel_counters(lab, a, "re1")[1] >= rx1 + 18, "the hub did not flood to the standby"
    assert kernel_counters(lab, a, "re1")[0] == tx1, "the standby port sent frames"
    assert kernel_counters(lab, a, "re0")[0] >= tx0 + 18, "the active port carried the replies"
    lab.ip(s, "link", "set", "br0", "type", "bridge", "ageing_time", "30000")

    # Cut the active cable (carrier loss on re0) while b pings a every 10 ms.
    sniffer = sniff(lab, s, 6, "sw1")
    pinger = subprocess.Popen(["ip", "netns", "exec", b, "ping", "-c", "300", "-i", "0.01", "-W", "1",
                               "192.0.2.1"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    lab.ip(s, "link", "set", "sw0", "down")
    out, _ = pinger.communicate(timeout=60)
    got = replies(out)
    assert len(got) >= 200 and got[-1] >= 290, f"the ping did not survive the cut: {len(got)} replies\n{out}"
    assert "DUP" not in out
    wait_active(lab, a, "re1", datapath)

    # The gratuitous ARP and the unsolicited NA arrived from re1 on the bridge's sw1.
    seen = json.loads(sniffer.communicate(timeout=60)[0])
    mac = bytes.fromhex(status_json(lab, a)["address"].replace(":", ""))
    frames = [bytes.fromhex(f) for _n, _t, f in seen]
    own_ip = bytes([192, 0, 2, 1])
    # ARP request (op 1) from agr0's MAC, sender and target address 192.0.2.1.
    garps = [f for f in frames if f[12:14] == b"\x08\x06" and f[6:12] == mac and f[20:22] == b"\x00\x01"
             and f[28:32] == f[38:42] == own_ip]
    assert garps, f"no gratuitous ARP for 192.0.2.1 from {mac.hex()} on sw1: {seen}"
    # ICMPv6 (58) Neighbor Advertisement (136) for 2001:db8::1 from agr0's MAC.
    nas = [f for f in frames if f[12:14] == b"\x86\xdd" and f[6:12] == mac and f[20] == 58 and f[54] == 136
           and f[62:78] == bytes.fromhex("20010db8000000000000000000000001")]
    assert nas, f"no unsolicited NA for 2001:db8::1 from {mac} on sw1: {seen}"

    # The standby carries the traffic now.
    tx1, _ = kernel_counters(lab, a, "re1")
    assert lab.ping(b, "192.0.2.1", count=5, wait=2)
    assert kernel_counters(lab, a, "re1")[0] >= tx1 + 5

    # re0 back: sticky, re1 stays; a better priority takes the traffic back.
    lab.ip(s, "link", "set", "sw0", "up")
    lab.wait_for(lambda: roles(lab, a)[1]["re0"][1] == "backup", timeout=10, what="re0 standby again")
    time.sleep(1.0)
    assert roles(lab, a)[0] == "re1", "equal priorities: the active port stays"
    ok(lab, a, "agr0", "agrportpri", "re0", "1")
    wait_active(lab, a, "re0", datapath)
    assert lab.ping(b, "192.0.2.1", count=3, wait=2)
    assert lab.ping(b, "2001:db8::1", count=3, wait=2)


def test_agrproto_from_a_file_and_link1_are_one_setting(lab, tmp_path):
    a, _s, _b = switched(lab)
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    conf = tmp_path / "ifconfig.agr0"
    conf.write_text("create\nagrproto failover\nagrport re0\nagrport re1\nagrportpri re1 10\n")
    dry = lab.agr(a, "-n", "-f", str(conf), "agr0")
    assert dry.returncode == 3 and "agrconfig agr0 agrproto failover" in dry.stdout, dry.stdout + dry.stderr
    ok(lab, a, "-f", str(conf), "agr0")
    lab.wait_for(lambda: roles(lab, a)[0] == "re1", timeout=10, what="re1 (priority 10) active")
    assert lab.agr(a, "-n", "-f", str(conf), "agr0").returncode == 0, "applied: nothing left to do"
    ok(lab, a, "agr0", "link1")
    doc = status_json(lab, a)
    assert doc["linkinfo"]["info_data"]["mode"] == "static" and doc["linkinfo"]["info_data"]["flags"]["proto"] == \
        "loadbalance" and "LINK1" in doc["flags_str"]
    dry = lab.agr(a, "-n", "-f", str(conf), "agr0")
    assert dry.returncode == 3 and "agrconfig agr0 agrproto failover" in dry.stdout
    boot = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert boot.returncode == 3 and "agrconfig agr0 agrproto failover" in boot.stdout, boot.stdout + boot.stderr
    ok(lab, a, "--boot", f"--confdir={tmp_path}")
    assert status_json(lab, a)["linkinfo"]["info_data"]["mode"] == "active-backup"
    bad = lab.agr(a, "agr0", "agrproto", "roundrobin")
    assert bad.returncode == 1 and bad.stderr.startswith("agrconfig: agrproto: ")
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["proto"] == "failover", "nothing changed"
