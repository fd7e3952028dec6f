"""LACP between two agrconfig hosts: both ends agree, cuts and silence are handled."""
import pytest

from tests.integration.helpers import aggregate, host_pair, ok, port_flags, status_json, wait_distributing

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("timeout", ["fast", "slow"])
def test_two_agrconfig_hosts_agree(lab, timeout):
    a, b = host_pair(lab)
    for ns, addr in ((a, "192.0.2.1/24"), (b, "192.0.2.2/24")):
        aggregate(lab, ns, words=("lacptimeout", timeout))
        ok(lab, ns, "agr0", "inet", addr)
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])
    da, db = status_json(lab, a), status_json(lab, b)
    for mine, theirs in ((da, db), (db, da)):
        for p in mine["agrports"]:
            assert p["partner_mac"] == theirs["address"]
            assert p["partner_system_priority"] == 0x8000
            peer = {x["ifname"]: x for x in theirs["agrports"]}[p["ifname"]]
            assert p["partner_port"] == peer["ifindex"]
            assert p["partner_key"] == peer["actor_key"]
            assert p["ad_partner_oper_port_state"] == peer["ad_actor_oper_port_state"]
    assert lab.ping(a, "192.0.2.2", count=2)
    lab.ip(b, "link", "set", "re1", "down")
    lab.wait_for(lambda: port_flags(lab, a)["re1"] == 0, timeout=3, what="re1 out on carrier loss")
    assert lab.ping(a, "192.0.2.2", count=2)
    lab.ip(b, "link", "set", "re1", "up")
    wait_distributing(lab, a, ["re0", "re1"])


def test_silent_partner_expires_after_short_timeout(lab):
    a, b = host_pair(lab)
    for ns in (a, b):
        aggregate(lab, ns, words=("lacptimeout", "fast"))
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])
    # The far end of re1 falls silent with its carrier up: a zero-length queue drops every
    # frame it sends (this kernel has no tc classifiers to drop LACPDUs alone).
    lab.run(b, "tc", "qdisc", "add", "dev", "re1", "root", "pfifo", "limit", "0")
    lab.wait_for(lambda: port_flags(lab, a)["re1"] == 0, timeout=6, what="re1 expired")
    assert port_flags(lab, a)["re0"] == 3
    p = {x["ifname"]: x for x in status_json(lab, a)["agrports"]}["re1"]
    assert p["rx_state"] in ("EXPIRED", "DEFAULTED")
    lab.run(b, "tc", "qdisc", "del", "dev", "re1", "root")
    wait_distributing(lab, a, ["re0", "re1"])


def test_optimistic_mode_distributes_with_a_silent_partner(lab):
    a, b = host_pair(lab)
    aggregate(lab, a, words=("-lacpstrict",))
    # The far end is a plain host: no LACP at all.
    for p in ("re0", "re1"):
        lab.run(b, "sysctl", "-qw", f"net.ipv6.conf.{p}.disable_ipv6=1")
    wait_distributing(lab, a, ["re0", "re1"], timeout=10)
    strict = lab.netns("c")
    lab.veth(strict, "re0", strict, "pe0")
    aggregate(lab, strict, ports=("re0",))
    ok(lab, strict, "agr0", "lacpstrict")
    import time
    time.sleep(4)
    assert port_flags(lab, strict)["re0"] == 0, "strict: no partner, no distribution"


def test_port_cabled_back_to_the_same_agr_is_a_loop(lab):
    a = lab.netns("a")
    lab.veth(a, "re0", a, "re1")
    aggregate(lab, a, words=("lacptimeout", "fast"))
    import time
    time.sleep(4)
    assert port_flags(lab, a) == {"re0": 0, "re1": 0}
    p = status_json(lab, a)["agrports"][0]
    assert p["lacp_counters"]["loop"] > 0


def test_marker_responder_on_the_wire(lab):
    """A Marker Information sent to our port comes back as a Response with the same fields."""
    a, b = host_pair(lab)
    aggregate(lab, a)
    for p in ("re0", "re1"):
        lab.run(b, "sysctl", "-qw", f"net.ipv6.conf.{p}.disable_ipv6=1")
    code = r"""
import socket, struct, time
from agrconfig.lacp import pdu as P
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8809))
s.bind(("re0", 0x8809)); s.settimeout(0.2)
mac = bytes.fromhex("0a0000000abc")
s.send(P.build_frame(mac, P.encode(P.MarkerPdu(False, 0x4242, mac, 0xCAFE0001))))
deadline = time.time() + 5
while time.time() < deadline:
    try: frame = s.recv(2048)
    except socket.timeout: continue
    pdu = P.decode(P.parse_frame(frame)[1])
    if isinstance(pdu, P.MarkerPdu):
        print(pdu.response, hex(pdu.requester_port), pdu.requester_system.hex(), hex(pdu.transaction_id)); break
"""
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = lab.run(b, "env", f"PYTHONPATH={root}", sys.executable, "-c", code).stdout.split()
    assert out == ["True", "0x4242", "0a0000000abc", "0xcafe0001"]
    p = {x["ifname"]: x for x in status_json(lab, a)["agrports"]}["re0"]
    assert p["lacp_counters"]["marker_rx"] == 1 and p["lacp_counters"]["marker_tx"] == 1
