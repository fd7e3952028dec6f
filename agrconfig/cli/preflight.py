"""Pre-flight, `agrconfig -l --free -v | --json [listen N]`: what each free Ethernet port
reaches before anything is attached.

One LACPDU per free port elicits the partner's answer (agrconfig/heard.py builds it and reads
what comes back); then we listen until every port sent to has answered or ANSWER_WAIT s pass.
`listen N` sends nothing and listens N s. Nothing is attached and no port is changed: raw
sockets with multicast memberships (dropped when they close), never promiscuous mode.
"""
import enum
import errno
import json
import select
import socket
import struct
import time

from .. import heard
from ..checks import is_number
from ..client import inspect, workers
from ..errors import AgrError, UsageError
from ..lacp import pdu
from ..net import rtnl
from ..record import Record

ANSWER_WAIT = 3.0      # an active partner answers a changed partner at once; a slow one too
LISTEN_MAX = 3600
SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_IGNORE_OUTGOING, PACKET_MR_MULTICAST = 263, 1, 23, 0
PACKET_OUTGOING = 4
# Links that stack on others or gather them: never a cable of their own.

class Use(enum.Enum):
    FREE = "free"          # up, no address but its IPv6 link-local: one LACPDU is sent
    IN_USE = "in use"      # addresses beyond the link-local: listened to, never sent to
    DOWN = "down"          # administratively down: nothing sent, nothing heard (not brought up)


class Duplex(enum.Enum):
    FULL = "full"
    HALF = "half"


class FreePort(Record):
    """One free Ethernet port and what was heard on it."""
    __slots__ = ("name", "index", "mac", "mtu", "carrier", "speed", "duplex", "use", "addresses",
                 "sent", "partner", "neighbour", "loop", "answered")
    # answered: seconds from our LACPDU to the partner's next one (None: not sent, or no answer)
    DEFAULTS = {"sent": False, "partner": None, "neighbour": None, "loop": None, "answered": None}


class Preflight(Record):
    """What pre-flight found: the ports, the groups that could form one aggregate each, how
    long it listened and whether it sent (False: `listen N`)."""
    __slots__ = ("ports", "groups", "listened", "elicited")


def parse_listen(text):
    """`listen N`: whole seconds, 1 to LISTEN_MAX."""
    if not is_number(text, 5) or not 1 <= int(text) <= LISTEN_MAX:
        raise UsageError(f"listen: bad value {text!r} (1-{LISTEN_MAX} seconds)")
    return int(text)


def _ip_text(a):
    return f"{a.address}/{a.prefixlen}"


def find_ports():
    """The candidate ports (FreePort, nothing heard yet): Ethernet links that are neither agr
    interfaces nor ports of one, nor ports of a bridge, bond or team, nor stacked on another
    link; classified as free, in use (addresses beyond IPv6 link-local) or down."""
    members = workers.members()
    addrs = rtnl.all_addresses()
    found = []
    for link in rtnl.links():
        if not inspect.could_be_port(link, members):
            continue
        used = tuple(_ip_text(a) for a in addrs.get(link.index, [])
                     if not (a.family == socket.AF_INET6 and a.interface.ip.is_link_local))
        use = Use.DOWN if not link.up else Use.IN_USE if used else Use.FREE
        speed, full = rtnl.link_mode(link.name) if link.carrier else (None, None)
        found.append(FreePort(link.name, link.index, link.mac, link.mtu, link.carrier, speed,
                              None if full is None else Duplex.FULL if full else Duplex.HALF, use, used))
    return found


