"""agrmacpolicy same|active|follow under agrproto failover against a plain bridge: the ports' and
agr0's MACs before and after a failover, after a worker restart and after -agrport; `active`
against switch ports that drop frames from any source but their cable's own MAC (a tc filter
standing in for an SR-IOV spoof check); lladdr across its first port leaving, a restart, -n
and --boot with a configuration directory."""
import json
import subprocess
import sys
import time

import pytest

from tests.integration.helpers import ok, status_json, strip_addresses
from tests.integration.test_failover import replies, roles, switched, wait_active
from tests.integration.test_worker import kill_worker

pytestmark = pytest.mark.integration

FIX, FIX2 = "02:00:00:00:99:01", "02:00:00:00:99:02"

# Drops, at ingress on argv[1], every frame whose source MAC is not argv[2]: a switch port's
# spoof check, as a direct-action tc bpf program (this kernel has no flower, matchall or gact).
SPOOF_CHECK = r"""
import sys
from agrconfig.net import rtnl, tc
from agrconfig.worker import bpf
from agrconfig.worker.bpf import Asm, R0, R1, R2, R3, R4
name, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
prog = (Asm().ldx(4, R2, R1, 76).ldx(4, R3, R1, 80)          # skb->data, skb->data_end
        .mov(R4, src=R2).alu("add", R4, 12).jmp("jgt", R4, "drop", src=R3)
        .ldx(4, R4, R2, 6).jmp32("jne", R4, "drop", imm=int.from_bytes(mac[:4], "little"))
        .ldx(2, R4, R2, 10).jmp("jne", R4, "drop", imm=int.from_bytes(mac[4:], "little"))
        .mov(R0, 0).exit()                                    # TC_ACT_OK
        .label("drop").mov(R0, 2).exit())                     # TC_ACT_SHOT
fd = bpf.prog_load(prog.assemble(), "t_spoofcheck")
index = rtnl.link(name).index
tc.add_clsact(index)
tc.replace_bpf(index, tc.INGRESS, 1, 1, fd, "spoofcheck")
"""


def mac_of(lab, ns, dev):
    (link,) = json.loads(lab.ip(ns, "-j", "link", "show", "dev", dev).stdout)
    return link["address"]


def macs(lab, ns):
    return {dev: mac_of(lab, ns, dev) for dev in ("agr0", "re0", "re1")}


def expected(policy, own, agr, active):
    """What each policy gives agr0 and the ports; `agr` is agr0's MAC where the policy keeps it."""
    other = {"re0": "re1", "re1": "re0"}[active]
    if policy == "same":
        return {"agr0": agr, "re0": agr, "re1": agr}
    if policy == "active":
        return {"agr0": own[active], "re0": own["re0"], "re1": own["re1"]}
    return {"agr0": agr, active: agr, other: own[other]}


def failover_host(lab, words, datapath):
    a, s, b = switched(lab)
    own = {p: mac_of(lab, a, p) for p in ("re0", "re1")}
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    ok(lab, a, "agr0", "create", "agrproto", "failover", "datapath", datapath, *words)
    ok(lab, a, "agr0", "agrport", "re0", "agrport", "re1", "inet", "192.0.2.1/24", "up")
    wait_active(lab, a, "re0", datapath)
    return a, s, b, own


def sw0_back(lab, s, a):
    """sw0 up again and forwarding: the bridge enables a port only once the kernel's link watch
    has run (up to a second after its carrier), and drops what arrives on it until then."""
    lab.ip(s, "link", "set", "sw0", "up")
    lab.wait_for(lambda: "state forwarding" in lab.run(s, "bridge", "link", "show", "dev", "sw0").stdout,
                 timeout=5, what="sw0 forwarding")
    lab.wait_for(lambda: roles(lab, a)[1]["re0"][1] == "backup", timeout=10, what="re0 standby again")


def settle_macs(lab, ns, want, what):
    return lab.wait_for(lambda: macs(lab, ns) == want, timeout=5, interval=0.1,
                        what=f"{what}: {want}, have {macs(lab, ns)}")


@pytest.mark.parametrize("policy, datapath", [("same", "relay"), ("active", "ebpf"), ("follow", "ebpf"),
                                              ("follow", "relay")])
