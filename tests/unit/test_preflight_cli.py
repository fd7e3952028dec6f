"""Pre-flight's command (agrconfig/cli/preflight.py) without the kernel: the command line, the
listening loop on a fake clock and fake sockets, the text and the JSON."""
import contextlib
import io
import json
from unittest import mock

import pytest

from agrconfig import heard
from agrconfig.cli import main as cli
from agrconfig.cli import preflight as P
from agrconfig.lacp import pdu


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(P, "run", return_value="RAN\n") as run, \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue(), run.call_args_list


@pytest.mark.parametrize("argv, kwargs", [
    (["-l", "--free", "-v"], dict(as_json=False, listen=None)),
    (["-l", "--free", "--json"], dict(as_json=True, listen=None)),
    (["-l", "--free", "-v", "--json", "listen", "30"], dict(as_json=True, listen=30)),
    (["-l", "--free", "listen", "5"], dict(as_json=False, listen=5)),
])
def test_command_line(argv, kwargs):
    code, out, err, calls = run_main(argv)
    assert (code, out, err) == (0, "RAN\n", "")
    assert calls == [mock.call(**kwargs)]


@pytest.mark.parametrize("argv", [["-l", "-v"], ["-l", "--json"], ["-l", "--free", "listen"],
                                  ["-l", "--free", "listen", "0"], ["-l", "--free", "listen", "3601"],
                                  ["-l", "--free", "listen", "1e3"], ["-l", "--free", "hear", "3"]])
def test_command_line_refused(argv):
    code, out, err, calls = run_main(argv)
    assert code == 1 and err.startswith("agrconfig: ") and "Usage:" in err and not calls


def test_plain_free_list_is_unchanged():
    with mock.patch("agrconfig.client.inspect.free_ports", return_value=["re0", "re1"]):
        code, out, err, calls = run_main(["-l", "--free"])
    assert (code, out, calls) == (0, "re0 re1\n", [])


# -- the listening loop, on fake sockets and a fake clock -------------------------------------
class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class FakeSocket:
    """Hands out its frames at their times; recvfrom raises BlockingIOError when none is due."""

    def __init__(self, clock, fd, frames):
        self.clock, self.fd, self.frames = clock, fd, list(frames)   # [(at, frame, pkttype)]

    def fileno(self):
        return self.fd

    def recvfrom(self, _size):
        if self.frames and self.frames[0][0] <= self.clock.now:
            at, frame, pkttype = self.frames.pop(0)
            return frame, ("p", 0x8809, pkttype, 1, b"")
        raise BlockingIOError


class FakePoll:
    """poll() jumps the clock to the next frame due (or by the whole timeout)."""

    def __init__(self, clock, socks):
        self.clock, self.socks = clock, socks

    def register(self, fd, _mask):
        pass

    def poll(self, timeout_ms):
        until = self.clock.now + timeout_ms / 1000
        due = min((s.frames[0][0] for s in self.socks if s.frames), default=until)
        self.clock.now = max(self.clock.now, min(due, until))
        return [(s.fd, 1) for s in self.socks if s.frames and s.frames[0][0] <= self.clock.now]


def lacpdu(system="02:00:00:00:00:99"):
    info = pdu.LacpInfo(0x8000, bytes.fromhex(system.replace(":", "")), 17, 0x8000, 4,
                        pdu.ACTIVITY | pdu.AGGREGATION)
    return pdu.build_frame(bytes.fromhex("020000000099"), pdu.encode(pdu.Lacpdu(info, heard.ZERO_INFO)))


def listen(frames_by_port, sent, deadline, early):
    clock = Clock()
    socks, table = [], {}
    for i, (name, frames) in enumerate(frames_by_port.items()):
        s = FakeSocket(clock, 10 + i, [(clock.now + at, f, t) for at, f, t in frames])
        socks.append(s)
        table[s.fd] = (s, name, pdu.ETH_P_SLOW)
    heard_lacp, heard_lldp, answered = {}, {}, {}
    with mock.patch.object(P.select, "poll", lambda: FakePoll(clock, socks)):
        P._listen(table, clock.now + deadline, {n: clock.now for n in sent}, heard_lacp, heard_lldp,
                  answered, early, clock)
    return clock.now - 100.0, heard_lacp, answered


def test_listening_ends_once_every_port_sent_to_has_answered():
    took, got, answered = listen({"re0": [(0.2, lacpdu(), 0)], "re1": [(0.5, lacpdu(), 0)]},
                                 sent=["re0", "re1"], deadline=3.0, early=True)
    assert took == pytest.approx(0.5) and set(got) == {"re0", "re1"}
    assert answered == {"re0": pytest.approx(0.2), "re1": pytest.approx(0.5)}


def test_a_silent_port_keeps_the_whole_window_and_our_own_frames_do_not_count():
    took, got, answered = listen({"re0": [(0.1, lacpdu(), P.PACKET_OUTGOING), (0.2, lacpdu(), 0)],
                                  "re1": [(0.1, lacpdu(), P.PACKET_OUTGOING)]},
                                 sent=["re0", "re1"], deadline=3.0, early=True)
    assert took == pytest.approx(3.0) and set(got) == {"re0"} and set(answered) == {"re0"}


