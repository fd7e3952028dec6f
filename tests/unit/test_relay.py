"""The Python relay's loop with socketpairs standing in for agrN's TAP and the ports' sockets."""
import os
import select
import socket
import struct
import sys
import threading
import time
import types

import pytest

from agrconfig.worker import dataplane
from agrconfig.worker.dataplane import Relay
from agrconfig.worker.flowhash import flow_hash
from agrconfig.worker.port import Member
from agrconfig.worker.tap import VNET_HDR_LEN

VNET = bytes(VNET_HDR_LEN)


def frame(flow, seq=0, ethertype=b"\x08\x00"):
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, flow])
    return b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a" + ethertype + ip + struct.pack("!I", seq) + bytes(16)


def eventually(predicate, timeout=5.0):
    """Whether `predicate` holds within `timeout`: the relay thread may lag on a loaded machine."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def wait_event(fd, timeout=2.0):
    """An eventfd's count, waiting at most `timeout` (a missing signal fails, never hangs)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, "no signal"
    return os.eventfd_read(fd)


class Net:
    """agrN's TAP and n ports: each a datagram socketpair; the far ends are ours."""

    def __init__(self, nports=2, clock=None):
        self.tap_far, tap = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.tap_fd = tap.detach()
        self.slow = []
        self.relay = Relay(self.tap_fd, lambda index, data: self.slow.append((index, data)), clock=clock)
        self.ports, self.far = [], []
        for i in range(nports):
            ours, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            ours.setblocking(False)
            far.settimeout(2)
            self.ports.append(types.SimpleNamespace(index=10 + i, sock=ours))
            self.far.append(far)
        self.failed = []

    def set(self, distributing, collecting=None):
        idx = {p.index for p in self.ports}
        self.relay.set_ports(self.ports, {10 + i for i in distributing} & idx,
                             {10 + i for i in (distributing if collecting is None else collecting)} & idx)

    def received(self, i, timeout=0.5):
        out = []
        self.far[i].settimeout(timeout)
        try:
            while True:
                out.append(self.far[i].recv(70000))
        except (socket.timeout, BlockingIOError):
            return out

    def close(self):
        self.relay.stop()
        if self.relay._thread:
            self.relay._thread.join(2)
        for s in (*self.far, self.tap_far, *(p.sock for p in self.ports if p.sock)):
            s.close()
        if self.tap_fd is not None:
            os.close(self.tap_fd)


@pytest.fixture
def net(monkeypatch):
    n = Net()
    monkeypatch.setattr(dataplane.os, "_exit", lambda code: n.failed.append(code))
    yield n
    n.close()
    assert not n.failed, "the relay thread failed"


def test_frames_from_agr_go_by_flow_hash_with_counters(net):
    net.set({0, 1})
    net.relay.start()
    frames = [frame(flow) for flow in range(40)]
    for f in frames:
        net.tap_far.send(VNET + f)
    got = [[], []]
    deadline = time.monotonic() + 5
    while len(got[0]) + len(got[1]) < 40 and time.monotonic() < deadline:
        for i in (0, 1):
            got[i] += net.received(i, timeout=0.05)
    for f in frames:
        i = flow_hash(f, net.relay.policy) % 2
        assert VNET + f in got[i]
    assert len(got[0]) + len(got[1]) == 40 and got[0] and got[1]
    c = net.relay.port_counters
    assert c[10][0] == len(got[0]) and c[11][0] == len(got[1])
    assert c[10][1] + c[11][1] == sum(len(f) for f in frames)


def test_no_distributing_port_drops_and_counts(net):
    net.set(set())
    net.relay.start()
    net.tap_far.send(VNET + frame(1))
    assert eventually(lambda: net.relay.counters["tx_drop_no_port"] == 1)


