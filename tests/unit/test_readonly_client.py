"""A user's command (not root's): it looks through the workers and the kernel, reads no state
file, revives nothing, and is refused every change in ifconfig's words (issue 24 item 1).
The worker's own decision is tests/unit/test_control_permissions.py."""
import errno
import logging
from types import SimpleNamespace

import pytest

from agrconfig.cli.grammar import parse_words
from agrconfig.client import commands, inspect, workers
from agrconfig.errors import AgrError
from agrconfig.ipc import client as control
from tests.unit.statuses import aggregate

TAP = SimpleNamespace(name="agr0", kind="tun", index=7)


@pytest.fixture
def user(monkeypatch):
    """A command run by uid 1000, whose every way to root's files or to a new worker fails the test."""
    monkeypatch.setattr(workers.os, "geteuid", lambda: 1000)
    for name in ("load_state", "all_names", "members", "owner_of", "spawn"):
        monkeypatch.setattr(workers.worker, name, lambda *a, _n=name, **k: pytest.fail(f"a user's command called {_n}"))
    monkeypatch.setattr(workers.paths, "lock_namespace", lambda: pytest.fail("a user's command took the lock"))
    monkeypatch.setattr(workers.paths, "run_dir", lambda create=False: pytest.fail("a user's command read the run dir"))
    monkeypatch.setattr(control, "_peers", {})
    links = {"agr0": TAP, "re0": SimpleNamespace(name="re0", kind="veth", index=3),
             "agr9": SimpleNamespace(name="agr9", kind="veth", index=4)}
    monkeypatch.setattr(workers.rtnl, "link", lambda name=None, index=None: links.get(name))
    monkeypatch.setattr(workers.rtnl, "links", lambda: list(links.values()))
    return links


def answer(monkeypatch, reply):
    """The worker's reply to any request: a status, or an exception raised."""
    asked = []

    def request(name, op, timeout=30.0, **args):
        asked.append((name, op if isinstance(op, str) else op.OP))
        if isinstance(reply, Exception):
            raise reply
        return reply
    monkeypatch.setattr(control, "request", request)
    return asked


def test_a_user_finds_agr_interfaces_in_the_kernel(user):
    assert workers.names() == ["agr0"]          # agr9 is a veth: not ours
    assert workers.exists("agr0") and not workers.exists("agr9") and not workers.exists("agr3")


def test_a_user_asks_the_worker_for_its_status(user, monkeypatch):
    st = aggregate({"ports": [{"name": "re0"}]})
    asked = answer(monkeypatch, st.to_json())
    assert workers.worker_status("agr0") == st
    assert asked == [("agr0", "status")]
    assert workers.members() == {"re0": "agr0"} and workers.owner_of("re0") == "agr0"
    assert workers.owner_of("agr0") is None


def test_a_dead_worker_is_unserved_and_not_revived(user, monkeypatch):
    answer(monkeypatch, control.WorkerGone("agr0"))
    with pytest.raises(workers.Unserved) as info:
        workers.worker_status("agr0")
    assert info.value.errno == errno.ENXIO
    assert info.value.detail == "agr0: no worker answers; root must revive it (agrconfig agr0, as root)"
    assert workers.worker_status("agr9") is None     # not ours: a plain interface
    assert workers.members() == {}


def test_an_earlier_worker_that_answers_root_only_is_unserved(user, monkeypatch):
    def refuse(name, op, timeout=30.0, **args):
        control._note_peer(name, {"version": 3, "release": "0.3.0"})
        raise AgrError(errno.EPERM, "control", "only root may control agr interfaces")
    monkeypatch.setattr(control, "request", refuse)
    with pytest.raises(workers.Unserved) as info:
        workers.worker_status("agr0")
    assert info.value.errno == errno.EPERM
    assert info.value.detail == ("agr0: its worker (agrconfig 0.3.0) answers root only; root must upgrade it "
                                 "(agrconfig agr0, as root)")


def test_other_errors_of_the_worker_are_not_hidden(user, monkeypatch):
    answer(monkeypatch, AgrError(errno.ETIMEDOUT, "control", "worker for agr0 did not answer"))
    with pytest.raises(AgrError) as info:
        workers.worker_status("agr0")
    assert not isinstance(info.value, workers.Unserved) and info.value.errno == errno.ETIMEDOUT


def test_status_of_an_unserved_agr_shows_the_kernels_view_with_a_warning(user, monkeypatch, caplog):
    answer(monkeypatch, control.WorkerGone("agr0"))
    monkeypatch.setattr(inspect.rtnl, "addresses", lambda index: [])
    with caplog.at_level(logging.WARNING, logger="agrconfig"):
        facts = inspect.describe("agr0")
    assert facts.link is TAP and facts.ws is None
    assert [r.getMessage() for r in caplog.records] == [
        "agrconfig: agr0: no worker answers; root must revive it (agrconfig agr0, as root); shown: what the kernel knows"]


def test_worker_statuses_of_a_user_revive_nothing(user, monkeypatch):
    answer(monkeypatch, control.WorkerGone("agr0"))
    out = workers.worker_statuses(["agr0"])
    assert isinstance(out["agr0"], workers.Unserved)


@pytest.mark.parametrize("words, ioctl", [
    (["create"], "SIOCIFCREATE"), (["destroy"], "SIOCIFDESTROY"), (["up"], "SIOCSIFFLAGS"),
    (["down"], "SIOCSIFFLAGS"), (["mtu", "1400"], "SIOCSIFMTU"), (["agrport", "re0"], "SIOCSETAGR"),
    (["-agrport", "re0"], "SIOCSETAGR"), (["inet", "192.0.2.1/24"], "SIOCAIFADDR"),
    (["inet", "192.0.2.1/24", "delete"], "SIOCDIFADDR"), (["inet6", "2001:db8::1/64"], "SIOCAIFADDR_IN6"),
    (["inet6", "2001:db8::1", "delete"], "SIOCDIFADDR_IN6"), (["link0"], "SIOCSIFFLAGS"),
    (["-link1"], "SIOCSIFFLAGS"), (["agrproto", "failover"], "SIOCSIFFLAGS"), (["debug"], "SIOCSIFFLAGS"),
    (["lladdr", "02:00:00:00:00:01"], "SIOCALIFADDR"), (["link", "02:00:00:00:00:01", "active"], "SIOCALIFADDR"),
    (["lacptimeout", "fast"], "SIOCSETAGR"), (["agrportpri", "re0", "7"], "SIOCSETAGR"),
    (["mtu", "1400", "up"], "SIOCSIFMTU"),
])
def test_a_users_change_is_refused_in_ifconfigs_words_before_anything(user, words, ioctl, monkeypatch):
    answer(monkeypatch, AssertionError("a refused change asked the worker"))
    with pytest.raises(AgrError) as info:
        commands.apply("agr0", parse_words(words))
    assert info.value.errno == errno.EPERM and info.value.ioctl == ioctl
    assert str(info.value) == f"{ioctl}: Operation not permitted (EPERM: {words[0]}: only root may change interfaces)"


def test_the_namespace_lock_is_roots(user):
    with pytest.raises(AgrError) as info:
        with commands.Namespace("SIOCIFDESTROY", "--destroy-all"):
            pytest.fail("entered")
    assert str(info.value) == ("SIOCIFDESTROY: Operation not permitted (EPERM: --destroy-all: "
                               "only root may change interfaces)")


def test_root_is_not_refused(monkeypatch):
    monkeypatch.setattr(workers.os, "geteuid", lambda: 0)
    assert workers.privileged()
    commands.require_root("SIOCSIFFLAGS", "up")   # nothing raised
