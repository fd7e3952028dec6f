"""The scenarios whose status documents are recorded from release 0.2.0 (tests/unit/data/status/)
and compared with this code's (test_status_schema.py): lacp, loadbalance with a wait, failover
with agrlinkcheck and agrwtr, agrmaxports. Each builds its namespaces and returns the one whose
agr0 is read, once its status has settled (the same keys every time).

scripts/record-status-fixtures runs them with AGRCONFIG_CMD set to release 0.2.0's command.
"""
import json
import os
import sys

from tests.integration.helpers import (aggregate, host_pair, ok, port_flags, status_json, strip_addresses,
                                       wait_distributing)


def lacp(lab):
    a, b = host_pair(lab)
    for ns in (a, b):
        aggregate(lab, ns, words=("lacptimeout", "fast"))
    wait_distributing(lab, a, ["re0", "re1"])
    return a


def loadbalance(lab):
    """re0 distributes; re1, attached after agrwtr 600, waits to restore (its wtr_left shown)."""
    a, b = host_pair(lab)
    strip_addresses(lab, a, "re1")
    aggregate(lab, a, ports=("re0",), words=("agrproto", "loadbalance"))
    ok(lab, a, "agr0", "agrwtr", "600", "agrport", "re1")
    lab.wait_for(lambda: port_flags(lab, a) == {"re0": 3, "re1": 0}, what="re0 distributing, re1 waiting")
    return a


def failover(lab):
    """b bridges both cables to 192.0.2.2, which agrlinkcheck asks; agrwtr 600."""
    a, b = host_pair(lab)
    lab.ip(b, "link", "add", "br0", "type", "bridge")
    for port in ("re0", "re1"):
        lab.ip(b, "link", "set", port, "master", "br0")
    lab.ip(b, "link", "set", "br0", "up")
    lab.ip(b, "addr", "add", "192.0.2.2/24", "dev", "br0")
    aggregate(lab, a, words=("agrproto", "failover", "agrlinkcheck", "192.0.2.2", "interval", "100",
                             "agrwtr", "600"))
    ok(lab, a, "agr0", "inet", "192.0.2.1/24", "up")
    lab.wait_for(lambda: all(p["linkcheck"]["up"] for p in status_json(lab, a)["agrports"]),
                 timeout=15, what="both ports hear the target")
    return a


def maxports(lab):
    a, b = host_pair(lab)
    aggregate(lab, a, words=("lacptimeout", "fast", "lacpsysprio", "1", "agrmaxports", "1"))
    aggregate(lab, b, words=("lacptimeout", "fast"))
    lab.wait_for(lambda: port_flags(lab, a) == {"re0": 3, "re1": 0}, timeout=15, what="re0 only distributing")
    return a


SCENARIOS = {"lacp": lacp, "loadbalance": loadbalance, "failover": failover, "maxports": maxports}

# Asks agr0's worker for its status with the code found at ROOT: the reply as sent.
ASK = ("import json, sys; sys.path.insert(0, sys.argv[1]); from agrconfig.ipc import client; "
       "print(json.dumps(client.request('agr0', 'status')))")


def worker_reply(lab, ns, root):
    """agr0's worker's status reply (the control protocol's "result"), asked with root's code."""
    return json.loads(lab.run(ns, sys.executable, "-I", "-c", ASK, root).stdout)


def record(lab, scenario, root):
    """(agrconfig --json agr0, the worker's status reply) in this scenario."""
    ns = SCENARIOS[scenario](lab)
    return status_json(lab, ns), worker_reply(lab, ns, os.path.abspath(root))