def test_collecting_ports_feed_agr_slow_protocols_go_to_the_worker(net):
    net.set({0}, collecting={0})
    net.relay.start()
    net.far[0].send(VNET + frame(1))
    net.far[1].send(VNET + frame(2))                                  # not collecting: dropped
    lacpdu = frame(3, ethertype=b"\x88\x09")
    net.far[1].send(VNET + lacpdu)                                    # from any port
    net.tap_far.settimeout(5)
    assert net.tap_far.recv(70000) == VNET + frame(1)
    assert eventually(lambda: net.slow)    # sent after frame 2 on the same port: 2 was read
    net.tap_far.setblocking(False)
    with pytest.raises(BlockingIOError):
        net.tap_far.recv(70000)
    assert net.slow == [(11, lacpdu)]
    assert net.relay.port_counters[10][2:] == [1, len(frame(1))]


def test_slow_protocol_flood_is_limited(monkeypatch):
    net = Net(clock=lambda: 100.0)   # no time passes: the burst alone, however slow the thread
    monkeypatch.setattr(dataplane.os, "_exit", lambda code: net.failed.append(code))
    try:
        net.set({0})
        net.relay.start()
        for i in range(100):
            net.far[0].send(VNET + frame(i, ethertype=b"\x88\x09"))
        assert eventually(lambda: len(net.slow) + net.relay.slow_limited.get(10, 0) == 100)
        assert len(net.slow) == 20 and net.relay.slow_limited[10] == 80
    finally:
        net.close()
    assert not net.failed


def first_arrival(socks, deadline):
    """monotonic() when the first of `socks` became readable, or None by `deadline`."""
    while (left := deadline - time.monotonic()) > 0:
        if select.select(socks, [], [], left)[0]:
            return time.monotonic()
    return None


def test_a_joining_port_holds_frames_then_drain_is_signalled(net, monkeypatch):
    sent_when_drained = []
    signal = os.eventfd_write

    def eventfd_write(fd, value):  # in the relay thread, at the moment it signals
        sent_when_drained.append(sum(c[0] for c in net.relay.port_counters.values()))
        signal(fd, value)

    monkeypatch.setattr(dataplane.os, "eventfd_write", eventfd_write)
    # A longer hold than the real one: "nothing before it ends" then has a margin far
    # above scheduling noise, and a hold cut short by half is still seen.
    monkeypatch.setattr(dataplane, "HOLD", 0.2)
    net.set({0})
    net.relay.start()
    t = time.monotonic()
    net.set({0, 1})                                   # joins: frames wait HOLD seconds
    for flow in range(8):
        net.tap_far.send(VNET + frame(flow))
    net.relay.request_drain()
    came = first_arrival(net.far, t + 2)
    assert came is not None, "the held frames never came"
    assert t + 0.2 <= came < t + 0.2 + 0.5, came - t
    got = net.received(0, 0.2) + net.received(1, 0.2)
    assert len(got) == 8
    assert wait_event(net.relay.drained) == 1
    assert sent_when_drained == [8], "drained only once the held frames were sent"


@pytest.mark.parametrize("quiet", [0.0, 0.05])
def test_drain_is_signalled_with_nothing_queued(net, monkeypatch, quiet):
    """A join with no traffic: the drain ends once the hold (and the quiet time) are over,
    without waiting for a frame that may never come."""
    monkeypatch.setattr(dataplane, "HOLD", 0.1)
    net.set({0})
    net.relay.start()
    t = time.monotonic()
    net.set({0, 1})
    net.relay.request_drain(quiet)
    early = t + 0.1 + quiet
    wait = early - 0.01 - time.monotonic()
    if wait > 0:  # this thread may have stalled past `early` on a loaded machine: then not known
        assert not select.select([net.relay.drained], [], [], wait)[0], \
            "drained before the hold and the quiet time were over"
    assert wait_event(net.relay.drained) == 1
    took = time.monotonic() - t
    assert 0.1 + quiet <= took < 0.1 + quiet + 0.3, took


def test_tables_changing_under_load_never_kill_the_thread(net):
    """The socket table and its counters change together: a frame never takes a socket from
    one table and its counters from another (that killed the relay thread once)."""
    net.set({0, 1})
    net.relay.start()
    stop = threading.Event()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between almost any two bytecodes

    def flap():
        while not stop.is_set():
            net.set({0})
            net.set({0, 1})  # joins: holds; a bounded queue drains meanwhile
            net.relay.hold_until = 0

    t = threading.Thread(target=flap)
    t.start()
    try:
        for seq in range(3000):
            try:
                net.tap_far.send(VNET + frame(seq % 7 + 1, seq), socket.MSG_DONTWAIT)
            except BlockingIOError:
                time.sleep(0.001)
            if seq % 100 == 0:
                net.received(0, 0.01), net.received(1, 0.01)
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
    time.sleep(0.2)
    assert net.relay._thread.is_alive()
    assert not net.failed


