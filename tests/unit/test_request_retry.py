"""The front end asks a worker that died under a request again only when the request is a look
(status, ping), never when it may have changed something (client/workers.request)."""
import errno

import pytest

from agrconfig.client import workers
from agrconfig.errors import AgrError
from agrconfig.ipc import client as control


@pytest.fixture
def dying(monkeypatch):
    sent = []

    def request(name, req):
        sent.append(req.OP)
        raise control.WorkerGone(name, sent=True)
    monkeypatch.setattr(workers, "ensure_worker", lambda name: None)
    monkeypatch.setattr(control, "request", request)
    return sent


def test_a_look_is_asked_again(dying):
    with pytest.raises(AgrError, match="keeps going away") as exc:
        workers.request("agr0", "status")
    assert exc.value.errno == errno.EIO and dying == ["status"] * 3


def test_a_change_is_not_asked_again(dying):
    with pytest.raises(AgrError, match="went away during addport") as exc:
        workers.request("agr0", "addport", port="re0")
    assert exc.value.errno == errno.EIO and dying == ["addport"]


def test_a_change_not_yet_sent_is_asked_again(monkeypatch):
    calls = []

    def request(name, req):
        calls.append(req.OP)
        if len(calls) == 1:
            raise control.WorkerGone(name, sent=False)
        return {"ok": True}
    monkeypatch.setattr(workers, "ensure_worker", lambda name: None)
    monkeypatch.setattr(control, "request", request)
    assert workers.request("agr0", "delport", port="re0") == {"ok": True}
    assert calls == ["delport", "delport"]
