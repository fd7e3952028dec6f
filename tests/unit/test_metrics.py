"""cli/metrics.py: families from worker statuses, read back by prometheus_client's parser."""
from prometheus_client.parser import text_string_to_metric_families

from agrconfig.cli import metrics
from agrconfig.lacp import LacpCore
from tests.unit.statuses import aggregate

S64 = {"rx": {"bytes": 10, "packets": 1, "errors": 0, "dropped": 2},
       "tx": {"bytes": 30, "packets": 3, "errors": 1, "dropped": 0}}


def parsed(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def bit(labels, name):
    return tuple(sorted((*labels, ("bit", name))))


def port(name, flags, lacp=None, history=None):
    return {"name": name, "flags": flags, "carrier": True, "stats64": S64, "lacp": lacp,
            "history": history or {"counts": {"expired": 2, "defaulted": 1, "actor_churn": 0,
                                              "partner_churn": 4}, "last_change": 1700000000.5}}


def test_static_and_lacp_ports():
    core = LacpCore(bytes.fromhex("020000000001"))
    core.add_port(0.0, 7, bytes.fromhex("020000000007"), carrier=True)
    lacp = core.port_status(7)
    statuses = {"agr0": aggregate({"stats64": S64, "ports": [port("re0", 3), port("re1", 0, lacp)]})}
    got = parsed(metrics.text(statuses))
    agr = (("agr", "agr0"),)
    re0, re1 = (("agr", "agr0"), ("port", "re0")), (("agr", "agr0"), ("port", "re1"))
    assert got[("agr_rx_dropped_total", agr)] == 2 and got[("agr_tx_packets_total", agr)] == 3
    assert got[("agr_ports_distributing", agr)] == 1 and got[("agr_ports", agr)] == 2
    assert got[("agr_port_distributing", re0)] == 1 and got[("agr_port_distributing", re1)] == 0
    assert got[("agr_port_expired_total", re1)] == 2 and got[("agr_port_partner_churn_total", re0)] == 4
    assert got[("agr_port_last_change_timestamp_seconds", re0)] == 1700000000.5
    # link1's port has no LACP: no LACP samples for it
    assert ("agr_port_lacpdu_rx_total", re0) not in got
    assert got[("agr_port_lacpdu_tx_total", re1)] == lacp["counters"]["lacpdu_tx"]
    assert got[("agr_port_actor_state", bit(re1, "activity"))] == 1
    assert got[("agr_port_actor_state", bit(re1, "distributing"))] == 0
    assert got[("agr_port_partner_state", bit(re1, "sync"))] == 0
    info = [k for k in got if k[0] == "agr_port_partner_info"]
    assert len(info) == 1 and dict(info[0][1])["partner_key"] == "0x0000"


def test_text_is_prometheus_0_0_4_from_the_library():
    text = metrics.text({})
    assert "# TYPE agr_port_lacpdu_rx_total counter" in text   # prometheus_client's own naming
    assert parsed(text) == {}


def test_slb_families_only_under_slb():
    statuses = {"agr0": aggregate({"flags": {"proto": "slb"}, "slb": {"designated": 8, "learned": 5, "moved": 2},
                                   "ports": [{**port("re0", 3), "index": 7},
                                             {**port("re1", 3), "index": 8,
                                              "counters": {"rx_slb_not_designated": 4, "rx_slb_reflected": 6}}]}),
                "agr1": aggregate({"ports": [port("re2", 3)]})}
    got = parsed(metrics.text(statuses))
    agr = (("agr", "agr0"),)
    re0, re1 = (("agr", "agr0"), ("port", "re0")), (("agr", "agr0"), ("port", "re1"))
    assert got[("agr_slb_learned", agr)] == 5 and got[("agr_slb_moved_total", agr)] == 2
    assert got[("agr_port_slb_designated", re0)] == 0 and got[("agr_port_slb_designated", re1)] == 1
    assert got[("agr_port_slb_dropped_total", tuple(sorted((*re1, ("reason", "not_designated")))))] == 4
    assert got[("agr_port_slb_dropped_total", tuple(sorted((*re1, ("reason", "reflection")))))] == 6
    assert got[("agr_port_slb_dropped_total", tuple(sorted((*re0, ("reason", "reflection")))))] == 0
    assert not [k for k in got if k[0].startswith(("agr_slb", "agr_port_slb")) and ("agr", "agr1") in k[1]]


def test_no_slb_family_without_slb():
    text = metrics.text({"agr0": aggregate({"ports": [port("re0", 3)]})})
    assert "slb" not in text
