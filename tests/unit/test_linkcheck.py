"""agrlinkcheck: the word and its limits, the verdicts on a fake clock, the probes (decoded by
scapy) and the socket filter (run by a small classic BPF interpreter here)."""
import ipaddress
import struct

import pytest

from agrconfig import options
from agrconfig.cli import ifupdown, render
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import AddAddress, SetOption, Up
from agrconfig.errors import UsageError
from agrconfig.worker import announce, statefile
from agrconfig.worker.linkcheck import Monitor, arp_probe, link_local, neighbor_solicitation, target_filter
from tests.unit.test_controls_words import complete, refused, state
from tests.unit.statuses import aggregate


# -- the word ------------------------------------------------------------------------------------

@pytest.mark.parametrize("words, value", [
    (["agrlinkcheck", "192.0.2.1"], {"targets": ["192.0.2.1"], "interval": 1000}),
    (["agrlinkcheck", "192.0.2.1,2001:DB8::1,192.0.2.1", "interval", "250"],
     {"targets": ["192.0.2.1", "2001:db8::1"], "interval": 250}),
    (["agrlinkcheck", "fe80::1", "interval", "0x0a"], {"targets": ["fe80::1"], "interval": 10}),
    (["-agrlinkcheck"], None),
])
def test_agrlinkcheck_parses(words, value):
    (op,) = parse_words(words)
    assert op == SetOption("linkcheck", value, words[0])
    (again,) = parse_words(op.words())
    assert again == op


def test_interval_is_optional_and_what_follows_is_another_word():
    ops = parse_words(["agrlinkcheck", "192.0.2.1", "up"])
    assert [type(o) for o in ops] == [SetOption, Up]


@pytest.mark.parametrize("words, message", [
    (["agrlinkcheck"], "^agrlinkcheck: missing IP addresses"),
    (["agrlinkcheck", "192.0.2.1", "interval"], "^interval: missing a value"),
    (["agrlinkcheck", "192.0.2.1", "interval", "9"], r"^agrlinkcheck: interval: bad value '9' \(10-60000\)"),
    (["agrlinkcheck", "192.0.2.1", "interval", "60001"], "^agrlinkcheck: interval: bad value"),
    (["agrlinkcheck", "192.0.2.1", "interval", "1s"], "^agrlinkcheck: interval: bad value"),
    (["agrlinkcheck", "192.0.2.1", "interval", "10", "interval", "20"], "^interval: unknown word"),
    (["agrlinkcheck", "192.0.2.256"], "^agrlinkcheck: bad address '192.0.2.256'"),
    (["agrlinkcheck", "224.0.0.1"], "is not a unicast address"),
    (["agrlinkcheck", "255.255.255.255"], "is not a unicast address"),
    (["agrlinkcheck", "::"], "is not a unicast address"),
    (["agrlinkcheck", "127.0.0.1"], "is not a unicast address"),
    (["agrlinkcheck", "192.0.2.1,"], "bad address ''"),
    (["agrlinkcheck", ",".join(f"192.0.2.{n}" for n in range(1, 18))], "1 to 16 addresses"),
    (["-agrlinkcheck", "192.0.2.1"], "^192.0.2.1: "),
])
def test_bad_agrlinkcheck_is_a_usage_error(words, message):
    with pytest.raises(UsageError, match=message):
        ops = parse_words(words)
        if words[0] == "-agrlinkcheck":   # the address alone is a word of its own: an inet one
            assert isinstance(ops[1], AddAddress)
            raise UsageError("192.0.2.1: parsed as an address")


@pytest.mark.parametrize("words", [["agr0", "agrlinkcheck", "192.0.2.1", "interval", "5"],
                                   ["agr0", "create", "agrlinkcheck", "ff02::1"],
                                   ["-n", "agr0", "agrlinkcheck"]])
def test_bad_agrlinkcheck_exits_1_and_changes_nothing(words, monkeypatch, capsys):
    assert refused(words, monkeypatch, capsys).startswith("agrconfig: agrlinkcheck: ")


