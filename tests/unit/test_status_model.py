"""agrconfig/status.py: the typed status, its JSON, and talking across one release either way.

The fixtures in data/status/ were recorded from release 0.2.0 (commit 0df1f40) by
scripts/record-status-fixtures: for each scenario, what its worker replied to `status` and what
`agrconfig --json agr0` printed.
"""
import glob
import json
import re
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from agrconfig import options
from agrconfig.cli import metrics, monitor, render, whichport
from agrconfig.lacp import LacpCore
from agrconfig.status import (SCHEMA, SCHEMA_KEY, AggregateStatus, FailoverPortStatus, FailoverStatus, LacpPortStatus,
                              LacpStatus, LinkcheckStatus, MuxState, PortStatus, Protocol, Role, RxState, Selected,
                              plain)
from agrconfig.worker import aggregation, failover, history, report
from tests.unit.lacp_wire import Wire, mac
from tests.unit.statuses import aggregate, port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OLD_RELEASE = "0df1f40"   # release 0.2.0: its workers' replies carry no schema key
FIXTURES = {os.path.basename(p)[:-5]: p for p in sorted(glob.glob(os.path.join(HERE, "data", "status", "*.json")))}


# What this release adds to 0.2.0's documents on purpose, each addition listed here (nothing of
# 0.2.0's is removed or renamed): new options' keys in `flags` (their defaults), agrN's speed
# (issue 21: the worker's reply has it while known), the ports' speed and duplex in JSON, and
# the speed gauges of --metrics.
# agrannounce and agrdowndelay (issue 21): their settings (announce's a dict), bonding's names
# for them in --json, the announcements sent (reply and metrics) and a port's held loss (only
# while one is held).
ADDED_FLAGS = {"select", "announce", "down_delay"}
ADDED_FLAG_KEYS = ADDED_FLAGS | {"announce.count", "announce.interval"}
ADDED_INFO = ("downdelay", "num_grat_arp", "num_unsol_na", "peer_notif_delay")
ADDED_REPLY_KEYS = {".speed", ".announced", ".ports[].down_delay_left"} | {f".flags.{k}" for k in ADDED_FLAG_KEYS}
ADDED_JSON_KEYS = {".linkinfo.info_data.speed", ".agrports[].speed", ".agrports[].duplex",
                   ".agrports[].down_delay_left"} | \
    {f".linkinfo.info_data.flags.{k}" for k in ADDED_FLAG_KEYS} | {f".linkinfo.info_data.{k}" for k in ADDED_INFO}
ADDED_METRICS = ("agr_speed_bytes", "agr_port_speed_bytes", "agr_announcements")


def without_added_flags(flags):
    return {k: v for k, v in flags.items() if k not in ADDED_FLAGS}


def without_additions(reply):
    """A worker's reply as 0.2.0 would have written it."""
    out = {k: v for k, v in reply.items() if k not in ("speed", "announced")}
    out["flags"] = without_added_flags(reply["flags"])
    return out


def readers_without_additions(seen):
    """What the readers made of a status (readers_now, old_front_end), without the additions."""
    seen = json.loads(json.dumps(seen))
    doc = seen["json"]
    info = doc.get("linkinfo", {}).get("info_data")
    if info is not None:
        info.pop("speed", None)
        for k in ADDED_INFO:
            info.pop(k, None)
        info["flags"] = without_added_flags(info["flags"])
    for entry in doc.get("agrports", []):
        entry.pop("speed", None)
        entry.pop("duplex", None)
    seen["metrics"] = "".join(line for line in seen["metrics"].splitlines(keepends=True)
                              if not any(name in line for name in ADDED_METRICS))
    return seen


def fixture(name):
    with open(FIXTURES[name]) as f:
        return json.load(f)


