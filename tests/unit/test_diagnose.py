"""diagnose (cli/findings.py, cli/diagnose.py): each rule on built status records, the network
managers' state files, the words, the text and JSON, and the exit status. No root, no namespaces."""
import json
import os
from types import MappingProxyType, SimpleNamespace

import pytest

from agrconfig.cli import diagnose, findings
from agrconfig.cli.findings import Claim, Facts, LinkFacts, Severity
from agrconfig.cli.grammar import parse_query
from agrconfig.cli.ops import Diagnose
from agrconfig.errors import UsageError
from tests.unit.statuses import aggregate

SYNCED = 0x3F        # Activity, short Timeout, Aggregation, Sync, Collecting, Distributing
HEALTHY_HISTORY = {"lacpdu_age": 0.3, "lacpdu_intervals": [1.0, 1.0, 0.98], "mux_age": 30.0, "flap_ages": []}


def lacp_port(name, index, lacp=None, history=None, flags=3, **fields):
    return {"name": name, "index": index, "flags": flags, "carrier": True, "speed": 1000, "duplex_full": True,
            "lacp": {"actor_state": SYNCED, "partner_state": SYNCED, "counters": {"lacpdu_rx": 40, "lacpdu_tx": 40},
                     **(lacp or {})},
            "history": {**HEALTHY_HISTORY, **(history or {})}, **fields}


def healthy_ports():
    return [lacp_port("re0", 1), lacp_port("re1", 2, lacp={"port_id": 2, "partner_port": 4})]


def status(ports=None, flags=None, **fields):
    return aggregate({"flags": flags or {}, "ports": healthy_ports() if ports is None else ports,
                      "datapath": "ebpf", **fields,
                      "lacp": {"system": "02:00:00:00:00:01", "system_priority": 0x8000, "fast_timeout": True,
                               "strict": True, "active": True,
                               "aggregator": {"actor_key": 0x100, "partner_system": "02:00:00:00:00:02",
                                              "partner_key": 0x100, "ports": [1, 2]}}})


def links(mtus=None, before=None, after=None):
    mtus = {"agr0": 1500, "re0": 1500, "re1": 1500, **(mtus or {})}
    return MappingProxyType({n: LinkFacts(m, MappingProxyType((before or {}).get(n, {})),
                                          MappingProxyType((after or {}).get(n, {}))) for n, m in mtus.items()})


def facts(st=None, **fields):
    return Facts(**{"name": "agr0", "status": status() if st is None else st, "links": links(), "interval": 1.0,
                    **fields})


def codes(f):
    return [x.code for x in findings.diagnose(f)]


def test_a_healthy_aggregate_has_no_finding():
    assert findings.diagnose(facts()) == []


def test_every_rule_is_quiet_without_a_status():
    f = Facts("agr0", None, links(), 0.0, ())
    assert findings.diagnose(f) == []


def test_static_lag_frames_but_no_lacpdu():
    never = {"counters": {"lacpdu_rx": 0, "lacpdu_tx": 12}, "rx_state": "DEFAULTED", "partner_state": 0,
             "partner_system": "00:00:00:00:00:00", "selected": "UNSELECTED", "mux_state": "DETACHED"}
    ports = [lacp_port(n, i, lacp=never, history={"lacpdu_age": None, "lacpdu_intervals": []}, flags=0,
                       counters={"rx_dropped": 25, "rx_packets": 0}) for n, i in (("re0", 1), ("re1", 2))]
    (f,) = findings.diagnose(facts(status(ports)))
    assert (f.severity, f.code, f.ports) == (Severity.ERROR, "static-lag", ("re0", "re1"))
    assert f.evidence["re0.frames_in"] == 25 and f.evidence["re1.lacpdu_rx"] == 0
    assert "`link1`" in f.action and "`lacpfallback`" in f.action
    # The same ports with next to nothing arriving (a lone host's IPv6 autoconfiguration):
    # nobody speaks LACP there (we are active).
    quiet = [lacp_port(n, i, lacp=never, history={"lacpdu_age": None}, flags=0,
                       counters={"rx_dropped": findings.STATIC_FRAMES - 1}) for n, i in (("re0", 1), ("re1", 2))]
    (f,) = findings.diagnose(facts(status(quiet)))
    assert f.code == "no-lacp-heard" and f.evidence["re1.frames_in"] == findings.STATIC_FRAMES - 1


