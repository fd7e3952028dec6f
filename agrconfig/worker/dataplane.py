"""Frame distribution and collection: the Python relay between agrN and its ports.

One thread moves both directions, in batches from whichever descriptors are
ready, copying frames verbatim with their virtio-net header (so GSO frames and
unfinished checksums cross whole). The main thread only swaps immutable tables
(tuples/frozensets): a reference assignment is atomic, so the loop needs no lock.
"""
import _thread
import errno
import os
import select
import _socket as socket   # not socket.py: its enums cost each worker ~0.5 MiB
import struct
import time

from . import slb
from .flowhash import DEFAULT_POLICY, flow_hash
from .port import PACKET_AUXDATA, SOL_PACKET
from .tap import VNET_HDR_LEN
from ..logger import log

BUF_SIZE = 65536 + VNET_HDR_LEN + 64
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
AUX = struct.Struct("IIIHHHH")  # tpacket_auxdata
VNET = struct.Struct("<BBHHHH")  # virtio_net_hdr
AUX_SPACE = socket.CMSG_SPACE(AUX.size)
ETHERTYPE_OFF = VNET_HDR_LEN + 12
HOLD = 0.02  # seconds of silence when a port joins the distributing set
BATCH = 64   # frames moved from one descriptor before the others get their turn
# A conforming partner sends at most 3 LACPDUs a second (802.1AX 6.4.16) and Markers
# rarely: more than this per port is a flood, dropped and counted before the main loop.
SLOW_RATE = 10.0
SLOW_BURST = 20.0
SLB_AGE_EVERY = 10.0   # seconds between two sweeps of agrproto slb's learned table
SLB_CACHE = 4096       # (MAC, VLAN) -> bucket entries kept before the cache starts over


class _Thread:
    """The relay's thread on _thread, not threading (~0.15 MiB in every worker). Like a
    daemon thread it never keeps the worker alive; join and is_alive are for the tests."""

    def __init__(self, target):
        self._running = _thread.allocate_lock()
        self._running.acquire()
        self.ident = _thread.start_new_thread(self._main, (target,))

    def _main(self, target):
        try:
            target()
        finally:
            self._running.release()

    def is_alive(self):
        return self._running.locked()

    def join(self, timeout=-1):
        if self._running.acquire(timeout=timeout):
            self._running.release()


