"""cli/metrics.py writes the Prometheus text format itself (prometheus_client's import cost
`--metrics` more than its work): its output is the one prometheus_client's generate_latest
writes for the same families, byte for byte."""
import glob
import json
import os

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from agrconfig.cli import metrics
from agrconfig.status import AggregateStatus
from tests.unit.statuses import aggregate

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "info": InfoMetricFamily}


class _Collector:
    def __init__(self, fams):
        self.fams = fams

    def collect(self):
        return self.fams


def reference(statuses):
    """The same families through prometheus_client."""
    fams = []
    for ours in metrics.families(statuses):
        fam = KINDS[ours.kind](ours.name, ours.doc, labels=ours.labels)
        for labels, value in ours.samples:
            values = [labels[k] for k in ours.labels]
            if ours.kind == "info":
                fam.add_metric(values, {k: v for k, v in labels.items() if k not in ours.labels})
            else:
                fam.add_metric(values, value)
        fams.append(fam)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(fams))
    return reg


def recorded():
    out = {}
    for i, path in enumerate(sorted(glob.glob(os.path.join(HERE, "data", "status", "*.json")))):
        with open(path) as f:
            out[f"agr{i}"] = AggregateStatus.from_json(json.load(f)["worker_reply"])
    return out


def big():
    """Counters past Go's switch to exponents, fractions, a name to escape, slb's families."""
    s64 = {"rx": {"bytes": 123456789012, "packets": 1234567, "errors": 0, "dropped": 7},
           "tx": {"bytes": 10 ** 15, "packets": 3, "errors": 1, "dropped": 0}}
    port = {"name": 're"0\\', "flags": 3, "carrier": True, "stats64": s64, "speed": 10000,
            "history": {"counts": {"expired": 2}, "last_change": 1700000000.125}}
    return {"agr7": aggregate({"stats64": s64, "speed": 10000, "announced": 5, "ports": [port]})}


def test_recorded_statuses_are_written_as_prometheus_client_writes_them():
    statuses = recorded()
    assert len(statuses) == 4
    assert metrics.text(statuses) == generate_latest(reference(statuses)).decode()


def test_large_values_and_escapes_too():
    statuses = big()
    text = metrics.text(statuses)
    assert "e+11" in text and 're\\"0\\\\' in text   # the cases are there
    assert text == generate_latest(reference(statuses)).decode()


def test_no_aggregate_no_samples():
    assert metrics.text({}) == generate_latest(reference({})).decode()


def test_go_float_as_prometheus_client():
    from prometheus_client.utils import floatToGoString
    for value in (0, 1, 2.5, -3, 1e6, 1234567, 12345678.9, 1e15, 1700000000.5, float("inf"), float("-inf"), 1e-7):
        assert metrics.go_float(value) == floatToGoString(value), value
    assert metrics.go_float(float("nan")) == "NaN"


def test_the_file_is_the_text_written_atomically(tmp_path):
    statuses = recorded()
    ours, theirs = tmp_path / "ours.prom", tmp_path / "theirs.prom"
    metrics.write_file(str(ours), statuses)
    write_to_textfile(str(theirs), reference(statuses))
    assert ours.read_bytes() == theirs.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["ours.prom", "theirs.prom"]   # no temporary file left