def test_each_policy_across_a_failover_a_restart_and_agrport(lab, policy, datapath):
    a, s, b, own = failover_host(lab, ["agrmacpolicy", policy], datapath)
    agr = own["re0"]   # the first port's MAC, where agr0 keeps one
    settle_macs(lab, a, expected(policy, own, agr, "re0"), "re0 active")
    text = ok(lab, a, "agr0")
    assert ("; macpolicy" in text) == (policy != "same") and (policy == "same" or f"; macpolicy {policy}" in text)
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["mac_policy"] == policy
    assert lab.ping(b, "192.0.2.1", count=2, wait=2)

    lab.ip(s, "link", "set", "sw0", "down")
    wait_active(lab, a, "re1", datapath)
    settle_macs(lab, a, expected(policy, own, agr, "re1"), "after the failover to re1")
    assert lab.ping(b, "192.0.2.1", count=2, wait=2)
    sw0_back(lab, s, a)

    # A restarted worker chooses afresh (re0: equal priorities, lower number) and sets each MAC.
    kill_worker(lab, a)
    wait_active(lab, a, "re0", datapath)
    settle_macs(lab, a, expected(policy, own, agr, "re0"), "after a worker restart")
    assert lab.ping(b, "192.0.2.1", count=2, wait=2)

    # -agrport gives each port its own MAC back, whatever the policy.
    ok(lab, a, "agr0", "-agrport", "re0")
    assert mac_of(lab, a, "re0") == own["re0"]
    lab.wait_for(lambda: roles(lab, a)[0] == "re1", timeout=10, what="re1 active")
    want = expected(policy, own, agr, "re1")
    settle_macs(lab, a, {**want, "re0": own["re0"]}, "re0 detached")
    ok(lab, a, "agr0", "-agrport", "re1")
    assert (mac_of(lab, a, "re0"), mac_of(lab, a, "re1")) == (own["re0"], own["re1"])


def spoof_checked(lab, s, own):
    """sw0 and sw1 take only frames from their cable's own MAC, as an SR-IOV switch would."""
    for sw, port in (("sw0", "re0"), ("sw1", "re1")):
        lab.run(s, sys.executable, "-c", SPOOF_CHECK, sw, own[port])


