"""A scripted LACP partner on one port, for tests that need a partner that misbehaves on cue.

Run inside the partner's namespace: ``python -m tests.integration.lacp_partner IFACE``.
It converges with the agr at the far end (long timeout: it never asks for fast PDUs), then
for each of the four state bits of 802.1AX-2014 6.4.9 sends one LACPDU holding a stale copy
of that bit and measures how long the agr takes to answer. Prints one JSON object.
"""
import json
import socket
import sys
import time
from agrconfig.record import replace

from agrconfig.lacp import pdu as P

ETH_P_SLOW = 0x8809
ME = P.LacpInfo(0x8000, bytes.fromhex("020000000099"), 0x0055, 0x8000, 1,
                P.ACTIVITY | P.AGGREGATION | P.SYNC | P.COLLECTING | P.DISTRIBUTING)
SRC = bytes.fromhex("020000000099")


class Partner:
    def __init__(self, iface):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_SLOW))
        self.sock.bind((iface, ETH_P_SLOW))
        self.agr = None          # the agr's actor info from its latest LACPDU

    def send(self, seen):
        self.sock.send(P.build_frame(SRC, P.encode(P.Lacpdu(ME, seen, 0))))

    def next_lacpdu(self, timeout):
        """The agr's next LACPDU within `timeout` s (its actor info), or None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                frame = self.sock.recv(2048)
            except socket.timeout:
                return None
            try:
                pdu = P.decode(P.parse_frame(frame)[1])
            except P.PduError:
                continue
            if isinstance(pdu, P.Lacpdu) and pdu.actor.system != ME.system:
                self.agr = pdu.actor
                return pdu.actor
        return None

    def echo_until(self, done, timeout):
        """Answer every change of the agr's state with a fresh copy until done(actor info)."""
        deadline = time.monotonic() + timeout
        sent = None
        while time.monotonic() < deadline:
            if self.agr is not None and self.agr != sent:
                self.send(self.agr)
                sent = self.agr
            if self.agr is not None and done(self.agr):
                return True
            self.next_lacpdu(0.2)
        return False


def main(iface):
    p = Partner(iface)
    if p.next_lacpdu(15) is None:
        return {"error": "the agr never spoke first"}
    if not p.echo_until(lambda a: a.state & P.DISTRIBUTING, 20):
        return {"error": f"no convergence: agr state {p.agr.state:#x}"}
    latency = {}
    for bit in ("SYNCHRONIZATION", "ACTIVITY", "TIMEOUT", "AGGREGATION"):
        time.sleep(1.2)           # let the 3-per-second transmit limit forget earlier PDUs
        while p.next_lacpdu(0):   # nothing old left in the socket
            pass
        truth = p.agr
        start = time.monotonic()
        p.send(replace(truth, state=truth.state ^ getattr(P, bit)))
        answer = p.next_lacpdu(10)
        latency[bit] = None if answer is None else round(time.monotonic() - start, 3)
        # Put things right again (a stale Aggregation bit takes the port out of the bundle).
        if not p.echo_until(lambda a: a.state & P.DISTRIBUTING and a.state & P.SYNC, 15):
            return {"error": f"not back after {bit}", "latency": latency}
    return {"latency": latency}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