def test_a_failing_loop_ends_the_worker_loudly(net, caplog):
    net.set({0})
    net.relay.tx_table = ((None, None),) * 2           # a table no frame can be sent on
    net.relay.start()
    net.tap_far.send(VNET + frame(1))
    deadline = time.monotonic() + 2
    while not net.failed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert net.failed == [70]
    assert "relay thread failed" in caplog.text
    net.failed.clear()


def test_quiet_time_starts_again_when_a_frame_comes(net):
    """`stays empty for quiet seconds`: a frame inside the quiet time restarts it."""
    net.set({0})
    net.relay.start()
    t = time.monotonic()
    gen = net.relay.request_drain(0.1)
    time.sleep(0.05)
    net.tap_far.send(VNET + frame(1))
    assert wait_event(net.relay.drained) == 1
    assert time.monotonic() - t >= 0.15
    assert net.relay.drained_gen == gen
    assert len(net.received(0)) == 1


def test_each_drain_request_is_answered_by_number(net):
    net.set({0})
    net.relay.start()
    first = net.relay.request_drain(0.05)
    second = net.relay.request_drain(0.0)  # asked again before the first was answered
    assert second == first + 1
    wait_event(net.relay.drained)
    assert net.relay.drained_gen == second


def relay_turns(net, seconds):
    """How often the relay loop goes round in `seconds` (it reads the clock each turn). An
    idle relay sleeps in poll; a spinning one turns thousands of times, however loaded the
    machine is (CPU time measured here let a spin pass on a busy host)."""
    count = [0]

    def monotonic():
        if threading.get_ident() == net.relay._thread.ident:
            count[0] += 1
        return time.monotonic()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dataplane, "time", types.SimpleNamespace(monotonic=monotonic))
        time.sleep(seconds)
    return count[0]


def test_a_port_socket_closed_under_the_relay_is_left_alone(net):
    """The worker closes a port's socket (Member.close_socket: close, then sock = None) while
    the relay may still poll it, e.g. at shutdown, then hands new tables: no busy loop on
    the dead descriptor, no error counted per turn, the other ports still served."""
    net.set({0, 1})
    net.relay.start()
    net.far[1].send(VNET + frame(2))       # the relay polls port 1: it is in its poll set
    net.tap_far.settimeout(1)
    assert net.tap_far.recv(70000) == VNET + frame(2)
    Member.close_socket(net.ports[1])      # the worker's own code (a Member needs a live link)
    assert net.ports[1].sock is None
    assert relay_turns(net, 0.3) < 20, "the relay thread spins"
    net.far[0].send(VNET + frame(1))       # before new tables: port 0 is still served
    assert net.tap_far.recv(70000) == VNET + frame(1)
    net.set({0})                           # new tables: port 1 is listed without a socket
    assert list(net.relay.all_ports.values()) == [(10, net.ports[0].sock)]
    net.far[0].send(VNET + frame(3))
    assert net.tap_far.recv(70000) == VNET + frame(3)
    assert net.relay.counters["rx_errors"] == 0
    assert net.relay._thread.is_alive()


def test_a_dead_tap_is_reported_once_and_not_spun_on(net):
    net.set({0})
    net.relay.start()
    time.sleep(0.05)
    os.close(net.tap_fd)                   # as if agrN were deleted under the worker
    net.tap_fd = None
    net.set({0})                           # wakes the loop, which polls the dead descriptor
    assert wait_event(net.relay.tap_gone) == 1
    assert relay_turns(net, 0.3) < 20, "the relay thread spins"
    net.far[0].send(VNET + frame(1, ethertype=b"\x88\x09"))  # the ports are still served
    time.sleep(0.2)
    assert len(net.slow) == 1


