"""Errors as NetBSD agr returns them: errno, message, exit status, nothing changed."""
import re

import pytest

from tests.integration.helpers import aggregate, host_pair, ok, status_json

pytestmark = pytest.mark.integration


def fails(lab, ns, *words, code=2, errno_name=None, text=None):
    before = snapshot(lab, ns)
    proc = lab.agr(ns, *words)
    assert proc.returncode == code, f"{words}: rc={proc.returncode} {proc.stderr}"
    if errno_name:
        assert errno_name in proc.stderr, proc.stderr
    if text:
        assert text in proc.stderr, proc.stderr
    assert proc.stderr.startswith("agrconfig: "), proc.stderr
    assert snapshot(lab, ns) == before, f"{words} changed something"
    return proc.stderr


def snapshot(lab, ns):
    """Links (name, MAC, MTU, flags) and addresses: what a failed command must not change.
    Not the qdisc: the kernel gives a device its default one the first time it is up."""
    links = re.sub(r"qdisc \S+ ", "", lab.ip(ns, "-o", "link", "show").stdout)
    addrs = lab.ip(ns, "-o", "addr", "show").stdout
    strip = lambda s: sorted(" ".join(w for w in l.split() if w not in ("tentative", "dadfailed")) for l in s.splitlines())
    return strip(links), strip(addrs)


def test_ebusy_with_only_automatic_link_local(lab):
    a, _b = host_pair(lab)
    lab.wait_for(lambda: "fe80" in lab.ip(a, "-6", "addr", "show", "dev", "re0").stdout, what="link-local")
    ok(lab, a, "agr0", "create")
    err = fails(lab, a, "agr0", "agrport", "re0", errno_name="EBUSY", text="SIOCSETAGR: Device busy")
    assert "fe80::" in err


def test_ebusy_ipv4_address(lab):
    a, _b = host_pair(lab)
    lab.ip(a, "link", "set", "re0", "down")
    lab.run(a, "sysctl", "-qw", "net.ipv6.conf.re0.disable_ipv6=1")
    lab.ip(a, "addr", "add", "198.51.100.7/24", "dev", "re0")
    ok(lab, a, "agr0", "create")
    fails(lab, a, "agr0", "agrport", "re0", errno_name="EBUSY")


def test_port_errors(lab):
    a, _b = host_pair(lab, ports=("re0", "re1", "re2"))
    aggregate(lab, a, ports=("re0",))
    for port in ("re1", "re2"):
        from tests.integration.helpers import strip_addresses
        strip_addresses(lab, a, port)
    ok(lab, a, "agr1", "create")
    # Already in some agr.
    fails(lab, a, "agr0", "agrport", "re0", errno_name="EBUSY")
    fails(lab, a, "agr1", "agrport", "re0", errno_name="EBUSY", text="already a port of agr0")
    # A port that is itself an agr.
    fails(lab, a, "agr0", "agrport", "agr1", errno_name="EINVAL")
    # No such port.
    fails(lab, a, "agr0", "agrport", "nosuch0", errno_name="ENOENT")
    # First port not Ethernet: loopback, and a layer-3 tun.
    fails(lab, a, "agr1", "agrport", "lo", errno_name="EPROTONOSUPPORT", text="Protocol not supported")
    lab.ip(a, "tuntap", "add", "dev", "tun7", "mode", "tun")
    fails(lab, a, "agr1", "agrport", "tun7", errno_name="EPROTONOSUPPORT")
    # A later port of another type.
    fails(lab, a, "agr0", "agrport", "tun7", errno_name="EINVAL")
    # -agrport of a port in no agr, and of a port in another agr.
    fails(lab, a, "agr0", "-agrport", "re1", errno_name="ENOENT")
    fails(lab, a, "agr1", "-agrport", "re0", errno_name="EINVAL")
    # agr words on an interface that is not an agr.
    fails(lab, a, "re1", "agrport", "re2", text="valid only with agr(4) interfaces")
    fails(lab, a, "re1", "-agrport", "re2", text="valid only with agr(4) interfaces")
    # Address on an agr with no ports.
    fails(lab, a, "agr1", "inet", "192.0.2.9/24", errno_name="EINVAL",
          text="no way to configure agr interfaces without attaching physical interfaces")
    # mtu or address on a member port.
    fails(lab, a, "re0", "mtu", "1400", errno_name="EBUSY")
    fails(lab, a, "re0", "inet", "192.0.2.9/24", errno_name="EBUSY")
    fails(lab, a, "re0", "inet6", "2001:db8::9", errno_name="EBUSY")
    # create: existing name, bad names.
    fails(lab, a, "agr0", "create", errno_name="EEXIST", text="File exists")
    fails(lab, a, "agrx", "create", errno_name="EINVAL")
    fails(lab, a, "re1", "create", errno_name="EINVAL")
    fails(lab, a, "agr01", "create", errno_name="EINVAL")
    # Status of an unknown interface.
    fails(lab, a, "nosuch0", errno_name="ENXIO", text="Device not configured")
    fails(lab, a, "agr7", errno_name="ENXIO", text="Device not configured")


