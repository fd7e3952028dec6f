"""Linux bonding in 802.3ad mode as agrconfig's LACP partner, and its view of us in
/proc/net/bonding (guest tests only: this lab's own kernel has no bonding driver); the VM's
virtio-net cables (tests/vm.py CABLES) lent to a test's namespaces."""
import json
import re
import subprocess
import time

from tests.integration.helpers import PORT_LINE, ok
from tests.lab import sh

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
    lab.run(b, "ip", "-batch", "-", input=f"link add bond0 type bond mode 802.3ad lacp_rate {rate} miimon 100\n"
            + "".join(f"link set {port} master bond0\n" for port in PORTS)
            + f"addr add {address} dev bond0\nlink set bond0 up\n")


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


def shell(lab, ns, script):
    """A shell script's output, run in `ns`: one process for many commands, each process started
    costing about a second under TCG."""
    return lab.run(ns, "sh", "-ec", script).stdout


def nics(macs, timeout=15):
    """{MAC: name} of the virtio-net NICs of these MACs (tests/vm.py CABLES), here in the VM's
    own namespace: a NIC comes back here when the namespace it was lent to is gone, which the
    kernel finishes some time after `ip netns del` returns."""
    deadline = time.monotonic() + timeout
    while True:
        found = {}
        for link in json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout):
            for mac in macs:
                if mac in (link.get("address"), link.get("permaddr")):   # a bond or agr0 may have changed it
                    found[mac] = link["ifname"]
        if len(found) == len(macs):
            return found
        if time.monotonic() > deadline:
            missing = sorted(set(macs) - set(found))
            raise AssertionError(f"no NIC with MAC {missing}: the VM was started without tests/vm.py's hub NICs")
        time.sleep(0.2)


def nic(mac):
    return nics([mac])[mac]


def hub_cabled(lab, cables):
    """Namespace a (agrconfig's side) and b (the partner's), each cable of `cables` (tests/vm.py
    CABLES) becoming re0, re1, ... with one end in each: virtio-net NICs, down, without IPv6."""
    a, b = lab.netns("a"), lab.plain_netns("b")
    names = nics([mac for cable in cables for mac in cable])
    moves, renames = [], {a: [], b: []}
    for i, cable in enumerate(cables):
        for mac, ns in zip(cable, (a, b)):
            moves.append(f"link set dev {names[mac]} netns {ns}")
            renames[ns].append((names[mac], f"re{i}"))
    sh("ip", "-batch", "-", input="\n".join(moves) + "\n")
    for ns in (a, b):
        # through names of their own: a NIC back from an earlier test may be called re1 already
        shell(lab, ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1\n"
              + "".join(f"ip link set dev {old} name tmp-{new}\n" for old, new in renames[ns])
              + "".join(f"ip link set dev tmp-{new} name {new}\n" for _old, new in renames[ns]))
    return a, b
