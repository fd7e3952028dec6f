"""whichport without root: its words, the frame it hashes (the same hash as a frame the kernel
would send, built by scapy), the choice by policy, and that it is a query only."""
import ipaddress

import pytest

from agrconfig import options
from agrconfig.cli import main as cli, provision, whichport
from agrconfig.cli.grammar import parse_words
from agrconfig.errors import UsageError
from agrconfig.worker.flowhash import flow_hash
from tests.unit.test_controls_words import complete
from tests.unit.statuses import aggregate


@pytest.mark.parametrize("words, want", [
    (["192.0.2.7"], ("192.0.2.7", None, None)),
    (["192.0.2.7", "from", "192.0.2.10"], ("192.0.2.7", "192.0.2.10", None)),
    (["2001:db8::7", "tcp", "1234", "80"], ("2001:db8::7", None, ("tcp", 1234, 80))),
    (["192.0.2.7", "from", "192.0.2.10", "udp", "0", "65535"], ("192.0.2.7", "192.0.2.10", ("udp", 0, 65535))),
])
def test_words(words, want):
    dst, src, l4 = whichport.parse(words)
    assert (str(dst), src and str(src), l4) == want


@pytest.mark.parametrize("words, message", [
    ([], "missing destination"), (["x"], "bad address 'x'"), (["192.0.2.7", "from"], "from: missing address"),
    (["192.0.2.7", "from", "2001:db8::1"], "not of one family"), (["192.0.2.7", "tcp", "1"], "tcp: missing ports"),
    (["192.0.2.7", "udp", "1", "65536"], "bad port '65536'"), (["192.0.2.7", "udp", "-1", "2"], "bad port '-1'"),
    (["192.0.2.7", "sctp", "1", "2"], "unexpected 'sctp'"), (["192.0.2.7", "tcp", "1", "2", "x"], "unexpected 'x'"),
])
def test_bad_words_are_usage_errors(words, message):
    with pytest.raises(UsageError, match=f"^whichport: .*{message}"):
        whichport.parse(words)


def test_a_query_only(monkeypatch, capsys):
    with pytest.raises(UsageError, match="whichport: unknown word"):
        parse_words(["whichport", "192.0.2.7"])          # never in a file (nor in --boot)
    monkeypatch.setattr(provision, "plan", lambda *a: pytest.fail("planned"))
    assert cli.main(["-n", "agr0", "whichport", "192.0.2.7"]) == 1
    assert "whichport is a query" in capsys.readouterr().err
    assert cli.main(["agr0", "whichport", "192.0.2.7", "udp", "1"]) == 1, "bad words: exit 1, nothing asked"
    assert "whichport" in complete("agr0", "")


MAC_A, MAC_B = bytes.fromhex("020000000a01"), bytes.fromhex("020000000b02")


@pytest.mark.parametrize("l4", [None, ("tcp", 40000, 80), ("udp", 5353, 53)])
@pytest.mark.parametrize("family", [4, 6])
def test_the_frame_hashes_as_the_kernels_frame(l4, family):
    """Every layer of every policy: the hash of our frame is that of the frame the stack sends."""
    import scapy.all as scapy   # in the test extra: missing, the test fails
    src, dst = ("192.0.2.1", "192.0.2.2") if family == 4 else ("2001:db8::1", "2001:db8::2")
    ours = whichport.first_frame(MAC_B, MAC_A, ipaddress.ip_address(src), ipaddress.ip_address(dst), l4)
    eth = scapy.Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0b:02")
    ip = scapy.IP(src=src, dst=dst, flags="DF", ttl=64, id=4242) if family == 4 else \
        scapy.IPv6(src=src, dst=dst, hlim=64)
    if l4 is None:
        upper = scapy.ICMP() if family == 4 else scapy.ICMPv6EchoRequest()
    else:
        upper = (scapy.TCP if l4[0] == "tcp" else scapy.UDP)(sport=l4[1], dport=l4[2])
    theirs = bytes(eth / ip / upper / (b"x" * 100))
    for policy in range(1, 8):
        assert flow_hash(ours, policy) == flow_hash(theirs, policy), (policy, l4)


