"""Property-based fuzzing of every trust boundary (tests/fuzz/targets.py): hypothesis draws
inputs shaped like the real thing (PDUs, LLDP TLVs, Ethernet/IP frames, JSON requests, replies
and state files, configuration lines), mutates them, and mixes in raw bytes and the seeds of
tests/corpus/ with bytes flipped, cut and inserted.

In pytest (and so in CI) every test draws a fixed number of examples, derandomized: the same
inputs on every run of the same code, so a verdict never depends on luck (a new input is
tried when a test or a target changes, since hypothesis seeds from the test's source).
Exploring is scripts/fuzz's job: random seeds, more examples, atheris's coverage-guided
search. Whatever breaks a contract is kept in tests/corpus/<target>/crash-<sha1> (the
smallest input hypothesis found) and fails the test; test_corpus.py replays it from then on.
"""
import json
import os
import struct

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from agrconfig import options
from agrconfig.ipc import protocol
from agrconfig.lacp import pdu as P

from . import corpus
from .targets import TARGETS

# scripts/fuzz: AGRCONFIG_FUZZ_SCALE multiplies every budget and draws at random.
SCALE = float(os.environ.get("AGRCONFIG_FUZZ_SCALE", "1"))
EXPLORE = "AGRCONFIG_FUZZ_SCALE" in os.environ


def budget(n):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=not EXPLORE,
                    database=None, suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate, Phase.shrink])


_failing = {}


def fuzz(target, examples):
    """A test that runs `target` on what the decorated strategy function returns, keeping
    a failing input (hypothesis's smallest: its last call) in tests/corpus/."""
    def wrap(strategy_fn):
        @budget(examples)
        @given(strategy_fn())
        def run(data):
            try:
                TARGETS[target].check(data)
            except Exception:
                _failing[target] = bytes(data)
                raise

        def test():
            _failing.pop(target, None)
            try:
                run()
            except BaseException as exc:
                if target in _failing:
                    path = corpus.keep_crash(target, _failing.pop(target))
                    exc.add_note(f"input kept as {os.path.relpath(path)}; test_corpus.py replays it")
                raise
        test.__name__ = strategy_fn.__name__
        test.__doc__ = strategy_fn.__doc__
        return test
    return wrap


# -- generic: raw bytes, and the seeds mutated ----------------------------------------------------

def seeds(target):
    out = []
    for _t, path in corpus.files(target):
        with open(path, "rb") as f:
            out.append(f.read())
    return out


@st.composite
def mutated(draw, target):
    """A seed of `target` with a few octets changed, cut, inserted or duplicated."""
    data = bytearray(draw(st.sampled_from(seeds(target))))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "dup", "delete"]))
        pos = draw(st.integers(0, len(data)))
        if kind in ("flip", "set") and pos < len(data):
            data[pos] = data[pos] ^ (1 << draw(st.integers(0, 7))) if kind == "flip" \
                else draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, ord('"'), ord("{"), ord("["), ord("\\")]))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "dup":
            end = draw(st.integers(pos, len(data)))
            data[pos:pos] = data[pos:end]
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
    return bytes(data)


def anything(target, *shaped):
    return st.one_of(st.binary(max_size=200), mutated(target), *shaped)


# -- the wire --------------------------------------------------------------------------------------

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
macs = st.binary(min_size=6, max_size=6)
infos = st.builds(P.LacpInfo, u16, macs, u16, u16, u16, u8)
pdus = st.one_of(st.builds(P.Lacpdu, infos, infos, u16), st.builds(P.MarkerPdu, st.booleans(), u16, macs, u32))


@st.composite
def slow_payloads(draw):
    """An encoded PDU with its version, TLV headers or tail changed."""
    raw = bytearray(P.encode(draw(pdus)))
    raw[1] = draw(st.sampled_from([0, 1, 2, 255]) | u8)
    for pos in draw(st.lists(st.sampled_from([0, 2, 3, 22, 23, 42, 43, 58, 59]), max_size=3)):
        raw[pos] = draw(u8)
    return bytes(raw[:draw(st.integers(0, 130))]) + draw(st.binary(max_size=20))


@fuzz("slow_pdu", 400)
def test_slow_pdu():
    """Any Slow Protocols payload decodes to a PDU that re-encodes the same, or PduError."""
    return anything("slow_pdu", slow_payloads(), pdus.map(P.encode),
                    st.tuples(st.sampled_from([1, 2]), u8, st.binary(min_size=100, max_size=130))
                    .map(lambda t: bytes(t[:2]) + t[2]))


