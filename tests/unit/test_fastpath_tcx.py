"""The fast path's tcx bookkeeping with a fake hook: which program is taken, by which position;
and when a port's program goes onto it (at once, or after the control request's reply)."""
import errno
import logging
import os

import pytest

from agrconfig.net import tc
from agrconfig.worker import bpf, datapath, fastpath

HOOK = bpf.BPF_TCX_INGRESS


class FakeHook:
    """One device's tcx hook: ids in order, a revision, and the calls made."""

    def __init__(self, ids, stale=0):
        self.ids, self.revision, self.stale = list(ids), 7, stale
        self.detached, self.attached = [], []
        self.fds, self.replaced, self.detached_fds = [], [], []   # ours, by descriptor

    def query(self, ifindex, attach_type):
        return list(self.ids), self.revision

    def detach(self, ifindex, attach_type, prog_fd=0, flags=0, relative_id=0, revision=0):
        if prog_fd:                                   # ours, by its descriptor
            if prog_fd not in self.fds:
                raise OSError(errno.ENOENT, "not attached")
            self.fds.remove(prog_fd)
            self.detached_fds.append(prog_fd)
            return
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
        self.fds.append(prog_fd)

    def replace(self, ifindex, attach_type, new_fd, old_fd):
        if old_fd not in self.fds:
            raise OSError(errno.ENOENT, "not attached")
        self.fds[self.fds.index(old_fd)] = new_fd
        self.replaced.append((new_fd, old_fd))


@pytest.fixture
def hook(monkeypatch):
    def make(ids, stale=0):
        h = FakeHook(ids, stale)
        monkeypatch.setattr(bpf, "tcx_query", h.query)
        monkeypatch.setattr(bpf, "tcx_detach", h.detach)
        monkeypatch.setattr(bpf, "tcx_attach", h.attach)
        monkeypatch.setattr(bpf, "tcx_replace", h.replace)
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


# -- a port's program on tcx after the reply (attach_port(defer_tcx=True), settle) ---------------
PORT = 1                                              # "lo": a port name every namespace has


class FakeTc:
    """clsact hooks holding filters (tc.Filter), with the calls fastpath makes."""

    def __init__(self, monkeypatch, ours_on_port=None):
        self.hooks = {}
        if ours_on_port is not None:                  # a dead worker's filter, its program id
            self.hooks[(PORT, tc.INGRESS)] = [self._filter(tc.INGRESS, fastpath.INGRESS_NAME, ours_on_port)]
        for name in ("add_clsact", "replace_bpf", "filters", "del_filter", "del_clsact"):
            monkeypatch.setattr(tc, name, getattr(self, name))

    @staticmethod
    def _filter(parent, name, prog_id):
        return tc.Filter(kind="bpf", parent=parent, prio=fastpath.PRIO, protocol=fastpath.ETH_P_ALL,
                         handle=fastpath.HANDLE, name=name, prog_id=prog_id)

    def add_clsact(self, ifindex):
        pass

    def del_clsact(self, ifindex):
        pass

    def replace_bpf(self, ifindex, parent, prio, handle, fd, name, protocol):
        self.hooks[(ifindex, parent)] = [self._filter(parent, name, bpf.prog_id(fd))]

    def filters(self, ifindex, parent):
        return list(self.hooks.get((ifindex, parent), ()))

    def del_filter(self, ifindex, parent, prio, handle, protocol):
        self.hooks.pop((ifindex, parent), None)


@pytest.fixture
def fast():
    f = fastpath.FastPath(77)
    yield f
    f.close()


def test_a_deferred_attach_puts_the_program_on_tcx_at_settle(hook, monkeypatch, fast):
    h = hook([])
    FakeTc(monkeypatch)
    fast.attach_port(PORT, defer_tcx=True)
    fd = fast.port_progs[PORT]
    assert h.attached == [] and fast.tcx_pending == {PORT: fd}
    fast.settle()
    assert h.attached == [(fd, None)] and fast.tcx_pending == {}
    fast.settle()                                     # once only
    assert h.attached == [(fd, None)]