def keys(value, path=""):
    """Every key path of a JSON value, at every level (a list's elements under 'path[]')."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(f"{path}.{k}")
            out |= keys(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            out |= keys(v, f"{path}[]")
    return out


# Keys added since 0.2.0, each optional (an older worker's reply reads without them): a port's
# history gained, for diagnose, the LACPDU inter-arrival times, the mux's age and the flaps.
ADDED_HISTORY = ("lacpdu_intervals", "mux_age", "flap_ages")


def added(key_set):
    """The keys of key_set that are additions listed above (at any depth, under a history; and
    ADDED_REPLY_KEYS, ADDED_JSON_KEYS)."""
    return {k for k in key_set if k.rpartition(".")[0].endswith(".history") and k.rpartition(".")[2] in ADDED_HISTORY} | \
        (set(key_set) & (ADDED_REPLY_KEYS | ADDED_JSON_KEYS))


def test_the_fixtures_are_release_0_2_0s_four_scenarios():
    assert sorted(FIXTURES) == ["failover", "lacp", "loadbalance", "maxports"]
    for name in FIXTURES:
        rec = fixture(name)
        assert rec["release"] == "0.2.0" and rec["commit"] == OLD_RELEASE
        assert SCHEMA_KEY not in rec["worker_reply"], "0.2.0 sent no schema key"




def test_keys_sees_every_level():
    assert keys({"a": [{"b": 1}, {"c": {"d": 2}}], "e": None}) == {".a", ".a[].b", ".a[].c", ".a[].c.d", ".e"}
    assert keys({"a": [{"b": 1}]}) != keys({"a": [{"c": 1}]})


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_a_0_2_0_reply_reads_and_writes_back_key_for_key(name):
    reply = fixture(name)["worker_reply"]
    st = AggregateStatus.from_json(reply)
    assert st.schema == 0, "no schema key: a 0.2.0 worker"
    out = st.to_json()
    assert out.pop(SCHEMA_KEY) == 0
    assert without_additions(out) == reply
    assert "speed" not in out, "0.2.0 said nothing of agrN's speed: unknown, left out"
    assert all(out["flags"][k] == options.BY_KEY[k].default for k in ADDED_FLAGS)
    again = AggregateStatus.from_json(st.to_json())
    assert again == st


def test_this_workers_document_is_0_2_0s_plus_the_schema_key():
    for name in FIXTURES:
        reply = fixture(name)["worker_reply"]
        new = AggregateStatus.from_json(reply).replace(schema=SCHEMA).to_json()
        assert new[SCHEMA_KEY] == SCHEMA >= 1
        assert keys(new) - keys(reply) - ADDED_REPLY_KEYS == {f".{SCHEMA_KEY}"} and keys(reply) <= keys(new)


def test_the_model_reads_as_types():
    st = AggregateStatus.from_json(fixture("maxports")["worker_reply"])
    assert st.protocol is Protocol.LACP and st.flags["max_ports"] == 1
    re0, re1 = st.ports
    assert re0.distributing and re0.collecting and not re1.distributing and not re1.collecting
    assert re1.standby and re1.lacp.limited and re1.lacp.selected is Selected.STANDBY
    assert re0.lacp.rx_state is RxState.CURRENT and re0.lacp.mux_state is MuxState.COLLECTING_DISTRIBUTING
    assert re1.reason_kind == "standby_maxports" and re1.reason == "standby (agrmaxports)"
    assert st.lacp.aggregator.ports == (re0.index,) and st.distributing == (re0,)
    fo = AggregateStatus.from_json(fixture("failover")["worker_reply"])
    assert fo.protocol is Protocol.FAILOVER and fo.active_port.name == "re0" and fo.lacp is None
    assert fo.ports[1].failover.role is Role.STANDBY and fo.ports[1].linkcheck.up is True
    assert fo.ports[1].wtr_left == fo.ports[1].failover.wtr_left > 500
    lb = AggregateStatus.from_json(fixture("loadbalance")["worker_reply"])
    assert lb.protocol is Protocol.STATIC and lb.ports[1].static_wtr_left == lb.ports[1].wtr_left > 500
    assert lb.ports[0].wtr_left is None


def test_the_model_is_frozen():
    st = AggregateStatus.from_json(fixture("lacp")["worker_reply"])
    with pytest.raises(AttributeError):
        st.name = "agr1"
    with pytest.raises(TypeError):
        st.flags["proto"] = "failover"
    with pytest.raises(TypeError):
        st.ports[0].lacp.counters["lacpdu_rx"] = 0
    assert isinstance(st.ports, tuple) and isinstance(st.ports[0].history.transitions, tuple)


def test_missing_settings_take_the_schema_defaults():
    st = aggregate({"flags": {"proto": "failover"}, "ports": [{"name": "re0", "index": 3}]})
    assert dict(st.flags) == {**options.defaults(), "proto": "failover"}
    assert dict(st.ports[0].options) == options.defaults("port")


def test_a_newer_workers_unknown_keys_and_states_are_read_past():
    reply = fixture("lacp")["worker_reply"]
    newer = json.loads(json.dumps(reply))
    newer[SCHEMA_KEY] = SCHEMA + 1
    newer["something_new"] = {"x": 1}
    newer["ports"][0]["lacp"]["mux_state"] = "A_STATE_OF_2030"
    newer["ports"][0]["new_port_key"] = 3
    st = AggregateStatus.from_json(newer)
    assert st.schema == SCHEMA + 1 and st.ports[0].lacp.mux_state == "A_STATE_OF_2030"
    assert st.ports[0].lacp.mux_state not in tuple(MuxState)
    render.agr_lines(st)   # shown as it is


@pytest.mark.parametrize("bad, where", [
    ([], "expected an object, got list"),
    ({"flags": {}, "protocol": "lacp", "ports": []}, "no 'name'"),
    ({"name": "agr0", "flags": {}, "protocol": "lacp", "ports": {}}, "ports: expected a list, got dict"),
    ({"name": "agr0", "flags": {}, "protocol": "lacp", "ports": [{"name": "re0"}]}, "no 'index'"),
    ({"name": "agr0", "flags": {}, "protocol": "lacp", "ports": [{"name": "re0", "index": "x", "flags": 0,
                                                                   "carrier": True}]}, "PortStatus.index"),
])
def test_a_malformed_reply_is_refused_saying_where(bad, where):
    with pytest.raises(ValueError, match=where):
        AggregateStatus.from_json(bad)


def test_the_client_turns_a_malformed_reply_into_eio():
    from agrconfig.client import workers
    from agrconfig.errors import AgrError
    with pytest.raises(AgrError, match="malformed status") as exc:
        workers.read_status("agr0", {"name": "agr0"})
    assert exc.value.errno == 5
    assert workers.read_status("agr0", fixture("lacp")["worker_reply"]).name == "agr0"


def test_the_flag_bits_are_the_options_ones():
    assert render.PORT_FLAGS is options.PORT_FLAGS
    p = port({"flags": options.PORT_DISTRIBUTING})
    assert p.distributing and not p.collecting
    p = port({"flags": options.PORT_COLLECTING})
    assert p.collecting and not p.distributing


# -- the worker's builder ------------------------------------------------------------------------

class FakePath:
    """A data path counting as release 0.2.0's eBPF path did (the recorded keys)."""
    name, mode = "ebpf", "normal"

    def __init__(self, reply):
        self.totals = dict.fromkeys(reply["counters"], 0)
        self.port_keys = list(reply["ports"][0]["counters"])

    def counters(self, indexes):
        return dict(self.totals), {i: dict.fromkeys(self.port_keys, 0) for i in indexes}


