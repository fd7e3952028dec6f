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
    assert privs._lowered is None
    with privs.raised():
        pass
