"""agrannounce and agrdowndelay against a plain Linux bridge (a switch without LAG):
- after a failover, N gratuitous ARPs `interval` apart arrive on the switch from the new port;
- a VM behind a host bridge that has agr0 in it is learned by the switch on the new port at
  once, without the VM speaking (a RARP learning frame per MAC of the host bridge);
- a multicast receiver on the host keeps its stream through a snooping switch (a querier with a
  long query interval) within 1 s of the move (agr0's memberships reported again);
- agrdowndelay: a carrier flap shorter than the delay leaves the port distributing, a longer
  loss takes it away once the delay is over;
- under LACP, another aggregation taking over announces too.
"""
import json
import subprocess
import sys
import time

import pytest

from tests.integration.helpers import aggregate, host_pair, ok, status_json, strip_addresses, worker_logs_tail
from tests.integration.test_failover import switched, wait_active

pytestmark = pytest.mark.integration

# Records frames arriving (not leaving) on the interfaces named in argv[3:] whose EtherType is
# argv[2] (hex), for argv[1] seconds: [ifname, monotonic time, frame hex].
SNIFFER = r"""
import socket, sys, time, json
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.settimeout(0.1)
end = time.monotonic() + float(sys.argv[1])
etype = int(sys.argv[2], 16)
names = set(sys.argv[3:])
seen = []
print("ready", flush=True)
while time.monotonic() < end:
    try:
        frame, addr = s.recvfrom(4096)
    except socket.timeout:
        continue
    if addr[0] in names and addr[2] != 4 and int.from_bytes(frame[12:14], "big") == etype:
        seen.append([addr[0], time.monotonic(), frame.hex()])
print(json.dumps(seen), flush=True)
"""


def sniff(ns, seconds, etype, *names):
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SNIFFER, str(seconds), hex(etype),
                             *names], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def failover_host(lab, *words):
    a, s, b = switched(lab)
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    ok(lab, a, "agr0", "create", "agrproto", "failover", *words)
    ok(lab, a, "agr0", "agrport", "re0", "agrport", "re1", "up")
    wait_active(lab, a, "re0", status_json(lab, a)["linkinfo"]["info_data"]["datapath"])
    return a, s, b


@pytest.mark.parametrize("datapath", ("relay", "ebpf"))
def test_n_announcements_interval_apart_after_a_failover(lab, datapath):
    a, s, b = failover_host(lab, "agrannounce", "3", "interval", "250", "datapath", datapath)
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    text = ok(lab, a, "agr0")
    assert "; announce 3 interval 250 ms" in text, text
    info = status_json(lab, a)["linkinfo"]["info_data"]
    assert (info["num_grat_arp"], info["num_unsol_na"], info["peer_notif_delay"]) == (3, 3, 250)
    mac = bytes.fromhex(status_json(lab, a)["address"].replace(":", ""))
    sniffer = sniff(s, 3, 0x0806, "sw1")
    cut = time.monotonic()
    lab.ip(s, "link", "set", "sw0", "down")
    seen = json.loads(sniffer.communicate(timeout=30)[0])
    own_ip = bytes([192, 0, 2, 1])
    garps = [t for _n, t, f in seen for f in [bytes.fromhex(f)]
             if f[6:12] == mac and f[20:22] == b"\x00\x01" and f[28:32] == f[38:42] == own_ip]
    assert len(garps) == 3, f"{len(garps)} gratuitous ARPs on sw1, not 3: {seen}"
    sent = [line for line in lab.agr(a, "--metrics").stdout.splitlines() if line.startswith("agr_announcements_total")]
    assert sent and float(sent[0].split()[-1]) >= 4, sent   # 3 + 3 at the first activation at least
    assert garps[0] - cut < 0.5, "the first one goes at once"
    gaps = [b2 - b1 for b1, b2 in zip(garps, garps[1:])]
    assert all(0.18 <= g <= 0.45 for g in gaps), f"not 250 ms apart: {gaps}"   # a busy machine jitters
    # A bad value exits 1 and changes nothing.
    for words in (["agrannounce", "256"], ["agrannounce", "2", "interval", "5"], ["agrannounce"]):
        bad = lab.agr(a, "agr0", *words)
        assert bad.returncode == 1 and bad.stderr.startswith("agrconfig: agrannounce: "), bad.stderr
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["announce"] == {"count": 3, "interval": 250}


