"""LACP against a second independent implementation: DPDK's bonding driver in 802.3ad mode.

DPDK must be installed (scripts/bootstrap installs it for the tests): when it is not, these
tests fail rather than skip.
"""
import json
import sys

import pytest

from agrconfig.lacp import pdu as P
from tests.dpdklab import ACTIVITY, AGGREGATION, COLLECTING, DISTRIBUTING, SYNC, TIMEOUT, DpdkPartner
from tests.integration.helpers import ok, port_flags, status_json, strip_addresses, wait_distributing
from tests.lab import ROOT

pytestmark = pytest.mark.interop


def dpdk_pair(lab, words=()):
    """agrconfig in namespace `a` (re0, re1) cabled to a DPDK bond (dp0, dp1) in namespace `d`."""
    a, d = lab.netns("a"), lab.netns("d")
    for i in range(2):
        lab.veth(a, f"re{i}", d, f"dp{i}")
        strip_addresses(lab, a, f"re{i}")
    ok(lab, a, "agr0", "create", *words, "agrport", "re0", "agrport", "re1")
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    return a, d, DpdkPartner(lab, d, ["dp0", "dp1"], "192.0.2.2")


@pytest.mark.parametrize("timeout", ["fast", "slow"])
def test_dpdk_negotiates_with_each_timeout_and_answers_ping(lab, timeout):
    a, d, dpdk = dpdk_pair(lab, ("lacptimeout", timeout))
    with dpdk:
        wait_distributing(lab, a, ["re0", "re1"], timeout=40)
        dpdk.wait_distributing(["dp0", "dp1"], timeout=40)
        ours = status_json(lab, a)
        theirs = dpdk.state()
        for i, p in enumerate(sorted(ours["agrports"], key=lambda p: p["ifname"])):
            m = theirs["members"][f"dp{i}"]
            # DPDK sees our system, priorities, key and port, and our timeout...
            assert m["partner"]["system"] == ours["address"]
            assert m["partner"]["system_priority"] == 0x8000
            assert m["partner"]["port_priority"] == p["actor_port_prio"] == 0x8000
            assert m["partner"]["key"] == p["actor_key"]
            assert bool(m["partner_state"] & TIMEOUT) == (timeout == "fast")
            assert m["partner_state"] & (ACTIVITY | AGGREGATION | SYNC | COLLECTING | DISTRIBUTING) == 0x3d
            # ...and we see DPDK's.
            assert p["partner_mac"] == theirs["mac"] == m["actor"]["system"]
            assert p["partner_system_priority"] == m["actor"]["system_priority"] == 0xffff
            assert p["partner_key"] == m["actor"]["key"]
            assert p["partner_port"] == m["actor"]["port_number"]
            assert ("TIMEOUT" in p["ad_actor_oper_port_state_str"]) == (timeout == "fast")
        before = dpdk.state()["answered"]
        assert lab.ping(a, "192.0.2.2", count=3)
        assert dpdk.state()["answered"] >= before + 3     # DPDK answered, not some other stack


def test_dpdk_cable_cut_and_return(lab):
    a, d, dpdk = dpdk_pair(lab, ("lacptimeout", "fast"))
    with dpdk:
        wait_distributing(lab, a, ["re0", "re1"], timeout=40)
        dpdk.wait_distributing(["dp0", "dp1"], timeout=40)
        for cut, other in (("0", "1"), ("1", "0")):
            # The cable is cut at DPDK's end: both ends lose carrier.
            lab.ip(d, "link", "set", f"dp{cut}", "down")
            lab.wait_for(lambda: port_flags(lab, a)[f"re{cut}"] == 0, timeout=5, what=f"re{cut} out of the bundle")
            lab.wait_for(lambda: not dpdk.member(f"dp{cut}")["in_bond"], timeout=5, what=f"dp{cut} out of DPDK's bond")
            assert port_flags(lab, a)[f"re{other}"] == 3
            assert lab.ping(a, "192.0.2.2", count=3)
            lab.ip(d, "link", "set", f"dp{cut}", "up")
            wait_distributing(lab, a, ["re0", "re1"], timeout=40)
            dpdk.wait_distributing(["dp0", "dp1"], timeout=40)
            assert lab.ping(a, "192.0.2.2", count=3)


PROBE = r"""
import socket, sys
sys.path.insert(0, sys.argv[1])
from agrconfig.lacp import pdu as P
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(P.ETH_P_SLOW))
s.bind((sys.argv[2], 0))
s.settimeout(5)
mac = s.getsockname()[4]
s.send(P.build_frame(mac, P.encode(P.MarkerPdu(False, 7, mac, 0x1234abcd))))
while True:
    frame, addr = s.recvfrom(2048)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    src, payload = P.parse_frame(frame)
    pdu = P.decode(payload)
    if isinstance(pdu, P.MarkerPdu):
        print(src.hex(), mac.hex(), int(pdu.response), pdu.requester_port, pdu.requester_system.hex(), pdu.transaction_id)
        break
"""


def test_dpdk_answers_our_marker(lab):
    a, d, dpdk = dpdk_pair(lab, ("lacptimeout", "fast"))
    with dpdk:
        wait_distributing(lab, a, ["re0", "re1"], timeout=40)
        dpdk.wait_distributing(["dp0", "dp1"], timeout=40)
        # A Marker Information in our codec's encoding, sent on re0 beside the worker.
        out = lab.run(a, sys.executable, "-c", PROBE, ROOT, "re0", timeout=30).stdout.split()
        src, ours, response, port, system, tid = out
        dp0 = json.loads(lab.ip(d, "-j", "link", "show", "dp0").stdout)[0]["address"]
        assert src == dp0.replace(":", "")     # DPDK answers from the member's own MAC
        assert (int(response), int(port), system, int(tid)) == (1, 7, ours, 0x1234abcd)
        # The worker took the Response as one, not as a Marker Information to answer.
        counters = {p["ifname"]: p["lacp_counters"] for p in status_json(lab, a)["agrports"]}
        assert counters["re0"]["marker_resp_rx"] == 1
        assert counters["re0"]["marker_tx"] == 0 and counters["re0"]["marker_rx"] == 0
