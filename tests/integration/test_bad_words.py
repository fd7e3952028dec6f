"""Wrong commands through the real binary: exit 1 or 2, one clear 'agrconfig:' line, no
traceback, and nothing changed (links, addresses, agr status)."""
import json

import pytest

from tests.integration.helpers import aggregate, host_pair, ok

pytestmark = pytest.mark.integration

# (words, exit status, a piece of the first line of stderr)
BAD = [
    (["agr0", "mtu", "-1"], 1, "mtu: bad value"),
    (["agr0", "mtu", "0"], 1, "mtu: bad value"),
    (["agr0", "mtu", "99999999"], 1, "mtu: bad value"),
    (["agr0", "mtu", "abc"], 1, "mtu: bad value"),
    (["agr0", "mtu", "²"], 1, "mtu: bad value"),
    (["agr0", "mtu", "9" * 5000], 1, "mtu: bad value"),
    (["agr0", "up", "mtu"], 1, "mtu: missing MTU"),
    (["agr0", "up", "mtu", "12"], 1, "mtu: bad value"),          # nothing applied, not even up
    (["agr0", "inet", "300.1.1.1"], 1, "inet:"),
    (["agr0", "inet", "192.0.2.1/33"], 1, "bad prefix length"),
    (["agr0", "inet", "192.0.2.1/²"], 1, "bad prefix length"),
    (["agr0", "inet", "192.0.2.1", "netmask", "255.0.255.0"], 1, "bad netmask"),
    (["agr0", "inet", "192.0.2.1", "netmask", "0x"], 1, "bad netmask"),
    (["agr0", "inet", "2001:db8::1"], 1, "is not an inet address"),
    (["agr0", "inet6", "2001:db8::1/129"], 1, "bad prefix length"),
    (["agr0", "inet6", "2001:db8::1", "prefixlen", "abc"], 1, "prefixlen"),
    (["agr0", "inet6", "192.0.2.1"], 1, "is not an inet6 address"),
    (["agr0", "agrport", "a b"], 1, "bad interface name"),
    (["agr0", "agrport", "x" * 16], 1, "bad interface name"),
    (["agr0", "agrport", "a/b"], 1, "bad interface name"),
    (["agr0", "agrport", "é" * 8], 1, "bad interface name"),
    (["agr0", "-agrport", "re0:1"], 1, "bad interface name"),
    (["é" * 8, "up"], 1, "bad interface name"),
    (["", "up"], 1, "bad interface name"),
    (["a/b"], 1, "bad interface name"),
    (["agr0", "lacptimeout", "soon"], 1, "lacptimeout"),
    (["agr0", "agrhash", "l7"], 1, "agrhash"),
    (["agr0", "datapath", "turbo"], 1, "datapath"),
    (["agr0", "destroy", "up"], 1, "destroy takes no other words"),
    (["agr0", "frob\nnicate"], 1, "unknown word"),
    (["-a", "agr0"], 1, "option -a not valid here"),
    (["--bogus"], 1, "option --bogus not valid here"),
    (["agr0", "agrport", "nosuch0"], 2, "ENOENT"),
    (["agr0", "-agrport", "re9"], 2, "agrconfig:"),
    (["nosuch9", "mtu", "1400"], 2, "ENXIO"),
    (["re0", "mtu", "1400"], 2, "EBUSY"),
    (["agr9", "destroy"], 2, "agrconfig:"),
    (["agr0", "inet", "192.0.2.77", "delete"], 2, "EADDRNOTAVAIL"),
]

# Fields of `ip -j` output that move on their own (DAD, timers), not because of us.
VOLATILE = {"valid_life_time", "preferred_life_time", "tentative", "dadfailed", "stable-privacy"}


def clean(obj):
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    return obj


def snapshot(lab, ns):
    """What a failed command must not change: links and addresses as `ip -j` shows them, and
    agr0's configuration as agrconfig shows it (not its LACP state and counters, which move on
    with the clock: no partner answers here)."""
    st = json.loads(ok(lab, ns, "--json", "agr0"))
    config = {k: st.get(k) for k in ("ifname", "mtu", "flags_str", "address", "addr_info", "operstate")}
    config["agr_flags"] = st["linkinfo"]["info_data"]["flags"]
    config["ports"] = [p["ifname"] for p in st["agrports"]]
    return {"links": clean(json.loads(lab.ip(ns, "-j", "link", "show").stdout)),
            "addrs": clean(json.loads(lab.ip(ns, "-j", "addr", "show").stdout)),
            "agr0": config}


def differences(before, after):
    return {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def test_bad_words_change_nothing(lab):
    a, _b = host_pair(lab)
    aggregate(lab, a)
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    ok(lab, a, "agr0", "down")
    before = snapshot(lab, a)
    problems = []
    for words, code, text in BAD:
        proc = lab.agr(a, *words)
        err = proc.stderr
        first = err.splitlines()[0] if err else ""
        if proc.returncode != code:
            problems.append(f"{words[:4]}: exit {proc.returncode}, want {code}: {err[:300]!r}")
        if "Traceback" in err or "Error:" in err.split("agrconfig:")[0]:
            problems.append(f"{words[:4]}: a traceback: {err[-500:]!r}")
        if not first.startswith("agrconfig: ") or text not in first:
            problems.append(f"{words[:4]}: first line {first[:200]!r}, want 'agrconfig: ...{text}...'")
        if code == 2 and err.count("\n") != 1:
            problems.append(f"{words[:4]}: not one line: {err[:300]!r}")
        if code == 1 and "Usage:" not in err:
            problems.append(f"{words[:4]}: exit 1 without the usage: {err[:300]!r}")
        if proc.stdout:
            problems.append(f"{words[:4]}: printed on stdout: {proc.stdout[:200]!r}")
        after = snapshot(lab, a)
        if after != before:
            problems.append(f"{words[:4]}: changed something: {str(differences(before, after))[:1000]}")
            before = after
    assert not problems, "\n".join(problems)
