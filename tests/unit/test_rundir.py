"""The runtime directory lives while its namespace has agr interfaces: removed by the command
that leaves none, and by a create that finds a namespace gone. Its locks stay locks while it
comes and goes. Runs in a temporary RUN_ROOT; the namespaces' liveness is a fake scan."""
import fcntl
import os
import threading

import pytest

from agrconfig import paths


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUN_ROOT", str(tmp_path / "agrconfig"))
    paths._checked.clear()
    yield tmp_path / "agrconfig"
    paths._checked.clear()


def own(root):
    return root / f"netns-{paths.netns_id()}"


def test_the_command_that_leaves_no_agr_removes_the_directory(root):
    fd = paths.lock_namespace()
    assert own(root).is_dir() and (own(root) / "lock").exists()
    paths.unlock_namespace(fd)
    assert not own(root).exists()
    assert root.is_dir()   # the root stays: other namespaces use it


@pytest.mark.parametrize("left", ["agr0.state", "agr1.pid", "agr0.log", "agr0.state.bad", "unknown"])
def test_the_directory_stays_while_anything_of_an_agr_is_in_it(root, left):
    fd = paths.lock_namespace()
    (own(root) / left).write_text("x")
    paths.unlock_namespace(fd)
    assert (own(root) / left).exists() and (own(root) / "lock").exists()


def test_a_subdirectory_keeps_it_too(root):
    fd = paths.lock_namespace()
    (own(root) / "sub").mkdir()
    paths.unlock_namespace(fd)
    assert (own(root) / "sub").is_dir()


def test_a_lock_on_a_file_unlinked_meanwhile_is_taken_again(root, monkeypatch):
    """The remover unlinks the lock file while a waiter sits in flock: the waiter must not
    believe it holds the lock."""
    real_flock = fcntl.flock
    calls = []

    def flock(fd, op):
        real_flock(fd, op)
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/lock"):
            calls.append(op)
            if len(calls) == 1:   # as if the holder removed the directory while we waited
                os.unlink(own(root) / "lock")
    monkeypatch.setattr(paths.fcntl, "flock", flock)
    fd = paths.lock_namespace()
    try:
        assert len(calls) == 2
        assert os.fstat(fd).st_nlink == 1
        assert os.fstat(fd).st_ino == os.stat(own(root) / "lock").st_ino
    finally:
        os.close(fd)


def waiting_on_flock(pid):
    """A blocked flock of `pid` shows in /proc/locks as a '->' line."""
    with open("/proc/locks") as f:
        return any("->" in line and f" {pid} " in line for line in f)


def test_a_waiter_gets_the_lock_of_the_new_directory_after_removal(root):
    first = paths.lock_namespace()
    got = {}
    waiter = threading.Thread(target=lambda: got.setdefault("fd", paths.lock_namespace()))
    waiter.start()
    for _ in range(10000):
        if waiting_on_flock(os.getpid()):
            break
        waiter.join(0.001)
    else:
        pytest.fail("the second command never waited for the lock")
    paths.unlock_namespace(first)   # no agr: removes the directory, lock file and all
    waiter.join(5)
    fd = got["fd"]
    try:
        # It holds the lock of the directory made again, and the lock excludes a third.
        assert os.fstat(fd).st_nlink == 1
        assert os.fstat(fd).st_ino == os.stat(own(root) / "lock").st_ino
        assert paths.take_lock(paths.lock_file, blocking=False) is None
    finally:
        paths.unlock_namespace(fd)
    assert not own(root).exists()


def make(root, ino, *files):
    d = root / f"netns-{ino}"
    d.mkdir(parents=True, mode=0o700)
    for name in ("lock", "revive.lock", paths.STAMP, *files):
        (d / name).write_text("x")
    return d


def scans(*results):
    """A fake live_namespaces() answering `results` in turn (the last one from then on)."""
    answers = list(results)
    return lambda: answers.pop(0) if len(answers) > 1 else answers[0]


