"""The fuzz targets: every decoder of input that crosses a trust boundary, with its contract.

A target takes bytes (what arrives: a frame, a request, a file) and checks the decoder's
contract on them. It returns quietly when the contract holds; a broken contract is an
exception: an AssertionError from the checks here, or whatever the decoder let escape. The
same function serves hypothesis (tests/fuzz/test_properties.py), atheris
(tests/fuzz/atheris_main.py, scripts/fuzz) and the replay of tests/corpus/
(tests/fuzz/test_corpus.py).

The contract of every decoder: on any input, a decoded value or the module's own error
(below, per target), never another exception, never a hang; where there is an encoder,
decoding what it encodes gives the value back.

Boundaries (SECURITY.md's threat model):
- the wire: Slow Protocols frames (LACPDU, Marker) into the LACP core, LLDP and LACP frames
  heard by pre-flight, every frame the relay reads (flow hash, slb's source and gratuitous
  ARP tests, reflections). agrlinkcheck reads no frame content: the kernel's classic BPF
  filter picks the targets' frames and the worker only counts them.
- local users: the control socket (abstract, any user may connect): a request's bytes, and
  the server's framing of them; the other way, the front end reads a reply from whatever
  holds the socket's name (a worker that runs as its own user, or an impostor while none
  does), the status model included.
- the state file under /run/agrconfig (a damaged or planted file).
- configuration files: /etc/ifconfig.IF and ifupdown's agr-* stanza options.
Not a boundary: netlink replies and /proc texts come from the kernel (only it, or root, can
send on NETLINK_ROUTE to our sockets: the kernel refuses unicast between user sockets
without CAP_NET_ADMIN), and the virtio-net header and PACKET_AUXDATA that the kernel fills.
"""
import contextlib
import errno
import json
import os
import shutil
import tempfile

from agrconfig import paths
from agrconfig.errors import AgrError, UsageError

__all__ = ["TARGETS", "Target"]


class Target:
    """One fuzz target: `check(data)` raises on a broken contract."""

    def __init__(self, name, check, doc):
        self.name, self.check, self.doc = name, check, doc

    def __repr__(self):
        return f"Target({self.name})"


TARGETS = {}


def target(name):
    def register(fn):
        TARGETS[name] = Target(name, fn, " ".join((fn.__doc__ or "").split()))
        return fn
    return register


# -- the wire ----------------------------------------------------------------------------------

@target("slow_pdu")
def slow_pdu(data):
    """A Slow Protocols payload: a Lacpdu or MarkerPdu, or PduError; what decodes re-encodes to
    the same PDU."""
    from agrconfig.lacp import pdu as P
    try:
        got = P.decode(data)
    except P.PduError as exc:
        assert str(exc)
        return
    assert isinstance(got, (P.Lacpdu, P.MarkerPdu)), got
    again = P.encode(got)
    assert len(again) == P.PDU_LEN
    assert P.decode(again) == got


_core_cache = {}


def _core():
    """A LacpCore with two ports, one of them in a partner's aggregation (so that a frame
    reaches every machine), rebuilt for every input from a copy."""
    import copy
    from agrconfig.lacp import LacpCore
    from agrconfig.lacp import pdu as P
    if "core" not in _core_cache:
        us, them = bytes.fromhex("020000000001"), bytes.fromhex("02000000aa01")
        core = LacpCore(us)
        core.add_port(0.0, 1, bytes.fromhex("020000000011"), speed=1000, duplex_full=True, carrier=True)
        core.add_port(0.0, 2, bytes.fromhex("020000000012"), speed=1000, duplex_full=True, carrier=True)
        for t in (0.0, 1.0, 2.0, 3.0):
            for port in (1, 2):
                actor = P.LacpInfo(0x8000, them, 7, 0x8000, port, 0x3D)
                partner = core.ports[port].actor_info()
                core.receive(t, port, P.build_frame(them, P.encode(P.Lacpdu(actor, partner))))
            core.handle_timer(t)
        _core_cache["core"] = core
    return copy.deepcopy(_core_cache["core"])