def test_passive_and_silent():
    never = {"counters": {"lacpdu_rx": 0, "lacpdu_tx": 0}, "rx_state": "DEFAULTED", "partner_state": 0,
             "partner_system": "00:00:00:00:00:00", "selected": "UNSELECTED", "mux_state": "DETACHED",
             "actor_state": 0x06}
    ports = [lacp_port("re0", 1, lacp=never, history={"lacpdu_age": None}, flags=0)]
    (f,) = findings.diagnose(facts(status(ports, flags={"lacp_active": False})))
    assert f.code == "passive-silent" and "`lacpmode active`" in f.action and f.evidence["lacpmode"] == "passive"
    assert codes(facts(status(ports, flags={"lacp_active": True}))) == []   # active, sent nothing yet


def test_two_partner_systems():
    ports = healthy_ports()
    ports[1] = lacp_port("re1", 2, lacp={"port_id": 2, "partner_system": "02:00:00:00:00:09", "selected": "UNSELECTED",
                                         "mux_state": "DETACHED", "actor_state": 0x07, "partner_state": 0x3F}, flags=0)
    (f,) = findings.diagnose(facts(status(ports)))
    assert f.code == "two-partners" and f.ports == ("re0", "re1")
    assert f.evidence == {"partner 02:00:00:00:00:02": "re0", "partner 02:00:00:00:00:09": "re1",
                          "selected": "02:00:00:00:00:02"}
    assert all(w in f.action for w in ("MLAG", "`agrselect`", "`agrproto slb`"))


def test_partner_key_differs():
    ports = healthy_ports()
    ports[1] = lacp_port("re1", 2, lacp={"port_id": 2, "partner_key": 0x200, "selected": "UNSELECTED",
                                         "mux_state": "DETACHED"}, flags=0)
    (f,) = findings.diagnose(facts(status(ports)))
    assert f.code == "partner-key-differs" and f.evidence == {"key 0x100": "re0", "key 0x200": "re1"}


def test_speeds_differ():
    ports = healthy_ports()
    ports[1]["speed"] = 100
    (f,) = findings.diagnose(facts(status(ports)))
    assert f.code == "speeds-differ" and f.evidence == {"100 Mb/s": "re1", "1000 Mb/s": "re0"}
    assert f.message.endswith("only ports of one speed aggregate")
    static = [{k: v for k, v in p.items() if k != "lacp"} for p in ports]
    (f,) = findings.diagnose(facts(status(static, flags={"proto": "loadbalance"}, lacp=None)))
    assert f.message.endswith("the slower port fills first")
    ports[1]["carrier"] = False     # a port without carrier has no speed to compare
    assert codes(facts(status(ports))) == []


def test_partner_out_of_sync_for_more_than_two_periodic_intervals():
    out = {"partner_state": 0x07, "mux_state": "ATTACHED"}
    ports = healthy_ports()
    ports[1] = lacp_port("re1", 2, lacp=out, history={"mux_age": 2.5}, flags=0)
    (f,) = findings.diagnose(facts(status(ports)))
    assert f.code == "partner-out-of-sync" and f.ports == ("re1",) and f.evidence["seconds"] == 2.5
    ports[1] = lacp_port("re1", 2, lacp=out, history={"mux_age": 1.9}, flags=0)
    assert codes(facts(status(ports))) == []          # within two fast intervals
    slow = {**out, "actor_state": 0x05}                # we ask the slow rate: 30 s intervals
    ports[1] = lacp_port("re1", 2, lacp=slow, history={"mux_age": 59.0}, flags=0)
    assert codes(facts(status(ports))) == []
    ports[1] = lacp_port("re1", 2, lacp=slow, history={"mux_age": 61.0}, flags=0)
    assert codes(facts(status(ports))) == ["partner-out-of-sync"]
    ports[1] = lacp_port("re1", 2, lacp=out, history={"mux_age": None}, flags=0)   # an older worker
    assert codes(facts(status(ports))) == []


