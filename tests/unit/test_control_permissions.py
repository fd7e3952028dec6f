"""Who may ask what of a worker (issue 24 item 1): anyone may look, only root may change.

The worker decides per request from the peer's uid (SO_PEERCRED), not per connection and never
by what the client says of itself: protocol.refusal() is the rule, the Server applies it to
every parsed request before the handler sees it."""
import errno
import json
import os
import socket

import pytest

from agrconfig import options
from agrconfig.errors import AgrError
from agrconfig.ipc import protocol, server

NOBODY = 65534

# One request of every type, as a client would send it.
SAMPLES = {
    "status": protocol.Status(),
    "ping": protocol.Ping(),
    "shutdown": protocol.Shutdown(),
    "save": protocol.Save(),
    "addport": protocol.AddPort("re0"),
    "delport": protocol.DelPort("re0"),
    "setflags": protocol.SetFlags({"lacp_fast": True}),
    "setmtu": protocol.SetMtu(1400),
    "setport": protocol.SetPort("re0", {"port_priority": 7}),
}
# The looks: a new request type is a change (root's) unless it is added here on purpose.
LOOKS = {"status", "ping"}


def test_every_request_type_has_a_sample():
    assert set(SAMPLES) == set(protocol.REQUESTS), "a new request type needs a sample (and a decision) here"


@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_root_may_send_every_request(op):
    assert protocol.refusal(SAMPLES[op], 0) is None


@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_anyone_else_may_look_and_nothing_more(op):
    req = SAMPLES[op]
    for uid in (1, 1000, NOBODY):
        refused = protocol.refusal(req, uid)
        if op in LOOKS:
            assert refused is None
            assert not req.CHANGES
        else:
            assert isinstance(refused, AgrError) and refused.errno == errno.EPERM
            assert refused.ioctl.startswith("SIOC"), refused.ioctl
            assert op in refused.detail and "only root" in refused.detail
            assert req.CHANGES, "a request refused to users is one that is not sent again"


def test_the_refusal_names_the_ioctl_as_ifconfig_does():
    ioctl = {op: protocol.refusal(req, NOBODY).ioctl for op, req in SAMPLES.items() if op not in LOOKS}
    assert ioctl == {"shutdown": "SIOCIFDESTROY", "save": "SIOCSETAGR", "addport": "SIOCSETAGR",
                     "delport": "SIOCSETAGR", "setflags": "SIOCSETAGR", "setmtu": "SIOCSIFMTU",
                     "setport": "SIOCSETAGR"}
    assert str(protocol.refusal(SAMPLES["setmtu"], NOBODY)) == \
        "SIOCSIFMTU: Operation not permitted (EPERM: setmtu: only root may change agr interfaces)"


@pytest.mark.parametrize("option", [o for o in options.OPTIONS if o.scope == "agr"], ids=lambda o: o.key)
def test_every_option_of_the_schema_is_refused_with_its_ioctl(option):
    for value in option.kind.values():
        req = protocol.SetFlags({option.key: value})
        refused = protocol.refusal(req, NOBODY)
        assert refused.errno == errno.EPERM
        want = "SIOCSIFFLAGS" if option.ifflag else "SIOCALIFADDR" if option.key == "lladdr" else "SIOCSETAGR"
        assert refused.ioctl == want, option.key


# -- the server applies it to each request ------------------------------------------------------

@pytest.fixture
def served(monkeypatch):
    """A Server whose peers all have the uid the test sets (SO_PEERCRED faked), and what its
    handler was asked."""
    address = f"\0agrconfig-test-perm/{os.getpid()}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(address)
    listener.listen(8)
    listener.setblocking(False)
    handled = []
    uid = {"value": NOBODY}
    monkeypatch.setattr(server, "peer_uid", lambda sock: uid["value"])
    srv = server.Server(listener, lambda req, now: handled.append(req) or {"ok": True, "now": now}, clock=lambda: 1.0)

    def ask(req, as_uid, now=1.0):
        uid["value"] = as_uid
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(address)
        client.sendall(json.dumps(req.to_json()).encode())
        client.shutdown(socket.SHUT_WR)
        srv.on_readable(now, None)          # accept: the request is there already
        for conn in list(srv.conns.values()):
            srv.on_readable(now, conn)
        data = b""
        while chunk := client.recv(65536):
            data += chunk
        client.close()
        return json.loads(data)

    yield ask, handled
    srv.close()
    listener.close()


def test_the_server_answers_a_look_from_anyone_and_refuses_a_change(served):
    ask, handled = served
    for op, req in SAMPLES.items():
        handled.clear()
        reply = ask(req, NOBODY)
        assert reply["version"] == protocol.PROTOCOL_VERSION
        if op in LOOKS:
            assert reply["result"] == {"ok": True, "now": 1.0} and handled == [req]
        else:
            assert reply["error"]["errno"] == "EPERM", reply
            assert reply["error"]["ioctl"] == protocol.refusal(req, NOBODY).ioctl
            assert handled == [], f"{op} reached the handler"


def test_the_same_connection_decides_by_its_own_peer_per_request(served):
    ask, handled = served
    assert ask(SAMPLES["addport"], 0)["result"] == {"ok": True, "now": 1.0}
    assert ask(SAMPLES["addport"], 1000)["error"]["errno"] == "EPERM"
    assert ask(SAMPLES["status"], 1000)["result"] == {"ok": True, "now": 1.0}
    assert handled == [SAMPLES["addport"], SAMPLES["status"]]


def test_a_bad_request_from_anyone_is_still_einval(served):
    ask, handled = served

    class Bogus(protocol.Request):
        __slots__ = ()
        OP = "exec"
    reply = ask(Bogus(), NOBODY)
    assert reply["error"]["errno"] == "EINVAL" and handled == []


def test_users_asking_in_a_loop_get_a_recent_reply_not_a_new_status_each(served):
    """A user's look is answered with one at most LOOK_REUSE old; root's always afresh, and a
    change makes the next look afresh too."""
    ask, handled = served
    status = SAMPLES["status"]
    assert ask(status, 1000, now=10.0)["result"]["now"] == 10.0
    assert ask(status, 2000, now=10.05)["result"]["now"] == 10.0        # reused
    assert ask(status, 0, now=10.06)["result"]["now"] == 10.06          # root: afresh
    assert ask(status, 1000, now=10.2)["result"]["now"] == 10.2         # too old: afresh
    assert ask(SAMPLES["setmtu"], 0, now=10.21)["result"]["now"] == 10.21
    assert ask(status, 1000, now=10.22)["result"]["now"] == 10.22       # after a change: afresh
    assert ask(SAMPLES["ping"], 1000, now=10.23)["result"]["now"] == 10.23   # each look its own
    assert handled == [status, status, status, SAMPLES["setmtu"], status, SAMPLES["ping"]]
