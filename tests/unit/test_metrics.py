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