def test_an_attach_not_deferred_puts_it_at_once(hook, monkeypatch, fast):
    h = hook([])
    FakeTc(monkeypatch)
    fast.attach_port(PORT)
    assert h.attached == [(fast.port_progs[PORT], None)] and fast.tcx_pending == {}


def test_a_port_with_our_program_on_tcx_is_put_at_once(hook, monkeypatch, fast):
    h = hook([3, 31])                                 # 31: a dead worker's, which tcx runs first
    FakeTc(monkeypatch, ours_on_port=31)
    fast.attach_port(PORT, defer_tcx=True)
    assert h.attached == [(fast.port_progs[PORT], 31)] and h.detached == [31]
    assert fast.tcx_pending == {}


def test_a_port_attached_again_keeps_one_pending_put_of_its_new_program(hook, monkeypatch, fast):
    h = hook([])
    FakeTc(monkeypatch)
    fast.attach_port(PORT, defer_tcx=True)
    fast.attach_port(PORT)                            # ours is the filter's: replaced at once
    assert fast.tcx_pending == {} and len(h.attached) == 1


def test_detach_before_settle_drops_the_pending_put(hook, monkeypatch, fast):
    h = hook([])
    fake = FakeTc(monkeypatch)
    fast.attach_port(PORT, defer_tcx=True)
    fast.detach_port(PORT)
    assert fast.tcx_pending == {} and fake.hooks == {}
    fast.settle()
    assert h.attached == []


def test_close_drops_the_pending_puts(hook, monkeypatch):
    h = hook([])
    FakeTc(monkeypatch)
    f = fastpath.FastPath(77)
    f.attach_port(PORT, defer_tcx=True)
    f.close()
    assert f.tcx_pending == {}
    f.settle()
    assert h.attached == []


def test_a_failing_put_is_logged_not_raised(hook, monkeypatch, fast, caplog):
    hook([])
    FakeTc(monkeypatch)

    def refused(*_a, **_k):
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(bpf, "tcx_attach", refused)
    fast.attach_port(PORT, defer_tcx=True)
    with caplog.at_level(logging.WARNING, logger="agrconfig"):
        fast.settle()
    assert fast.tcx_pending == {}
    assert "port lo" in caplog.text and "Operation not permitted" in caplog.text
    assert "the clsact filter carries its frames" in caplog.text


def test_without_tcx_settle_is_quiet(monkeypatch, fast, caplog):
    def absent(*_args, **_kwargs):
        raise OSError(errno.EINVAL, "Invalid argument")
    for name in ("tcx_query", "tcx_detach"):
        monkeypatch.setattr(bpf, name, absent)
    monkeypatch.setattr(bpf, "tcx_attach", lambda *a, **k: pytest.fail("attached without tcx"))
    FakeTc(monkeypatch)
    fast.attach_port(PORT, defer_tcx=True)
    with caplog.at_level(logging.DEBUG, logger="agrconfig"):
        fast.settle()
    assert fast.tcx_pending == {} and caplog.text == ""


class Relay:
    tap_sink = None


def test_the_ebpf_path_puts_on_tcx_after_the_turns_events(hook, monkeypatch, fast):
    """attach_port leaves the tcx step pending, get_timer says "at once", handle_timer (run by
    the loop after the turn's events, the control request's reply among them) does it."""
    h = hook([])
    FakeTc(monkeypatch)
    path = datapath.EbpfPath("agr9", Relay(), fast)
    assert path.get_timer() is None
    path.attach_port(PORT)
    assert h.attached == [] and path.get_timer() == 0.0
    path.handle_timer(1000.0)
    assert h.attached == [(fast.port_progs[PORT], None)] and path.get_timer() is None


def test_a_pending_put_comes_before_a_later_join_deadline(hook, monkeypatch, fast):
    hook([])
    FakeTc(monkeypatch)
    path = datapath.EbpfPath("agr9", Relay(), fast)
    monkeypatch.setattr(path.handover, "deadline", lambda: 1005.0)
    path.attach_port(PORT)
    assert path.get_timer() == 0.0
    path.handle_timer(1000.0)
    assert path.get_timer() == 1005.0