def test_the_state_file_checks_the_setting():
    statefile.validate(state([], {"linkcheck": {"targets": ["192.0.2.1"], "interval": 100}}), "agr0")
    for bad in ({"targets": ["192.0.2.1"], "interval": 5}, {"targets": ["x"], "interval": 100}, "192.0.2.1"):
        with pytest.raises(statefile.BadState):
            statefile.validate(state([], {"linkcheck": bad}), "agr0")


def test_ifupdown_stanza():
    assert ifupdown.stanza({"IF_AGR_LINKCHECK": "192.0.2.1 2001:db8::1 interval 500"}) == \
        ([], ["agrlinkcheck", "192.0.2.1,2001:db8::1", "interval", "500"])
    assert ifupdown.stanza({"IF_AGR_LINKCHECK": "192.0.2.1,192.0.2.9"}) == ([], ["agrlinkcheck", "192.0.2.1,192.0.2.9"])
    assert ifupdown.stanza({"IF_AGR_LINKCHECK": "none"}) == ([], ["-agrlinkcheck"])


def test_completion():
    assert {"agrlinkcheck", "-agrlinkcheck"} <= set(complete("agr0", ""))
    assert complete("agr0", "agrlinkcheck", "") == [], "the addresses are the user's"


def test_status_text_and_json():
    ws = {"protocol": "failover", "datapath": "relay", "failover": {"active": 3, "wtr": 0},
          "flags": {**options.defaults(), "proto": "failover",
                    "linkcheck": {"targets": ["192.0.2.1", "2001:db8::1"], "interval": 100}},
          "ports": [{"name": "re0", "index": 3, "flags": 3, "carrier": True, "original_mac": "02:00:00:00:00:09",
                     "counters": {}, "options": {"port_priority": 0x8000},
                     "failover": {"role": "active", "wtr_left": 0.0},
                     "linkcheck": {"up": True, "heard_ago": 0.05}}]}
    text = render.agr_lines(aggregate(ws))
    assert text[1] == "\tlinkcheck: 192.0.2.1,2001:db8::1 interval 100 ms"
    assert "\t\tlinkcheck up, target last heard 0.1s ago" in text
    info = render.json_doc({"ifname": "agr0", "agr": aggregate(ws)})["linkinfo"]["info_data"]
    assert info["arp_ip_target"] == ["192.0.2.1"] and info["ns_ip6_target"] == ["2001:db8::1"]
    assert info["arp_interval"] == 100
    assert render.agr_lines(aggregate(dict(ws, protocol="lacp")))[1].endswith("(not with lacp)")


# -- verdicts on a fake clock --------------------------------------------------------------------

def test_a_port_is_up_while_a_target_was_heard_within_three_intervals():
    m = Monitor(0.25, now=0.0)
    m.add(0.0, 3)
    assert m.changes(0.0) == [] and not m.up(0.0, 3), "attached: down until heard"
    m.heard(0.5, 3)
    assert m.changes(0.5) == [(3, True)]
    assert m.up(1.24, 3) and m.changes(1.24) == []
    assert m.next_deadline() == 0.0, "the first probe is due"
    m.probe_due(0.5)
    assert m.next_deadline() == 0.75
    m.probe_due(1.0)
    assert m.next_deadline() == 1.25, "the verdict's expiry comes before the next probe"
    assert not m.up(1.25, 3) and m.changes(1.25) == [(3, False)]
    m.heard(1.5, 3)
    assert m.changes(1.5) == [(3, True)]


def test_turning_the_check_on_interrupts_nothing_for_three_intervals():
    m = Monitor(1.0, now=10.0)
    m.add(10.0, 3, assume_up=True)
    assert m.up(12.9, 3) and m.changes(12.9) == []
    assert m.changes(13.0) == [(3, False)]


def test_a_carrier_back_proves_itself_again():
    m = Monitor(1.0, now=0.0)
    m.add(0.0, 3, assume_up=True)
    m.reset(0.5, 3)
    assert not m.up(0.5, 3)
    m.heard(0.6, 3)
    assert m.changes(0.6) == [(3, True)], "reported though it was up before the reset"


