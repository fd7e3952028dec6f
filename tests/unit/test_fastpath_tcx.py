"""The fast path's tcx bookkeeping with a fake hook: which program is taken, by which position."""
import errno

import pytest

from agrconfig.worker import bpf, fastpath

HOOK = bpf.BPF_TCX_INGRESS


class FakeHook:
    """One device's tcx hook: ids in order, a revision, and the calls made."""

    def __init__(self, ids, stale=0):
        self.ids, self.revision, self.stale = list(ids), 7, stale
        self.detached, self.attached = [], []

    def query(self, ifindex, attach_type):
        return list(self.ids), self.revision

    def detach(self, ifindex, attach_type, prog_fd=0, flags=0, relative_id=0, revision=0):
        if self.stale:
            self.stale -= 1
            self.revision += 1
            raise OSError(errno.ESTALE, "stale")
        assert revision == self.revision
        if flags == bpf.BPF_F_BEFORE:
            i = self.ids.index(relative_id) - 1 if relative_id else 0
        else:
            assert flags == bpf.BPF_F_AFTER
            i = self.ids.index(relative_id) + 1
        self.detached.append(self.ids.pop(i))

    def attach(self, ifindex, attach_type, prog_fd, before_id=None):
        self.attached.append((prog_fd, before_id))


@pytest.fixture
def hook(monkeypatch):
    def make(ids, stale=0):
        h = FakeHook(ids, stale)
        monkeypatch.setattr(bpf, "tcx_query", h.query)
        monkeypatch.setattr(bpf, "tcx_detach", h.detach)
        monkeypatch.setattr(bpf, "tcx_attach", h.attach)
        return h
    return make


@pytest.mark.parametrize("ids", [[5], [5, 9], [9, 5], [3, 5, 9]])
def test_detach_by_id_takes_that_program_only(hook, ids):
    h = hook(ids)
    fastpath._tcx_detach_id(1, HOOK, 5)
    assert h.detached == [5] and h.ids == [i for i in ids if i != 5]


def test_detach_of_an_absent_program_does_nothing(hook):
    h = hook([3, 9])
    fastpath._tcx_detach_id(1, HOOK, 5)
    assert h.detached == [] and h.ids == [3, 9]


def test_a_hook_that_changed_meanwhile_is_read_again(hook):
    h = hook([3, 5, 9], stale=2)
    fastpath._tcx_detach_id(1, HOOK, 5)
    assert h.detached == [5]
    h = hook([3, 5, 9], stale=fastpath.TCX_TRIES)
    with pytest.raises(OSError) as exc:
        fastpath._tcx_detach_id(1, HOOK, 5)
    assert exc.value.errno == errno.ESTALE and h.ids == [3, 5, 9]


def test_put_takes_the_place_of_ours_then_detaches_it(hook):
    h = hook([3, 5, 9])
    fastpath._tcx_put(1, fastpath.INGRESS, 42, old=[5])
    assert h.attached == [(42, 5)] and h.detached == [5]
    h = hook([3])                                     # none of ours there (an older release's filter)
    fastpath._tcx_put(1, fastpath.INGRESS, 42, old=[5])
    assert h.attached == [(42, None)] and h.detached == []


def test_without_tcx_nothing_is_attached(monkeypatch):
    def absent(*_args):
        raise OSError(errno.EINVAL, "Invalid argument")
    monkeypatch.setattr(bpf, "tcx_query", absent)
    monkeypatch.setattr(bpf, "tcx_attach", lambda *a, **k: pytest.fail("attached without tcx"))
    fastpath._tcx_put(1, fastpath.INGRESS, 42, old=[])
    fastpath._tcx_detach_id(1, HOOK, 5)
    assert fastpath.tcx_ours(1, fastpath.INGRESS) == []