def fake_port(index, name):
    return SimpleNamespace(index=index, name=name, carrier=True, up=True, orig={"mac": "02:00:00:00:00:09"},
                           speed=10000, duplex_full=True, mac=mac(index), options=options.defaults("port"))


class FakeChecker:
    def status(self, now, index):
        return {"up": index == 3, "heard_ago": round(now - 9.5, 3) if index == 3 else None}


def built(agg, flags, ports, reply, checker=None, now=10.0, hist=None):
    hist = hist or history.History(clock=lambda: now, wall=lambda: 1.7e9 + now)
    distributing, collecting = agg.sets(ports)
    return report.aggregate_status(
        name="agr0", pid=1, mac="02:00:00:00:00:01", flags=flags, aggregation=agg, path=FakePath(reply),
        datapath_note="", ports=ports, collecting=collecting, distributing=distributing, history=hist,
        checker=checker, now=now)


def test_the_builder_writes_the_0_2_0_keys_for_lacp():
    reply = fixture("lacp")["worker_reply"]
    flags = {**options.defaults(), "lacp_fast": True}
    core = LacpCore(mac(1), fast_timeout=True)
    partner = LacpCore(mac(2), fast_timeout=True)
    w = Wire()
    w.join(core, 3, partner, 103)
    w.join(core, 5, partner, 105)
    agg = aggregation.Lacp(core, act=lambda out: None)
    ports = [fake_port(3, "re0"), fake_port(5, "re1")]
    for p in ports:
        w.deliver(core, core.add_port(0.0, p.index, p.mac, carrier=True))
        w.deliver(partner, partner.add_port(0.0, p.index + 100, mac(p.index + 100), carrier=True))
    w.run(5, [core, partner])
    st = built(agg, flags, ports, reply, now=w.now)
    assert [p.flags for p in st.ports] == [3, 3] and st.schema == SCHEMA
    hist_keys = {k for k in keys(reply) if ".history.transitions[]" in k}   # the fake history is empty
    got = keys(st.to_json())
    assert added(got) - ADDED_REPLY_KEYS == {".ports[].history.lacpdu_intervals", ".ports[].history.flap_ages"}   # no mux change yet
    assert got - added(got) == keys(reply) - hist_keys | {f".{SCHEMA_KEY}"}
    assert st.lacp.ports[0] == st.ports[0].lacp == LacpPortStatus.from_json(core.port_status(3))