@fuzz("slow_frame", 150)
def test_slow_frame():
    """Any frame on a port's Slow Protocols socket: the LACP core never raises."""
    return anything("slow_frame", st.tuples(macs, slow_payloads()).map(lambda t: P.build_frame(*t)),
                    st.tuples(macs, pdus).map(lambda t: P.build_frame(t[0], P.encode(t[1]))))


def tlv(kind, value, length=None):
    return struct.pack("!H", kind << 9 | (len(value) if length is None else length) & 0x1FF) + value


@st.composite
def lldpdus(draw):
    """TLVs: mostly Chassis ID, Port ID, TTL first, then any; lengths sometimes wrong."""
    ids = st.tuples(st.integers(0, 8), st.binary(max_size=40)).map(lambda t: bytes([t[0]]) + t[1])
    network = st.tuples(st.integers(0, 3), st.binary(max_size=20)).map(lambda t: bytes([5, t[0]]) + t[1])
    head = [tlv(1, draw(ids | network)), tlv(2, draw(ids | network)), tlv(3, draw(st.binary(max_size=2)))]
    if draw(st.booleans()):
        head = draw(st.permutations(head))
    rest = [tlv(draw(st.integers(0, 127)), draw(st.binary(max_size=30))) for _ in range(draw(st.integers(0, 4)))]
    rest.insert(0, tlv(5, draw(st.text(max_size=20).map(str.encode) | st.binary(max_size=20))))
    out = b"".join(head + rest)
    if draw(st.booleans()):
        out += tlv(draw(st.integers(0, 127)), b"", draw(st.integers(0, 511)))
    return out


@fuzz("preflight_frame", 300)
def test_preflight_frame():
    """Any LLDPDU or LACPDU heard by pre-flight: a neighbour, a partner or its own error."""
    return anything("preflight_frame", lldpdus(), slow_payloads())


@st.composite
def ethernet_frames(draw):
    """Ethernet, maybe VLAN tags, then IPv4 / IPv6 / ARP with any fields, cut anywhere."""
    frame = draw(macs) + draw(macs)
    for _ in range(draw(st.integers(0, 2))):
        frame += b"\x81\x00" + draw(st.binary(min_size=2, max_size=2))
    ethertype = draw(st.sampled_from([0x0800, 0x86DD, 0x0806, 0x8100, 0x8809]) | u16)
    frame += struct.pack("!H", ethertype)
    if ethertype == 0x0800:
        ihl = draw(st.integers(0, 15))
        frame += bytes([0x40 | ihl, 0]) + draw(st.binary(min_size=4, max_size=4)) \
            + bytes([draw(u8), draw(u8), draw(u8), draw(st.sampled_from([6, 17]) | u8)]) + draw(st.binary(min_size=10, max_size=70))
    elif ethertype == 0x86DD:
        frame += draw(st.binary(min_size=6, max_size=6)) + bytes([draw(st.sampled_from([6, 17]) | u8), 64]) \
            + draw(st.binary(min_size=32, max_size=60))
    elif ethertype == 0x0806:
        ip = draw(st.binary(min_size=4, max_size=4))
        frame += b"\x00\x01\x08\x00\x06\x04" + draw(st.binary(min_size=2, max_size=2)) + draw(macs) + ip \
            + draw(macs) + (ip if draw(st.booleans()) else draw(st.binary(min_size=4, max_size=4)))
    else:
        frame += draw(st.binary(max_size=60))
    frame = frame[:draw(st.integers(0, len(frame)))]
    return (bytes(10) if draw(st.booleans()) else b"") + frame


@fuzz("data_frame", 300)
def test_data_frame():
    """Any frame the relay carries: the flow hash, slb's parsing and its learned table."""
    return anything("data_frame", ethernet_frames())