@target("slow_frame")
def slow_frame(data):
    """An Ethernet frame on a port's Slow Protocols socket: parse_frame gives (source,
    payload) or PduError, and the LACP core takes any frame without raising."""
    from agrconfig.lacp import Output
    from agrconfig.lacp import pdu as P
    try:
        src, payload = P.parse_frame(data)
    except P.PduError:
        pass
    else:
        assert len(src) == 6 and bytes(data[:6]) == P.SLOW_PROTOCOLS_MAC
        slow_pdu(payload)
    core = _core()
    for port in (1, 2):
        out = core.receive(5.0, port, data)
        assert isinstance(out, Output)
        # A frame that is a Slow Protocols one whatever its header says.
        out = core.receive(5.5, port, P.SLOW_PROTOCOLS_MAC + bytes(6) + b"\x88\x09" + bytes(data))
        assert isinstance(out, Output)
    core.handle_timer(7.0)


@target("preflight_frame")
def preflight_frame(data):
    """A frame heard by pre-flight on a free port (LACP or LLDP socket): LldpNeighbour or
    LldpError, a LacpPartner, None or PduError; pre-flight's own reader never raises."""
    from agrconfig import heard
    from agrconfig.cli import preflight
    from agrconfig.lacp import pdu as P
    try:
        got = heard.lldp_neighbour(data)
    except heard.LldpError as exc:
        assert str(exc)
    else:
        assert isinstance(got, heard.LldpNeighbour)
        assert all(isinstance(v, str) for v in (got.chassis_id, got.port_id))
        assert got.system_name is None or isinstance(got.system_name, str)
    try:
        partner = heard.lacp_partner(data)
    except P.PduError:
        pass
    else:
        assert partner is None or isinstance(partner, heard.LacpPartner)
    lldp_frame = heard.LLDP_MAC + bytes(6) + heard.ETH_P_LLDP.to_bytes(2, "big") + bytes(data)
    for frame, proto in ((data, P.ETH_P_SLOW), (data, heard.ETH_P_LLDP), (lldp_frame, heard.ETH_P_LLDP)):
        lacp, lldp = {}, {}
        assert preflight._heard(frame, "re0", proto, lacp, lldp) in (True, False)
        if lacp:
            heard.groups([("re0", 1000, lacp["re0"])])


@target("data_frame")
def data_frame(data):
    """A frame the relay carries (behind a 10-byte virtio-net header or not): the flow hash is a
    32-bit number for every agrhash policy, slb finds the source or None, tells gratuitous
    ARP, and its learned table admits or drops; nothing raises."""
    from agrconfig import options
    from agrconfig.worker import slb
    from agrconfig.worker.flowhash import flow_hash
    from agrconfig.worker.tap import VNET_HDR_LEN
    policies = range(0, (options.L2 | options.L3 | options.L4) + 1)
    for off in (0, VNET_HDR_LEN):
        for policy in policies:
            h = flow_hash(data, policy, off)
            assert type(h) is int and 0 <= h < 1 << 32
        src = slb.frame_source(data, off)
        assert src is None or (len(src[0]) == 6 and 0 <= src[1] < 4096)
        assert slb.is_gratuitous_arp(data, off) in (True, False)
        learned = slb.Learned(limit=4)
        if src is not None:
            assert learned.learn(0.0, *src)
            assert 0 <= slb.bucket_of(*src) < slb.BUCKETS
        assert learned.admit(1.0, data, off) in (True, False)
        assert learned.admit(1.0, memoryview(data), off) in (True, False)


# -- local users: the control socket -------------------------------------------------------------

@target("control_request")
def control_request(data):
    """A request's bytes as a local user sends them: a typed Request or AgrError(EINVAL); a
    parsed request goes over the socket again as the same request."""
    from agrconfig.ipc import protocol
    try:
        req = protocol.parse_request(data)
    except AgrError as exc:
        assert exc.errno == errno.EINVAL, exc
        assert str(exc)
        return
    assert isinstance(req, protocol.Request)
    wire = json.dumps(req.to_json()).encode()
    assert protocol.parse_request(wire) == req
    # A setting the socket accepts is one the words can say (-n, status, files): the same again.
    if isinstance(req, (protocol.SetFlags, protocol.SetPort)):
        from agrconfig import options
        from agrconfig.cli.grammar import parse_words
        port = getattr(req, "port", None)
        for key, value in req.flags.items():
            words = options.file_words(key, value, port)
            ops = parse_words(words)
            assert [(op.key, op.value) for op in ops] == [(key, value)], (key, value, words, ops)
    # What the worker answers must be JSON again (its error replies quote the request).
    json.dumps(protocol.answer(req, lambda r: None))


