"""agrproto slb with VLANs on Debian's kernel (this lab's own has no VLAN-aware bridge): a VM on
VLAN 20 behind agr0 in a VLAN-aware bridge; its port's cable is cut, and the learning frame for
its MAC (a RARP) leaves the surviving port tagged with VLAN 20 (issue 21 item 1). The frame's
bytes are unit-tested (tests/unit/test_announcer.py); here the VLAN comes from what the bridge
hands agr0: inline on the relay (tun puts the tag back), skb metadata on the eBPF path.

    v (VM, untagged) --- vm0 [br0: vm0 pvid 20, agr0 tagged 20] agr0 (slb) --- re0 / re1 --- far
"""
import json
import subprocess
import sys

import pytest

from agrconfig.worker import slb
from tests.integration.helpers import ok, status_json
from tests.vmstage.guest.partner import shell

VID = 20

# argv: seconds, ifname, MAC. Prints "ready", then each RARP from MAC arriving on ifname as
# [VLAN id or null]; stops at the first tagged one. The kernel takes the tag off on receipt:
# it is read from PACKET_AUXDATA (or inline, had it stayed).
WATCH = r"""
import json, socket, struct, sys, time
seconds, ifname, mac = float(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.setsockopt(263, 8, 1)                     # SOL_PACKET, PACKET_AUXDATA
s.bind((ifname, 0))
s.settimeout(0.1)
print("ready", flush=True)
seen, end = [], time.monotonic() + seconds
while time.monotonic() < end and not any(v is not None for v in seen):
    try:
        frame, cmsgs, _flags, _addr = s.recvmsg(2048, socket.CMSG_SPACE(20))
    except socket.timeout:
        continue
    vlan, kind = None, frame[12:14]
    for level, ctype, data in cmsgs:
        if (level, ctype) == (263, 8):
            status, _len, _snap, _mac, _net, tci = struct.unpack_from("=IIIHHH", data)
            if status & 0x10:               # TP_STATUS_VLAN_VALID
                vlan = tci & 0xFFF
    if kind == b"\x81\x00":
        vlan, kind = struct.unpack_from("!H", frame, 14)[0] & 0xFFF, frame[16:18]
    if kind == b"\x80\x35" and frame[6:12] == mac:
        seen.append(vlan)
print(json.dumps(seen), flush=True)
"""


def vm_mac(port_parity):
    """A VM MAC that slb places, in VLAN VID, on re0 (even buckets) or re1 (odd) while both
    distribute (slb.placement)."""
    for i in range(1, 256):
        mac = bytes([0x02, 0, 0, 0, 0x20, i])
        if slb.bucket_of(mac, VID) % 2 == port_parity:
            return mac.hex(":")
    raise AssertionError("no MAC found")


@pytest.mark.parametrize("datapath", ["relay", "ebpf"])
def test_a_moved_vm_mac_is_announced_in_its_vlan(lab, datapath):
    h, far, v = lab.netns("h"), lab.plain_netns("f"), lab.plain_netns("v")
    mac = vm_mac(0)                             # on re0, the port whose cable is cut
    no_ipv6 = "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1\n"
    for ns in (far, v):
        shell(lab, ns, no_ipv6)
    shell(lab, h, no_ipv6 + f"""
        ip link add re0 type veth peer name pe0 netns {far}
        ip link add re1 type veth peer name pe1 netns {far}
        ip link add vm0 type veth peer name eth0 netns {v}
        ip link set re0 up
        ip link set re1 up""")
    shell(lab, far, "ip link set pe0 up\nip link set pe1 up")
    shell(lab, v, f"ip link set eth0 address {mac} up\nip addr add 10.0.{VID}.3/24 dev eth0")
    ok(lab, h, "agr0", "create", "agrproto", "slb", "datapath", datapath, "agrport", "re0", "agrport", "re1", "up")
    shell(lab, h, f"""
        ip link add br0 type bridge vlan_filtering 1 stp_state 0
        for port in agr0 vm0; do ip link set $port master br0; bridge vlan del dev $port vid 1; done
        bridge vlan add dev agr0 vid {VID}
        bridge vlan add dev vm0 vid {VID} pvid untagged
        ip link set vm0 up
        ip link set br0 up""")

    # The VM speaks (ARP for a host that does not answer): agr0 sends from its MAC in VLAN 20.
    def learned():
        lab.run(v, "ping", "-c", "1", "-W", "1", f"10.0.{VID}.2", check=False)
        doc = status_json(lab, h)
        return [p["flags"] for p in doc["agrports"]] == [3, 3] and doc["linkinfo"]["info_data"]["slb"]["learned"] >= 1

    lab.wait_for(learned, timeout=40, interval=0.5, what="both ports distributing and the VM's MAC learned")
    watch = subprocess.Popen(["ip", "netns", "exec", far, sys.executable, "-c", WATCH, "20", "pe1", mac],
                             stdout=subprocess.PIPE, text=True)
    assert watch.stdout.readline().strip() == "ready"
    lab.ip(far, "link", "set", "pe0", "down")   # the cable cut: re0 loses its carrier
    seen = json.loads(watch.communicate(timeout=60)[0])
    assert seen and seen[-1] == VID and None not in seen, f"RARPs from {mac} on re1, by VLAN: {seen}"