# -- local users: the control socket -----------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                      st.text(max_size=20), st.sampled_from([0, 1, -1, 68, 65535, 65536, 2**31, 2**63, 1e308]))
json_values = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def option_values(scope="agr"):
    """Settings by option key: mostly values of the schema (options.py's samples, a known key
    with a near miss), sometimes anything."""
    schema = [o for o in options.OPTIONS if o.scope == scope]
    good = st.one_of(*[st.tuples(st.just(o.key), st.sampled_from(o.kind.values())) for o in schema])
    near = st.tuples(st.sampled_from([o.key for o in options.OPTIONS]), st.one_of(
        json_values,
        st.fixed_dictionaries({"targets": st.lists(st.sampled_from(
            ["192.0.2.1", "2001:db8::1", "::", "::ffff:192.0.2.1", "300.1.1.1", "", "x", "192.0.2.1 "])
            | st.text(max_size=8), max_size=3), "interval": st.integers(-5, 10**6) | json_leaf}),
        st.fixed_dictionaries({"count": json_leaf | st.integers(0, 20), "interval": json_leaf | st.integers(0, 10**5)})))
    return st.lists(good | good | near | st.tuples(st.text(max_size=8), json_leaf), max_size=4).map(dict)


ifnames = st.sampled_from(["re0", "eth1", "agr0", "", ".", "..", "a/b", "a:b", "x" * 15, "x" * 16, "%d",
                           "é" * 8, "\udcff", "a\x00b", "a b"]) | st.text(max_size=17)


@st.composite
def requests(draw):
    """A JSON object like a request: mostly a known op with its arguments (names and settings
    mostly valid, so that the checks behind are reached), else other ops, keys and values."""
    if draw(st.integers(0, 3)):
        op = draw(st.sampled_from(sorted(protocol.REQUESTS)))
        names = st.sampled_from(["re0", "eth1", "agr0"]) | ifnames
        args = {"port": names, "mtu": st.integers(60, 70000) | json_leaf,
                "flags": option_values("port" if op == "setport" else "agr")}
        req = {"op": op, **{key: draw(args[key]) for key in protocol.REQUESTS[op].FIELDS}}
    else:
        op = draw(st.sampled_from(sorted(protocol.REQUESTS)) | st.text(max_size=8) | json_leaf)
        req = {"op": op}
        for key in draw(st.lists(st.sampled_from(["port", "flags", "mtu", "op"]) | st.text(max_size=6), max_size=3)):
            req[key] = draw({"port": ifnames, "flags": option_values(),
                             "mtu": st.integers(-1, 70000) | json_leaf}.get(key, json_values))
    text = json.dumps(req if draw(st.integers(0, 9)) else draw(json_values), ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


deep = st.integers(1, 20000).map(lambda n: b"[" * n) | st.integers(1, 20000).map(lambda n: b'{"op": ' + b"{\"a\":" * n)


@fuzz("control_request", 500)
def test_control_request():
    """Any request a local user sends: a typed Request or AgrError(EINVAL)."""
    return anything("control_request", requests(), deep)


@fuzz("control_server", 60)
def test_control_server():
    """Any bytes through the worker's end of the socket: one JSON reply, never an exception."""
    big = st.integers(protocol.MAX_REQUEST - 2, protocol.MAX_REQUEST + 2).map(lambda n: b" " * n)
    return st.one_of(st.binary(max_size=100), mutated("control_server"), requests(), deep, big)


@st.composite
def json_mutations(draw, target):
    """A JSON seed of `target` with one value somewhere replaced, removed or retyped."""
    docs = [json.loads(s) for s in seeds(target) if _is_json(s)]
    doc = draw(st.sampled_from(docs))
    keys = sorted({k for d in docs for k in _keys(d)})
    for _ in range(draw(st.integers(1, 3))):
        doc = _mutate(draw, doc, keys)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _is_json(data):
    try:
        json.loads(data)
        return True
    except ValueError:
        return False


def _keys(doc):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from _keys(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _keys(v)


odd_values = st.sampled_from([None, -1, 0, 2**64, 1e400, -1e400, "../x", "", [], {}, True])


def _mutate(draw, doc, keys):
    """Walk down a random path, then replace, drop or retype what is there, or add a key that
    the seeds use somewhere."""
    if isinstance(doc, dict) and doc and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(doc)))
        what = draw(st.integers(0, 7))
        if what == 0:
            return {k: v for k, v in doc.items() if k != key}
        if what == 1:
            return {**doc, draw(st.sampled_from(keys)): draw(json_values | odd_values)}
        return {**doc, key: _mutate(draw, doc[key], keys)}
    if isinstance(doc, list) and doc and draw(st.integers(0, 3)):
        i = draw(st.integers(0, len(doc) - 1))
        return doc[:i] + [_mutate(draw, doc[i], keys)] + doc[i + 1:]
    return draw(json_values | odd_values | st.sampled_from([str(doc), [doc], {"x": doc}]))


