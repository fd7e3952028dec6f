"""Write the seeds of tests/corpus/<target>/ (seed-*): valid samples of what each boundary
carries, for the fuzzers to start from and for test_corpus.py to replay.

    /opt/agrconfig/bin/python -m tests.fuzz.seeds

Run it again after a change of a format; it rewrites seed-* files only (crash-* stay).
"""
import json
import os
import struct

from agrconfig import options
from agrconfig.heard import eliciting_frame
from agrconfig.ipc import protocol
from agrconfig.lacp import pdu as P
from agrconfig.worker import announce

from . import corpus

US = bytes.fromhex("020000000001")
OVS = bytes.fromhex("aabbcc000001")
VNET = bytes(10)


def lacpdus():
    ours = P.LacpInfo(0x8000, US, 0x0b, 0x8000, 3, 0x3D)     # NetBSD-like: in sync, distributing
    ovs = P.LacpInfo(65534, OVS, 5, 65535, 2, 0x3F)          # Open vSwitch, fast
    dpdk = P.LacpInfo(0xFFFF, bytes.fromhex("0200000000dd"), 1, 0xFF, 1, 0x47)   # defaulted
    zero = P.LacpInfo(0, bytes(6), 0, 0, 0, 0)
    return {
        "lacpdu-netbsd": P.encode(P.Lacpdu(ours, ovs)),
        "lacpdu-ovs": P.encode(P.Lacpdu(ovs, ours, 0)),
        "lacpdu-dpdk-defaulted": P.encode(P.Lacpdu(dpdk, zero)),
        "lacpdu-elicit": eliciting_frame(US, 7)[14:124],
        "lacpdu-collector-delay": P.encode(P.Lacpdu(ours, ovs, 0xFFFF)),
        # 802.1AX-2014: version 2 with TLVs after the Collector (read as version 1).
        "lacpdu-v2": bytes([1, 2]) + P.encode(P.Lacpdu(ovs, ours))[2:58] + b"\x04\x06abcd" + bytes(46),
        "marker-information": P.encode(P.MarkerPdu(False, 3, US, 0x12345678)),
        "marker-response": P.encode(P.MarkerPdu(True, 3, US, 0x12345678)),
    }


def lldpdu(chassis, port, ttl=120, name=None):
    def tlv(kind, value):
        return struct.pack("!H", kind << 9 | len(value)) + value
    out = tlv(1, chassis) + tlv(2, port) + tlv(3, struct.pack("!H", ttl))
    if name is not None:
        out += tlv(5, name)
    return out + tlv(4, b"Gi0/1 uplink") + tlv(0, b"")


def data_frames():
    mac, peer = bytes.fromhex("020000000001"), bytes.fromhex("0200000000aa")
    ip4 = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0x4000, 64, 6, 0,
                      bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])) + struct.pack("!HH", 40000, 80) + bytes(16)
    udp6 = struct.pack("!IHBB", 6 << 28, 12, 17, 64) + bytes.fromhex("20010db8" + "0" * 23 + "1") \
        + bytes.fromhex("20010db8" + "0" * 23 + "2") + struct.pack("!HHHH", 5353, 53, 12, 0) + b"dnsq"
    tag = b"\x81\x00\x00\x0a"
    frames = {
        "garp": announce.garp(mac, "192.0.2.1"),
        "na": announce.unsolicited_na(mac, "2001:db8::1"),
        "rarp": announce.rarp(mac),
        "rarp-vlan": announce.rarp(mac, 10),
        "igmpv3": announce.igmpv3_report(mac, "192.0.2.1", ["239.1.1.1"]),
        "mldv2": announce.mldv2_report(mac, "fe80::1", ["ff02::fb"]),
        "tcp4": peer + mac + b"\x08\x00" + ip4,
        "tcp4-vlan": peer + mac + tag + b"\x08\x00" + ip4,
        "udp6": peer + mac + b"\x86\xdd" + udp6,
        "broadcast": b"\xff" * 6 + mac + b"\x08\x06" + bytes(28),
    }
    out = {}
    for name, frame in frames.items():
        out[name] = frame
        out[name + "-vnet"] = VNET + frame
    return out


def control_requests():
    reqs = [protocol.Status(), protocol.Ping(), protocol.Shutdown(), protocol.Save(),
            protocol.AddPort("re0"), protocol.DelPort("re1"), protocol.SetMtu(9000),
            protocol.SetFlags({"proto": "lacp", "lacp_fast": True, "hash": 7}),
            protocol.SetFlags({"linkcheck": {"targets": ["192.0.2.1", "2001:db8::1"], "interval": 500}}),
            protocol.SetFlags({"announce": {"count": 3, "interval": 200}, "lladdr": "02:00:00:00:00:09"}),
            protocol.SetPort("re0", {"port_priority": 100})]
    out = {}
    for req in reqs:
        key = req.OP + ("-" + "-".join(sorted(req.flags)) if hasattr(req, "flags") else "")
        out[key.replace("_", "")] = json.dumps(req.to_json()).encode()
    return out


def control_replies():
    """Worker replies: the status replies 0.2.0 workers sent (recorded in tests/unit/data/status),
    a status of today's model, errors, a ping's answer."""
    from tests.unit.statuses import aggregate
    here = os.path.join(os.path.dirname(os.path.dirname(__file__)), "unit", "data", "status")
    out = {}
    for f in sorted(os.listdir(here)):
        with open(os.path.join(here, f)) as fh:
            recorded = json.load(fh)
        out[f"status-{recorded['release']}-{f[:-5]}"] = json.dumps(
            {"result": recorded["worker_reply"], "version": 1, "release": recorded["release"]}).encode()
    now = aggregate({"flags": options.defaults(), "speed": 2000, "ports": [
        {"name": "re0", "index": 7, "lacp": {}, "counters": {"tx_packets": 1}},
        {"name": "re1", "index": 8, "lacp": {"partner_port": 4}}]})
    out["status-now"] = json.dumps({"result": now.to_json(), **protocol.VERSION}).encode()
    out["error-eperm"] = json.dumps(protocol.error_reply(1, "only root may control agr interfaces")).encode()
    out["error-old"] = json.dumps({"error": {"errno": "EBUSY", "ioctl": "SIOCSETAGR", "detail": "re0"}}).encode()
    out["ping"] = json.dumps({"result": {"pid": 4321}, **protocol.VERSION}).encode()
    return out


