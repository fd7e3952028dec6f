"""privs.drop in a forked child (the tests run as root): the uid change keeps the capabilities
named, CAP_BPF and CAP_PERFMON effective only inside raised(), and only what we were given."""
import json
import os

from agrconfig.worker import privs

NET = (1 << privs.CAP_NET_ADMIN) | (1 << privs.CAP_NET_RAW)
LOADING = (1 << privs.CAP_BPF) | (1 << privs.CAP_PERFMON)


def status():
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    return {k: fields[k].split() for k in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs")}


def in_child(fn):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, json.dumps(fn()).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return json.loads(out)


def test_the_uid_changes_and_the_capabilities_stay():
    def child():
        privs.drop(uid=4242, gid=4243)
        before = status()
        with privs.raised():
            inside = status()
        return before, inside, status()
    before, inside, after = in_child(child)
    assert before["Uid"] == ["4242"] * 4 and before["Gid"] == ["4243"] * 4 and before["Groups"] == []
    assert int(before["CapEff"][0], 16) == NET and int(after["CapEff"][0], 16) == NET
    assert int(inside["CapEff"][0], 16) == NET | LOADING
    assert int(before["CapPrm"][0], 16) == NET | LOADING == int(before["CapBnd"][0], 16)
    assert before["NoNewPrivs"] == ["1"]


def test_raised_bodies_nest_and_each_thread_raises_its_own():
    """The outermost body raises and lowers (a status reads every counter in one); a thread's
    capabilities are its own, so another thread's body raises them for itself."""
    import threading

    def eff(tid=None):
        path = f"/proc/self/task/{tid}/status" if tid else "/proc/thread-self/status"
        with open(path) as f:
            return next(int(l.split()[1], 16) for l in f if l.startswith("CapEff:"))

    def child():
        privs.drop(uid=4242, gid=4243)
        seen, other = [], []
        go, done = threading.Event(), threading.Event()

        def thread():            # started before any body: the steady set
            go.wait()
            other.append(eff())
            with privs.raised():
                other.append(eff())
            other.append(eff())
            done.set()
        t = threading.Thread(target=thread)
        t.start()
        with privs.raised():
            with privs.raised():
                seen.append(eff())
            seen.append(eff())        # still raised: the outer body runs
            go.set()
            done.wait()
            seen.append(eff())        # the thread's lowering did not lower ours
        t.join()
        seen.append(eff())
        return seen, other
    seen, other = in_child(child)
    assert seen == [NET | LOADING, NET | LOADING, NET | LOADING, NET]
    assert other == [NET, NET | LOADING, NET]


def test_only_what_we_were_given_is_kept():
    def child():
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(privs.PR_CAPBSET_DROP, privs.CAP_BPF, 0, 0, 0)
        have = privs.permitted() & ~(1 << privs.CAP_BPF)
        privs._capset(libc, have, have)   # as a front end started without CAP_BPF
        kept = privs.drop(uid=4242, gid=4243)
        return kept, status()
    kept, st = in_child(child)
    assert privs.CAP_BPF not in kept
    assert int(st["CapEff"][0], 16) == NET
    assert int(st["CapPrm"][0], 16) == NET | (1 << privs.CAP_PERFMON)


def test_raised_is_nothing_before_a_drop():
    assert privs._states is None
    with privs.raised():
        pass
