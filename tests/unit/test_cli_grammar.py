import ipaddress

import pytest

from agrconfig.cli.main import main
from agrconfig.cli.grammar import parse_words
from agrconfig.cli.ops import AddAddress, AddPort, Create, DeleteAddress, Destroy, RemovePort, SetMtu, SetOption, Up
from agrconfig.errors import UsageError
from agrconfig.worker.flowhash import L2, L3, L4


def test_manpage_words():
    assert parse_words(["create"]) == [Create()]
    assert parse_words(["agrport", "re0"]) == [AddPort("re0")]
    assert parse_words(["-agrport", "re0"]) == [RemovePort("re0")]
    assert parse_words(["destroy"]) == [Destroy()]


def test_words_apply_left_to_right():
    ops = parse_words(["agrport", "re0", "link0", "-link1", "up", "mtu", "9000"])
    assert ops == [AddPort("re0"), SetOption("link0", True, "link0"), SetOption("proto", "lacp", "-link1"),
                   Up(), SetMtu(9000)]


def test_inet_forms():
    (op,) = parse_words(["inet", "192.0.2.10", "delete"])
    assert op == DeleteAddress(ipaddress.ip_interface("192.0.2.10/24"), False)
    (op,) = parse_words(["inet", "10.1.2.3", "netmask", "255.255.0.0", "alias"])
    assert op == AddAddress(ipaddress.ip_interface("10.1.2.3/16"), True)
    (op,) = parse_words(["inet", "10.1.2.3", "netmask", "0xffffff00"])
    assert op == AddAddress(ipaddress.ip_interface("10.1.2.3/24"), False)
    (op,) = parse_words(["inet", "172.16.0.1"])  # classful default, as BSD
    assert op == AddAddress(ipaddress.ip_interface("172.16.0.1/16"), False)
    (op,) = parse_words(["192.0.2.1/28"])  # the family word may be left out
    assert op == AddAddress(ipaddress.ip_interface("192.0.2.1/28"), False)


def test_inet6_forms():
    (op,) = parse_words(["inet6", "fe80::1:2:3:4%re0", "delete"])
    assert op == DeleteAddress(ipaddress.ip_interface("fe80::1:2:3:4/64"), False)
    (op,) = parse_words(["inet6", "2001:db8::1", "prefixlen", "48", "-alias"])
    assert op == DeleteAddress(ipaddress.ip_interface("2001:db8::1/48"), True)


def test_lacp_and_hash_words():
    assert parse_words(["lacptimeout", "fast"]) == [SetOption("lacp_fast", True, "lacptimeout")]
    assert parse_words(["-lacpstrict"]) == [SetOption("lacp_strict", False, "-lacpstrict")]
    assert parse_words(["agrhash", "l2,l3,l4"]) == [SetOption("hash", L2 | L3 | L4, "agrhash")]


@pytest.mark.parametrize("words", [
    ["agrport"], ["mtu"], ["mtu", "12"], ["mtu", "1e3"], ["mtu", "70000"], ["frob"], ["-frob"],
    ["inet"], ["inet", "1.2.3"], ["inet", "2001:db8::1"], ["inet6", "192.0.2.1"], ["inet", "1.2.3.4/33"],
    ["inet", "1.2.3.4", "netmask", "255.0.255.0"], ["inet", "1.2.3.4", "prefixlen", "8"],
    ["inet6", "::1", "netmask", "255.0.0.0"], ["lacptimeout", "soon"], ["agrhash", "l7"],
    ["agrport", "a" * 16], ["agrport", "a/b"], ["create", "destroy"], ["agrport", ""],
])
def test_bad_words(words):
    with pytest.raises(UsageError):
        parse_words(words)


def test_usage_errors_exit_1(capsys):
    assert main(["agr0", "frob"]) == 1
    assert "Usage:" in capsys.readouterr().err
    assert main([]) == 1
    assert main(["--nope"]) == 1


def test_bad_interface_names_exit_1(capsys):
    for name in ("x" * 16, "a/b", "a b", "tab\tname"):
        assert main([name]) == 1, name


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    assert "agrport PORT" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert "agrconfig" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["-v", "--json", "-n"])
def test_a_flag_after_the_interface_says_where_it_goes(flag):
    with pytest.raises(UsageError, match=f"^{flag} goes before the interface: agrconfig {flag} <interface>"):
        parse_words([flag])
