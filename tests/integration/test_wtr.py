"""agrwtr between two agrconfig hosts (issue 13): a port whose cable comes back waits before it
distributes, with our Synchronization off so the partner does not use it either; a flap during
the wait starts it over; link1 waits too."""
import time

import pytest

from tests.integration.helpers import aggregate, host_pair, ok, port_flags, status_json, wait_distributing

pytestmark = pytest.mark.integration

WTR = 6


def port_of(lab, ns, name):
    return next(p for p in status_json(lab, ns)["agrports"] if p["ifname"] == name)


def wtr_left_once_waiting(lab, ns, name):
    """The time left that status shows as soon as the port is waiting."""
    return lab.wait_for(lambda: port_of(lab, ns, name)["wtr_left"], timeout=10, interval=0.05,
                        what=f"{name} waiting to restore")


def test_a_port_that_comes_back_waits_and_a_flap_restarts_the_wait(lab):
    a, b = host_pair(lab)
    aggregate(lab, b, words=("lacptimeout", "fast"))
    aggregate(lab, a, words=("lacptimeout", "fast", "agrwtr", str(WTR)))
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"], timeout=30)   # the first attach waits too
    assert "; wtr 6 s" in ok(lab, a, "agr0")
    assert status_json(lab, a)["linkinfo"]["info_data"]["updelay"] == WTR * 1000

    lab.ip(b, "link", "set", "re0", "down")
    lab.wait_for(lambda: port_flags(lab, a)["re0"] == 0, timeout=5, what="re0 out")
    lab.ip(b, "link", "set", "re0", "up")
    left = wtr_left_once_waiting(lab, a, "re0")
    assert 0 < left <= WTR
    text = ok(lab, a, "agr0")
    assert "wait-to-restore" in text and "s left, mux" in text, text
    doc = port_of(lab, a, "re0")
    assert "SYNC" not in doc["ad_actor_oper_port_state_str"], "our Synchronization is held off"
    assert port_flags(lab, b)["re0"] == 0, "the partner does not send into it"
    assert port_flags(lab, a)["re1"] == 3 and lab.ping(a, "192.0.2.2", count=2), "re1 carries on"
    wait_distributing(lab, a, ["re0", "re1"], timeout=WTR + 15)
    wait_distributing(lab, b, ["re0", "re1"], timeout=5)

    # A flap 2 s into the wait: the full wait again from the return.
    lab.ip(b, "link", "set", "re0", "down")
    lab.wait_for(lambda: port_flags(lab, a)["re0"] == 0, timeout=5, what="re0 out")
    lab.ip(b, "link", "set", "re0", "up")
    wtr_left_once_waiting(lab, a, "re0")
    time.sleep(2)
    lab.ip(b, "link", "set", "re0", "down")
    lab.wait_for(lambda: port_of(lab, a, "re0")["wtr_left"] is None, timeout=5, what="the wait dropped")
    lab.ip(b, "link", "set", "re0", "up")
    left = wtr_left_once_waiting(lab, a, "re0")
    assert left > WTR - 2, f"the wait started over: {left} s left, not what remained of the first"
    wait_distributing(lab, a, ["re0", "re1"], timeout=WTR + 15)

    # 0 ends a wait at once.
    lab.ip(b, "link", "set", "re0", "down")
    lab.wait_for(lambda: port_flags(lab, a)["re0"] == 0, timeout=5, what="re0 out")
    lab.ip(b, "link", "set", "re0", "up")
    wtr_left_once_waiting(lab, a, "re0")
    ok(lab, a, "agr0", "agrwtr", "0")
    wait_distributing(lab, a, ["re0", "re1"], timeout=5)


def test_link1_waits_for_the_carrier_too(lab):
    a, b = host_pair(lab)
    aggregate(lab, a, words=("link1", "agrwtr", "3"))
    lab.wait_for(lambda: port_flags(lab, a) == {"re0": 3, "re1": 3}, timeout=15, what="both ports after the wait")
    lab.ip(b, "link", "set", "re0", "down")
    lab.wait_for(lambda: port_flags(lab, a)["re0"] == 0, timeout=5, what="re0 out")
    lab.ip(b, "link", "set", "re0", "up")
    left = wtr_left_once_waiting(lab, a, "re0")
    assert 0 < left <= 3
    assert "\t\twait-to-restore " in ok(lab, a, "agr0")
    lab.wait_for(lambda: port_flags(lab, a) == {"re0": 3, "re1": 3}, timeout=15, what="re0 back after the wait")


def test_out_of_range_values_exit_1_and_change_nothing(lab):
    a, _b = host_pair(lab, ports=("re0",))
    aggregate(lab, a, ports=("re0",))
    before = status_json(lab, a)["linkinfo"]["info_data"]["flags"]
    for words in (("agrwtr", "3601"), ("agrwtr", "-1"), ("agrwtr", "5", "agrminports", "x")):
        proc = lab.agr(a, "agr0", *words)
        assert proc.returncode == 1 and "agrconfig: " in proc.stderr, (words, proc.stderr)
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"] == before


def test_optimistic_mode_a_port_without_partner_waits_then_distributes(lab):
    """-lacpstrict with agrwtr: a port whose far end speaks no LACP distributes once its
    partner is defaulted and the wait is over (it was held for ever before 0.3.0)."""
    a, _b = host_pair(lab)
    aggregate(lab, a, ports=("re0",), words=("lacptimeout", "fast", "-lacpstrict", "agrwtr", "2"))
    left = wtr_left_once_waiting(lab, a, "re0")
    assert 0 < left <= 2.0, left
    lab.wait_for(lambda: port_flags(lab, a) == {"re0": 3}, timeout=10, what="re0 distributing, defaulted")
    port = port_of(lab, a, "re0")
    assert port["rx_state"] == "DEFAULTED" and port["wtr_left"] is None, port