@target("control_reply")
def control_reply(data):
    """A reply's bytes as the front end reads them from whatever answers on the control
    socket: the reply object, AgrError or WorkerGone; a status in it is an AggregateStatus or
    ValueError."""
    from agrconfig.ipc import client
    from agrconfig.status import AggregateStatus
    try:
        reply = client.reply_of("agr0", data)
    except AgrError as exc:
        assert str(exc) and isinstance(exc.errno, int)
        exc.to_dict()
        return
    except client.WorkerGone:
        return
    finally:
        client._peers.pop("agr0", None)
    assert isinstance(reply, dict)
    try:
        status = AggregateStatus.from_json(reply.get("result"))
    except ValueError as exc:
        assert str(exc)
        return
    json.dumps(status.to_json())
    assert AggregateStatus.from_json(json.loads(json.dumps(status.to_json()))) == status
    # What the front end shows of it: ifconfig's text (-v too) and --json.
    from agrconfig.cli import render
    doc = {"ifname": "agr0", "ifindex": 5, "flags": 0x8843, "flags_str": [], "mtu": 1500,
           "address": "02:00:00:00:00:01", "operstate": "UP", "carrier": True, "addr_info": [], "stats64": {},
           "agr": status}
    for verbose in (False, True):
        assert render.render_text(doc, verbose)
    json.dumps(render.json_doc(doc), default=render.plain)   # as render.render() writes it


@target("control_server")
def control_server(data):
    """A request's bytes through the worker's server end (a real socket pair), from root and
    from another user: one JSON reply, a result or an error, and the server goes on."""
    from agrconfig.ipc import server
    real = server.peer_uid
    try:
        for uid in (0, 65534):
            server.peer_uid = lambda sock, uid=uid: uid   # SO_PEERCRED of a socket pair is ours
            _serve_once(server, data)
    finally:
        server.peer_uid = real


def _serve_once(server, data):
    import socket
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    listener = _OneShotListener(a)
    srv = server.Server(listener, lambda req, now: {"op": req.OP}, clock=lambda: 0.0)
    try:
        b.setblocking(False)
        view, reply = memoryview(data), bytearray()
        closed = False
        srv.on_readable(0.0, None)
        for _ in range(10000):
            if view:
                try:
                    view = view[b.send(view[:65536]):]
                except BlockingIOError:
                    pass
            elif not closed:
                b.shutdown(socket.SHUT_WR)
                closed = True
            for _sock, conn, _events in list(srv.fds())[1:]:
                srv.on_readable(0.0, conn)
            try:
                chunk = b.recv(65536)
            except BlockingIOError:
                continue
            if not chunk:
                break
            reply += chunk
        else:
            raise AssertionError("the server never finished its reply")
        doc = json.loads(reply)
        assert set(doc) & {"result", "error"} and "version" in doc, doc
    finally:
        srv.close()
        b.close()


class _OneShotListener:
    """A listener whose _accept() (a bare _socket's, as the server calls it) hands over one
    connected socket's fd once."""

    def __init__(self, sock):
        self.sock = sock

    def _accept(self):
        if self.sock is None:
            raise BlockingIOError
        sock, self.sock = self.sock, None
        return sock.detach(), None


# -- the state file ---------------------------------------------------------------------------------

_state_dir = {}


def _state_run_dir():
    """One run directory for every state-file input of this process (made once: a fuzzer calls
    the target a million times)."""
    if "dir" not in _state_dir:
        tmp = tempfile.mkdtemp(prefix="agrfuzz-")
        saved = paths.RUN_ROOT
        paths.RUN_ROOT = tmp
        try:
            _state_dir["dir"] = paths.run_dir(create=True)
        finally:
            paths.RUN_ROOT = saved
        import atexit
        atexit.register(shutil.rmtree, tmp, True)
        _state_dir["root"] = tmp
    return _state_dir["root"], _state_dir["dir"]


