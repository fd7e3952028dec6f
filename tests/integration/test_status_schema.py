"""`agrconfig --json` and the worker's status reply keep every key release 0.2.0 (0df1f40)
printed, in the same scenarios (tests/integration/status_scenarios.py, recorded from 0.2.0 in
tests/unit/data/status/), and gain only the schema version."""
import json
import os

import pytest

from agrconfig.status import SCHEMA, SCHEMA_KEY
from tests.integration import status_scenarios
from tests.lab import ROOT
from tests.unit.test_status_model import FIXTURES, added, keys

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("scenario", sorted(status_scenarios.SCENARIOS))
def test_the_json_keys_are_0_2_0s_plus_the_schema(lab, scenario):
    with open(FIXTURES[scenario]) as f:
        old = json.load(f)
    doc, reply = status_scenarios.record(lab, scenario, ROOT)
    assert reply[SCHEMA_KEY] == SCHEMA
    assert doc["linkinfo"]["info_data"][SCHEMA_KEY] == SCHEMA
    new_reply, new_doc = keys(reply), keys(doc)
    assert ".ports[].history.lacpdu_intervals" in added(new_reply)      # the additions listed there
    assert new_reply - added(new_reply) - keys(old["worker_reply"]) == {f".{SCHEMA_KEY}"}
    assert keys(old["worker_reply"]) - keys(reply) == set()
    assert new_doc - added(new_doc) - keys(old["agrconfig_json"]) == {f".linkinfo.info_data.{SCHEMA_KEY}"}
    assert keys(old["agrconfig_json"]) - keys(doc) == set()


def test_the_scenarios_are_the_recorded_ones():
    assert sorted(status_scenarios.SCENARIOS) == sorted(FIXTURES)
    assert os.path.isdir(os.path.join(ROOT, "tests", "unit", "data", "status"))
