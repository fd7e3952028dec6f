"""Linux bonding in 802.3ad mode as agrconfig's LACP partner, and its view of us in
/proc/net/bonding (guest tests only: this lab's own kernel has no bonding driver)."""
import re

from tests.integration.helpers import PORT_LINE, ok

PORTS = ("re0", "re1")


def cabled(lab):
    """Namespace a (agrconfig's side) and b (the bond's), cabled re0-re0 and re1-re1; a's ports
    up without IPv6 (no link-local address to strip, one agrconfig command fewer each), b's down
    (a bond enslaves only members that are down)."""
    a, b = lab.netns("a"), lab.plain_netns("b")
    for port in PORTS:
        lab.ip(a, "link", "add", port, "type", "veth", "peer", "name", f"x{port}")
        lab.ip(a, "link", "set", f"x{port}", "netns", b)
        lab.ip(b, "link", "set", f"x{port}", "name", port)
        lab.run(a, "sysctl", "-qw", f"net.ipv6.conf.{port}.disable_ipv6=1")
        lab.ip(a, "link", "set", port, "up")
    return a, b


def bond(lab, b, rate="fast", address="192.0.2.2/24"):
    lab.ip(b, "link", "add", "bond0", "type", "bond", "mode", "802.3ad", "lacp_rate", rate, "miimon", "100")
    for port in PORTS:
        lab.ip(b, "link", "set", port, "master", "bond0")
    lab.ip(b, "addr", "add", address, "dev", "bond0")
    lab.ip(b, "link", "set", "bond0", "up")


def bonding_view(lab, b):
    """/proc/net/bonding/bond0 as {"active": {...}, port: {...}}: the active aggregator's
    fields, and per member its MII status, aggregator id and the partner (us) it heard."""
    text = lab.run(b, "cat", "/proc/net/bonding/bond0").stdout
    view = {"text": text, "active": {}}
    head, _, members = text.partition("\nSlave Interface: ")
    active = head.partition("Active Aggregator Info:")[2]
    for key, value in re.findall(r"^\s+(Aggregator ID|Number of ports|Partner Mac Address): (\S+)", active, re.M):
        view["active"][key] = value
    for block in ("Slave Interface: " + members).split("Slave Interface: ")[1:]:
        name = block.split("\n", 1)[0].strip()
        partner = block.partition("details partner lacp pdu:")[2]
        view[name] = {
            "mii": re.search(r"^MII Status: (\S+)", block, re.M).group(1),
            "aggregator": re.search(r"^Aggregator ID: (\S+)", block, re.M).group(1),
            "partner_mac": re.search(r"system mac address: (\S+)", partner).group(1),
            "partner_state": int(re.search(r"port state: (\d+)", partner).group(1)),
        }
    return view


SYNC_COLLECTING_DISTRIBUTING = 0x08 | 0x10 | 0x20


def bond_aggregates_with(lab, b, mac, ports=PORTS):
    """The bond's members `ports` are up, in one aggregator (the active one, with exactly these
    ports), and hear us (`mac`) in sync, collecting and distributing."""
    view = bonding_view(lab, b)
    members = [view.get(p) for p in ports]
    return (all(m and m["mii"] == "up" and m["partner_mac"] == mac
                and m["partner_state"] & SYNC_COLLECTING_DISTRIBUTING == SYNC_COLLECTING_DISTRIBUTING
                for m in members)
            and {m["aggregator"] for m in members} == {view["active"].get("Aggregator ID")}
            and view["active"].get("Number of ports") == str(len(ports))
            and view["active"].get("Partner Mac Address") == mac)


def agr_mac(lab, a):
    return re.search(r"link/ether (\S+)", lab.ip(a, "link", "show", "agr0").stdout).group(1)


def our_status(lab, a):
    """agrconfig's text status of agr0 and {port: flags} from it (one command: each is seconds)."""
    text = ok(lab, a, "agr0")
    return text, {m.group(1): int(m.group(2), 16) for m in PORT_LINE.finditer(text)}