def state(flags, ports, lacp=None, carrier=True):
    return json.dumps({"name": "agr0", "ifindex": 5, "pid": 321, "flags": flags, "ports": ports,
                       "lacp": lacp or {}, "carrier": carrier}, indent=1).encode()


def port(name, index, options_=None):
    out = {"name": name, "index": index, "mac": f"02:00:00:00:00:{index:02x}", "mtu": 1500, "up": True,
           "promisc": False, "sysctl": {"ipv6/disable_ipv6": "0", "ipv6/addr_gen_mode": "0",
                                        "ipv4/arp_ignore": "0", "ipv4/rp_filter": "2"}}
    if options_ is not None:
        out["options"] = options_
    return out


def state_files():
    snap = {"7": {"partner": [65534, OVS.hex(), 5, 65535, 2, 0x3F], "mux": "COLLECTING_DISTRIBUTING"},
            "8": {"partner": [65534, OVS.hex(), 5, 65535, 3, 0x3F], "mux": "ATTACHED", "rx": "DEFAULTED"}}
    # 0.2.0 (0df1f40) wrote its flags without select .. lladdr; 0.3.0 (b46cf3a) with them.
    flags_020 = {k: v for k, v in options.defaults().items()
                 if k not in ("select", "announce", "down_delay", "mac_policy", "lladdr")}
    flags_030 = dict(options.defaults(), linkcheck=None, proto="lacp")
    return {
        "0.2.0": state(flags_020, [port("re0", 7, {"port_priority": 32768}), port("re1", 8, {"port_priority": 100})], snap),
        "0.3.0": state(flags_030, [port("re0", 7, {"port_priority": 32768}), port("re1", 8, {"port_priority": 32768})], snap),
        "0.3.0-failover": state(dict(flags_030, proto="failover", linkcheck={"targets": ["192.0.2.1"], "interval": 100}),
                                [port("eth1", 3, {})], carrier=False),
        "link1-before-agrproto": state({"link1": True, "link0": False}, [port("re0", 7)]),
        "empty": state({}, []),
    }


def ifconfig_files():
    return {
        "lacp": b"# agr0 over two ports\ncreate\nagrport re0 agrport re1\nlacptimeout fast agrhash l2,l3,l4\n"
                b"inet 192.0.2.10 netmask 255.255.255.0\ninet6 2001:db8::10 prefixlen 64 alias\nup\n",
        "failover": b"create agrproto failover agrlinkcheck 192.0.2.1,192.0.2.9 interval 500\n"
                    b"agrport eth0\nagrport eth1\nagrportpri eth1 100\nmtu 9000 up\n",
        "shell": b"create\n! echo configured agr0 > /dev/null\nagrport re0 # trailing comment\n\n  up\n",
        "netbsd": b"create\nagrport wm0\nagrport wm1\n192.0.2.1/24\nlink0 -link1\nlladdr 02:00:00:00:00:01\nup\n",
    }


def ifupdown_envs():
    def env(**kw):
        return "\n".join(f"{k}={v}" for k, v in kw.items()).encode()
    return {
        "lacp": env(IF_AGR_PORTS="re0 re1", IF_AGR_LACP_TIMEOUT="fast", IF_AGR_HASH="l2 l3 l4"),
        "failover": env(IF_AGR_PORTS="eth0 eth1", IF_AGR_PROTO="failover",
                        IF_AGR_LINKCHECK="192.0.2.1 192.0.2.9 interval 500", IF_AGR_PORT_PRIORITY="eth1 100"),
        "link1": env(IF_AGR_PORTS="none", IF_AGR_LINK1="yes", IF_AGR_LINK0="on"),
        "announce": env(IF_AGR_PORTS="re0", IF_AGR_ANNOUNCE="3 interval 200", IF_AGR_LLADDR="default"),
    }


def all_seeds():
    slow = lacpdus()
    return {
        "slow_pdu": slow,
        "slow_frame": {k: P.build_frame(OVS, v) + b"\xde\xad\xbe\xef" for k, v in slow.items()},
        "preflight_frame": {
            "lldp-mac": lldpdu(b"\x04" + OVS, b"\x05Ethernet1", name=b"switch1"),
            "lldp-network": lldpdu(b"\x05\x01\xc0\x00\x02\x01", b"\x03" + OVS),
            "lldp-ifname-binary": lldpdu(b"\x07\x00\xff\xfe", b"\x07gi0/1", ttl=0),
            "lacp-frame": P.build_frame(OVS, slow["lacpdu-ovs"]),
            "lacp-payload": slow["lacpdu-ovs"],
        },
        "data_frame": data_frames(),
        "control_request": control_requests(),
        "control_server": control_requests(),
        "control_reply": control_replies(),
        "state_file": state_files(),
        "ifconfig_file": ifconfig_files(),
        "ifupdown_stanza": ifupdown_envs(),
    }


def main():
    for target, seeds in all_seeds().items():
        d = corpus.directory(target)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.unlink(os.path.join(d, f))
        for name, data in seeds.items():
            with open(os.path.join(d, f"seed-{name}"), "wb") as fh:
                fh.write(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
