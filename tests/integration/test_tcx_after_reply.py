"""A port's program goes onto its tcx hook after the worker has replied to the attach (the
hook's RCU grace period is not the command's to wait for): it gets there, the clsact filter
names it, frames flow, and the data path stays "ebpf". A detached port: our program is off its
tcx hook and clsact is gone when the command returns; the place holder that decides nothing
(fastpath.PASS) leaves its hook after the reply."""
import os
import sys

import pytest

from tests.integration.helpers import agr_pair, ok, status_json, strip_addresses, wait_distributing, worker_log

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The programs on a port's tcx ingress hook: "ours (those its filter names) all", seen from
# inside the namespace.
TCX = ("import socket, sys; sys.path.insert(0, sys.argv[1]); from agrconfig.worker import bpf, fastpath; "
       "i = socket.if_nametoindex(sys.argv[2]); "
       "print(len(fastpath.tcx_ours(i, fastpath.INGRESS)), len(bpf.tcx_query(i, bpf.BPF_TCX_INGRESS)[0]))")


def tcx(lab, ns, port):
    return tuple(map(int, lab.run(ns, sys.executable, "-c", TCX, ROOT, port).stdout.split()))


def on_tcx(lab, ns, port):
    return tcx(lab, ns, port)[0]


def test_an_attached_port_gets_onto_tcx_after_the_reply(lab):
    a, b = agr_pair(lab)
    for ns in (a, b):
        for port in ("re0", "re1"):
            lab.wait_for(lambda: on_tcx(lab, ns, port) == 1, timeout=2, what=f"{port}'s program on tcx in {ns}")
    ok(lab, a, "agr0", "-agrport", "re1")
    assert "clsact" not in lab.run(a, "tc", "qdisc", "show", "dev", "re1").stdout
    lab.wait_for(lambda: tcx(lab, a, "re1") == (0, 0), timeout=2, what="re1's tcx hook empty")
    strip_addresses(lab, a, "re1")                 # its link-local, back with the port
    ok(lab, a, "agr0", "agrport", "re1")
    lab.wait_for(lambda: on_tcx(lab, a, "re1") == 1, timeout=2, what="re1's program on tcx again")
    assert status_json(lab, a)["linkinfo"]["info_data"]["datapath"] == "ebpf"
    wait_distributing(lab, a, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=3)
    assert "not on tcx" not in worker_log(lab, a)
