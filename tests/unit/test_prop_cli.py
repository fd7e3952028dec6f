"""Property tests of the command line: any words parse to operations or raise UsageError,
and main() answers any argv with exit status 0, 1 or 2 and a one-line message, never a
traceback. Nothing here touches the system: main's side effects are replaced by recorders."""
import contextlib
import io
import ipaddress
from unittest import mock

from hypothesis import example, given, settings, strategies as st

from agrconfig.cli import main as cli, provision
from agrconfig.errors import AgrError, UsageError
from agrconfig.cli.grammar import FLAG_WORDS, SIMPLE_WORDS, parse_words, valid_ifname
from agrconfig.cli import ops as O
from agrconfig.client.interface import Interface

SETTINGS = settings(max_examples=300, deadline=None)

KEYWORDS = sorted(SIMPLE_WORDS | set(FLAG_WORDS) | {
    "agrport", "-agrport", "mtu", "lacptimeout", "datapath", "agrhash", "inet", "inet6",
    "netmask", "prefixlen", "alias", "-alias", "delete", "monitor", "interval", "until", "timeout"})
ODD_NAMES = ["", " ", "eth0 ", " eth0", "a b", "a/b", "a:b", ".", "..", "x" * 15, "x" * 16,
             "é" * 7, "é" * 8, "agr0", "agr00", "agr-1", "agr0\n", "eth\t0", "eth\x000", "\udcff",
             "veth😀", "lo", "-agrport", "--", "-", "₀", "ab\u200bc"]
ODD_VALUES = ["-1", "0", "1", "67", "68", "1500", "9000", "65535", "65536", "99999999", "abc",
              "1e3", "0x10", "²", "١٥٠٠", "9" * 5000, "", " 1500", "+1500", "1_500", "fast", "slow",
              "auto", "relay", "ebpf", "l2", "l2,l3,l4", "l7", ",", "L2", "distributing", "nan"]
ODD_ADDRESSES = ["192.0.2.1", "192.0.2.1/24", "192.0.2.1/33", "192.0.2.1/-1", "192.0.2.1/²",
                 "192.0.2.1/١٢", "192.0.2.1/" + "9" * 5000, "192.0.2.256", "1.2.3", "::1",
                 "2001:db8::1/64", "2001:db8::1/129", "fe80::1%eth0", "fe80::1%", "1.2.3.4%x",
                 "::ffff:1.2.3.4", "0.0.0.0", "255.255.255.255", "192.0.2.1/255.255.255.0",
                 "255.255.255.0", "0xffffff00", "0xfffffff0f", "0x", "24", "255.0.255.0",
                 "2001:db8::/32", "::", "[::1]", "1.2.3.4/", "/24"]

word = st.one_of(st.sampled_from(KEYWORDS), st.sampled_from(ODD_NAMES), st.sampled_from(ODD_VALUES),
                 st.sampled_from(ODD_ADDRESSES), st.text(max_size=20))
words = st.lists(word, max_size=12)


def check_ops(ops):
    """What a successful parse promises the code that carries the operations out."""
    assert isinstance(ops, list)
    for op in ops:
        assert isinstance(op, O.Operation)
        if isinstance(op, (O.AddPort, O.RemovePort)):
            assert valid_ifname(op.port) and len(op.port.encode()) <= 15
        elif isinstance(op, O.SetMtu):
            assert isinstance(op.mtu, int) and 68 <= op.mtu <= 65535
        elif isinstance(op, (O.AddAddress, O.DeleteAddress)):
            assert isinstance(op.alias if isinstance(op, O.AddAddress) else op.explicit, bool)
            assert isinstance(op.iface, (ipaddress.IPv4Interface, ipaddress.IPv6Interface))
        elif isinstance(op, O.SetOption):
            assert op.key in {k for k, _ in FLAG_WORDS.values()} | {"lacp_fast", "datapath", "hash"}
        else:
            assert op.WORD in SIMPLE_WORDS and op == type(op)(), op
    if any(isinstance(op, O.Destroy) for op in ops):
        assert len(ops) == 1


def parse_or_usage_error(ws):
    try:
        ops = parse_words(ws)
    except UsageError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg.replace("\\n", ""), f"one line: {msg!r}"
        assert "Traceback" not in msg and "invalid literal" not in msg, msg
        return None
    check_ops(ops)
    return ops


@SETTINGS
@given(words)
@example(["mtu", "²"])
@example(["mtu", "9" * 5000])
@example(["inet", "192.0.2.1/²"])
@example(["inet6", "::1", "prefixlen", "²"])
@example(["agrport", "eth\x000"])
@example(["agrport", "é" * 8])
def test_any_words_parse_or_usage_error(ws):
    parse_or_usage_error(ws)


@SETTINGS
@given(st.sampled_from(["agrport", "-agrport"]), st.text(max_size=20) | st.sampled_from(ODD_NAMES))
def test_port_names_follow_the_kernel_rules(word, name):
    ops = parse_or_usage_error([word, name])
    raw = name.encode("utf-8", "surrogatepass")
    kernel_ok = (0 < len(raw) <= 15 and name not in (".", "..")
                 and not any(c in "/:" or c.isspace() for c in name) and "\0" not in name)
    if ops is not None:
        assert kernel_ok, f"{name!r} would be refused or truncated by the kernel"


