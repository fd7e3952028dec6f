from agrconfig.errors import AgrError
from agrconfig.cli.render import bits_text, json_doc, render_text, BSD_FLAGS, PORT_FLAGS
import errno
from tests.unit.statuses import aggregate


def doc(ports, flags=None):
    return {
        "ifname": "agr0", "ifindex": 5, "flags": 0x8843, "flags_str": [], "mtu": 1500,
        "address": "02:00:00:00:00:01", "operstate": "UP", "carrier": True,
        "addr_info": [{"family": "inet", "local": "192.0.2.1", "prefixlen": 24, "broadcast": "192.0.2.255",
                       "scope": 0, "flags": 0x80},
                      {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "broadcast": None,
                       "scope": 253, "flags": 0x80}],
        "stats64": {},
        "agr": aggregate({"name": "agr0", "pid": 1, "mac": "02:00:00:00:00:01", "protocol": "static",
                          "datapath": "relay", "flags": flags or {"link0": False, "link1": True, "hash": 3},
                          "ports": ports, "counters": {}, "lacp": None}),
    }


def port(name, flags):
    return {"name": name, "index": 3, "flags": flags, "carrier": True, "original_mac": "02:00:00:00:00:01",
            "speed": None, "duplex_full": None, "counters": {}}


def test_netbsd_lines():
    text = render_text(doc([port("re0", 3), port("re1", 0)]))
    lines = text.splitlines()
    assert lines[0] == "agr0: flags=0x8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500"
    assert "\tagrport: re0, flags=0x3<COLLECTING,DISTRIBUTING>" in lines
    assert "\tagrport: re1, flags=0x0" in lines
    assert "\taddress: 02:00:00:00:00:01" in lines
    assert "\tinet 192.0.2.1/24 broadcast 192.0.2.255 flags 0x80" in lines
    assert "\tinet6 fe80::1%agr0/64 flags 0x80 scopeid 0x5" in lines
    assert lines.index("\tagrport: re0, flags=0x3<COLLECTING,DISTRIBUTING>") < lines.index("\tagrport: re1, flags=0x0")


def test_bits_text():
    assert bits_text(0x1, PORT_FLAGS) == "0x1<COLLECTING>"
    assert bits_text(0, PORT_FLAGS) == "0x0"
    assert bits_text(0x1001, BSD_FLAGS) == "0x1001<UP,LINK0>"


def test_json_doc_uses_iproute2_names():
    out = json_doc(doc([port("re0", 3)]))
    assert out["linkinfo"]["info_kind"] == "agr"
    assert out["agrports"][0]["flags_str"] == ["COLLECTING", "DISTRIBUTING"]
    assert out["agrports"][0]["perm_hwaddr"] == "02:00:00:00:00:01"


def test_error_text_is_bsd_like():
    e = AgrError(errno.EBUSY, "SIOCSETAGR", "re0 has addresses")
    assert str(e) == "SIOCSETAGR: Device busy (EBUSY: re0 has addresses)"
    assert str(AgrError(errno.ENXIO, "SIOCGIFFLAGS")) == "SIOCGIFFLAGS: Device not configured (ENXIO)"
    assert AgrError.from_dict(e.to_dict()).errno == errno.EBUSY


def test_reason_line_and_verbose_transitions_and_counters():
    re1 = {**port("re1", 0), "reason": "no carrier", "stats64": {"rx": {"packets": 4, "bytes": 400},
                                                                  "tx": {"packets": 1, "bytes": 60}},
           "history": {"transitions": [{"time": 1700000000.25, "machine": "rx", "old": "CURRENT",
                                        "new": "PORT_DISABLED", "cause": "port disabled"}]}}
    d = doc([port("re0", 3), re1])
    d["stats64"] = {"rx": {"packets": 9, "bytes": 900, "errors": 0, "dropped": 1},
                    "tx": {"packets": 2, "bytes": 120, "errors": 0, "dropped": 0}}
    lines = render_text(d).splitlines()
    at = lines.index("\tagrport: re1, flags=0x0")
    assert lines[at + 1] == "\t\tnot distributing: no carrier"
    assert not any(l.startswith("\tinput:") or "port disabled" in l for l in lines)
    verbose = render_text(d, verbose=True).splitlines()
    assert "\tinput: 9 packets, 900 bytes, 0 errors, 1 drops" in verbose
    assert "\t\toutput: 1 packets, 60 bytes, 0 errors, 0 drops" in verbose
    assert any(l.startswith("\t\t") and l.endswith("rx CURRENT -> PORT_DISABLED (port disabled)") for l in verbose)
    j = json_doc(d)
    assert [p["reason"] for p in j["agrports"]] == [None, "no carrier"]
    assert j["stats64"]["rx"]["packets"] == 9