@target("state_file")
def state_file(data):
    """The bytes of /run/agrconfig/.../agr0.state: load() gives a state that validates or None
    (the file set aside), never raises; a loaded state saves and loads back the same; what
    the worker reads of it (LACP snapshots) is a snapshot or None."""
    import logging
    from agrconfig.worker import statefile
    from agrconfig.worker.aggregation import resume_entry
    root, run_dir = _state_run_dir()
    saved_root = paths.RUN_ROOT
    paths.RUN_ROOT = root
    logger = logging.getLogger("agrconfig")
    level = logger.level
    logger.setLevel(logging.ERROR)   # every damaged file is logged; millions of them here
    try:
        path = os.path.join(run_dir, "agr0.state")
        with open(path, "wb") as f:
            f.write(data)
        state = statefile.load("agr0")
        if state is None:
            assert not os.path.exists(path), "a refused file is set aside"
            return
        assert isinstance(state, dict)
        statefile.validate(json.loads(json.dumps(state)), "agr0")
        for orig in state["ports"]:
            resume_entry(state.get("lacp"), orig["index"])
        statefile.save(state)
        again = statefile.load("agr0")
        assert again == json.loads(json.dumps(state)), (again, state)
    finally:
        paths.RUN_ROOT = saved_root
        logger.setLevel(level)
        for leftover in os.listdir(run_dir):   # files, and 0.5.0's worker/ where save() writes
            where = os.path.join(run_dir, leftover)
            if os.path.isdir(where) and not os.path.islink(where):
                shutil.rmtree(where, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(where)


# -- configuration files ---------------------------------------------------------------------------

_conf_dir = {}


@target("ifconfig_file")
def ifconfig_file(data):
    """The bytes of /etc/ifconfig.agrN: its lines (operations or `!` commands) or UsageError
    naming the line; each line's operations give words that parse to the same operations."""
    from agrconfig.cli import provision
    from agrconfig.cli.grammar import parse_words
    if "dir" not in _conf_dir:
        import atexit
        _conf_dir["dir"] = tempfile.mkdtemp(prefix="agrfuzz-")
        atexit.register(shutil.rmtree, _conf_dir["dir"], True)
    path = os.path.join(_conf_dir["dir"], "ifconfig.agr0")
    with open(path, "wb") as f:
        f.write(data)
    try:
        lines = provision.read_file(path)
    except UsageError as exc:
        assert str(exc).startswith(path), exc
        return
    for line in lines:
        assert (line.ops is None) != (line.shell is None)
        if line.ops:
            words = [w for op in line.ops for w in op.words()]
            assert [type(op) for op in parse_words(words)] == [type(op) for op in line.ops], words


@target("ifupdown_stanza")
def ifupdown_stanza(data):
    """ifupdown's environment for a stanza (lines KEY=VALUE; a key without IF_ gets the name of
    an agr-* option by its first octet): (ports, words) or None or UsageError, and the words
    the hook would run parse or raise UsageError."""
    from agrconfig.cli import ifupdown
    from agrconfig.cli.grammar import parse_words
    from agrconfig.checks import valid_ifname
    known = sorted(ifupdown.env_name(s) for s in [ifupdown.PORTS, ifupdown.LINK1, *ifupdown.stanza_options()])
    env = {}
    for line in data.split(b"\n"):
        key, _, value = line.partition(b"=")
        if not key.startswith(b"IF_"):
            key = known[key[0] % len(known)].encode() if key else b"IF_AGR_PORTS"
        # An environment holds no NUL, and Python decodes it with surrogateescape.
        env[key.replace(b"\0", b"").decode("utf-8", "surrogateescape")] = \
            value.replace(b"\0", b"").decode("utf-8", "surrogateescape")
    try:
        found = ifupdown.stanza(env)
    except UsageError as exc:
        assert str(exc)
        return
    if found is None:
        return
    ports, words = found
    try:
        parse_words(["create", *words, *[w for p in ports for w in ("agrport", p)]])
    except UsageError as exc:
        assert str(exc)
    else:
        assert all(valid_ifname(p) for p in ports)



if os.environ.get("AGRCONFIG_FUZZ_SELFTEST"):
    @target("selftest")
    def selftest(data):
        """Breaks on b"boom" (tests of the fuzzing machinery only)."""
        if bytes(data) == b"boom":
            raise RuntimeError("selftest: boom")