# -- a detached port's program off tcx at once, its place holder after the reply ------------------
def test_a_deferred_detach_puts_pass_in_place_and_settle_takes_it_off(hook, monkeypatch, fast):
    h = hook([])
    fake = FakeTc(monkeypatch)
    fast.attach_port(PORT)
    fd = fast.port_progs[PORT]
    fast.detach_port(PORT, defer_tcx=True)
    pass_fd = fast._pass_fd
    assert h.replaced == [(pass_fd, fd)] and h.fds == [pass_fd]     # ours decides nothing more
    assert fake.hooks == {} and fast.port_progs == {} and fast.unsettled
    assert h.detached_fds == []                                        # no grace period waited for
    fast.settle()
    assert h.fds == [] and h.detached_fds == [pass_fd] and not fast.unsettled


def test_pass_decides_nothing():
    fd = bpf.prog_load(fastpath.PASS, "agr_pass")
    try:
        assert bpf.prog_test_run(fd, bytes(64)) == 0xFFFFFFFF        # TCX_NEXT (TC_ACT_UNSPEC)
    finally:
        os.close(fd)


def test_a_detach_not_deferred_takes_ours_off_at_once(hook, monkeypatch, fast):
    h = hook([])
    FakeTc(monkeypatch)
    fast.attach_port(PORT)
    fd = fast.port_progs[PORT]
    fast.detach_port(PORT)
    assert h.replaced == [] and h.detached_fds == [fd] and h.fds == [] and not fast.unsettled


def test_a_deferred_detach_of_a_program_not_on_tcx_leaves_nothing_to_settle(hook, monkeypatch, fast):
    h = hook([])
    fake = FakeTc(monkeypatch)
    fast.attach_port(PORT, defer_tcx=True)           # still pending
    fast.detach_port(PORT, defer_tcx=True)
    assert h.fds == [] and h.replaced == [] and fake.hooks == {} and not fast.unsettled


def test_close_takes_pass_off(hook, monkeypatch):
    h = hook([])
    FakeTc(monkeypatch)
    f = fastpath.FastPath(77)
    f.attach_port(PORT)
    f.detach_port(PORT, defer_tcx=True)
    pass_fd = f._pass_fd
    f.close()
    assert h.fds == [] and h.detached_fds == [pass_fd] and not f.unsettled and f._pass_fd is None


def test_a_failing_pass_removal_is_logged_not_raised(hook, monkeypatch, fast, caplog):
    h = hook([])
    FakeTc(monkeypatch)
    fast.attach_port(PORT)
    fast.detach_port(PORT, defer_tcx=True)

    def refused(*_a, **_k):
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(bpf, "tcx_detach", refused)
    with caplog.at_level(logging.WARNING, logger="agrconfig"):
        fast.settle()
    assert not fast.unsettled and h.fds == [fast._pass_fd]
    assert "port lo" in caplog.text and "Operation not permitted" in caplog.text


def test_without_tcx_a_deferred_detach_is_as_before(monkeypatch, fast, caplog):
    def absent(*_args, **_kwargs):
        raise OSError(errno.EINVAL, "Invalid argument")
    for name in ("tcx_query", "tcx_detach", "tcx_attach", "tcx_replace"):
        monkeypatch.setattr(bpf, name, absent)
    fake = FakeTc(monkeypatch)
    fast.attach_port(PORT)
    with caplog.at_level(logging.DEBUG, logger="agrconfig"):
        fast.detach_port(PORT, defer_tcx=True)
        fast.settle()
    assert fake.hooks == {} and not fast.unsettled and caplog.text == ""


def test_the_ebpf_path_takes_pass_off_after_the_turns_events(hook, monkeypatch, fast):
    h = hook([])
    FakeTc(monkeypatch)
    path = datapath.EbpfPath("agr9", Relay(), fast)
    path.attach_port(PORT)
    path.handle_timer(1000.0)
    fd = fast.port_progs[PORT]
    path.detach_port(PORT)
    assert h.replaced == [(fast._pass_fd, fd)] and path.get_timer() == 0.0
    path.handle_timer(1000.0)
    assert h.fds == [] and path.get_timer() is None