def _socket(port, proto, group):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.htons(proto))
    try:
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            pass      # old kernel: our own frames come back, dropped by their packet type
        sock.bind((port.name, proto))
        # The group address through the port's filter, as long as this socket lives.
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP,
                        struct.pack("iHH8s", port.index, PACKET_MR_MULTICAST, 6, group))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def check_root():
    """Pre-flight's raw sockets need root (CAP_NET_RAW): EPERM, said so, before anything."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0).close()
    except PermissionError:
        raise AgrError(errno.EPERM, "socket", "pre-flight opens raw sockets (AF_PACKET): run it as root") from None


def run_preflight(listen=None, clock=time.monotonic):
    """Find the free ports, send one LACPDU on each free one with carrier (unless `listen`),
    listen, and return the Preflight."""
    check_root()
    ports = find_ports()
    socks = {}        # fd -> (socket, port name, what it hears)
    heard_lacp, heard_lldp, answered = {}, {}, {}
    sent = {}         # port name -> when our LACPDU left
    try:
        for port in ports:
            if port.use is Use.DOWN:
                continue
            try:
                for proto, group in ((pdu.ETH_P_SLOW, pdu.SLOW_PROTOCOLS_MAC), (heard.ETH_P_LLDP, heard.LLDP_MAC)):
                    sock = _socket(port, proto, group)
                    socks[sock.fileno()] = (sock, port.name, proto)
            except OSError as exc:
                if exc.errno in (errno.ENODEV, errno.ENXIO):
                    continue      # gone since the dump: nothing to hear (listed as found)
                raise AgrError.from_oserror(exc, "socket", f"raw socket on {port.name}") from exc
        start = clock()
        if listen is None:
            slow = {name: sock for sock, name, proto in socks.values() if proto == pdu.ETH_P_SLOW}
            for port in ports:
                if port.use is Use.FREE and port.carrier and port.name in slow:
                    try:
                        slow[port.name].send(heard.eliciting_frame(rtnl.mac_bytes(port.mac), port.index))
                        sent[port.name] = clock()
                    except OSError:
                        pass   # the carrier went in between: reported as no LACP heard
        deadline = start + (ANSWER_WAIT if listen is None else listen)
        _listen(socks, deadline, sent, heard_lacp, heard_lldp, answered, early=listen is None, clock=clock)
        listened = round(clock() - start, 1)
    finally:
        for sock, _name, _proto in socks.values():
            sock.close()
    mine = {p.mac: p.name for p in ports}
    out = []
    for p in ports:
        partner = heard_lacp.get(p.name)
        loop = mine.get(partner.system) if partner else None
        out.append(p.replace(sent=p.name in sent, partner=partner, neighbour=heard_lldp.get(p.name), loop=loop,
                             answered=answered.get(p.name)))
    groups = heard.groups([(p.name, p.speed, p.partner) for p in out if p.loop is None])
    return Preflight(tuple(out), tuple(groups), listened, listen is None)


def _listen(socks, deadline, sent, heard_lacp, heard_lldp, answered, early, clock):
    poller = select.poll()
    for fd in socks:
        poller.register(fd, select.POLLIN)
    while True:
        now = clock()
        if now >= deadline or early and sent and set(sent) <= set(answered):
            return
        if early and not sent:
            return     # nothing sent (no free port with carrier): nothing to wait for
        for fd, _event in poller.poll(max(1, int((deadline - now) * 1000))):
            sock, name, proto = socks[fd]
            while True:
                try:
                    frame, addr = sock.recvfrom(2048)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                if _heard(frame, name, proto, heard_lacp, heard_lldp) and name in sent:
                    answered.setdefault(name, round(clock() - sent[name], 3))


def _heard(frame, name, proto, heard_lacp, heard_lldp):
    """Note a LACPDU or LLDPDU heard on port `name` (True for a LACPDU); other frames and
    malformed ones are ignored."""
    try:
        if proto == pdu.ETH_P_SLOW:
            _src, payload = pdu.parse_frame(frame)
            partner = heard.lacp_partner(payload)
            if partner is not None:
                heard_lacp[name] = partner
                return True
        elif frame[12:14] == heard.ETH_P_LLDP.to_bytes(2, "big"):
            heard_lldp[name] = heard.lldp_neighbour(frame[14:])
    except (pdu.PduError, heard.LldpError):
        pass
    return False


# -- output ----------------------------------------------------------------------------------
def _mode(port):
    speed = f"{port.speed} Mb/s" if port.speed else "speed unknown"
    return f"{speed}{' ' + port.duplex.value + ' duplex' if port.duplex else ''}"


def _partner_text(p):
    return (f"system {p.system_id}, key {p.key}, port {p.port_priority:#06x},{p.port}, "
            f"{'active' if p.active else 'passive'}, {p.timeout.value} timeout, "
            f"{'aggregatable' if p.aggregatable else 'individual'}")


def text(found):
    lines = []
    for p in found.ports:
        head = f"{p.name}: {p.use.value}"
        if p.use is Use.IN_USE:
            head += f" ({', '.join(p.addresses)}): nothing sent"
        if p.use is Use.DOWN:
            lines.append(f"{head}, mtu {p.mtu}: nothing sent, nothing heard")
            continue
        head += f", carrier {'up' if p.carrier else 'down'}"
        if p.carrier:
            head += f", {_mode(p)}"
        lines.append(f"{head}, mtu {p.mtu}")
        if p.partner is not None:
            lines.append(f"\tlacp partner: {_partner_text(p.partner)}")
            if p.loop:
                lines.append(f"\tloop: cabled to {p.loop} of this host")
        else:
            lines.append("\tno LACP heard")
        n = p.neighbour
        if n is not None:
            name = f", system name {n.system_name!r}" if n.system_name is not None else ""
            lines.append(f"\tlldp neighbour: chassis {n.chassis_id}, port {n.port_id}{name}")
    if found.groups:
        lines.append("can aggregate:")
        for g in found.groups:
            speed = f"{g.speed} Mb/s" if g.speed else "speed unknown"
            lines.append(f"\t{' '.join(g.ports)}: partner {g.partner_system_priority:#06x},{g.partner_system}, "
                         f"key {g.partner_key}, {speed}")
    sent = sum(p.sent for p in found.ports)
    what = (f"one LACPDU sent on each of {sent} free port{'s' if sent != 1 else ''}, then" if sent
            else "nothing sent,")
    lines.append(f"({what} listened {found.listened:g} s)")
    return "\n".join(lines) + "\n"


def _partner_doc(p):
    return {**p.as_dict(), "state_str": pdu.state_names(p.state), "active": p.active,
            "timeout": p.timeout.value, "aggregation": p.aggregatable, "system_id": p.system_id}


def document(found):
    """The Preflight as a JSON-ready dict (ip -j's key names where they fit)."""
    ports = []
    for p in found.ports:
        ports.append({"ifname": p.name, "ifindex": p.index, "address": p.mac, "mtu": p.mtu,
                      "carrier": p.carrier, "speed": p.speed, "duplex": p.duplex.value if p.duplex else None,
                      "use": p.use.value, "addr_info": list(p.addresses), "sent": p.sent,
                      "lacp_partner": _partner_doc(p.partner) if p.partner else None,
                      "lldp_neighbour": p.neighbour.as_dict() if p.neighbour else None, "loop": p.loop,
                      "answered": p.answered})
    return {"ports": ports, "groups": [{**g.as_dict(), "ports": list(g.ports)} for g in found.groups],
            "listened": found.listened, "elicited": found.elicited}


def run(as_json=False, listen=None):
    found = run_preflight(listen=listen)
    return json.dumps(document(found), indent=2) + "\n" if as_json else text(found)