def test_lacpdu_gaps():
    ports = healthy_ports()
    ports[0] = lacp_port("re0", 1, history={"lacpdu_intervals": [1.0, 2.1, 1.0, 3.0, 1.0]})
    (f,) = findings.diagnose(facts(status(ports)))
    assert f.code == "lacpdu-gaps" and f.severity == Severity.WARNING
    assert (f.evidence["gaps"], f.evidence["intervals"], f.evidence["longest"], f.evidence["period"]) == (2, 5, 3.0, 1.0)
    ports[0] = lacp_port("re0", 1, history={"lacpdu_intervals": [1.0, 1.49, 0.1]})
    assert codes(facts(status(ports))) == []
    ports[0] = lacp_port("re0", 1, history={"lacpdu_intervals": None})      # an older worker
    assert codes(facts(status(ports))) == []


def test_flapping_counts_the_last_ten_minutes():
    ports = healthy_ports()
    ports[0] = lacp_port("re0", 1, history={"flap_ages": [900.0, 400.0, 200.0, 10.0]})
    (f,) = findings.diagnose(facts(status(ports)))
    assert f.code == "flapping" and f.evidence["flaps"] == 3 and "`agrwtr" in f.action
    ports[0] = lacp_port("re0", 1, history={"flap_ages": [900.0, 700.0, 200.0, 10.0]})
    assert codes(facts(status(ports))) == []


def test_mtu_differs():
    (f,) = findings.diagnose(facts(links=links({"re1": 1400})))
    assert f.code == "mtu-differs" and f.evidence == {"agr0": 1500, "re1": 1400}
    assert "`agrconfig agr0 mtu N`" in f.action


def test_half_duplex():
    ports = healthy_ports()
    ports[0]["duplex_full"] = False
    (f,) = findings.diagnose(facts(status(ports)))
    assert f.code == "half-duplex" and f.ports == ("re0",) and f.evidence["re0.duplex"] == "half"
    ports[0]["duplex_full"] = None      # unknown (veth): no finding
    assert codes(facts(status(ports))) == []


def test_errors_grow():
    before = {"re0": {"rx_errors": 3, "tx_dropped": 10, "rx_packets": 5}}
    after = {"re0": {"rx_errors": 3, "tx_dropped": 17, "rx_packets": 900}}
    (f,) = findings.diagnose(facts(links=links(before=before, after=after)))
    assert f.code == "errors-grow" and f.evidence == {"tx_dropped": 7, "interval": 1.0}
    # Counted before, not growing: nothing; read once (interval 0): nothing can grow.
    assert codes(facts(links=links(before=after, after=after))) == []
    assert codes(facts(links=links(before=before, after=after), interval=0.0)) == []


@pytest.mark.parametrize("note, why", [
    ("bpf(2) array map: Operation not permitted", "capability"),
    ("bpf(2) per-CPU array map: Invalid argument", "map type"),
    ("bpf(2) SCHED_CLS program: Invalid argument", "kernel"),
    ("bpf(2) array map: Function not implemented", "kernel"),
    ("big-endian host (the flow hash is defined over little-endian loads)", "host")])
def test_no_fast_path_says_why(note, why):
    (f,) = findings.diagnose(facts(status(datapath="relay", datapath_note=note)))
    assert f.code == "no-fast-path" and f"({why})" in f.message and f.evidence["why"] == note
    assert "`agrconfig agr0 datapath auto`" in f.action


def test_no_fast_path_is_no_finding_when_the_relay_was_chosen():
    assert codes(facts(status(datapath="relay", datapath_note="", flags={"datapath": "relay"}))) == []
    assert codes(facts(status(datapath="ebpf", datapath_note=""))) == []


def test_network_manager_claims():
    claims = (Claim("NetworkManager", "re0", "managed"), Claim("systemd-networkd", "agr0", "ADMIN_STATE=configured"))
    nm, networkd = findings.diagnose(facts(claims=claims))
    assert nm.code == networkd.code == "network-manager"
    assert "nmcli device set re0 managed no" in nm.action and "Unmanaged=yes" in networkd.action