def test_listen_n_waits_the_whole_time_and_bad_frames_are_ignored():
    took, got, answered = listen({"re0": [(0.1, b"\x00" * 60, 0), (0.2, lacpdu()[:40], 0), (1.0, lacpdu(), 0)]},
                                 sent=[], deadline=5.0, early=False)
    assert took == pytest.approx(5.0) and set(got) == {"re0"} and answered == {}


# -- output -----------------------------------------------------------------------------------
def found():
    partner = heard.LacpPartner(0x1234, "02:00:00:00:00:99", 17, 0x8000, 4,
                                pdu.ACTIVITY | pdu.TIMEOUT | pdu.AGGREGATION)
    ports = (
        P.FreePort("re0", 2, "02:00:00:00:00:01", 1500, True, 1000, P.Duplex.FULL, P.Use.FREE, (), sent=True,
                   partner=partner, answered=0.004,
                   neighbour=heard.LldpNeighbour("02:00:00:00:00:99", "Gi1/0/5", "sw1")),
        P.FreePort("re1", 3, "02:00:00:00:00:02", 1500, True, None, None, P.Use.FREE, (), sent=True),
        P.FreePort("re2", 4, "02:00:00:00:00:03", 9000, True, 1000, P.Duplex.HALF, P.Use.IN_USE,
                   ("192.0.2.1/24",)),
        P.FreePort("re3", 5, "02:00:00:00:00:04", 1500, False, None, None, P.Use.DOWN, ()),
        P.FreePort("re4", 6, "02:00:00:00:00:05", 1500, False, None, None, P.Use.FREE, ()),
    )
    groups = (heard.Group(0x1234, "02:00:00:00:00:99", 17, 1000, ("re0",)),)
    return P.Preflight(ports, groups, 3.0, True)


def test_text():
    assert P.text(found()) == (
        "re0: free, carrier up, 1000 Mb/s full duplex, mtu 1500\n"
        "\tlacp partner: system 0x1234,02:00:00:00:00:99, key 17, port 0x8000,4, active, fast timeout, aggregatable\n"
        "\tlldp neighbour: chassis 02:00:00:00:00:99, port Gi1/0/5, system name 'sw1'\n"
        "re1: free, carrier up, speed unknown, mtu 1500\n"
        "\tno LACP heard\n"
        "re2: in use (192.0.2.1/24): nothing sent, carrier up, 1000 Mb/s half duplex, mtu 9000\n"
        "\tno LACP heard\n"
        "re3: down, mtu 1500: nothing sent, nothing heard\n"
        "re4: free, carrier down, mtu 1500\n"
        "\tno LACP heard\n"
        "can aggregate:\n"
        "\tre0: partner 0x1234,02:00:00:00:00:99, key 17, 1000 Mb/s\n"
        "(one LACPDU sent on each of 2 free ports, then listened 3 s)\n")


def test_json():
    doc = json.loads(json.dumps(P.document(found())))
    re0 = doc["ports"][0]
    assert re0["lacp_partner"] == {"system_priority": 0x1234, "system": "02:00:00:00:00:99", "key": 17,
                                   "port_priority": 0x8000, "port": 4, "state": 7,
                                   "state_str": ["ACTIVITY", "TIMEOUT", "AGGREGATION"], "active": True,
                                   "timeout": "fast", "aggregation": True, "system_id": "0x1234,02:00:00:00:00:99"}
    assert re0["lldp_neighbour"] == {"chassis_id": "02:00:00:00:00:99", "port_id": "Gi1/0/5", "system_name": "sw1"}
    assert (re0["speed"], re0["duplex"], re0["use"], re0["sent"], re0["answered"]) == (1000, "full", "free", True, 0.004)
    assert [(p["ifname"], p["use"], p["sent"]) for p in doc["ports"]] == [
        ("re0", "free", True), ("re1", "free", True), ("re2", "in use", False), ("re3", "down", False),
        ("re4", "free", False)]
    assert doc["ports"][2]["addr_info"] == ["192.0.2.1/24"]
    assert doc["groups"] == [{"partner_system_priority": 0x1234, "partner_system": "02:00:00:00:00:99",
                              "partner_key": 17, "speed": 1000, "ports": ["re0"]}]
    assert (doc["listened"], doc["elicited"]) == (3.0, True)


def test_parse_listen():
    assert P.parse_listen("1") == 1 and P.parse_listen("3600") == 3600
    for bad in ("0", "3601", "-1", "", "1.5", "²"):
        with pytest.raises(P.UsageError):
            P.parse_listen(bad)


def test_text_says_when_two_free_ports_are_cabled_to_each_other():
    partner = heard.LacpPartner(0x8000, "02:00:00:00:00:02", 0, 0x8000, 3, heard.ELICIT_STATE)
    port = P.FreePort("re0", 2, "02:00:00:00:00:01", 1500, True, None, None, P.Use.FREE, (), sent=True,
                      partner=partner, loop="re1")
    assert "\tlacp partner: system 0x8000,02:00:00:00:00:02, key 0, port 0x8000,3, active, slow timeout, " \
           "aggregatable\n\tloop: cabled to re1 of this host\n" in P.text(P.Preflight((port,), (), 0.1, True))
