"""agrconfig/status.py: the typed status, its JSON, and talking across one release either way.

The fixtures in data/status/ were recorded from release 0.2.0 (commit 0df1f40) by
scripts/record-status-fixtures: for each scenario, what its worker replied to `status` and what
`agrconfig --json agr0` printed.
"""
import glob
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from agrconfig import options
from agrconfig.cli import metrics, monitor, render, whichport
from agrconfig.lacp import LacpCore
from agrconfig.status import (SCHEMA, SCHEMA_KEY, AggregateStatus, FailoverPortStatus, LacpPortStatus, MuxState,
                              PortStatus, Protocol, Role, RxState, Selected, plain)
from agrconfig.worker import aggregation, failover, history, report
from tests.unit.lacp_wire import Wire, mac
from tests.unit.statuses import aggregate, port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OLD_RELEASE = "0df1f40"   # release 0.2.0: its workers' replies carry no schema key
FIXTURES = {os.path.basename(p)[:-5]: p for p in sorted(glob.glob(os.path.join(HERE, "data", "status", "*.json")))}


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
    assert out == reply
    again = AggregateStatus.from_json(st.to_json())
    assert again == st


def test_this_workers_document_is_0_2_0s_plus_the_schema_key():
    for name in FIXTURES:
        reply = fixture(name)["worker_reply"]
        new = AggregateStatus.from_json(reply).replace(schema=SCHEMA).to_json()
        assert new[SCHEMA_KEY] == SCHEMA >= 1
        assert keys(new) - keys(reply) == {f".{SCHEMA_KEY}"} and keys(reply) <= keys(new)


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
    ([], "expected an object"),
    ({"flags": {}, "protocol": "lacp", "ports": []}, "no 'name'"),
    ({"name": "agr0", "flags": {}, "protocol": "lacp", "ports": {}}, "ports: expected a list"),
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
        return {"up": True, "heard_ago": 0.1}


def built(agg, flags, ports, reply, checker=None, now=10.0):
    hist = history.History(clock=lambda: now, wall=lambda: 1.7e9 + now)
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
    assert keys(st.to_json()) == keys(reply) - hist_keys | {f".{SCHEMA_KEY}"}
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
    assert keys(st.to_json()) == keys(reply) | {f".{SCHEMA_KEY}"}
    assert st.ports[1].static_wtr_left == st.ports[1].wtr_left == 600.0
    assert (st.ports[1].reason_kind, st.ports[1].reason) == ("waiting_to_restore", "waiting to restore, 600.0 s left")
    assert st.ports[0].reason is None and st.ports[0].distributing


def test_the_builder_writes_the_0_2_0_keys_for_failover_with_linkcheck():
    reply = fixture("failover")["worker_reply"]
    flags = {**options.defaults(), "proto": "failover", "wtr_time": 600,
             "linkcheck": {"targets": ["192.0.2.2"], "interval": 100}}
    agg = failover.Failover(lambda out: None, lambda: [], 600)
    ports = [fake_port(3, "re0"), fake_port(5, "re1")]
    agg.start(0.0, ports, {})
    st = built(agg, flags, ports, reply, checker=FakeChecker())
    assert keys(st.to_json()) == keys(reply) | {f".{SCHEMA_KEY}"}
    assert st.failover.active == 3 and st.active_port.name == "re0"
    assert st.ports[1].failover == FailoverPortStatus(Role.STANDBY, 0.0)
    assert st.ports[1].reason == "standby (agrproto failover): another port is active"
    json.dumps(st.to_json())


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
        archive = subprocess.run(["git", "-C", ROOT, "archive", OLD_RELEASE, "agrconfig"], capture_output=True)
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


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_this_front_end_reads_a_0_2_0_worker_as_0_2_0_did(name, old_front_end):
    reply = fixture(name)["worker_reply"]
    then = old_front_end(reply, FRAME)
    now = readers_now(AggregateStatus.from_json(reply), FRAME)
    assert now["json"]["linkinfo"]["info_data"].pop(SCHEMA_KEY) == 0
    assert now == then


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_a_0_2_0_front_end_reads_this_worker_as_it_read_its_own(name, old_front_end):
    reply = fixture(name)["worker_reply"]
    ours = AggregateStatus.from_json(reply).replace(schema=SCHEMA).to_json()
    assert ours[SCHEMA_KEY] == SCHEMA
    assert old_front_end(ours, FRAME) == old_front_end(reply, FRAME)


def test_the_json_document_says_the_schema():
    st = AggregateStatus.from_json(fixture("lacp")["worker_reply"]).replace(schema=SCHEMA)
    assert render.json_doc({"ifname": "agr0", "agr": st})["linkinfo"]["info_data"][SCHEMA_KEY] == SCHEMA


def test_plain_is_the_json_form():
    st = AggregateStatus.from_json(fixture("failover")["worker_reply"])
    assert plain(st) == st.to_json()
    assert plain(st.flags) == fixture("failover")["worker_reply"]["flags"]
    assert isinstance(plain(st.flags)["linkcheck"]["targets"], list)
    assert PortStatus.from_json(plain(st.ports[0])) == st.ports[0]
