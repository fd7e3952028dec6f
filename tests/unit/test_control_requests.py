"""Typed control requests (ipc/protocol.py) and the worker's one handler table (worker/requests.py).

The wire does not change: every request parses to its own class and goes back to the same JSON,
and a bad request gets the very error the dict-based parser of 0.2.0 gave (kept below as the
reference)."""
import errno
import json
import os
from types import SimpleNamespace

import pytest

from agrconfig.errors import AgrError
from agrconfig.ipc import client, protocol
from agrconfig.worker import requests

GOOD = [
    ({"op": "status"}, protocol.Status()),
    ({"op": "ping"}, protocol.Ping()),
    ({"op": "shutdown"}, protocol.Shutdown()),
    ({"op": "save"}, protocol.Save()),
    ({"op": "addport", "port": "re0"}, protocol.AddPort("re0")),
    ({"op": "delport", "port": "veth-a.1"}, protocol.DelPort("veth-a.1")),
    ({"op": "setflags", "flags": {"link0": True, "hash": 3}}, protocol.SetFlags({"link0": True, "hash": 3})),
    ({"op": "setmtu", "mtu": 9000}, protocol.SetMtu(9000)),
    ({"op": "setport", "port": "re1", "flags": {"port_priority": 7}}, protocol.SetPort("re1", {"port_priority": 7})),
]


def reference_parse(raw):
    """parse_request as 0.2.0 had it: a dict of checkers per op."""
    table = {
        "status": {}, "ping": {}, "shutdown": {}, "save": {},
        "addport": {"port": protocol.check_ifname}, "delport": {"port": protocol.check_ifname},
        "setflags": {"flags": protocol.check_flags}, "setmtu": {"mtu": protocol.check_mtu},
        "setport": {"port": protocol.check_ifname, "flags": protocol.check_port_flags},
    }
    try:
        req = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AgrError(errno.EINVAL, "control", f"malformed request: {exc}") from None
    if not isinstance(req, dict) or not isinstance(req.get("op"), str):
        raise AgrError(errno.EINVAL, "control", "malformed request: not a JSON object with an op")
    op = req["op"]
    if op not in table:
        raise AgrError(errno.EINVAL, "control", f"unknown request {op[:40]!r}")
    wanted = table[op]
    extra = sorted(set(req) - set(wanted) - {"op"})
    if extra:
        raise AgrError(errno.EINVAL, "control", f"{op}: unexpected argument {extra[0][:40]!r}")
    for key, check in wanted.items():
        if key not in req:
            raise AgrError(errno.EINVAL, "control", f"{op}: missing argument {key!r}")
        try:
            check(req[key])
        except ValueError as exc:
            raise AgrError(errno.EINVAL, "control", f"{op}: {exc}") from None
    return req


BAD = [
    b"{op: status", b"\xff\x00\x01", b"", b'["status"]', b'"status"', b"42", b"null",
    b'{"port": "re0"}', b'{"op": 1}', b'{"op": "exec", "argv": ["/bin/sh"]}',
    b'{"op": "readfile", "path": "/etc/shadow"}', b'{"op": "' + b"x" * 100 + b'"}',
    b'{"op": "addport", "port": 5}', b'{"op": "delport", "port": ["re0"]}', b'{"op": "addport"}',
    b'{"op": "addport", "port": "../../../etc"}', b'{"op": "addport", "port": ".."}',
    b'{"op": "addport", "port": "abcdefghijklmnop"}', b'{"op": "addport", "port": "re 0"}',
    b'{"op": "addport", "port": "re%d"}',
    b'{"op": "setmtu", "mtu": "1400"}', b'{"op": "setmtu", "mtu": 1400.5}', b'{"op": "setmtu", "mtu": true}',
    b'{"op": "setmtu", "mtu": 10000000}', b'{"op": "setmtu"}',
    b'{"op": "setflags", "flags": "link0"}', b'{"op": "setflags", "flags": {"link0": "yes"}}',
    b'{"op": "setflags", "flags": {"evil": true}}', b'{"op": "setflags", "flags": {"hash": 99}}',
    b'{"op": "setflags", "flags": {"datapath": "bogus"}}', b'{"op": "setflags", "flags": {}}',
    b'{"op": "setflags", "flags": {"port_priority": 7}}',
    b'{"op": "status", "file": "/etc/passwd"}', b'{"op": "ping", "b": 1, "a": 2}',
    b'{"op": "setport", "flags": {"port_priority": 7}}', b'{"op": "setport", "port": "re0"}',
    b'{"op": "setport", "port": "re0", "flags": {"lacp_sysprio": 7}}',
    b'{"op": "setport", "port": "re0", "flags": {"port_priority": 65536}}',
    b'{"op": "setport", "port": "re0", "flags": {"port_priority": 7}, "mtu": 1}',
]


@pytest.mark.parametrize("obj, typed", GOOD, ids=[o["op"] for o, _ in GOOD])
def test_every_op_parses_to_its_class_and_back_to_the_same_json(obj, typed):
    req = protocol.parse_request(json.dumps(obj).encode())
    assert type(req) is type(typed) and req == typed
    assert req.to_json() == obj
    assert protocol.build(obj["op"], **{k: v for k, v in obj.items() if k != "op"}) == typed


