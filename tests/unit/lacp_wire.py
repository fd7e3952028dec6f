"""A fake wire and clock joining LacpCore instances port to port, for unit tests."""
from agrconfig.lacp import LacpCore, Transmit
from agrconfig.lacp.events import DistributingChanged


def mac(n):
    return bytes([2, 0, 0, 0, 0, n])


class Wire:
    """Cores joined by links: (core_a, port_a) <-> (core_b, port_b), frames delivered at once."""

    def __init__(self):
        self.now = 0.0
        self.links = {}          # (core id, port) -> (core, port)
        self.up = {}             # (core id, port) -> bool: carries frames towards the other end
        self.sent = []           # (time, core, port, frame)
        self.actions = []

    def join(self, a, pa, b, pb):
        self.links[(id(a), pa)] = (b, pb)
        self.links[(id(b), pb)] = (a, pa)
        self.up[(id(a), pa)] = self.up[(id(b), pb)] = True

    def deliver(self, core, actions):
        queue = [(core, a) for a in actions]
        while queue:
            src, action = queue.pop(0)
            self.actions.append((src, action))
            if isinstance(action, Transmit):
                self.sent.append((self.now, src, action.port_id, action.frame))
                peer = self.links.get((id(src), action.port_id))
                if peer and self.up[(id(src), action.port_id)]:
                    dst, port = peer
                    queue += [(dst, a) for a in dst.receive(self.now, port, action.frame)]

    def run(self, seconds, cores, step=0.05):
        end = self.now + seconds
        while self.now < end:
            self.now = round(self.now + step, 6)
            for c in cores:
                t = c.get_timer()
                if t is not None and t <= self.now:
                    self.deliver(c, c.handle_timer(self.now))


def pair(ports=(1, 2), fast=True, strict=True):
    a = LacpCore(mac(1), fast_timeout=fast, strict=strict)
    b = LacpCore(mac(2), fast_timeout=fast, strict=strict)
    w = Wire()
    for p in ports:
        w.join(a, p, b, p + 100)
    for p in ports:
        w.deliver(a, a.add_port(0.0, p, mac(10 + p), carrier=True))
        w.deliver(b, b.add_port(0.0, p + 100, mac(50 + p), carrier=True))
    return a, b, w


def distributing_changes(w, core):
    return [a for c, a in w.actions if c is core and isinstance(a, DistributingChanged)]
