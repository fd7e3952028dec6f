"""The agr(4) manual's example, verbatim, between two agrconfig hosts."""
import pytest

from tests.integration.helpers import host_pair, ok, port_flags, wait_distributing

pytestmark = pytest.mark.integration


def test_manpage_example_verbatim(lab):
    a, b = host_pair(lab)
    n = 1
    for ns in (a, b):
        for port in ("re0", "re1"):
            lab.ip(ns, "addr", "add", f"198.51.100.{n}/24", "dev", port)
            n += 1
    # Wait for the kernel's automatic IPv6 link-local addresses: the manual deletes them.
    lab.wait_for(lambda: all("fe80" in lab.ip(ns, "-6", "addr", "show", "dev", p).stdout
                             for ns in (a, b) for p in ("re0", "re1")), what="link-local addresses")
    for ns in (a, b):
        for port in ("re0", "re1"):
            inet = lab.ip(ns, "-4", "-o", "addr", "show", "dev", port).stdout.split()[3].split("/")[0]
            inet6 = lab.ip(ns, "-6", "-o", "addr", "show", "dev", port).stdout.split()[3].split("/")[0]
            ok(lab, ns, port, "inet", inet, "delete")
            ok(lab, ns, port, "inet6", inet6, "delete")
        ok(lab, ns, "agr0", "create")
        ok(lab, ns, "agr0", "agrport", "re0")
        ok(lab, ns, "agr0", "agrport", "re1")
    ok(lab, a, "agr0", "inet", "192.0.2.1/24")
    ok(lab, b, "agr0", "inet", "192.0.2.2/24")
    for ns in (a, b):
        wait_distributing(lab, ns, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=3)
    assert lab.ping(b, "192.0.2.1", count=3)

    # One link cut: the aggregate carries on over the other.
    lab.ip(b, "link", "set", "re0", "down")
    lab.wait_for(lambda: port_flags(lab, a)["re0"] == 0, timeout=5, what="re0 out of the bundle")
    assert port_flags(lab, a)["re1"] == 3
    assert lab.ping(a, "192.0.2.2", count=3)

    # Destroy, as the manual does.
    for ns in (a, b):
        ok(lab, ns, "agr0", "-agrport", "re0")
        ok(lab, ns, "agr0", "-agrport", "re1")
        ok(lab, ns, "agr0", "destroy")
        assert lab.ip(ns, "link", "show", "agr0", check=False).returncode != 0