def test_errors_come_first():
    ports = healthy_ports()
    ports[0] = lacp_port("re0", 1, history={"lacpdu_intervals": [3.0]})
    assert codes(facts(status(ports), links=links({"re1": 9000}))) == ["mtu-differs", "lacpdu-gaps"]


# -- the edge -----------------------------------------------------------------------------------

def test_words():
    assert diagnose.parse([]) == diagnose.DEFAULT_INTERVAL
    assert diagnose.parse(["interval", "0"]) == 0.0 and diagnose.parse(["interval", "2.5"]) == 2.5
    for bad in (["interval"], ["interval", "x"], ["interval", "-1"], ["interval", "61"], ["now"]):
        with pytest.raises(UsageError):
            diagnose.parse(bad)
    assert parse_query(["diagnose", "interval", "1"]) == Diagnose(("interval", "1"))
    with pytest.raises(UsageError, match="diagnose is a query: it takes no -n"):
        Diagnose(()).run("agr0", dry_run=True)


def test_network_manager_state_files(tmp_path, monkeypatch):
    nm, networkd = tmp_path / "nm", tmp_path / "networkd"
    nm.mkdir()
    networkd.mkdir()
    (nm / "3").write_text("[device]\nmanaged=true\nperm-hw-addr-fake=\nconnection-uuid=1234-abcd\n")
    (nm / "4").write_text("[device]\nmanaged=false\n")
    (networkd / "5").write_text("# This is private data. Do not parse.\nADMIN_STATE=configured\nOPER_STATE=routable\n"
                                "NETWORK_FILE=/etc/systemd/network/10-re.network\n")
    (networkd / "6").write_text("ADMIN_STATE=unmanaged\nOPER_STATE=carrier\n")
    (networkd / "7").write_text("garbage")
    monkeypatch.setenv("AGRCONFIG_NM_DEVICES_DIR", str(nm))
    monkeypatch.setenv("AGRCONFIG_NETWORKD_LINKS_DIR", str(networkd))
    got = diagnose.claims([SimpleNamespace(index=i, name=f"if{i}") for i in range(2, 9)])
    assert got == (Claim("NetworkManager", "if3", "managed, connection 1234-abcd"),
                   Claim("systemd-networkd", "if5", "ADMIN_STATE=configured, NETWORK_FILE=/etc/systemd/network/10-re.network"))


def test_text_json_and_exit_status(monkeypatch, capsys):
    found = facts(links=links({"re1": 1400}))
    monkeypatch.setattr(diagnose, "gather", lambda name, interval: (found, ["a note"]))
    assert diagnose.run("agr0", [], as_json=False) == diagnose.FOUND == 4
    out = capsys.readouterr().out
    assert out.splitlines()[:4] == [
        "agr0: 1 finding", "error: mtu-differs [re1]: the MTU of re1 differs from agr0's",
        "\tevidence: agr0 1500, re1 1400",
        "\taction: set the MTU on agr0 only (`agrconfig agr0 mtu N` sets every port); "
        "a port that refuses it cannot carry that MTU"]
    assert out.splitlines()[4] == "note: a note"
    assert diagnose.run("agr0", [], as_json=True) == 4
    doc = json.loads(capsys.readouterr().out)
    assert doc["findings"][0] == {"severity": "error", "code": "mtu-differs", "ports": ["re1"],
                                  "message": "the MTU of re1 differs from agr0's",
                                  "evidence": {"agr0": 1500, "re1": 1400}, "action": doc["findings"][0]["action"]}
    assert doc["notes"] == ["a note"] and doc["interval"] == 1.0
    monkeypatch.setattr(diagnose, "gather", lambda name, interval: (facts(), []))
    assert diagnose.run("agr0", []) == 0
    assert capsys.readouterr().out == "agr0: nothing found\n"


