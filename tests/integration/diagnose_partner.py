"""A scripted LACP partner for diagnose's tests: on each named port, a LACPDU every second
(fast), as a switch port configured wrong would send them.

Run inside the partner's namespace: ``python -m tests.integration.diagnose_partner SPEC...``,
SPEC = IFACE:KEY[:nosync][:skip3]: our system 02:00:00:00:00:99 with that key; `nosync` keeps the
Synchronization bit off (the switch holds the port out of its LAG); `skip3` leaves out every
third LACPDU (lost on the way). The agr's latest actor information is echoed as the partner's.
Runs until killed.
"""
import select
import socket
import sys
import time

from agrconfig.lacp import pdu as P

ETH_P_SLOW = 0x8809
SYSTEM = bytes.fromhex("020000000099")


class Port:
    def __init__(self, spec, number):
        name, key, *flags = spec.split(":")
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_SLOW))
        self.sock.bind((name, ETH_P_SLOW))
        state = P.ACTIVITY | P.TIMEOUT | P.AGGREGATION
        if "nosync" not in flags:
            state |= P.SYNC | P.COLLECTING | P.DISTRIBUTING
        self.me = P.LacpInfo(0x8000, SYSTEM, int(key, 0), 0x8000, number, state)
        self.skip = "skip3" in flags
        self.seen = P.LacpInfo(0, bytes(6), 0, 0, 0, 0)
        self.sent = 0

    def tick(self):
        self.sent += 1
        if self.skip and self.sent % 3 == 0:
            return
        self.sock.send(P.build_frame(SYSTEM, P.encode(P.Lacpdu(self.me, self.seen, 0))))

    def receive(self):
        try:
            pdu = P.decode(P.parse_frame(self.sock.recv(2048))[1])
        except (P.PduError, OSError):
            return
        if isinstance(pdu, P.Lacpdu) and pdu.actor.system != SYSTEM:
            self.seen = pdu.actor


def main(specs):
    ports = [Port(spec, n) for n, spec in enumerate(specs, 1)]
    by_fd = {p.sock.fileno(): p for p in ports}
    due = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= due:
            for p in ports:
                p.tick()
            due += 1.0
        for fd in select.select(list(by_fd), [], [], max(0.0, due - time.monotonic()))[0]:
            by_fd[fd].receive()


if __name__ == "__main__":
    main(sys.argv[1:])
