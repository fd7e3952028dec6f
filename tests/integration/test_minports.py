"""agrminports between two agrconfig hosts (issue 13): agr0 has no carrier while fewer than N
ports distribute, gets it back when enough do; the default (1) means no carrier without a
distributing port; 0 keeps it on; link1's ports with carrier count; a worker restart keeps
the carrier as it was."""
import signal

import psutil
import pytest

from tests.integration.helpers import (aggregate, host_pair, ok, port_flags, status_json, strip_addresses,
                                       wait_distributing)
from tests.integration.test_worker import kill_worker, worker_procs

pytestmark = pytest.mark.integration


def carrier(lab, ns, name="agr0"):
    """agr0's carrier as the kernel says it (ip link's NO-CARRIER)."""
    flags = lab.ip(ns, "-o", "link", "show", name).stdout.split("<", 1)[1].split(">", 1)[0].split(",")
    return "NO-CARRIER" not in flags and "LOWER_UP" in flags


def kill_pair(lab, ns):
    """SIGKILL the supervisor, then the worker, of agr0 in `ns`."""
    (w,) = worker_procs(lab, ns)
    sup = psutil.Process(w.ppid())
    for proc in (sup, w):
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def wait_carrier(lab, ns, want, timeout=15):
    lab.wait_for(lambda: carrier(lab, ns) == want, timeout=timeout, what=f"agr0 carrier {want} in {ns}")


def test_minports_2_loses_carrier_at_one_port_and_gets_it_back(lab):
    a, b = host_pair(lab)
    ok(lab, a, "agr0", "create", "up")   # no port yet: no carrier (the default agrminports 1)
    assert not carrier(lab, a)
    assert "\tstatus: no carrier" in ok(lab, a, "agr0")
    aggregate(lab, b, words=("lacptimeout", "fast"))
    for p in ("re0", "re1"):
        strip_addresses(lab, a, p)
    ok(lab, a, "agr0", "lacptimeout", "fast", "agrport", "re0", "agrport", "re1")
    ok(lab, a, "agr0", "agrminports", "2", "inet", "192.0.2.1/24")
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")
    wait_distributing(lab, a, ["re0", "re1"])
    wait_carrier(lab, a, True)
    assert "; minports 2" in ok(lab, a, "agr0")
    assert status_json(lab, a)["linkinfo"]["info_data"]["min_links"] == 2
    assert lab.ping(a, "192.0.2.2", count=2)

    lab.ip(b, "link", "set", "re1", "down")          # one port left of two
    wait_carrier(lab, a, False, timeout=10)
    assert port_flags(lab, a)["re0"] == 3, "re0 still distributes: the limit took the carrier"
    assert "\tstatus: no carrier" in ok(lab, a, "agr0")
    route = lab.ip(a, "route", "show", "192.0.2.0/24").stdout
    assert "linkdown" in route, route
    # A restart keeps the carrier off (attaching to the TAP turned it on).
    kill_worker(lab, a)
    lab.wait_for(lambda: status_json(lab, a), what="the restarted worker")
    assert not carrier(lab, a)

    # Worker and supervisor gone: nobody holds the TAP, the next command revives the pair,
    # which attaches to the TAP again (that turns carrier on); it must end as it was.
    kill_pair(lab, a)
    assert status_json(lab, a)["agrports"]
    lab.wait_for(lambda: port_flags(lab, a)["re0"] == 3, timeout=10, what="re0 distributing again")
    assert not carrier(lab, a)

    lab.ip(b, "link", "set", "re1", "up")
    wait_carrier(lab, a, True)
    assert lab.ping(a, "192.0.2.2", count=2)
    kill_worker(lab, a)
    lab.wait_for(lambda: status_json(lab, a), what="the restarted worker")
    assert carrier(lab, a)
    kill_pair(lab, a)
    status_json(lab, a)
    wait_carrier(lab, a, True)
    assert lab.ping(a, "192.0.2.2", count=2)

    # The default, 1: no carrier with no port distributing; 0: carrier regardless.
    ok(lab, a, "agr0", "agrminports", "1")
    for p in ("re0", "re1"):
        lab.ip(b, "link", "set", p, "down")
    wait_carrier(lab, a, False)
    ok(lab, a, "agr0", "agrminports", "0")
    wait_carrier(lab, a, True)
    assert "; minports 0" in ok(lab, a, "agr0")


def test_link1_ports_with_carrier_count(lab):
    a, b = host_pair(lab)
    aggregate(lab, a, words=("link1", "agrminports", "2", "up"))
    wait_carrier(lab, a, True)
    lab.ip(b, "link", "set", "re0", "down")
    wait_carrier(lab, a, False)
    lab.ip(b, "link", "set", "re0", "up")
    wait_carrier(lab, a, True)


def test_out_of_range_values_exit_1_and_change_nothing(lab):
    a, _b = host_pair(lab, ports=("re0",))
    aggregate(lab, a, ports=("re0",))
    before = status_json(lab, a)["linkinfo"]["info_data"]["flags"]
    for words in (("agrminports", "1025"), ("agrminports", "-1"), ("agrminports", "0", "agrmaxports", "x")):
        proc = lab.agr(a, "agr0", *words)
        assert proc.returncode == 1 and "agrconfig: " in proc.stderr, (words, proc.stderr)
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"] == before