def test_the_builder_writes_the_0_2_0_keys_for_loadbalance_and_explains():
    reply = fixture("loadbalance")["worker_reply"]
    flags = {**options.defaults(), "proto": "loadbalance", "wtr_time": 600}
    agg = aggregation.Static(None, 0)
    ports = [fake_port(3, "re0"), fake_port(5, "re1")]
    agg.add_port(0.0, ports[0])
    agg.configure(1.0, flags)
    agg.add_port(1.0, ports[1])
    st = built(agg, flags, ports, reply, now=1.5)
    got = keys(st.to_json())
    assert added(got) - ADDED_REPLY_KEYS == {".ports[].history.lacpdu_intervals", ".ports[].history.flap_ages"}
    assert got - added(got) == keys(reply) | {f".{SCHEMA_KEY}"}
    assert st.ports[1].static_wtr_left == st.ports[1].wtr_left == 600.0
    assert (st.ports[1].reason_kind, st.ports[1].reason) == ("waiting_to_restore", "waiting to restore, 600.0 s left")
    assert st.protocol is Protocol.STATIC and st.lacp is None and st.failover is None
    assert st.ports[0].reason is None and st.ports[0].distributing


def test_the_builder_writes_the_0_2_0_keys_for_failover_with_linkcheck():
    reply = fixture("failover")["worker_reply"]
    flags = {**options.defaults(), "proto": "failover", "wtr_time": 600,
             "linkcheck": {"targets": ["192.0.2.2"], "interval": 100}}
    agg = failover.Failover(lambda out: None, lambda port: None, 600)
    ports = [fake_port(3, "re0"), fake_port(5, "re1")]
    agg.start(0.0, ports, {})
    st = built(agg, flags, ports, reply, checker=FakeChecker())
    got = keys(st.to_json())
    assert added(got) - ADDED_REPLY_KEYS == {".ports[].history.lacpdu_intervals", ".ports[].history.flap_ages"}
    assert got - added(got) == keys(reply) | {f".{SCHEMA_KEY}"}
    assert st.failover == FailoverStatus(active=3, wtr=600) and st.active_port.name == "re0"
    assert st.protocol is Protocol.FAILOVER and st.lacp is None
    assert st.ports[0].linkcheck == LinkcheckStatus(up=True, heard_ago=0.5)
    assert st.ports[1].failover == FailoverPortStatus(Role.STANDBY, 0.0)
    assert st.ports[1].reason == "link check: no target heard yet", "the checker's verdict on re1"
    unchecked = built(agg, {**flags, "linkcheck": None}, ports, reply)
    assert unchecked.ports[1].reason == "standby (agrproto failover): another port is active"
    json.dumps(st.to_json())