@pytest.mark.parametrize("datapath", ("relay", "ebpf"))
def test_active_survives_a_failover_behind_a_spoof_check(lab, datapath):
    a, s, b, own = failover_host(lab, ["agrmacpolicy", "active"], datapath)
    spoof_checked(lab, s, own)
    assert lab.ping(b, "192.0.2.1", count=2, wait=2)
    pinger = subprocess.Popen(["ip", "netns", "exec", b, "ping", "-c", "200", "-i", "0.01", "-W", "1",
                               "192.0.2.1"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    lab.ip(s, "link", "set", "sw0", "down")
    out, _ = pinger.communicate(timeout=60)
    got = replies(out)
    # The host's own traffic goes on from re1's MAC, which sw1 lets through.
    assert len(got) >= 150 and got[-1] >= 190, f"the ping did not survive the failover: {len(got)} replies\n{out}"
    wait_active(lab, a, "re1", datapath)
    assert mac_of(lab, a, "agr0") == own["re1"]
    lab.wait_for(lambda: f"192.0.2.1 dev eth0 lladdr {own['re1']}" in lab.ip(b, "neigh", "show").stdout,
                 timeout=5, what="b's neighbour entry moved to re1's MAC")


def test_same_does_not_pass_the_spoof_check_after_a_failover(lab):
    """The control: the filter bites. Under same, re1 sends from agr0's (re0's) MAC."""
    a, s, b, own = failover_host(lab, [], "ebpf")
    spoof_checked(lab, s, own)
    assert lab.ping(b, "192.0.2.1", count=2, wait=2)
    lab.ip(s, "link", "set", "sw0", "down")
    wait_active(lab, a, "re1", "ebpf")
    assert not lab.ping(b, "192.0.2.1", count=3, wait=1)


def test_lladdr_across_the_first_port_leaving_a_restart_and_minus_lladdr(lab):
    a, s, b = switched(lab)
    own = {p: mac_of(lab, a, p) for p in ("re0", "re1")}
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    ok(lab, a, "agr0", "create", "agrproto", "failover", "lladdr", FIX)
    assert mac_of(lab, a, "agr0") == FIX, "before any port"
    ok(lab, a, "agr0", "agrport", "re0", "agrport", "re1", "inet", "192.0.2.1/24", "up")
    wait_active(lab, a, "re0", "ebpf")
    assert macs(lab, a) == {"agr0": FIX, "re0": FIX, "re1": FIX}
    assert f"; lladdr {FIX}" in ok(lab, a, "agr0")
    assert lab.ping(b, "192.0.2.1", count=2, wait=2)
    ok(lab, a, "agr0", "lladdr", FIX2)   # changed while in use: announced at once
    assert macs(lab, a) == {"agr0": FIX2, "re0": FIX2, "re1": FIX2}
    assert lab.ping(b, "192.0.2.1", count=2, wait=2)
    ok(lab, a, "agr0", "link", FIX, "active")

    ok(lab, a, "agr0", "-agrport", "re0")   # its first port leaves
    assert macs(lab, a) == {"agr0": FIX, "re0": own["re0"], "re1": FIX}
    ok(lab, a, "agr0", "-agrport", "re1")
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)   # their link-local came back with their own IPv6 settings
    ok(lab, a, "agr0", "agrport", "re0")   # a new first port
    assert macs(lab, a) == {"agr0": FIX, "re0": FIX, "re1": own["re1"]}
    ok(lab, a, "agr0", "agrport", "re1")
    kill_worker(lab, a)
    lab.wait_for(lambda: status_json(lab, a), what="the restarted worker")
    settle_macs(lab, a, {"agr0": FIX, "re0": FIX, "re1": FIX}, "after a worker restart")
    assert status_json(lab, a)["linkinfo"]["info_data"]["flags"]["lladdr"] == FIX
    assert lab.ping(b, "192.0.2.1", count=2, wait=2)

    # -n: what already holds is no change, in either spelling.
    for words in (["lladdr", FIX], ["link", FIX, "active"], ["lladdr", FIX.upper()]):
        dry = lab.agr(a, "-n", "agr0", *words)
        assert (dry.returncode, dry.stdout) == (0, ""), dry
    dry = lab.agr(a, "-n", "agr0", "-lladdr")
    assert (dry.returncode, dry.stdout) == (3, "agrconfig agr0 -lladdr\n"), dry
    # Bad values exit 1, the exclusion with active fails; nothing changes.
    for words, code, message in ((["lladdr", "01:00:5e:00:00:01"], 1, "multicast"),
                                 (["lladdr", "00:00:00:00:00:00"], 1, "all zeros"),
                                 (["link", FIX], 1, "link MAC active"),
                                 (["agrmacpolicy", "active"], 2, "exclude each other")):
        bad = lab.agr(a, "agr0", *words)
        assert bad.returncode == code and message in bad.stderr, (words, bad.stderr)
    flags = status_json(lab, a)["linkinfo"]["info_data"]["flags"]
    assert (flags["lladdr"], flags["mac_policy"], mac_of(lab, a, "agr0")) == (FIX, "same", FIX)

    # -lladdr (ours): the first port's own MAC again, and every port with it.
    ok(lab, a, "agr0", "-lladdr")
    assert macs(lab, a) == {"agr0": own["re0"], "re0": own["re0"], "re1": own["re0"]}
    assert lab.ping(b, "192.0.2.1", count=2, wait=2), "announced: b knows the new MAC at once"


def test_lladdr_from_a_configuration_directory_at_boot(lab, tmp_path):
    a, _s, _b = switched(lab)
    own = {p: mac_of(lab, a, p) for p in ("re0", "re1")}
    for port in ("re0", "re1"):
        strip_addresses(lab, a, port)
    conf = tmp_path / "ifconfig.agr0"
    conf.write_text(f"create\nagrproto failover\nagrmacpolicy follow\nlladdr {FIX}\nagrport re0\nagrport re1\n")
    dry = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert dry.returncode == 3 and dry.stdout.splitlines() == [
        "agrconfig agr0 create", "agrconfig agr0 agrproto failover", "agrconfig agr0 agrmacpolicy follow",
        f"agrconfig agr0 lladdr {FIX}", "agrconfig agr0 agrport re0", "agrconfig agr0 agrport re1"], dry
    ok(lab, a, "--boot", f"--confdir={tmp_path}")
    lab.wait_for(lambda: roles(lab, a)[0] == "re0", timeout=10, what="re0 active")
    settle_macs(lab, a, {"agr0": FIX, "re0": FIX, "re1": own["re1"]}, "follow with lladdr")
    assert lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}").stdout == "", "applied: nothing left to do"
    conf.write_text(f"create\nagrproto failover\nagrmacpolicy follow\nlink {FIX} active\nagrport re0\nagrport re1\n")
    again = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert (again.returncode, again.stdout) == (0, ""), "NetBSD's spelling of the same setting"
    # The file with agrmacpolicy active and no lladdr: -lladdr goes first, or active is refused.
    conf.write_text("create\nagrproto failover\nagrmacpolicy active\nagrport re0\nagrport re1\n")
    dry = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert dry.stdout.splitlines() == ["agrconfig agr0 -lladdr", "agrconfig agr0 agrmacpolicy active"], dry
    ok(lab, a, "--boot", f"--confdir={tmp_path}")
    settle_macs(lab, a, {"agr0": own["re0"], "re0": own["re0"], "re1": own["re1"]}, "active from the file")
    # The file without either: agr0 keeps the active port's MAC, which every port takes.
    conf.write_text("create\nagrproto failover\nagrport re0\nagrport re1\n")
    dry = lab.agr(a, "-n", "--boot", f"--confdir={tmp_path}")
    assert dry.stdout.splitlines() == ["agrconfig agr0 agrmacpolicy same"], dry.stdout
    ok(lab, a, "--boot", f"--confdir={tmp_path}")
    assert macs(lab, a) == {"agr0": own["re0"], "re0": own["re0"], "re1": own["re0"]}