def test_a_vm_behind_the_host_bridge_is_learned_on_the_new_port_at_once(lab):
    a, s, b = failover_host(lab)
    v = lab.netns("v")
    # The host bridge hbr0: agr0 and the VM's veth; the VM 192.0.2.42 with its own MAC.
    lab.ip(a, "link", "add", "hbr0", "type", "bridge")
    lab.ip(a, "link", "set", "agr0", "master", "hbr0")
    lab.veth(a, "tap0", v, "vm0", up=False)
    lab.ip(a, "link", "set", "tap0", "master", "hbr0", "up")
    lab.ip(a, "link", "set", "hbr0", "up")
    vm_mac = "02:00:00:00:00:42"
    # A quiet VM: no IPv6 (no MLD, RS, DAD) and static neighbours (no ARP probes later).
    lab.run(v, "sysctl", "-qw", "net.ipv6.conf.vm0.disable_ipv6=1")
    lab.ip(v, "link", "set", "vm0", "address", vm_mac, "up")
    lab.ip(v, "addr", "add", "192.0.2.42/24", "dev", "vm0")
    b_mac = json.loads(lab.ip(b, "-j", "link", "show", "eth0").stdout)[0]["address"]
    lab.ip(v, "neigh", "replace", "192.0.2.2", "lladdr", b_mac, "dev", "vm0", "nud", "permanent")
    lab.ip(b, "neigh", "replace", "192.0.2.42", "lladdr", vm_mac, "dev", "eth0", "nud", "permanent")
    assert lab.ping(v, "192.0.2.2", count=2, wait=2), "the VM reaches b through agr0"

    def where(mac):
        entries = json.loads(lab.run(s, "bridge", "-j", "fdb", "show", "br", "br0").stdout)
        return {e["ifname"] for e in entries if e["mac"] == mac and "permanent" not in e.get("state", "")}
    assert where(vm_mac) == {"sw0"}
    # The VM says nothing from now on: only agrconfig's learning frame can move it on the switch.
    lab.ip(s, "link", "set", "sw0", "down")
    cut = time.monotonic()
    lab.wait_for(lambda: where(vm_mac) == {"sw1"}, timeout=1.0, interval=0.02,
                 what=f"the switch to learn {vm_mac} on sw1 ({where(vm_mac)})")
    assert time.monotonic() - cut < 1.0
    wait_active(lab, a, "re1", status_json(lab, a)["linkinfo"]["info_data"]["datapath"])
    assert lab.ping(b, "192.0.2.42", count=2, wait=2)


RECEIVER = r"""
import socket, struct, sys, time, json
group, local, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((group, 5000))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(local))
s.settimeout(0.1)
print("ready", flush=True)
times = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        s.recv(2048)
        times.append(time.monotonic())
    except socket.timeout:
        pass
print(json.dumps(times), flush=True)
"""

SENDER = r"""
import socket, sys, time
group, local, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
end = time.monotonic() + seconds
while time.monotonic() < end:
    s.sendto(b"x" * 64, (group, 5000))
    time.sleep(0.01)
"""


def test_a_multicast_stream_follows_the_move_through_a_snooping_switch(lab):
    a, s, b = failover_host(lab)
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    # The switch snoops, is its own querier, and asks only every 5 minutes: no query comes to
    # make the host report again during the test. The one query sent when the querier starts
    # wants answers within 0.1 s, and the host repeats its unsolicited reports 0.1 s apart:
    # all that is over before the cut.
    lab.ip(s, "link", "set", "br0", "type", "bridge", "mcast_snooping", "1", "mcast_query_interval", "30000",
           "mcast_startup_query_count", "1", "mcast_startup_query_interval", "30000",
           "mcast_query_response_interval", "10")
    lab.ip(s, "link", "set", "br0", "type", "bridge", "mcast_querier", "1")
    for version in ("igmpv2", "igmpv3"):
        lab.run(a, "sysctl", "-qw", f"net.ipv4.conf.agr0.{version}_unsolicited_report_interval=100")
    group = "239.1.2.3"
    receiver = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-c", RECEIVER, group, "192.0.2.1", "9"],
                                stdout=subprocess.PIPE, text=True)
    assert receiver.stdout.readline().strip() == "ready"
    sender = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-c", SENDER, group, "192.0.2.2", "8"])
    try:
        def joined():
            mdb = lab.run(s, "bridge", "mdb", "show", "dev", "br0").stdout
            return group in mdb and "sw0" in mdb
        lab.wait_for(joined, timeout=4, interval=0.1, what="the switch to learn the group on sw0")
        time.sleep(1.5)
        # The move: re1 gets a better priority. (Not a cable cut: the switch's bridge answers a
        # port going down with a query of its own, and the host's kernel answers that.)
        cut = time.monotonic()
        ok(lab, a, "agr0", "agrportpri", "re1", "1")
        times = json.loads(receiver.communicate(timeout=30)[0])
    finally:
        sender.kill()
        sender.wait()
    before = [t for t in times if t < cut]
    after = [t for t in times if t >= cut]
    assert len(before) > 50, "the stream flowed before the move"
    gaps = [t2 - t1 for t1, t2 in zip(before[-1:] + after, after)]
    assert len(after) > 200, f"the stream did not keep flowing after the move: {len(after)} datagrams"
    assert max(gaps) < 1.0, f"the stream stopped for {max(gaps):.2f} s after the move"
    mdb = lab.run(s, "bridge", "mdb", "show", "dev", "br0").stdout
    assert f"port sw1 grp {group}" in mdb, mdb