def test_probes_every_interval_and_at_once_after_a_reset():
    m = Monitor(1.0, now=0.0)
    m.add(0.0, 3, assume_up=True)
    assert m.probe_due(0.0) and not m.probe_due(0.5) and m.probe_due(1.0)
    m.reset(1.2, 3)
    assert m.probe_due(1.2)
    assert m.next_deadline() == 2.2
    m.remove(3)
    assert m.changes(5.0) == []


# -- frames --------------------------------------------------------------------------------------

MAC = bytes.fromhex("020000000a01")


def test_the_probes_decode_as_such():
    import scapy.all as scapy   # in the test extra: missing, the test fails
    p = scapy.Ether(arp_probe(MAC, "192.0.2.2"))
    assert p.dst == "ff:ff:ff:ff:ff:ff" and p.src == "02:00:00:00:0a:01"
    assert p[scapy.ARP].op == 1 and p[scapy.ARP].psrc == "0.0.0.0" and p[scapy.ARP].pdst == "192.0.2.2"
    q = scapy.Ether(neighbor_solicitation(MAC, "2001:db8::2"))
    assert q.dst == "33:33:ff:00:00:02" and q[scapy.IPv6].dst == "ff02::1:ff00:2"
    assert q[scapy.IPv6].src == "fe80::ff:fe00:a01" == str(link_local(MAC)) and q[scapy.IPv6].hlim == 255
    assert q[scapy.ICMPv6ND_NS].tgt == "2001:db8::2"
    assert q[scapy.ICMPv6NDOptSrcLLAddr].lladdr == "02:00:00:00:0a:01"
    sent = q[scapy.ICMPv6ND_NS].cksum
    del q[scapy.ICMPv6ND_NS].cksum
    assert scapy.Ether(bytes(q))[scapy.ICMPv6ND_NS].cksum == sent


def run_cbpf(prog, frame):
    """A classic BPF interpreter for the instructions target_filter uses."""
    a, pc = 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        if code == 0x28:
            a = struct.unpack_from("!H", frame, k)[0] if k + 2 <= len(frame) else None
        elif code == 0x20:
            a = struct.unpack_from("!I", frame, k)[0] if k + 4 <= len(frame) else None
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        if a is None:
            return 0   # the kernel's answer to a load beyond the frame
        pc += 1


def eth(etype, payload, src=b"\x02" * 6):
    return MAC + src + struct.pack("!H", etype) + payload


def ipv4(src, dst="192.0.2.1"):
    return eth(0x0800, struct.pack("!BBHHHBBH", 0x45, 0, 20, 0, 0, 64, 1, 0)
               + ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed)


def ipv6(src, dst="2001:db8::1"):
    return eth(0x86DD, struct.pack("!IHBB", 6 << 28, 0, 58, 255)
               + ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed)


def test_the_filter_keeps_the_targets_frames_only():
    prog = target_filter(["192.0.2.2", "192.0.2.3", "2001:db8::2"])
    assert all(0 <= jt < 256 and 0 <= jf < 256 for _c, jt, jf, _k in prog)
    keep = [ipv4("192.0.2.2"), ipv4("192.0.2.3"), ipv6("2001:db8::2"),
            announce.garp(b"\x02" * 6, "192.0.2.2"),                           # ARP from the target
            announce.unsolicited_na(b"\x02" * 6, "2001:db8::2")]
    drop = [ipv4("192.0.2.4"), ipv4("192.0.2.1", dst="192.0.2.2"), ipv6("2001:db8::3"),
            ipv6("2001:db8::1", dst="2001:db8::2"), ipv6("2001:db9::2"), ipv6("3001:db8::2"),
            announce.garp(b"\x02" * 6, "192.0.2.9"), arp_probe(MAC, "192.0.2.2"),  # our probe
            eth(0x8809, bytes(60)), eth(0x0800, b"")]
    assert [run_cbpf(prog, f) > 0 for f in keep] == [True] * len(keep)
    assert [run_cbpf(prog, f) for f in drop] == [0] * len(drop)
    v4only = target_filter(["192.0.2.2"])
    assert run_cbpf(v4only, ipv6("2001:db8::2")) == 0 and run_cbpf(v4only, ipv4("192.0.2.2")) > 0