def test_port_flags_are_the_option_bits():
    assert report.port_flags(1, {1}, set()) == options.PORT_COLLECTING
    assert report.port_flags(2, {2}, {2}) == options.PORT_COLLECTING | options.PORT_DISTRIBUTING
    assert report.port_flags(3, {1}, {1}) == 0
    assert report.port_flags(4, set(), {4}) == options.PORT_DISTRIBUTING


class CountingPath(FakePath):
    """Each port counts its own index in every counter; the totals count 7."""
    name, mode = "ebpf", "pass"   # not the defaults

    def counters(self, indexes):
        return dict.fromkeys(self.totals, 7), {i: dict.fromkeys(self.port_keys, i) for i in indexes}


def test_the_builder_fills_every_field_from_its_parts():
    from agrconfig.lacp.events import Transition as CoreTransition
    from agrconfig.worker import counters
    from tests.unit.test_lacp_controls import run_clock
    from tests.unit.test_lacp_fallback import alone
    reply = fixture("lacp")["worker_reply"]
    core = alone(ports=(3, 5))
    run_clock(core, 4.0)
    assert core.distributing() == (3,), "lacpfallback: the lowest port carries the traffic"
    flags = {**options.defaults(), "lacp_fallback": True, "min_ports": 2}
    ports = [fake_port(3, "re0"), fake_port(5, "re1")]
    ports[1].orig = {"mac": "02:00:00:00:00:05"}
    ports[1].speed, ports[1].duplex_full, ports[1].carrier = 1000, False, False
    ports[1].options = {"port_priority": 7}
    hist = history.History(clock=lambda: 4.0, wall=lambda: 1.7e9)
    hist.record(CoreTransition(5, "rx", "CURRENT", "EXPIRED", "current_while expired"))
    agg = aggregation.Lacp(core, act=lambda out: None)
    distributing, collecting = agg.sets(ports)
    path = CountingPath(reply)
    st = report.aggregate_status(
        name="agr7", pid=42, mac="02:00:00:00:00:01", flags=flags, aggregation=agg, path=path,
        datapath_note="no BPF here", ports=ports, collecting=collecting, distributing=distributing,
        history=hist, checker=FakeChecker(), now=10.0)
    assert (st.schema, st.name, st.pid, st.mac, st.protocol) == (SCHEMA, "agr7", 42, "02:00:00:00:00:01", Protocol.LACP)
    assert (st.datapath, st.datapath_mode, st.datapath_note) == ("ebpf", "pass", "no BPF here")
    assert plain(st.flags) == flags and st.failover is None
    totals, per_port = path.counters([3, 5])
    assert plain(st.counters) == totals and plain(st.stats64) == counters.agr_stats64(totals, per_port)
    assert st.lacp == LacpStatus.from_json(core.status()) and st.lacp.fallback_port == 3
    re0, re1 = st.ports
    assert (re0.name, re0.index, re0.flags, re0.carrier) == ("re0", 3, 3, True)
    assert (re1.name, re1.index, re1.flags, re1.carrier) == ("re1", 5, 0, False)
    assert (re1.original_mac, re1.speed, re1.duplex_full) == ("02:00:00:00:00:05", 1000, False)
    assert (re0.original_mac, re0.speed, re0.duplex_full) == ("02:00:00:00:00:09", 10000, True)
    assert plain(re1.options) == {"port_priority": 7} and re1.port_priority == 7
    assert plain(re1.counters) == per_port[5] and plain(re1.stats64) == counters.port_stats64(per_port[5])
    assert re0.lacp == LacpPortStatus.from_json(core.port_status(3)) and re0.lacp.fallback
    assert re1.lacp == LacpPortStatus.from_json(core.port_status(5))
    assert re1.history.counts["expired"] == 1 and re1.history.transitions[0].new == "EXPIRED"
    assert re0.history.transitions == () and re0.history.counts["expired"] == 0
    assert re0.linkcheck.up and re0.linkcheck.heard_ago == 0.5 and re1.linkcheck.heard_ago is None
    assert (re0.reason_kind, re0.reason) == (None, None)
    # carrier is the worker's (the fake says down), the rest the core's: the aggregation is read
    assert (re1.reason_kind, re1.reason) == ("no_carrier", "no carrier")
    idle = report.aggregate_status(
        name="agr7", pid=42, mac=None, flags=flags, aggregation=agg, path=path, datapath_note="",
        ports=[ports[0], fake_port(5, "re1")], collecting=collecting, distributing=distributing,
        history=hist, checker=None, now=10.0)
    assert idle.ports[1].reason == "idle: lacpfallback carries the traffic on another port", "needs the LacpStatus"
    assert idle.ports[0].linkcheck is None and "linkcheck" not in idle.ports[0].to_json()