def settled(get, want, timeout=1.0):
    """get() == want, waiting a little: the relay counts a frame just after it passes it on."""
    deadline = time.monotonic() + timeout
    while (got := get()) != want and time.monotonic() < deadline:
        time.sleep(0.005)
    return got == want


def seq_of(data):
    return struct.unpack_from("!I", data, VNET_HDR_LEN + 14 + 20)[0]


def test_round_robin_spreads_one_flow_over_every_port_in_turn(monkeypatch):
    """link0: frame k of a single flow goes to port (first + k) mod n, so every
    distributing port carries an equal share, each in order."""
    net = Net(nports=3)
    monkeypatch.setattr(dataplane.os, "_exit", lambda code: net.failed.append(code))
    try:
        net.relay.round_robin = True
        net.set({0, 1, 2})
        net.relay.start()
        for seq in range(30):
            net.tap_far.send(VNET + frame(7, seq))
        got = [[seq_of(net.far[i].recv(70000)) for _ in range(10)] for i in range(3)]
        assert not any(select.select(net.far, [], [], 0.05)[0]), "more than 30 frames"
        first = next(i for i in range(3) if 0 in got[i])
        for i in range(3):
            assert got[i] == list(range((i - first) % 3, 30, 3)), got
        assert settled(lambda: [net.relay.port_counters[10 + i][0] for i in range(3)], [10, 10, 10])
    finally:
        net.close()
    assert not net.failed


# -- VLAN tags: the kernel strips the 802.1Q tag from a received frame and reports it in
# PACKET_AUXDATA; the relay must put it back before the frame goes into agrN.

AUXDATA = (263, 8)  # SOL_PACKET, PACKET_AUXDATA: written out, not taken from the code under test
TP_STATUS_USER, TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x1, 0x10, 0x40


def auxdata(status, tci=0, tpid=0, length=0):
    """struct tpacket_auxdata, in host order as the kernel writes it."""
    return struct.pack("=IIIHHHH", status, length, length, 0, 14, tci, tpid)