def test_there_is_one_class_per_op():
    assert sorted(protocol.REQUESTS) == sorted(o["op"] for o, _ in GOOD)
    assert all(cls.OP == op for op, cls in protocol.REQUESTS.items())


@pytest.mark.parametrize("raw", BAD)
def test_a_bad_request_gets_the_error_it_always_got(raw):
    with pytest.raises(AgrError) as want:
        reference_parse(raw)
    with pytest.raises(AgrError) as got:
        protocol.parse_request(raw)
    assert got.value.to_dict() == want.value.to_dict()
    assert got.value.errno == errno.EINVAL


def test_the_client_builds_typed_requests_and_refuses_what_has_no_class():
    with pytest.raises(AgrError, match="unknown request 'exec'"):
        protocol.build("exec", argv=["/bin/sh"])
    with pytest.raises(AgrError, match="addport"):
        protocol.build("addport")
    with pytest.raises(AgrError, match="addport"):
        protocol.build("addport", port="re0", file="/etc/passwd")


def test_the_client_sends_the_json_of_before(monkeypatch):
    sent = []

    def exchange(name, req, timeout):
        sent.append(json.dumps(req.to_json()))
        return {"result": {"ok": True}}

    monkeypatch.setattr(client, "_exchange", exchange)
    assert client.request("agr0", "setport", port="re0", flags={"port_priority": 7}) == {"ok": True}
    assert client.request("agr0", protocol.AddPort("re1")) == {"ok": True}
    assert client.request("agr0", "status") == {"ok": True}
    assert sent == ['{"op": "setport", "port": "re0", "flags": {"port_priority": 7}}',
                    '{"op": "addport", "port": "re1"}', '{"op": "status"}']


# -- the worker's handler table -----------------------------------------------------------------

class FakeWorker:
    def __init__(self):
        self.name = "agr0"
        self.calls = []
        self.stopping = False
        self.ports = self
        self.members = self

    def save(self):
        self.calls.append("save")

    def status(self):
        return SimpleNamespace(to_json=lambda: {"status": True})

    def add(self, now, name):
        self.calls.append(("add", now, name))

    def remove(self, now, name):
        self.calls.append(("remove", now, name))

    def set(self, now, name, flags):
        self.calls.append(("setport", now, name, flags))

    def set_mtu(self, mtu):
        self.calls.append(("mtu", mtu))

    def set_flags(self, now, flags):
        self.calls.append(("flags", now, flags))


def test_the_table_has_a_handler_for_every_request_type():
    assert set(requests.HANDLERS) == set(protocol.REQUESTS.values())


@pytest.mark.parametrize("req, calls", [
    (protocol.Status(), []),
    (protocol.Save(), ["save"]),
    (protocol.AddPort("re0"), [("add", 5.0, "re0"), "save"]),
    (protocol.DelPort("re0"), [("remove", 5.0, "re0"), "save"]),
    (protocol.SetPort("re0", {"port_priority": 3}), [("setport", 5.0, "re0", {"port_priority": 3}), "save"]),
    (protocol.SetMtu(1400), [("mtu", 1400), "save"]),
    (protocol.SetFlags({"link0": True}), [("flags", 5.0, {"link0": True}), "save"]),
], ids=lambda v: getattr(v, "OP", ""))
def test_each_request_reaches_its_handler_then_the_state_file_and_answers_with_status(req, calls):
    w = FakeWorker()
    assert requests.handle(w, req, 5.0) == {"status": True}
    assert w.calls == calls and not w.stopping


def test_a_ping_is_answered_with_who_answers_and_changes_nothing():
    w = FakeWorker()
    assert requests.handle(w, protocol.Ping(), 5.0) == {"name": w.name, "pid": os.getpid()}
    assert w.calls == [] and not w.stopping


def test_a_pings_reply_tells_the_front_end_the_workers_pid():
    """What _upgrade needs of an older worker: its pid, from the ping before every change."""
    from agrconfig import jsontext
    from agrconfig.ipc import client
    reply = protocol.answer(protocol.Ping(), lambda req: requests.handle(FakeWorker(), req, 5.0))
    client.reply_of("agr0", jsontext.dumps(reply).encode())
    assert client.peer_of("agr0").pid == os.getpid()


def test_shutdown_stops_the_worker_and_saves_nothing():
    w = FakeWorker()
    assert requests.handle(w, protocol.Shutdown(), 5.0) == {"status": True}
    assert w.stopping and w.calls == []


def test_a_request_type_without_a_handler_is_einval():
    class Exec(protocol.Request):
        __slots__ = ()
        OP = "exec"

    with pytest.raises(AgrError, match="unknown request 'exec'") as err:
        requests.handle(FakeWorker(), Exec(), 5.0)
    assert err.value.errno == errno.EINVAL


def test_only_looks_are_safe_to_ask_again():
    """A request that went out to a worker that then died is asked again only when it changes
    nothing (client/workers.request): status and ping."""
    looks = {cls.OP for cls in protocol.REQUESTS.values() if not cls.CHANGES}
    assert looks == {"status", "ping"}