def test_counters_the_core_does_not_report_count_zero():
    p = port({"lacp": {"counters": {"lacpdu_rx": 4}}})
    assert p.lacp.counter("lacpdu_rx") == 4 and p.lacp.counter("marker_tx") == 0


def test_ports_are_found_by_name_and_index():
    st = AggregateStatus.from_json(fixture("failover")["worker_reply"])
    assert st.port("re1") is st.ports[1] and st.port("re9") is None
    assert st.port_by_index(3) is st.ports[0] and st.port_by_index(99) is None
    assert aggregate({"ports": [{"name": "re0", "index": 3}]}).active_port is None


# -- one release apart, either way -----------------------------------------------------------------

READERS = r"""
import json, sys
from agrconfig.cli import metrics, monitor, render, whichport
doc = json.load(sys.stdin)
ws, frame = doc["ws"], bytes.fromhex(doc["frame"])
print(json.dumps({
    "text": render.agr_lines(ws, verbose=True),
    "json": render.json_doc({"ifname": "agr0", "agr": ws}),
    "metrics": metrics.text({"agr0": ws}),
    "events": monitor.events(None, ws),
    "satisfied": [monitor.satisfied(ws, u) for u in ("distributing", "collecting")],
    "whichport": whichport.choose(ws, frame),
}))
"""


def readers_now(st, frame):
    """What this front end makes of a status."""
    return json.loads(json.dumps({
        "text": render.agr_lines(st, verbose=True),
        "json": render.json_doc({"ifname": "agr0", "agr": st}),
        "metrics": metrics.text({"agr0": st}),
        "events": monitor.events(None, st),
        "satisfied": [monitor.satisfied(st, u) for u in ("distributing", "collecting")],
        "whichport": whichport.choose(st, frame),
    }))