def vnet(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack("<BBHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def tagged(f, tpid, tci):
    return f[:12] + struct.pack("!HH", tpid, tci) + f[12:]


def restore(data, anc, size=dataplane.BUF_SIZE):
    buf = bytearray(size)
    buf[:len(data)] = data
    n = Relay._restore_vlan(buf, len(data), anc)
    return bytes(buf[:n])


@pytest.mark.parametrize("status, tpid, tci, want_tpid", [
    (TP_STATUS_USER | TP_STATUS_VLAN_VALID, 0, 0xa00a, 0x8100),  # no TPID given: 802.1Q
    (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID, 0x88a8, 0x0064, 0x88a8),  # 802.1ad
    (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID, 0x8100, 0x0000, 0x8100),  # priority tag, VID 0
])
def test_restore_vlan_puts_the_tag_back(status, tpid, tci, want_tpid):
    f = frame(1)
    got = restore(vnet() + f, [(*AUXDATA, auxdata(status, tci, tpid, len(f)))])
    assert got == vnet() + tagged(f, want_tpid, tci)


def test_restore_vlan_moves_the_vnet_offsets_by_the_tag():
    """csum_start and hdr_len count from the start of the frame, which grew by 4 bytes."""
    f = frame(1) + bytes(100)
    hdr = vnet(flags=1, gso_type=1, hdr_len=54, gso_size=1448, csum_start=34, csum_offset=16)
    got = restore(hdr + f, [(*AUXDATA, auxdata(TP_STATUS_VLAN_VALID, 5))])
    want = vnet(flags=1, gso_type=1, hdr_len=58, gso_size=1448, csum_start=38, csum_offset=16)
    assert got == want + tagged(f, 0x8100, 5)
    # No checksum to finish, no GSO: the offsets mean nothing and stay as they were.
    hdr = vnet(hdr_len=54, csum_start=34, csum_offset=16)
    got = restore(hdr + f, [(*AUXDATA, auxdata(TP_STATUS_VLAN_VALID, 5))])
    assert got == hdr + tagged(f, 0x8100, 5)


@pytest.mark.parametrize("anc", [
    [],
    [(*AUXDATA, auxdata(TP_STATUS_USER, 0x0005, 0x8100))],               # no VLAN status
    [(263, 7, auxdata(TP_STATUS_VLAN_VALID, 5))],                         # not auxdata
    [(*AUXDATA, auxdata(TP_STATUS_VLAN_VALID, 5)[:12])],                  # too short
])
def test_restore_vlan_leaves_other_frames_alone(anc):
    data = vnet(flags=1, csum_start=34, csum_offset=16) + frame(1)
    assert restore(data, anc) == data


def test_restore_vlan_needs_room_for_the_tag():
    data = VNET + frame(1)
    assert restore(data, [(*AUXDATA, auxdata(TP_STATUS_VLAN_VALID, 5))], size=len(data) + 3) == data


class AuxPort:
    """A port socket whose receives carry the given auxdata, one per frame, as the
    kernel's would (a socketpair has no PACKET_AUXDATA of its own)."""

    def __init__(self, sock, aux):
        self.sock, self.aux = sock, list(aux)

    def fileno(self):
        return self.sock.fileno()

    def send(self, data):
        return self.sock.send(data)

    def close(self):
        self.sock.close()

    def recvmsg_into(self, buffers, ancbufsize):
        assert ancbufsize >= dataplane.socket.CMSG_SPACE(20), "no room for tpacket_auxdata"
        n, _anc, flags, addr = self.sock.recvmsg_into(buffers, ancbufsize)
        return n, [(*AUXDATA, self.aux.pop(0))], flags, addr


def test_the_relay_restores_vlan_tags_on_the_way_into_agr(net):
    f1, f2, slow = frame(1), frame(2), frame(3, ethertype=b"\x88\x09")
    hdr = vnet(flags=1, csum_start=34, csum_offset=16)
    net.ports[0].sock = AuxPort(net.ports[0].sock, [
        auxdata(TP_STATUS_USER | TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID, 0x2064, 0x88a8),
        auxdata(TP_STATUS_USER),
        auxdata(TP_STATUS_USER | TP_STATUS_VLAN_VALID, 0x0007),  # a tagged 0x8809: not a LACPDU
    ])
    net.set({0})
    net.relay.start()
    for data in (hdr + f1, hdr + f2, VNET + slow):
        net.far[0].send(data)
    net.tap_far.settimeout(1)
    assert net.tap_far.recv(70000) == vnet(flags=1, csum_start=38, csum_offset=16) + tagged(f1, 0x88a8, 0x2064)
    assert net.tap_far.recv(70000) == hdr + f2
    assert net.tap_far.recv(70000) == VNET + tagged(slow, 0x8100, 7)
    assert net.slow == []
    assert settled(lambda: net.relay.port_counters[10][2:], [3, len(f1) + len(f2) + len(slow) + 8])


class Sink:
    """A stand-in for the eBPF path's `relayed` counter: notes, at every addition, how many
    frames the relay had sent (or dropped: no port) by then."""

    def __init__(self, relay):
        self.relay, self._value, self.seen = relay, 0, []

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, v):
        done = sum(c[0] for c in self.relay.port_counters.values()) + self.relay.counters["tx_drop_no_port"]
        self.seen.append((v, done))
        self._value = v


def test_frames_read_from_agr_are_counted_into_the_sink_after_they_are_sent(net):
    """The fast path redirects again only once the relay's count reaches its own: a frame
    counted before it was sent could be overtaken."""
    sink = net.relay.tap_sink = Sink(net.relay)
    net.set({0, 1})
    net.relay.start()
    for flow in range(30):
        net.tap_far.send(VNET + frame(flow))
    assert len(net.received(0)) + len(net.received(1)) == 30
    net.set(set())
    net.tap_far.send(VNET + frame(1))                 # no port: dropped, and finished with
    deadline = time.monotonic() + 2
    while sink.value < 31 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.value == 31
    assert all(v <= done for v, done in sink.seen), sink.seen
    net.relay.tap_sink = None                         # the relay path: nothing counted
    net.set({0})
    net.tap_far.send(VNET + frame(2))
    assert len(net.received(0)) == 1 and sink.value == 31