def test_sweep_removes_the_directories_of_namespaces_that_are_gone(root):
    dead = make(root, 101, "agr0.state", "agr0.pid", "agr0.log")
    dead_empty = make(root, 102)
    live = make(root, 103, "agr0.state")
    other = root / "something-else"
    other.mkdir()
    removed = paths.sweep(scan=scans(({103}, True)))
    assert sorted(removed) == ["netns-101", "netns-102"]
    assert not dead.exists() and not dead_empty.exists()
    assert (live / "agr0.state").exists() and other.is_dir()


def test_sweep_never_removes_our_own_directory(root):
    mine = make(root, paths.netns_id(), "agr0.state")
    assert paths.sweep(scan=scans((set(), True))) == []
    assert (mine / "agr0.state").exists()


def test_sweep_skips_a_directory_whose_lock_is_held(root):
    busy = make(root, 104, "agr0.state")
    fd = os.open(busy / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert paths.sweep(scan=scans((set(), True))) == []
    finally:
        os.close(fd)
    assert (busy / "agr0.state").exists()
    for name in ("revive.lock", "."):   # the revive lock, and the directory's own (a stamp being written)
        fd = os.open(busy / name, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            assert paths.sweep(scan=scans((set(), True))) == []
        finally:
            os.close(fd)
    assert paths.sweep(scan=scans((set(), True))) == ["netns-104"]


def test_sweep_looks_again_with_the_locks_held(root):
    """A namespace that came alive between the first look and the locks (made with the dead
    one's inode, say) is seen by the second look."""
    d = make(root, 105, "agr0.state")
    assert paths.sweep(scan=scans((set(), True), ({105}, True))) == []
    assert (d / "agr0.state").exists()


def test_an_incomplete_look_removes_only_what_holds_no_agr(root):
    with_state = make(root, 106, "agr0.state")
    empty = make(root, 107)
    assert paths.sweep(scan=scans((set(), False))) == ["netns-107"]
    assert (with_state / "agr0.state").exists() and not empty.exists()


def test_a_directory_of_someone_else_is_left_alone(root, monkeypatch):
    d = make(root, 108)
    monkeypatch.setattr(paths.os, "geteuid", lambda: os.getuid() + 1)
    assert paths.sweep(scan=scans((set(), True))) == []
    assert d.exists()


def test_nsfs_mounts_name_their_namespaces():
    table = ("22 27 0:21 / /proc rw,relatime - proc proc rw\n"
             "47 45 0:4 net:[4026532176] /run/netns/a rw shared:2 - nsfs nsfs rw\n"
             "48 45 0:4 mnt:[4026532177] /run/mnt rw shared:2 - nsfs nsfs rw\n"
             "49 45 0:30 / /tmp/net:[4026532178] rw - tmpfs tmpfs rw\n")
    assert paths.nsfs_networks(table) == {4026532176}


def test_the_live_look_sees_our_own_namespace_and_the_initial_one():
    live, _complete = paths.live_namespaces()
    assert paths.netns_id() in live and paths.INIT_NET_NS in live


def test_a_file_renamed_away_while_the_directory_is_repaired_is_no_error(root, monkeypatch):
    """Another worker's agrN.state.tmp may vanish between the listing and its stat (CI saw
    FileNotFoundError there fail an attach under test_scale)."""
    paths.run_dir(create=True)
    (own(root) / "agr3.state.tmp").write_text("x")
    (own(root) / "agr4.state").write_text("x")
    os.chmod(own(root) / "agr4.state", 0o644)
    real_scandir = os.scandir

    class Vanishing:
        def __init__(self, entry):
            self.entry, self.path, self.name = entry, entry.path, entry.name

        def stat(self, follow_symlinks=True):
            if self.name.endswith(".tmp"):
                os.unlink(self.path)
            return self.entry.stat(follow_symlinks=follow_symlinks)

    class Listing:
        def __init__(self, path):
            self.it = real_scandir(path)

        def __enter__(self):
            return (Vanishing(e) for e in self.it)

        def __exit__(self, *exc):
            self.it.close()

    monkeypatch.setattr(paths.os, "scandir", Listing)
    paths.run_dir(create=True)
    assert oct(os.stat(own(root) / "agr4.state").st_mode & 0o777) == "0o600"   # the rest still repaired


@pytest.fixture
def no_worker_fd(monkeypatch):
    monkeypatch.setattr(paths, "_worker_fd", None)


def test_an_empty_workers_directory_does_not_keep_it(root):
    fd = paths.lock_namespace()
    (own(root) / paths.WORKER_DIR).mkdir()
    paths.unlock_namespace(fd)
    assert not own(root).exists()


def test_a_workers_file_keeps_it(root):
    fd = paths.lock_namespace()
    (own(root) / paths.WORKER_DIR).mkdir()
    (own(root) / paths.WORKER_DIR / "agr0.state").write_text("x")
    paths.unlock_namespace(fd)
    assert (own(root) / paths.WORKER_DIR / "agr0.state").exists()


def test_the_workers_directory_is_theirs_group_root_setgid_and_held_open(root, no_worker_fd):
    import stat
    paths.run_dir(create=True)
    w = own(root) / paths.WORKER_DIR
    w.mkdir(mode=0o777)
    (w / "agr0.state").write_text("{}")
    os.symlink("/etc/shadow", w / "agr1.state")   # planted: removed
    fd = paths.open_worker_dir(4242)
    try:
        assert paths.in_worker() and paths.worker_dir() == f"/proc/self/fd/{fd}"
        st = os.stat(w)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4242, 0, 0o2770)
        st = os.lstat(w / "agr0.state")
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4242, 0, 0o640)
        assert not os.path.lexists(w / "agr1.state")
        assert paths.state_file("agr0") == f"/proc/self/fd/{fd}/agr0.state"
        assert paths.places(paths.state_file("agr0")) == (paths.state_file("agr0"),)
    finally:
        paths._worker_fd = None
        os.close(fd)