def test_gather_without_root_degrades(monkeypatch):
    """A user whose agr0 is served by a worker of an earlier release (it answers root only):
    the findings that need no status, and a note saying what root must do."""
    from agrconfig.errors import AgrError
    from agrconfig.ipc import client as control

    def refuse(name, op, timeout):
        raise AgrError(1, "control", "only root may control agr interfaces")
    monkeypatch.setattr(diagnose.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(control, "_peers", {})
    monkeypatch.setattr(diagnose.rtnl, "link", lambda name: SimpleNamespace(index=9, name=name, mtu=1500, stats={}))
    monkeypatch.setattr(control, "request", refuse)
    monkeypatch.setattr(diagnose, "manager_dirs", lambda: (None, None))
    f, notes = diagnose.gather("agr0", 1.0, sleep=lambda s: None)
    assert f.status is None and list(f.links) == ["agr0"] and f.interval == 0.0
    assert notes == ["agr0: its worker (an earlier agrconfig) answers root only; root must upgrade it "
                     "(agrconfig agr0, as root): LACP and port findings need its worker"]
    assert findings.diagnose(f) == []


def test_gather_without_root_reads_the_worker_that_answers(monkeypatch):
    """A user asks the worker for its status (anyone may look), reading no state file."""
    from agrconfig.client import workers
    from agrconfig.ipc import client as control
    st = aggregate({})
    asked = []
    monkeypatch.setattr(diagnose.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(control, "request", lambda name, op, timeout: asked.append(op) or st.to_json())
    monkeypatch.setattr(control, "peer_of", lambda name: None)
    monkeypatch.setattr(workers.worker, "load_state", lambda name: pytest.fail("a user's command read the state file"))
    assert diagnose.read_status("agr0") == (workers.read_status("agr0", st.to_json()), None)
    assert asked == ["status"]


def test_gather_without_root_of_a_dead_worker_says_root_must_revive_it(monkeypatch):
    from agrconfig.client import workers
    from agrconfig.ipc import client as control

    def gone(name, op, timeout):
        raise control.WorkerGone(name)
    monkeypatch.setattr(diagnose.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(control, "request", gone)
    monkeypatch.setattr(workers.rtnl, "link", lambda name: SimpleNamespace(name=name, kind="tun"))
    assert diagnose.read_status("agr0") == (None, "agr0: no worker answers; root must revive it "
                                                  "(agrconfig agr0, as root): LACP and port findings need its worker")
    monkeypatch.setattr(workers.rtnl, "link", lambda name: SimpleNamespace(name=name, kind="veth"))
    with pytest.raises(Exception, match="agr0 is not an agr interface"):
        diagnose.read_status("agr0")


def test_the_managers_state_files_are_read_only_in_their_namespace(monkeypatch):
    monkeypatch.delenv("AGRCONFIG_NM_DEVICES_DIR", raising=False)
    monkeypatch.delenv("AGRCONFIG_NETWORKD_LINKS_DIR", raising=False)
    monkeypatch.setattr(diagnose, "_same_netns_as_init", lambda: True)
    assert diagnose.manager_dirs() == ("/run/NetworkManager/devices", "/run/systemd/netif/links")
    monkeypatch.setattr(diagnose, "_same_netns_as_init", lambda: False)
    assert diagnose.manager_dirs() == (None, None)      # another namespace: its indexes are not theirs
    monkeypatch.setenv("AGRCONFIG_NM_DEVICES_DIR", "/tmp/nm")
    assert diagnose.manager_dirs() == ("/tmp/nm", "/run/systemd/netif/links")


def test_the_query_runs_diagnose(monkeypatch):
    ran = []
    monkeypatch.setattr(diagnose, "run", lambda name, words, as_json: ran.append((name, words, as_json)) or 4)
    assert Diagnose(("interval", "0")).run("agr0", as_json=True) == 4
    assert ran == [("agr0", ["interval", "0"], True)]


def test_the_fast_path_probe_names_the_step_that_failed(monkeypatch):
    import errno
    from agrconfig.worker import bpf

    def map_create(kind, *args):
        if kind == bpf.BPF_MAP_TYPE_PERCPU_ARRAY:
            raise OSError(errno.EINVAL, "Invalid argument")
        return os.open("/dev/null", os.O_RDONLY)
    monkeypatch.setattr(bpf, "map_create", map_create)
    assert bpf.fastpath_supported() == (False, "bpf(2) per-CPU array map: Invalid argument")
    monkeypatch.setattr(bpf, "map_create", lambda *args: (_ for _ in ()).throw(OSError(errno.EPERM, "Operation not permitted")))
    assert bpf.fastpath_supported() == (False, "bpf(2) array map: Operation not permitted")