@SETTINGS
@given(st.text(max_size=12) | st.sampled_from(ODD_VALUES))
def test_mtu_values(value):
    ops = parse_or_usage_error(["mtu", value])
    if ops is not None:
        assert value.isascii() and str(ops[0].mtu) == value.lstrip("0")


@SETTINGS
@given(st.sampled_from(["inet", "inet6", ""]), st.sampled_from(ODD_ADDRESSES) | st.text(max_size=30),
       st.lists(st.sampled_from(["netmask", "prefixlen", "alias", "-alias", "delete"]) |
                st.sampled_from(ODD_ADDRESSES) | st.sampled_from(ODD_VALUES), max_size=4))
def test_address_words(family, addr, tail):
    parse_or_usage_error(([family] if family else []) + [addr] + tail)


@SETTINGS
@given(words)
def test_parsed_operations_say_themselves_again(ws):
    """op.words() (dry runs, logs) parses back to the same operation."""
    ops = parse_or_usage_error(ws)
    for op in ops or []:
        again = parse_words(op.words())
        assert len(again) == 1, (op, again)
        if isinstance(op, O.DeleteAddress):   # said with its prefix length: explicit
            assert again[0] == op.replace(explicit=True)
        elif isinstance(op, (O.SetOption, O.SetPortOption)):   # said as a file says it
            assert again[0] == op.replace(word=again[0].word)
        else:
            assert again[0] == op


@SETTINGS
@given(words, st.booleans(), st.booleans())
def test_plan_any_operations_on_any_model(ws, exists, is_agr):
    ops = parse_or_usage_error(ws)
    model = Interface(exists=exists, agr=is_agr, ports=["veth0"], flags={}, mtu=1500)
    try:
        provision.plan("agr0" if is_agr else "eth0", ops or [], model=model)
    except (UsageError, AgrError):
        pass


# -- main() with its side effects replaced -------------------------------------------------

OPTIONS = ["-n", "--json", "-f", "-a", "-l", "--free", "-C", "--boot", "--halt", "--confdir=/nonexistent",
           "-h", "--help", "--version", "--destroy-all", "--nope", "-", "--", "-x"]


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, name):
        def record(*args, **kwargs):
            self.calls.append((name, args))
            return {"render": "status\n", "render_all": "all\n", "names": ["lo"], "free_ports": [],
                    "boot": 0, "plan": args[1] if len(args) > 1 else [], "run": 0}.get(name)
        return record


@contextlib.contextmanager
def no_side_effects():
    from agrconfig.cli import metrics, monitor, preflight, render
    from agrconfig.client import commands, inspect, workers
    rec = Recorder()
    with contextlib.ExitStack() as stack:
        for obj, name in ((commands, "apply"), (workers, "destroy_all"), (provision, "boot"), (provision, "halt"),
                          (provision, "apply_file"), (provision, "plan"), (render, "render"),
                          (render, "render_all"), (inspect, "names"), (inspect, "free_ports"),
                          (monitor, "run"), (metrics, "text"), (metrics, "write_file"), (preflight, "run")):
            stack.enter_context(mock.patch.object(obj, name, rec(name)))
        stack.enter_context(mock.patch.object(commands, "Namespace", contextlib.nullcontext))
        yield rec


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with no_side_effects() as rec, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue(), rec.calls


@SETTINGS
@given(st.lists(st.sampled_from(OPTIONS), max_size=3), st.sampled_from(ODD_NAMES) | st.text(max_size=18),
       words)
@example([], "é" * 8, ["up"])
@example([], "agr0", ["mtu", "²"])
@example(["-n"], "agr0", ["agrport", "eth\x000"])
def test_main_any_argv(opts, name, ws):
    code, out, err, calls = run_main(opts + [name] + ws)
    assert code in ((0, 1, 2, 3) if "-n" in opts else (0, 1, 2)), code
    assert "Traceback" not in err
    if code == 1:
        assert err.startswith("agrconfig: ") and "Usage:" in err, err
        assert "Option(" not in err, "docopt's reprs are not for users"
        # a usage error changes nothing
        assert not [c for c in calls if c[0] in ("apply", "destroy_all", "boot", "halt", "apply_file")]
    if code == 2:
        assert err.startswith("agrconfig: ") and err.count("\n") == 1, err
    for what, args in calls:
        if what == "apply":
            assert valid_ifname(args[0])
            check_ops(args[1])


@SETTINGS
@given(st.sampled_from(ODD_NAMES) | st.text(max_size=18))
@example("-h")
@example("--vers")
@example("--metrics-")
def test_main_interface_names(name):
    code, out, err, calls = run_main([name, "up"])
    if name.startswith("-"):    # an option to docopt, or "--" ending the options
        # -h/--help and --version (or a prefix of them) print and change nothing, as usual
        helped = code == 0 and not calls and not err and out.startswith("agrconfig")
        # (a prefix of --metrics-file takes the next word as its path: a call, recorded)
        assert code == 1 and err.startswith("agrconfig: ") or code == 0 and calls or helped
    elif valid_ifname(name):
        assert code == 0 and calls == [("apply", (name, [O.Up()]))]
    else:
        assert code == 1 and err.startswith("agrconfig: bad interface name") and not calls