def test_agrdowndelay_a_short_flap_changes_nothing_a_long_loss_takes_the_port(lab):
    a, s, _b = switched(lab)
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    ok(lab, a, "agr0", "create", "agrproto", "loadbalance", "agrdowndelay", "1500")
    ok(lab, a, "agr0", "agrport", "re0", "agrport", "re1", "up")

    def flags():
        return {p["ifname"]: p["flags"] for p in status_json(lab, a)["agrports"]}
    lab.wait_for(lambda: flags() == {"re0": 3, "re1": 3}, timeout=10, what="both ports distributing")
    assert "; downdelay 1500 ms" in ok(lab, a, "agr0")
    assert status_json(lab, a)["linkinfo"]["info_data"]["downdelay"] == 1500

    # A 0.5 s flap: re0 never leaves.
    lab.ip(s, "link", "set", "sw0", "down")
    end, seen = time.monotonic() + 0.5, []
    while time.monotonic() < end:
        seen.append(flags()["re0"])
    lab.ip(s, "link", "set", "sw0", "up")
    end = time.monotonic() + 2.0
    while time.monotonic() < end:   # past the delay: the flap, over, must not apply late
        seen.append(flags()["re0"])
    assert seen and set(seen) == {3}, f"re0 left during a flap shorter than agrdowndelay: {seen}"

    # A long loss: re0 stays for the delay (3 s: room for a slow status on a busy machine), then goes.
    ok(lab, a, "agr0", "agrdowndelay", "3000")
    lab.ip(s, "link", "set", "sw0", "down")
    cut = time.monotonic()
    time.sleep(1.0)
    (re0,) = [p for p in status_json(lab, a)["agrports"] if p["ifname"] == "re0"]
    text = ok(lab, a, "agr0")
    assert time.monotonic() - cut < 2.9, "too slow to tell"
    assert re0["flags"] == 3, "gone before agrdowndelay was over" + worker_logs_tail(lab, a, ["agr0"])
    assert 0.0 < re0["down_delay_left"] <= 2.0, re0
    assert "link lost, leaves in" in text, text
    lab.wait_for(lambda: flags()["re0"] == 0, timeout=5, interval=0.05, what="re0 gone after agrdowndelay")
    took = time.monotonic() - cut
    assert 2.9 <= took <= 4.0, f"re0 went after {took:.2f} s, not 3"
    bad = lab.agr(a, "agr0", "agrdowndelay", "-1")
    assert bad.returncode == 1 and bad.stderr.startswith("agrconfig: agrdowndelay: ")
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["down_delay"] == 3000


def test_another_lacp_aggregation_taking_over_is_announced(lab):
    """Our re0 and re1 hear two different partners (agr0 and agr1 in b, each with its own system
    id): one aggregation carries the traffic. When its cable goes, the other takes over and
    announces agr0's address from its port."""
    a, b = host_pair(lab)
    aggregate(lab, a, words=["lacptimeout", "fast", "agrannounce", "2", "interval", "100"])
    ok(lab, a, "agr0", "inet", "192.0.2.1/24", "up")
    for name, port, sysid in (("agr0", "re0", "02:00:00:00:aa:01"), ("agr1", "re1", "02:00:00:00:aa:02")):
        strip_addresses(lab, b, port)
        ok(lab, b, name, "create", "lacptimeout", "fast", "lacpsysid", sysid, "agrport", port, "up")

    def carrying():
        return {p["ifname"] for p in status_json(lab, a)["agrports"] if p["flags"] == 3}
    first = lab.wait_for(lambda: carrying() if len(carrying()) == 1 else None, timeout=15,
                         what="one aggregation distributing")
    (old,) = first
    new = {"re0": "re1", "re1": "re0"}[old]
    mac = bytes.fromhex(status_json(lab, a)["address"].replace(":", ""))
    sniffer = sniff(b, 4, 0x0806, new)
    lab.ip(b, "link", "set", old, "down")
    lab.wait_for(lambda: carrying() == {new}, timeout=5, interval=0.05, what=f"{new}'s aggregation taking over")
    seen = json.loads(sniffer.communicate(timeout=30)[0])
    own_ip = bytes([192, 0, 2, 1])
    garps = [f for _n, _t, f in seen for f in [bytes.fromhex(f)]
             if f[6:12] == mac and f[20:22] == b"\x00\x01" and f[28:32] == f[38:42] == own_ip]
    assert len(garps) == 2, f"{len(garps)} gratuitous ARPs from {new}, not 2: {seen}"