class Relay:
    """The relay: its thread (`_loop`) moves the frames; the worker's loop (the main thread)
    sets its tables and asks for drains.

    Shared between the two threads, each field one reference assigned whole by one writer
    (so no lock):
    - main -> relay: the tables (tx_table, rx_table, all_ports, policy, round_robin);
      hold_until, when a join's hold ends (agrN's queue unread until then); _drain, the last
      drain request (quiet time, number); tap_sink; then a byte on the wake-up pipe.
    - relay -> main: drained_gen, the number of the last request answered, then the `drained`
      eventfd; the `tap_gone` eventfd; Slow Protocols frames through on_slow_frame; the
      counters (read for status: a read one frame old is harmless).
    The eBPF join hand-over (join.py, through datapath.EbpfPath) reads hold_until and
    drained_gen and asks by request_drain; the relay thread adds to tap_sink.value, which the
    egress program and the main thread read through the join map's mapping.
    """

    def __init__(self, tap_fd, on_slow_frame, clock=None):
        self.tap_fd = tap_fd
        # The worker's injectable clock (monotonic seconds); by default this module's time,
        # looked up at each call so that a test may replace it.
        self.clock = clock or (lambda: time.monotonic())
        self.on_slow_frame = on_slow_frame  # called from the relay thread with (port_index, bytes)
        self.tx_table = ()          # (socket, counters) of distributing ports, in order
        self.rx_table = {}          # fd -> (port index, socket) of collecting ports
        self.all_ports = {}         # fd -> (port index, socket) of every port (Slow Protocols)
        self.policy = DEFAULT_POLICY
        self.round_robin = False
        self.hold_until = 0.0       # a join's hold ends then (main writes, relay thread reads)
        # The eBPF path's count of frames read from agrN's queue and finished with (a
        # ctypes c_uint64 in its join map; see fastpath.py): added to after they are sent.
        self.tap_sink = None
        # agrproto slb (slb.py): the plan main sets before set_ports, and what set_ports makes
        # of it for the relay thread, one tuple assigned whole: (bucket -> (socket, counters)
        # or None, the designated port's fd); None when slb is off. The learned table is the
        # relay thread's (main reads it whole, by entries()).
        self.slb_plan = None
        self.slb = None
        self.slb_learned = slb.Learned()
        self.slb_dropped = {}       # port index -> [broadcast/multicast off the designated port, reflections]
        self._slb_bucket = {}       # (MAC, VLAN) -> bucket: a cache, the hash costs more than a lookup
        self._slb_aged = 0.0
        self.counters = {"tx_drop_no_port": 0, "tx_errors": 0, "rx_errors": 0}
        self.port_counters = {}     # port index -> [tx frames, tx bytes, rx frames, rx bytes]
        self.slow_limited = {}      # port index -> Slow Protocols frames dropped by the rate limit
        self.rx_discarded = {}      # port index -> frames dropped: the port was not collecting
        self._slow_bucket = {}      # port index -> [tokens, last refill]
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # tables, drain, stop
        self.drained = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)       # relay -> main: drain done
        self._drain = None          # (seconds of quiet, request number) last asked for (main writes)
        self._drain_gen = 0         # number of the last request (main thread)
        self.drained_gen = 0        # number of the last request answered (relay thread writes)
        self.tap_gone = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)  # relay -> main: agrN's TAP died
        self._running = False
        self._thread = None
        self._last_table = self.tx_table
        self._rr = 0                # round-robin counter (link0)
        self._tx_buf, self._rx_buf = bytearray(BUF_SIZE), bytearray(BUF_SIZE)
        self._tx_view, self._rx_view = memoryview(self._tx_buf), memoryview(self._rx_buf)
        self._tx_iov, self._rx_iov = [self._tx_buf], [self._rx_buf]  # built once, not per frame

    # -- control (main thread) -----------------------------------------------
    def set_ports(self, ports, distributing, collecting):
        """ports: Member objects (worker/port.py); distributing/collecting: sets of port indexes."""
        for p in ports:
            self.port_counters.setdefault(p.index, [0, 0, 0, 0])
        # One tuple holds each socket with its counters: the relay thread reads it once
        # per frame, never a new list of sockets with an old list of counters.
        table = tuple((p.sock, self.port_counters[p.index]) for p in ports
                      if p.index in distributing and p.sock)
        if self.tx_table and {s for s, _ in table} - {s for s, _ in self.tx_table}:
            # A port joins: flows move to it while their older frames may still sit in
            # another port's queue. A short hold lets those drain first: no reordering.
            self.hold_until = self.clock() + HOLD
        self.tx_table = table
        self.all_ports = {p.sock.fileno(): (p.index, p.sock) for p in ports if p.sock}
        self.rx_table = frozenset(fd for fd, (idx, _) in self.all_ports.items() if idx in collecting)
        plan = self.slb_plan
        if plan is None:
            self.slb = None
        else:
            by_index = {p.index: (p.sock, self.port_counters[p.index]) for p in ports
                        if p.index in distributing and p.sock}
            designated = next((p.sock.fileno() for p in ports if p.index == plan.designated and p.sock), None)
            self.slb = (tuple(by_index.get(i) for i in plan.buckets), designated)
        os.write(self._wake_w, b"x")  # the relay thread re-reads its poll set and the hold

    def request_drain(self, quiet=0.0):
        """Ask the relay thread to signal `drained` once the hold is over and agrN's queue
        is empty (and stays empty for `quiet` seconds). Returns the request's number:
        `drained_gen` is that number once this request (not an earlier one) is answered."""
        self._drain_gen += 1
        self._drain = (quiet, self._drain_gen)  # one reference: read whole by the relay thread
        os.write(self._wake_w, b"d")
        return self._drain_gen

    def start(self):
        self._running = True
        self._thread = _Thread(self._run)

    def stop(self):
        self._running = False
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # -- the relay thread --------------------------------------------------------
    def _run(self):
        try:
            self._loop()
        except BaseException:
            # Without its relay the worker moves nothing: end it, so that its supervisor
            # starts another (which resumes LACP and keeps agrN).
            log.critical("relay thread failed; the worker exits to be restarted", exc_info=True)
            os._exit(70)

    def _loop(self):
        """Both directions in one thread: a second thread would only contend for the
        interpreter lock (measured: one thread moves ~12% more with the same CPU)."""
        fd_tap = self.tap_fd
        os.set_blocking(fd_tap, False)
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        poller.register(fd_tap, select.POLLIN)
        tap_mask = select.POLLIN
        tap_alive = True
        ports, polled, dead = None, set(), set()
        quiet_until = None
        stale = True
        while self._running:
            if self.all_ports is not ports:
                ports, dead, stale = self.all_ports, set(), True
            if stale:  # new tables, or a descriptor closed under us
                wanted = set(ports) - dead
                for fd in polled - wanted:
                    poller.unregister(fd)
                for fd in wanted - polled:
                    poller.register(fd, select.POLLIN)
                polled, stale = wanted, False
            drain = self._drain
            pending = drain is not None and drain[1] != self.drained_gen
            hold_until = self.hold_until
            now = self.clock()
            holding = hold_until > now
            if holding:  # a port joined: frames wait in agrN's queue meanwhile
                timeout = (hold_until - now) * 1000
            elif pending:  # look at agrN's queue now, or when quiet enough
                timeout = 0 if quiet_until is None else max(0.0, quiet_until - now) * 1000
            else:
                timeout = None
            mask = 0 if holding else select.POLLIN
            if tap_alive and mask != tap_mask:
                poller.modify(fd_tap, mask)
                tap_mask = mask
            tap_empty, tap_moved = bool(tap_mask), False  # not polled (held): not known empty
            for fd, ev in poller.poll(timeout):
                if fd == fd_tap:
                    if ev & select.POLLIN and not holding:
                        tap_moved, tap_empty = self._send_from_tap()
                    if ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL) and not ev & select.POLLIN \
                            or tap_empty is None:
                        tap_alive = self._lose_tap(poller)
                        tap_empty = True
                elif fd == self._wake_r:
                    try:
                        os.read(fd, 4096)
                    except OSError:
                        pass
                elif ev & select.POLLNVAL or not self._receive(fd, *ports.get(fd, (None, None))):
                    dead.add(fd)  # closed under us: left alone until the next tables
                    stale = True
            if not pending:
                quiet_until = None
            elif tap_moved or not tap_empty or self.hold_until != hold_until or self.hold_until > self.clock():
                quiet_until = None  # frames came, or may be waiting, or a join began: not quiet
            else:
                now = self.clock()
                if quiet_until is None:
                    quiet_until = now + drain[0]
                if now >= quiet_until:
                    quiet_until = None
                    self.drained_gen = drain[1]
                    os.eventfd_write(self.drained, 1)

    def _lose_tap(self, poller):
        """agrN's TAP is gone under us (deleted, so reads fail and poll reports an error):
        stop polling it and tell the main loop, which gives the ports back."""
        try:
            poller.unregister(self.tap_fd)
        except (KeyError, ValueError):
            pass
        os.eventfd_write(self.tap_gone, 1)
        return False

    # -- TAP -> ports ----------------------------------------------------------
    def _send_from_tap(self):
        """Up to BATCH frames from agrN to the distributing ports. Returns (moved any,
        empty): empty is True once agrN's queue is empty, False if frames may remain (or a
        hold began), None if the TAP is gone. The frames read are added to tap_sink (when
        set) once they have been sent."""
        frames, empty = self._send_batch()
        if frames:
            sink = self.tap_sink
            if sink is not None:
                sink.value += frames
        return frames > 0, empty

    def _send_batch(self):
        """_send_from_tap's work: (frames read, empty)."""
        iov, view, fd = self._tx_iov, self._tx_view, self.tap_fd
        counters = self.counters
        moved = 0
        slb_now = self.clock() if self.slb is not None else 0.0
        for _ in range(BATCH):
            table = self.tx_table
            if table is not self._last_table:
                self._last_table = table
                if self.hold_until > self.clock():
                    return moved, False
            try:
                n = os.readv(fd, iov)
            except BlockingIOError:
                return moved, True
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EBADFD):
                    return moved, None
                if exc.errno != errno.EINTR:
                    counters["tx_errors"] += 1
                return moved, False
            if n == 0:
                return moved, None  # end of file: no TAP gives that while it lives
            moved += 1
            if not table:
                counters["tx_drop_no_port"] += 1
                continue
            frame = view[:n]
            balance = self.slb
            if balance is not None:
                target = self._slb_choose(balance[0], frame, slb_now)
                if target is None:
                    counters["tx_drop_no_port"] += 1
                    continue
                sock, c = target
            elif len(table) == 1:
                sock, c = table[0]
            elif self.round_robin:
                self._rr += 1
                sock, c = table[self._rr % len(table)]
            else:
                sock, c = table[flow_hash(frame, self.policy, VNET_HDR_LEN) % len(table)]
            try:
                sock.send(frame)
            except OSError:
                counters["tx_errors"] += 1
                continue
            c[0] += 1
            c[1] += n - VNET_HDR_LEN
        return moved, False

    def _slb_choose(self, buckets, frame, now):
        """agrproto slb: the (socket, counters) of the frame's source MAC and VLAN, which are
        learned (behind agrN) on the way; None if no port distributes."""
        src = slb.frame_source(frame, VNET_HDR_LEN)
        if src is None or not buckets:
            return None
        learned = self.slb_learned
        # Gratuitous ARP (ours: agrannounce, failover) only tested on ARP and tagged frames.
        learned.learn(now, *src, grat_arp=frame[ETHERTYPE_OFF] in (0x08, 0x81)
                      and slb.is_gratuitous_arp(frame, VNET_HDR_LEN))
        if now - self._slb_aged >= SLB_AGE_EVERY:
            self._slb_aged = now
            learned.age(now)
        bucket = self._slb_bucket.get(src)
        if bucket is None:
            if len(self._slb_bucket) >= SLB_CACHE:
                self._slb_bucket = {}
            bucket = self._slb_bucket[src] = slb.bucket_of(*src)
        return buckets[bucket]

    def _slb_admit(self, balance, fd, index, n):
        """agrproto slb: may the frame in the receive buffer go up? Broadcast and multicast
        only from the designated port; nothing from a source we send from (a reflection),
        except a gratuitous ARP that is not our own."""
        view = self._rx_view
        if view[VNET_HDR_LEN] & 1 and fd != balance[1]:
            self.slb_dropped.setdefault(index, [0, 0])[0] += 1
            return False
        if not self.slb_learned.admit(self.clock(), view[:n], VNET_HDR_LEN):
            self.slb_dropped.setdefault(index, [0, 0])[1] += 1
            return False
        return True

    # -- ports -> TAP ----------------------------------------------------------
    def _receive(self, fd, index, sock):
        """Up to BATCH frames from one port: Slow Protocols to the worker, the rest into
        agrN if the port is collecting. False if the socket was closed under us."""
        if sock is None:
            return False
        buf, iov, view, fd_tap = self._rx_buf, self._rx_iov, self._rx_view, self.tap_fd
        c = self.port_counters.get(index)
        for _ in range(BATCH):
            try:
                n, anc, _flags, _addr = sock.recvmsg_into(iov, AUX_SPACE)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as exc:
                if exc.errno == errno.EBADF:
                    return False
                self.counters["rx_errors"] += 1
                return True
            if n < ETHERTYPE_OFF + 2:
                continue
            if anc and anc[0][2][0] & TP_STATUS_VLAN_VALID:  # rare: look closer only then
                n = self._restore_vlan(buf, n, anc)
            if buf[ETHERTYPE_OFF] == 0x88 and buf[ETHERTYPE_OFF + 1] == 0x09:
                if self._slow_allowed(index):
                    self.on_slow_frame(index, bytes(view[VNET_HDR_LEN:n]))
                continue
            if fd not in self.rx_table:  # not collecting: the standard says discard
                self.rx_discarded[index] = self.rx_discarded.get(index, 0) + 1
                continue
            balance = self.slb
            if balance is not None and not self._slb_admit(balance, fd, index, n):
                continue
            try:
                os.write(fd_tap, view[:n])
            except OSError:
                self.counters["rx_errors"] += 1
                continue
            if c is not None:
                c[2] += 1
                c[3] += n - VNET_HDR_LEN
        return True

    def _slow_allowed(self, index):
        """Token bucket per port for Slow Protocols frames."""
        now = self.clock()
        bucket = self._slow_bucket.get(index)
        if bucket is None:
            bucket = self._slow_bucket[index] = [SLOW_BURST, now]
        bucket[0] = min(SLOW_BURST, bucket[0] + (now - bucket[1]) * SLOW_RATE)
        bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return True
        self.slow_limited[index] = self.slow_limited.get(index, 0) + 1
        return False

    @staticmethod
    def _restore_vlan(buf, n, anc):
        """The kernel strips the VLAN tag into auxdata: put it back in the frame."""
        for level, kind, data in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= AUX.size:
                status, _len, _snap, _mac, _net, tci, tpid = AUX.unpack_from(data)
                if status & TP_STATUS_VLAN_VALID and n + 4 <= len(buf):
                    if not status & TP_STATUS_VLAN_TPID_VALID:
                        tpid = 0x8100
                    off = VNET_HDR_LEN + 12
                    buf[off + 4:n + 4] = buf[off:n]
                    struct.pack_into("!HH", buf, off, tpid, tci)
                    # Offsets in the virtio-net header count from the frame start.
                    flags, gso_type, hdr_len, gso_size, csum_start, csum_off = VNET.unpack_from(buf)
                    if flags & 1:
                        csum_start += 4
                    if gso_type:
                        hdr_len += 4
                    VNET.pack_into(buf, 0, flags, gso_type, hdr_len, gso_size, csum_start, csum_off)
                    return n + 4
        return n