def test_usage_errors_exit_1_with_usage(lab):
    a, _b = host_pair(lab)
    for words in (["agr0", "agrport"], ["agr0", "mtu", "big"], ["agr0", "frobnicate"],
                  ["agr0", "inet", "300.1.1.1"], ["agr0", "inet6", "zz::1"], ["agr0", "lacptimeout", "soon"],
                  ["agr0", "inet", "192.0.2.1", "netmask", "255.0.255.0"], ["--bogus"], []):
        proc = lab.agr(a, *words)
        assert proc.returncode == 1, (words, proc.returncode, proc.stderr)
        assert "Usage:" in proc.stderr or "usage:" in proc.stderr.lower(), proc.stderr


def test_failed_attach_rolls_back(lab):
    """A port that refuses agr0's MTU halfway through attaching is given back untouched."""
    a = lab.netns("a")
    lab.veth(a, "low0", a, "peer0")
    lab.ip(a, "link", "add", "link", "low0", "name", "mv0", "type", "macvlan", "mode", "bridge")
    lab.run(a, "sysctl", "-qw", "net.ipv6.conf.mv0.disable_ipv6=1")
    lab.ip(a, "link", "set", "mv0", "up")
    ok(lab, a, "agr0", "create")
    ok(lab, a, "agr0", "mtu", "9000")   # macvlan cannot exceed its lower device's 1500
    tap_mac = lab.ip(a, "-o", "link", "show", "agr0").stdout.split("link/ether ")[1].split()[0]
    before = lab.ip(a, "-o", "link", "show", "mv0").stdout
    sysctls = lab.run(a, "sysctl", "net.ipv4.conf.mv0.arp_ignore", "net.ipv4.conf.mv0.rp_filter",
                      "net.ipv6.conf.mv0.disable_ipv6").stdout
    proc = lab.agr(a, "agr0", "agrport", "mv0")
    assert proc.returncode == 2, proc.stderr
    assert lab.ip(a, "-o", "link", "show", "mv0").stdout == before
    assert lab.run(a, "sysctl", "net.ipv4.conf.mv0.arp_ignore", "net.ipv4.conf.mv0.rp_filter",
                   "net.ipv6.conf.mv0.disable_ipv6").stdout == sysctls
    assert lab.ip(a, "-o", "link", "show", "agr0").stdout.split("link/ether ")[1].split()[0] == tap_mac
    assert "agrport" not in ok(lab, a, "agr0")


def _settings(lab, ns):
    """What a command's words can change on agr0, from its JSON status."""
    d = status_json(lab, ns)
    return (d["mtu"], d["flags"], d["linkinfo"]["info_data"]["flags"],
            sorted((a["local"], a["prefixlen"]) for a in d["addr_info"]),
            [(p["ifname"], p["options"]) for p in d["agrports"]])


def test_a_failing_word_undoes_the_words_before_it(lab):
    """One command is all or nothing: a word that fails undoes the words before it."""
    a, _b = host_pair(lab)
    lab.wait_for(lambda: "fe80" in lab.ip(a, "-6", "addr", "show", "dev", "re1").stdout, what="link-local")
    # No agr0 is left behind by a create whose port is refused (a re-run would hit EEXIST).
    fails(lab, a, "agr0", "create", "agrport", "re1", errno_name="EBUSY")
    assert "ENXIO" in lab.agr(a, "agr0").stderr
    aggregate(lab, a, ports=("re0",))
    before = _settings(lab, a)
    fails(lab, a, "agr0", "lacptimeout", "fast", "mtu", "1400", "inet", "192.0.2.9/24", "down",
          "agrportpri", "re0", "7", "agrport", "re1", errno_name="EBUSY")
    assert _settings(lab, a) == before
    # Plain interfaces too: the mtu comes back when the address to delete is not there.
    fails(lab, a, "re1", "mtu", "1400", "inet6", "2001:db8::5", "delete", errno_name="EADDRNOTAVAIL")