def test_an_earlier_releases_files_are_adopted_on_upgrade(root, no_worker_fd):
    import stat
    d = paths.run_dir(create=True)
    for suffix, text in ((".state", "old state"), (".log", "old log"), (".pid", "1")):
        with open(os.path.join(d, "agr0" + suffix), "w") as f:
            f.write(text)
    assert paths.places(paths.state_file("agr0"))[1] == os.path.join(d, "agr0.state")   # the front end reads both
    fd = paths.open_worker_dir(4242)
    try:
        paths.adopt_legacy("agr0", 4242)
        w = own(root) / paths.WORKER_DIR
        assert (w / "agr0.state").read_text() == "old state" and (w / "agr0.log").read_text() == "old log"
        st = os.lstat(w / "agr0.state")
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4242, 0, 0o640)
        assert not any(os.path.exists(os.path.join(d, "agr0" + s)) for s in (".state", ".log", ".pid"))
    finally:
        paths._worker_fd = None
        os.close(fd)


def test_links_a_worker_plants_are_never_followed_by_root(root, no_worker_fd, tmp_path, caplog):
    """The workers own their directory: root reads, chmods and chowns nothing through a link
    or a FIFO put there."""
    import stat
    from agrconfig.worker import statefile
    target = tmp_path / "roots-file"
    target.write_text('{"name": "agr0"}')
    target.chmod(0o600)
    paths.run_dir(create=True)
    w = own(root) / paths.WORKER_DIR
    w.mkdir()
    os.symlink(target, w / "agr0.state")
    os.symlink(target, w / "agr0.pid")
    os.mkfifo(w / "agr1.state")
    assert statefile.load("agr0") is None and statefile.load("agr1") is None   # no hang on the FIFO
    assert "state file unreadable" in caplog.text
    from agrconfig.client import workers
    assert workers._pid_from_file("agr0") is None
    paths.run_dir(create=True)   # the front end's repair
    fd = paths.open_worker_dir(4242)   # the supervisor's
    try:
        assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.stat().st_uid == 0
        assert not os.path.lexists(w / "agr0.state") and not os.path.lexists(w / "agr1.state")
    finally:
        paths._worker_fd = None
        os.close(fd)
