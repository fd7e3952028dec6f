"""The control client accepts answers only from root or the workers' user (SO_PEERCRED): anyone
may bind a dead worker's abstract name."""
import errno
import os
import socket
import uuid

import pytest

from agrconfig import paths
from agrconfig.errors import AgrError
from agrconfig.ipc import client as control


def serve_once_as(uid, address):
    """A child of `uid` that answers one ping on `address`; its pid."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534 if uid else 0)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX)
            s.bind(address)
            s.listen(1)
            os.write(ready_w, b"x")
            c, _ = s.accept()
            try:
                c.recv(65536)
                c.sendall(b'{"version": 1, "result": {"pid": 1}}')
            except OSError:
                pass
            c.close()
        finally:
            os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"x"
    os.close(ready_r)
    return pid


@pytest.fixture
def address(monkeypatch):
    addr = f"\0agrconfig-test/{uuid.uuid4().hex}"
    monkeypatch.setattr(paths, "control_address", lambda name: addr)
    return addr


def test_a_stranger_answering_is_refused(address):
    pid = serve_once_as(65534, address)
    try:
        with pytest.raises(AgrError) as info:
            control.ping("agr0", timeout=5)
        assert info.value.errno == errno.EPERM
        assert f"held by pid {pid} of uid 65534, not by an agrconfig worker" in info.value.detail
    finally:
        os.waitpid(pid, 0)


def test_root_answering_is_heard(address):
    pid = serve_once_as(0, address)
    try:
        assert control.ping("agr0", timeout=5).version == 1
    finally:
        os.waitpid(pid, 0)


def test_the_workers_user_is_trusted_and_only_it(monkeypatch):
    monkeypatch.setattr(control, "_worker_uid", [4242])
    assert control._trusted(0) and control._trusted(4242)
    assert not control._trusted(65534) and not control._trusted(4243)
    monkeypatch.setattr(control, "_worker_uid", [None])   # no such user: root only
    assert control._trusted(0) and not control._trusted(65534)
