"""`agrconfig agrN diagnose [interval SECONDS]`: findings about agrN, and what to do (findings.py).

The edge of findings.py: it reads the worker's status (as status does), the kernel's view of
agrN and its ports twice, `interval` seconds apart (1 s; 0: once, and no counter can be seen
growing), and the state files NetworkManager and systemd-networkd keep per interface index,
without starting either. Any user may run it: when no worker of ours answers (dead, or of an
earlier release that answers root only), the findings that need no status are given, with a
note saying what root must do.

Exit status: 0 when nothing is found, 4 when something is (1, 2 and 3 are taken).
"""
import configparser
import errno
import json
import os
import time
from types import MappingProxyType

from ..errors import AgrError, UsageError
from ..net import rtnl
from .findings import Claim, Facts, LinkFacts, diagnose

FOUND = 4
USAGE = "diagnose [interval SECONDS]"
DEFAULT_INTERVAL = 1.0
# Where the network managers keep their per-interface state (overridable for tests; read
# only in the namespace they run in, where the interface indexes are theirs).
NM_DIR = "/run/NetworkManager/devices"          # keyfile: [device] managed=true, connection-uuid=
NETWORKD_DIR = "/run/systemd/netif/links"       # ADMIN_STATE=configured, NETWORK_FILE=...
NETWORKD_MANAGED = ("pending", "initialized", "configuring", "configured", "failed")


def parse(words):
    """-> interval (seconds)."""
    interval = DEFAULT_INTERVAL
    rest = list(words)
    if rest[:1] == ["interval"]:
        if len(rest) < 2:
            raise UsageError(f"diagnose: interval: missing seconds ({USAGE})")
        try:
            interval = float(rest[1])
        except ValueError:
            interval = -1.0
        if not 0 <= interval <= 60:
            raise UsageError(f"diagnose: bad interval {rest[1]!r} (0-60 seconds)")
        rest = rest[2:]
    if rest:
        raise UsageError(f"diagnose: unexpected {rest[0]!r} ({USAGE})")
    return interval


# -- the network managers' state files -----------------------------------------------------------

def _same_netns_as_init():
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:          # not allowed to look at init's: assume so
        return True


def manager_dirs():
    """(NetworkManager's directory, systemd-networkd's) to read, None where not to."""
    nm, networkd = os.environ.get("AGRCONFIG_NM_DEVICES_DIR"), os.environ.get("AGRCONFIG_NETWORKD_LINKS_DIR")
    if nm is None and networkd is None and not _same_netns_as_init():
        return None, None
    return nm or NM_DIR, networkd or NETWORKD_DIR


def nm_claim(directory, link):
    """NetworkManager's device state file for the link: a Claim when it says managed=true."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(os.path.join(directory, str(link.index))) as f:
            parser.read_file(f)
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    device = parser["device"] if parser.has_section("device") else {}
    if device.get("managed", "").strip().lower() not in ("true", "1", "yes"):
        return None
    uuid = device.get("connection-uuid", "").strip()
    return Claim("NetworkManager", link.name, "managed" + (f", connection {uuid}" if uuid else ""))


def networkd_claim(directory, link):
    """systemd-networkd's link state file: a Claim when a .network file configures the link."""
    values = {}
    try:
        with open(os.path.join(directory, str(link.index))) as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep and not key.startswith("#"):
                    values[key] = value
    except (OSError, UnicodeDecodeError):
        return None
    state = values.get("ADMIN_STATE", "")
    if state not in NETWORKD_MANAGED and not values.get("NETWORK_FILE"):
        return None
    detail = f"ADMIN_STATE={state}" + (f", NETWORK_FILE={values['NETWORK_FILE']}" if values.get("NETWORK_FILE") else "")
    return Claim("systemd-networkd", link.name, detail)


def claims(links):
    nm, networkd = manager_dirs()
    out = []
    for link in links:
        for claim in ((nm_claim(nm, link) if nm else None), (networkd_claim(networkd, link) if networkd else None)):
            if claim is not None:
                out.append(claim)
    return tuple(out)


# -- reading the facts ---------------------------------------------------------------------------

def read_status(name):
    """(AggregateStatus or None, note): None with a note when the worker's status cannot be read."""
    from ..client import workers
    try:
        st = workers.worker_status(name)   # a user's command only asks the worker (workers.look)
    except workers.Unserved as exc:
        return None, f"{exc.detail}: LACP and port findings need its worker"
    if st is None:
        raise AgrError(errno.ENXIO, "diagnose", f"{name} is not an agr interface")
    return st, None


def read_links(names):
    out = {}
    for n in names:
        try:
            link = rtnl.link(n)
        except (AgrError, OSError):
            link = None
        if link is not None:
            out[n] = link
    return out


def gather(name, interval, sleep=time.sleep):
    """The Facts about agrN, and notes on what could not be read."""
    notes = []
    if rtnl.link(name) is None:
        raise AgrError(errno.ENXIO, "diagnose", f"{name}: no such interface")
    st, note = read_status(name)
    if note:
        notes.append(note)
    names = [name] + ([p.name for p in st.ports] if st is not None else [])
    before = read_links(names)
    if interval:
        sleep(interval)
    after = read_links(names) if interval else before
    links = {n: LinkFacts(after[n].mtu, MappingProxyType(dict(before[n].stats)), MappingProxyType(dict(after[n].stats)))
             for n in names if n in before and n in after}
    return Facts(name, st, MappingProxyType(links), interval if st is not None else 0.0,
                 claims([after[n] for n in names if n in after])), notes


# -- showing them --------------------------------------------------------------------------------

def _value(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def render_text(name, found, notes):
    lines = [f"{name}: {len(found)} finding{'' if len(found) == 1 else 's'}" if found else f"{name}: nothing found"]
    for f in found:
        ports = f" [{', '.join(f.ports)}]" if f.ports else ""
        lines.append(f"{f.severity.value}: {f.code}{ports}: {f.message}")
        lines.append("\tevidence: " + ", ".join(f"{k} {_value(v)}" for k, v in f.evidence.items()))
        lines.append(f"\taction: {f.action}")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def document(name, found, notes, interval):
    return {"ifname": name, "interval": interval, "findings": [f.to_json() for f in found], "notes": notes}


def run(name, words, as_json=False):
    interval = parse(words)
    facts, notes = gather(name, interval)
    found = diagnose(facts)
    if as_json:
        print(json.dumps(document(name, found, notes, facts.interval), indent=2))
    else:
        print(render_text(name, found, notes), end="")
    return FOUND if found else 0