@st.composite
def replies(draw):
    error = st.fixed_dictionaries({}, optional={"errno": st.sampled_from(["EBUSY", "EPERM", "ENOENT", "__name__",
                                                                         "errorcode", ""]) | json_leaf,
                                                "ioctl": json_leaf, "detail": json_leaf})
    reply = draw(st.fixed_dictionaries({}, optional={"result": json_values, "error": error | json_values,
                                                     "version": json_leaf, "release": json_leaf}))
    return json.dumps(reply).encode()


@fuzz("control_reply", 300)
def test_control_reply():
    """Any reply from whatever answers on the socket: the reply, AgrError or WorkerGone, and a
    status in it an AggregateStatus or ValueError."""
    return anything("control_reply", json_mutations("control_reply"), replies())


# -- the state file, configuration files ------------------------------------------------------------

@fuzz("state_file", 300)
def test_state_file():
    """Any state file: loaded and valid, or set aside; never an exception."""
    return anything("state_file", json_mutations("state_file"))


WORDS = sorted({w for o in options.OPTIONS for w in o.kind.words()} | {
    "create", "destroy", "up", "down", "agrport", "-agrport", "mtu", "inet", "inet6", "netmask",
    "prefixlen", "alias", "-alias", "delete", "interval", "active", "!", "#"})
VALUES = ["re0", "eth1", "1500", "9000", "0", "-1", "65536", "fast", "slow", "l2,l3", "l7", "192.0.2.1/24",
          "2001:db8::1", "255.255.255.0", "0xffffff00", "02:00:00:00:00:01", "none", "'", '"', "\\", "²"]


@st.composite
def config_lines(draw):
    word = st.sampled_from(WORDS) | st.sampled_from(VALUES) | st.text(max_size=10)
    lines = [" ".join(draw(st.lists(word, max_size=8))) for _ in range(draw(st.integers(0, 5)))]
    text = "\n".join(lines)
    return text.encode("utf-8", "surrogateescape") if draw(st.integers(0, 5)) else text.encode("latin-1", "replace")


@fuzz("ifconfig_file", 300)
def test_ifconfig_file():
    """Any /etc/ifconfig.agrN: its lines, or UsageError naming the file and line."""
    return anything("ifconfig_file", config_lines())


@st.composite
def stanzas(draw):
    from agrconfig.cli import ifupdown
    keys = sorted(ifupdown.env_name(s) for s in [ifupdown.PORTS, ifupdown.LINK1, *ifupdown.stanza_options()])
    value = st.lists(st.sampled_from(WORDS + VALUES + ["yes", "no", "interval", "default"]) | st.text(max_size=8),
                     max_size=5).map(" ".join)
    env = draw(st.dictionaries(st.sampled_from(keys) | st.text(max_size=8).map(lambda t: "IF_AGR_" + t.upper()),
                               value, max_size=5))
    return "\n".join(f"{k}={v}" for k, v in env.items()).encode("utf-8", "surrogateescape")


@fuzz("ifupdown_stanza", 300)
def test_ifupdown_stanza():
    """Any agr-* options of an /etc/network/interfaces stanza: words, or UsageError."""
    return anything("ifupdown_stanza", stanzas())


def test_every_target_is_fuzzed_here():
    tested = {name[len("test_"):] for name in globals() if name.startswith("test_")}
    assert set(TARGETS) <= tested, set(TARGETS) - tested


def test_a_crash_is_kept_and_fails(tmp_path, monkeypatch):
    """The rule itself: a hypothesis test whose target breaks keeps hypothesis's smallest
    failing input in tests/corpus/TARGET/ and fails."""
    from . import targets

    def breaks(data):
        if b"x" in data:
            raise RuntimeError("broken")
    monkeypatch.setattr(corpus, "CORPUS", str(tmp_path))
    monkeypatch.setitem(targets.TARGETS, "selftest", targets.Target("selftest", breaks, ""))

    @fuzz("selftest", 200)
    def test_selftest():
        return st.binary(min_size=1, max_size=20).map(lambda b: b + b"x" + b)
    try:
        test_selftest()
    except RuntimeError as exc:
        assert any("input kept as" in note for note in exc.__notes__)
    else:
        raise AssertionError("the broken target passed")
    assert [p.read_bytes() for p in (tmp_path / "selftest").iterdir()] == [b"\0x\0"]