@pytest.fixture(scope="module")
def old_front_end(tmp_path_factory):
    """Release 0.2.0's front end (its source from git, or where AGRCONFIG_RELEASE_0_2_0 says it
    was extracted, outside a clone): a function of a status document."""
    src = os.environ.get("AGRCONFIG_RELEASE_0_2_0")
    if not src:
        src = tmp_path_factory.mktemp("release-0.2.0")
        # scripts/mutation runs the tests from ./mutants, an untracked copy inside the clone
        for top in (ROOT, os.path.dirname(ROOT)):
            archive = subprocess.run(["git", "-C", top, "archive", OLD_RELEASE, "agrconfig"], capture_output=True)
            if archive.returncode == 0:
                break
        assert archive.returncode == 0, f"{OLD_RELEASE} is not in this clone: {archive.stderr.decode()}"
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)

    def run(ws, frame):
        proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(src)!r})\n" + READERS],
                              input=json.dumps({"ws": ws, "frame": frame.hex()}), capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)
    return run


FRAME = whichport.first_frame(b"\x02\0\0\0\0\x02", b"\x02\0\0\0\0\x01", *map(__import__("ipaddress").ip_address,
                                                                             ("192.0.2.1", "192.0.2.2")), None)


def one_wait(then):
    """What 0.3.0 changed on purpose in 0.2.0's output: agrwtr's wait in one wording and one
    field for every aggregation. 0.2.0 printed failover's as ', wait-to-restore N.Ns' and left
    its port-level wtr_left None."""
    then["text"] = [re.sub(r"wait-to-restore (\d+\.\d)s$", r"wait-to-restore \1 s left", line)
                    for line in then["text"]]
    for entry in then["json"].get("agrports", []):
        if (entry.get("failover") or {}).get("wtr_left"):
            entry["wtr_left"] = entry["failover"]["wtr_left"]
    return then


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_this_front_end_reads_a_0_2_0_worker_as_0_2_0_did(name, old_front_end):
    reply = fixture(name)["worker_reply"]
    then = old_front_end(reply, FRAME)
    now = readers_now(AggregateStatus.from_json(reply), FRAME)
    assert now["json"]["linkinfo"]["info_data"].pop(SCHEMA_KEY) == 0
    assert readers_without_additions(now) == readers_without_additions(one_wait(then))


def test_the_wait_reads_the_same_for_every_aggregation():
    """agrwtr: one wording in the text, one port-level field in JSON (failover included)."""
    reply = fixture("failover")["worker_reply"]
    now = readers_now(AggregateStatus.from_json(reply), FRAME)
    waits = [line for line in now["text"] if "wait-to-restore" in line]
    assert waits and all(re.search(r"wait-to-restore \d+\.\d s left$", line) for line in waits), waits
    ports = now["json"]["agrports"]
    assert [p["wtr_left"] for p in ports] == [p["failover"]["wtr_left"] or None for p in ports]
    assert any(p["wtr_left"] for p in ports)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_a_0_2_0_front_end_reads_this_worker_as_it_read_its_own(name, old_front_end):
    reply = fixture(name)["worker_reply"]
    ours = AggregateStatus.from_json(reply).replace(schema=SCHEMA).to_json()
    assert ours[SCHEMA_KEY] == SCHEMA
    assert readers_without_additions(old_front_end(ours, FRAME)) == old_front_end(reply, FRAME)


def test_the_json_document_says_the_schema():
    st = AggregateStatus.from_json(fixture("lacp")["worker_reply"]).replace(schema=SCHEMA)
    assert render.json_doc({"ifname": "agr0", "agr": st})["linkinfo"]["info_data"][SCHEMA_KEY] == SCHEMA


def test_plain_is_the_json_form():
    st = AggregateStatus.from_json(fixture("failover")["worker_reply"])
    assert plain(st) == st.to_json()
    assert without_added_flags(plain(st.flags)) == fixture("failover")["worker_reply"]["flags"]
    assert isinstance(plain(st.flags)["linkcheck"]["targets"], list)
    assert PortStatus.from_json(plain(st.ports[0])) == st.ports[0]
