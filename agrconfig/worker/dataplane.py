"""Frame distribution and collection: the Python relay between agrN and its ports.

Two threads, one per direction, copy frames verbatim with their virtio-net
header (so GSO frames and unfinished checksums cross whole). The main thread
only swaps immutable tables (tuples/frozensets): a reference assignment is
atomic, so the hot loops need no lock.
"""
import errno
import os
import select
import socket
import struct
import threading
import time

from .flowhash import DEFAULT_POLICY, flow_hash
from .tap import VNET_HDR_LEN

BUF_SIZE = 65536 + VNET_HDR_LEN + 64
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
AUX = struct.Struct("IIIHHHH")  # tpacket_auxdata
VNET = struct.Struct("<BBHHHH")  # virtio_net_hdr
AUX_SPACE = socket.CMSG_SPACE(AUX.size)
ETHERTYPE_OFF = VNET_HDR_LEN + 12
HOLD = 0.02  # seconds of silence when a port joins the distributing set
# A conforming partner sends at most 3 LACPDUs a second (802.1AX 6.4.16) and Markers
# rarely: more than this per port is a flood, dropped and counted before the main loop.
SLOW_RATE = 10.0
SLOW_BURST = 20.0


class Relay:
    def __init__(self, tap_fd, on_slow_frame):
        self.tap_fd = tap_fd
        self.on_slow_frame = on_slow_frame  # called from the RX thread with (port_index, bytes)
        self.tx_table = ()          # sockets of distributing ports, in order
        self.rx_table = {}          # fd -> (port index, socket) of collecting ports
        self.all_ports = {}         # fd -> (port index, socket) of every port (Slow Protocols)
        self.policy = DEFAULT_POLICY
        self.round_robin = False
        self.hold_until = 0.0
        self.counters = {"tx_drop_no_port": 0, "tx_errors": 0, "rx_errors": 0}
        self.port_counters = {}     # port index -> [tx frames, tx bytes, rx frames, rx bytes]
        self.slow_limited = {}      # port index -> Slow Protocols frames dropped by the rate limit
        self._slow_bucket = {}      # port index -> [tokens, last refill]
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # RX: tables changed
        self._stop_r, self._stop_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # TX: stop or drain
        self.drained = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)       # TX -> main: drain done
        self._drain = None          # seconds of quiet the TX thread waits for, when asked
        self._running = False
        self._threads = []

    # -- control (main thread) -----------------------------------------------
    def set_ports(self, ports, distributing, collecting):
        """ports: Port objects; distributing/collecting: sets of port indexes."""
        for p in ports:
            self.port_counters.setdefault(p.index, [0, 0, 0, 0])
        table = tuple(p.sock for p in ports if p.index in distributing and p.sock)
        if self.tx_table and set(table) - set(self.tx_table):
            # A port joins: flows move to it while their older frames may still sit in
            # another port's queue. A short hold lets those drain first: no reordering.
            self.hold_until = time.monotonic() + HOLD
        self.tx_index = tuple(p.index for p in ports if p.index in distributing and p.sock)
        self.tx_table = table
        self.all_ports = {p.sock.fileno(): (p.index, p.sock) for p in ports if p.sock}
        self.rx_table = frozenset(fd for fd, (idx, _) in self.all_ports.items() if idx in collecting)
        os.write(self._wake_w, b"x")  # the RX thread re-reads its poll set

    def request_drain(self, quiet=0.0):
        """Ask the TX thread to signal `drained` once the hold is over and agrN's queue
        is empty (and stays empty for `quiet` seconds)."""
        self._drain = quiet
        os.write(self._stop_w, b"d")

    def start(self):
        self._running = True
        for target, name in ((self._tx_loop, "tx"), (self._rx_loop, "rx")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self):
        self._running = False
        for fd in (self._wake_w, self._stop_w):
            try:
                os.write(fd, b"x")
            except OSError:
                pass

    # -- TAP -> ports ----------------------------------------------------------
    def _tx_loop(self):
        buf = bytearray(BUF_SIZE)
        view = memoryview(buf)
        counter = 0
        last_table = None
        fd = self.tap_fd
        os.set_blocking(fd, False)
        idle = select.poll()
        idle.register(fd, select.POLLIN)
        idle.register(self._stop_r, select.POLLIN)
        while self._running:
            try:
                n = os.readv(fd, [buf])
            except BlockingIOError:
                if self._drain is None:
                    self._idle(idle, None)  # only when idle: under load every read returns a frame
                    continue
                late = self.hold_until - time.monotonic()
                if late > 0:
                    self._idle(idle, late)
                elif not self._drain or not self._idle(idle, self._drain):
                    self._drain = None
                    os.eventfd_write(self.drained, 1)
                continue
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                if exc.errno in (errno.EBADF, errno.EBADFD):
                    return
                self.counters["tx_errors"] += 1
                continue
            table = self.tx_table
            if table is not last_table:
                last_table = table
                wait = self.hold_until - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # frames wait in agrN's queue meanwhile
            if not table:
                self.counters["tx_drop_no_port"] += 1
                continue
            frame = view[:n]
            if len(table) == 1:
                i = 0
            elif self.round_robin:
                counter += 1
                i = counter % len(table)
            else:
                i = flow_hash(frame, self.policy, VNET_HDR_LEN) % len(table)
            try:
                table[i].send(frame)
            except OSError:
                self.counters["tx_errors"] += 1
                continue
            c = self.port_counters.get(self.tx_index[i])
            if c is not None:
                c[0] += 1
                c[1] += n - VNET_HDR_LEN

    def _idle(self, poller, timeout):
        """Wait for a frame (or a request); True when a frame may be there."""
        ready = False
        for fd, _ev in poller.poll(None if timeout is None else timeout * 1000):
            if fd == self._stop_r:
                try:
                    os.read(fd, 4096)
                except OSError:
                    pass
            else:
                ready = True
        return ready

    # -- ports -> TAP ----------------------------------------------------------
    def _rx_loop(self):
        buf = bytearray(BUF_SIZE)
        view = memoryview(buf)
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        polled = set()
        fd_tap = self.tap_fd
        while self._running:
            ports = self.all_ports
            if set(ports) != polled:
                for fd in polled - set(ports):
                    poller.unregister(fd)
                for fd in set(ports) - polled:
                    poller.register(fd, select.POLLIN)
                polled = set(ports)
            for fd, _ev in poller.poll():
                if fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except OSError:
                        pass
                    continue
                entry = ports.get(fd)
                if entry is None:
                    continue
                index, sock = entry
                c = self.port_counters.get(index)
                while True:
                    try:
                        n, anc, _flags, _addr = sock.recvmsg_into((buf,), AUX_SPACE)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        self.counters["rx_errors"] += 1
                        break
                    if n < ETHERTYPE_OFF + 2:
                        continue
                    if anc and anc[0][2][0] & TP_STATUS_VLAN_VALID:  # rare: look closer only then
                        n = self._restore_vlan(buf, n, anc)
                    if buf[ETHERTYPE_OFF] == 0x88 and buf[ETHERTYPE_OFF + 1] == 0x09:
                        if self._slow_allowed(index):
                            self.on_slow_frame(index, bytes(view[VNET_HDR_LEN:n]))
                        continue
                    if fd not in self.rx_table:
                        continue  # not collecting: the standard says discard
                    try:
                        os.write(fd_tap, view[:n])
                    except OSError:
                        self.counters["rx_errors"] += 1
                        continue
                    if c is not None:
                        c[2] += 1
                        c[3] += n - VNET_HDR_LEN

    def _slow_allowed(self, index):
        """Token bucket per port for Slow Protocols frames."""
        now = time.monotonic()
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