def ws(proto="lacp", link0=False, flags_by_port=(("re0", 3), ("re1", 0), ("re2", 3)), policy=options.L3):
    return aggregate({"flags": {**options.defaults(), "proto": proto, "link0": link0, "hash": policy},
                      "ports": [{"name": n, "flags": f} for n, f in flags_by_port]})


def test_the_choice_follows_the_data_paths_table():
    frame = whichport.first_frame(MAC_B, MAC_A, ipaddress.ip_address("192.0.2.1"),
                                  ipaddress.ip_address("192.0.2.2"), ("udp", 1, 2))
    port, h, table, why = whichport.choose(ws(), frame)
    assert table == ["re0", "re2"] and h == flow_hash(frame, options.L3) and port == table[h % 2]
    assert why == "hash l3"
    assert whichport.choose(ws(link0=True), frame)[0] is None
    assert whichport.choose(ws(proto="failover", flags_by_port=(("re0", 0), ("re1", 3))), frame)[:2] == ("re1", None)
    assert whichport.choose(ws(flags_by_port=(("re0", 1),)), frame)[3] == "no port distributes"


def test_the_answer_as_text():
    r = {"ifname": "agr0", "dst": "192.0.2.7", "src": "192.0.2.10", "proto": "tcp", "sport": 1, "dport": 2,
         "src_mac": "02:00:00:00:0a:01", "dst_mac": "02:00:00:00:0b:02", "dst_mac_from": "gateway 192.0.2.1",
         "policy": "hash l2,l3", "hash": 0x1234, "ports": ["re0", "re1"], "port": "re0"}
    assert whichport.render(r).splitlines() == [
        "agr0: 192.0.2.7 from 192.0.2.10 tcp 1 2: re0",
        "\thash l2,l3: 0x00001234 % 2 ports (re0, re1)",
        "\tMAC addresses: 02:00:00:00:0a:01 (agr0) -> 02:00:00:00:0b:02 (gateway 192.0.2.1)"]


def slb_ws(flags_by_port):
    return aggregate({"flags": {**options.defaults(), "proto": "slb"},
                      "ports": [{"name": n, "flags": f, "index": 7 + i} for i, (n, f) in enumerate(flags_by_port)]})


def test_under_slb_the_source_macs_port_answers():
    from agrconfig.worker import slb
    frame = whichport.first_frame(MAC_B, MAC_A, ipaddress.ip_address("192.0.2.1"),
                                  ipaddress.ip_address("192.0.2.2"), None)
    status = slb_ws((("re0", 3), ("re1", 3), ("re2", 3)))
    indexes = [p.index for p in status.ports]
    b = slb.bucket_of(MAC_A, 0)
    port, h, table, why = whichport.choose(status, frame)
    assert table == ["re0", "re1", "re2"] and h is None
    assert port == status.port_by_index(slb.placement(indexes, set(indexes))[b]).name
    assert why == f"slb: source MAC {MAC_A.hex(':')}, bucket {b} of 256"
    # Its port gone, the MAC goes where slb.py sends it; the others stay where they were.
    down = [(n, 0 if n == port else 3) for n in ("re0", "re1", "re2")]
    status = slb_ws(down)
    up = {p.index for p in status.ports if p.name != port}
    moved, *_ = whichport.choose(status, frame)
    assert moved != port and moved == status.port_by_index(slb.placement(indexes, up)[b]).name
    # Another source MAC on another port: the destination does not count.
    other = next(m for m in (bytes([2, 0, 0, 0, 0, i]) for i in range(256))
                 if slb.placement(indexes, set(indexes))[slb.bucket_of(m)] !=
                 slb.placement(indexes, set(indexes))[b])
    full = slb_ws((("re0", 3), ("re1", 3), ("re2", 3)))
    assert whichport.choose(full, MAC_B + other + frame[12:])[0] != whichport.choose(full, frame)[0]
    assert whichport.choose(full, other + MAC_A + frame[12:])[0] == whichport.choose(full, frame)[0]
