"""Scale (issue #7 item 7): 16 agr interfaces with 4 ports each against 16 agrconfig partners.

Two namespaces joined by 64 veth pairs; every port on both sides must reach
COLLECTING,DISTRIBUTING with the right partner aggregation, and `agrconfig -a`
must list all 16. Timings are printed (run with -s to see them), never asserted:
bench/scale measures them.
"""
import json
import re
import time

import pytest

from tests.integration.helpers import ok, scale_pair

pytestmark = pytest.mark.integration

AGGS, PORTS = 16, 4


def all_status(lab, ns):
    """{agr name: JSON document} of every agr interface in ns, from `agrconfig --json -a`."""
    docs = json.loads(ok(lab, ns, "--json", "-a"))
    return {d["ifname"]: d for d in docs if d.get("linkinfo", {}).get("info_kind") == "agr"}


def distributing(doc):
    return sum(1 for p in doc["agrports"] if p["flags"] == 3)


def test_sixteen_agr_with_four_ports_each(lab):
    t0 = time.monotonic()
    a, b, attach = scale_pair(lab, AGGS, PORTS, words=("lacptimeout", "fast"))
    print(f"\ncreate+attach of {AGGS} agr x {PORTS} ports on both sides: {attach:.1f} s")

    state = {}

    def everyone_distributing():
        state[a], state[b] = all_status(lab, a), all_status(lab, b)
        return all(len(s) == AGGS and all(distributing(d) == PORTS for d in s.values()) for s in state.values())

    try:
        lab.wait_for(everyone_distributing, timeout=60, interval=1.0, what="all 128 ports distributing")
    except AssertionError:
        left = {ns: {n: distributing(d) for n, d in s.items() if distributing(d) != PORTS} for ns, s in state.items()}
        raise AssertionError(f"not all distributing after 60 s; distributing ports per agr: {left}") from None
    print(f"all {2 * AGGS * PORTS} ports distributing {time.monotonic() - t0:.1f} s after the start")

    # Every port of agrN joined agrN on the other side: partner system is its MAC, partner key
    # its key, partner port the far end's ifindex; and each agr has one aggregator of 4 ports.
    for mine, theirs in ((state[a], state[b]), (state[b], state[a])):
        for name, doc in mine.items():
            peer = theirs[name]
            assert [p["ifname"] for p in doc["agrports"]] == [f"s{name[3:]}p{m}" for m in range(PORTS)]
            assert doc["linkinfo"]["info_data"]["ad_info"]["partner_mac"] == peer["address"]
            assert doc["linkinfo"]["info_data"]["ad_info"]["ports"] == PORTS
            far = {p["ifname"]: p for p in peer["agrports"]}
            for p in doc["agrports"]:
                assert p["selected"] == "SELECTED", (name, p["ifname"])
                assert p["partner_mac"] == peer["address"], (name, p["ifname"])
                assert p["partner_key"] == far[p["ifname"]]["actor_key"]
                assert p["partner_port"] == far[p["ifname"]]["ifindex"]

    # The text listing shows all 16 with their ports, and every port names its aggregate.
    t = time.monotonic()
    out = ok(lab, a, "-a")
    print(f"agrconfig -a with {AGGS} agr interfaces: {time.monotonic() - t:.2f} s (bench/scale measures it)")
    heads = [line.split(":")[0] for line in out.splitlines() if line.startswith("agr")]
    assert heads == [f"agr{n}" for n in range(AGGS)]
    assert out.count("\tagr: lacp active, timeout fast") == AGGS
    assert out.count(", flags=0x3<COLLECTING,DISTRIBUTING>\n") == AGGS * PORTS
    blocks = {blk.split(":", 1)[0]: blk for blk in re.split(r"\n(?=\S)", out)}
    for n in range(AGGS):
        for m in range(PORTS):
            assert f"\n\tagr: agr{n}\n" in blocks[f"s{n}p{m}"], blocks[f"s{n}p{m}"]
    assert set(ok(lab, a, "-l").split()) >= {f"agr{n}" for n in range(AGGS)}
