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


def test_strict_never_distributes_with_a_silent_partner_optimistic_does(lab):
    """Side by side in one namespace, under the same timers and load: agr0 (`lacpstrict`) over re0
    and agr1 (`-lacpstrict`) over re1, each cabled to a plain host that never speaks LACP (carrier
    up, silent). Once the partner is given up (3 s short timeout, DEFAULTED), the optimistic port
    distributes and carries traffic after the aggregate wait; the strict one never does. The
    optimistic side shows the set-up could distribute, so the strict side's 0 means strictness."""
    a, b = host_pair(lab)
    for p in ("re0", "re1"):
        lab.run(b, "sysctl", "-qw", f"net.ipv6.conf.{p}.disable_ipv6=1")
    lab.ip(b, "addr", "add", "198.51.100.2/24", "dev", "re0")
    lab.ip(b, "addr", "add", "192.0.2.2/24", "dev", "re1")
    # The kernel gives the veths their link-local address from a work queue once it sees the
    # carrier: wait for it, or it can come after aggregate() removed it (agrport: EBUSY).
    lab.wait_for(lambda: all("inet6 fe80" in lab.ip(a, "-o", "addr", "show", "dev", p).stdout
                             for p in ("re0", "re1")), timeout=15, what="link-local addresses on a's ports")
    aggregate(lab, a, ports=("re0",), name="agr0", words=("lacpstrict",))      # strict first: never less time
    aggregate(lab, a, ports=("re1",), name="agr1", words=("-lacpstrict",))
    ok(lab, a, "agr0", "inet", "198.51.100.1/24")
    ok(lab, a, "agr1", "inet", "192.0.2.1/24")
    assert ", strict, system " in ok(lab, a, "agr0")
    assert ", optimistic (-lacpstrict), system " in ok(lab, a, "agr1")
    strict_seen = set()

    def optimistic_distributes():
        strict_seen.add(port_flags(lab, a, "agr0")["re0"])
        return port_flags(lab, a, "agr1")["re1"] == 3

    lab.wait_for(optimistic_distributes, timeout=45, interval=0.5,
                 what="the optimistic port distributing with a silent partner")
    assert lab.ping(a, "192.0.2.2", count=2), "optimistic: distributing, yet no traffic"
    # Well past the short timeout and the aggregate wait again, on a loaded machine.
    import time
    hold = time.monotonic() + 8
    while time.monotonic() < hold:
        strict_seen.add(port_flags(lab, a, "agr0")["re0"])
        time.sleep(0.5)
    assert strict_seen == {0}, f"strict: the port went {strict_seen} with no partner ever heard"
    rx = {name: status_json(lab, a, name)["agrports"][0]["rx_state"] for name in ("agr0", "agr1")}
    assert rx == {"agr0": "DEFAULTED", "agr1": "DEFAULTED"}, rx    # both gave the partner up
    assert not lab.ping(a, "198.51.100.2", count=2, wait=1), "strict: traffic crossed a port not distributing"
    assert port_flags(lab, a, "agr1")["re1"] == 3


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
