"""THE option schema: every setting of an agr interface, declared once.

An option has a key (how the control protocol, the worker, the state file and the JSON status
name it), its words (NetBSD's first, then aliases), its type and range, its default, how
status shows it and how a configuration file says it. The grammar (cli/grammar.py), the control
protocol's checks (ipc/protocol.py), the worker's defaults, provisioning's plan and undo
(provision.py), status text and JSON, bash completion and the man page all take it from here
or are held to it by tests/unit/test_options.py. Adding an option is one entry below plus its
behaviour.

This module is at the bottom of the layers: it imports nothing of the project but Record
(agrconfig/record.py: no dataclasses, which every command would pay for at its start).
"""
from __future__ import annotations

from .record import Record

MTU_MIN, MTU_MAX = 68, 65535
PRIORITY_MAX = 0xFFFF
MAX_PORTS_MAX = 1024          # agrmaxports: far above any host's ports; 0 is no limit
WTR_MAX = 3600                # agrwtr: seconds (802.1AX-2014 allows up to 12 minutes; room above)
DEFAULT_PRIORITY = 0x8000     # 802.1AX's and NetBSD agr's system and port priority

# A port's flags in status (NetBSD agr's agrport flags): status text, JSON, metrics, whichport.
PORT_COLLECTING, PORT_DISTRIBUTING = 0x1, 0x2
PORT_FLAGS = ((PORT_COLLECTING, "COLLECTING"), (PORT_DISTRIBUTING, "DISTRIBUTING"))

# Flow hash layers (FreeBSD lagghash names; NetBSD agr hashes l2 and l3).
L2, L3, L4 = 1, 2, 4
HASH_LAYERS = {"l2": L2, "l3": L3, "l4": L4}
DEFAULT_POLICY = L2 | L3


def parse_policy(text):
    """'l2,l3' -> bitmask; raises ValueError on unknown or empty layers."""
    mask = 0
    for word in text.split(","):
        word = word.strip().lower()
        if word not in HASH_LAYERS:
            raise ValueError(f"unknown hash layer {word!r} (use l2, l3, l4)")
        mask |= HASH_LAYERS[word]
    if not mask:
        raise ValueError("empty hash policy")
    return mask


def format_policy(mask):
    return ",".join(name for name, bit in HASH_LAYERS.items() if mask & bit)


class Switch(Record):
    """On/off by a word and its '-' form, as ifconfig's link0/-link0."""
    __slots__ = ("on", "off")

    def words(self):
        return {self.on: True, self.off: False}

    def takes_arg(self, word):
        return False

    def value(self, word, arg=None):
        return self.words()[word]

    def check(self, value):
        return type(value) is bool

    def file_words(self, value):
        return [self.on if value else self.off]

    def values(self):
        return (False, True)


class Choice(Record):
    """A word and one of a few named values: `lacptimeout fast`."""
    __slots__ = ("word", "names")
    # names: (name, value) pairs, in the order the manual lists them

    def words(self):
        return {self.word: None}

    def takes_arg(self, word):
        return True

    def arg_help(self):
        names = [n for n, _v in self.names]
        return ", ".join(names[:-1]) + " or " + names[-1]

    def value(self, word, arg):
        for name, value in self.names:
            if arg == name:
                return value
        if len(self.names) == 2:
            raise ValueError(f"{arg!r} is neither {self.names[0][0]} nor {self.names[1][0]}")
        raise ValueError(f"{arg!r} is not {self.arg_help()}")

    def check(self, value):
        return any(value == v and type(value) is type(v) for _n, v in self.names)

    def file_words(self, value):
        return [self.word, self.name_of(value)]

    def name_of(self, value):
        return next(n for n, v in self.names if v == value and type(v) is type(value))

    def values(self):
        return tuple(v for _n, v in self.names)


class Proto(Choice):
    """`agrproto lacp|loadbalance|failover|slb` (NetBSD lagg's laggproto), with NetBSD agr's
    `link1` and `-link1` as aliases of loadbalance and lacp: one setting, so a file, status
    and JSON can never say link1 and failover at once."""
    __slots__ = ("aliases",)
    DEFAULTS = {"aliases": ()}
    # aliases: (word, value) pairs that take no argument

    def words(self):
        return {self.word: None, **{w: None for w, _v in self.aliases}}

    def takes_arg(self, word):
        return word not in dict(self.aliases)

    def value(self, word, arg=None):
        aliases = dict(self.aliases)
        return aliases[word] if word in aliases else super().value(word, arg)


class HashPolicy(Record):
    """`agrhash l2,l3,l4`: a set of layers, kept as a bitmask."""
    __slots__ = ("word",)

    def words(self):
        return {self.word: None}

    def takes_arg(self, word):
        return True

    def arg_help(self):
        return "hash layers"

    def value(self, word, arg):
        return parse_policy(arg)

    def check(self, value):
        return type(value) is int and 1 <= value <= L2 | L3 | L4

    def file_words(self, value):
        return [self.word, format_policy(value)]

    def values(self):
        return tuple(range(1, (L2 | L3 | L4) + 1))


class Number(Record):
    """A word and an integer in a range: `lacpsysprio 100`, decimal or 0x hexadecimal (as
    status shows priorities)."""
    __slots__ = ("word", "low", "high", "samples")
    DEFAULTS = {"samples": ()}
    # samples: what the tests enumerate: the ends of the range and a few between

    def words(self):
        return {self.word: None}

    def takes_arg(self, word):
        return True

    def arg_help(self):
        return f"a number {self.low}-{self.high}"

    def value(self, word, arg):
        text = arg.lower()
        hexa = text.startswith("0x")
        digits = text[2:] if hexa else text
        alphabet = "0123456789abcdef" if hexa else "0123456789"
        # ASCII digits only ('²' and other digits int() may or may not take), not too many.
        if not (0 < len(digits) <= 10 and all(c in alphabet for c in digits)) \
                or not self.low <= int(digits, 16 if hexa else 10) <= self.high:
            raise ValueError(f"bad value {arg!r} ({self.low}-{self.high})")
        return int(digits, 16 if hexa else 10)

    def check(self, value):
        return type(value) is int and self.low <= value <= self.high

    def file_words(self, value):
        return [self.word, str(value)]

    def values(self):
        return self.samples or (self.low, self.high)


class _MacPattern:
    """What re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$").match said (a final newline passes, as
    `$` lets it), without re: a status reads MACs, and re costs every command's start ms."""

    @staticmethod
    def match(text):
        if len(text) == 18 and text.endswith("\n"):
            text = text[:-1]
        return len(text) == 17 and all(
            (c == ":") if i % 3 == 2 else (c in "0123456789abcdef") for i, c in enumerate(text))


MAC_RE = _MacPattern()


def parse_unicast_mac(text, what="the system id"):
    """'02:00:5E:10:00:01' (or with '-') -> '02:00:5e:10:00:01'; ValueError unless it is six
    octets of a unicast address other than all zeros (bonding's ad_actor_system rule)."""
    mac = text.strip().lower().replace("-", ":")
    if not MAC_RE.match(mac):
        raise ValueError(f"bad MAC address {text!r} (six octets: 02:00:00:00:00:01)")
    if int(mac[:2], 16) & 1:
        raise ValueError(f"{text!r} is a multicast address: {what} must be unicast")
    if mac == "00:00:00:00:00:00":
        raise ValueError(f"{text!r}: {what} must not be all zeros")
    return mac


class MacAddress(Record):
    """`lacpsysid MAC` sets a unicast MAC address, `-lacpsysid` goes back to the default
    (None: follow agrN's own address)."""
    __slots__ = ("word", "off")

    def words(self):
        return {self.word: None, self.off: None}

    def takes_arg(self, word):
        return word == self.word

    def arg_help(self):
        return "a MAC address"

    def value(self, word, arg=None):
        return None if word == self.off else parse_unicast_mac(arg)

    def check(self, value):
        if value is None:
            return True
        try:
            return isinstance(value, str) and parse_unicast_mac(value) == value
        except ValueError:
            return False

    def file_words(self, value):
        return [self.off] if value is None else [self.word, value]

    def values(self):
        return (None, "02:00:00:00:13:01")


class LinkAddress(MacAddress):
    """`lladdr MAC` (OpenBSD), also NetBSD's `link MAC active`; `-lladdr` (ours) goes back to
    the first port's address (None). NetBSD's `link MAC` without `active` only adds an inactive
    address, which agrN has no use for: the grammar asks for `active`."""
    __slots__ = ("alias", "suffix")
    DEFAULTS = {"alias": "link", "suffix": "active"}
    # suffix: the word that must follow `link MAC`

    def words(self):
        return {self.word: None, self.alias: None, self.off: None}

    def takes_arg(self, word):
        return word in (self.word, self.alias)

    def value(self, word, arg=None):
        return None if word == self.off else parse_unicast_mac(arg, "the address")


LINKCHECK_TARGETS_MAX = 16          # bonding's arp_ip_target and ns_ip6_target limit
LINKCHECK_INTERVAL = (10, 60000)     # milliseconds
LINKCHECK_DEFAULT_INTERVAL = 1000


def parse_targets(text):
    """'192.0.2.1,2001:db8::1' -> canonical unicast addresses, in order, no repeats."""
    import ipaddress   # agrlinkcheck's words only: not every command's start
    out = []
    for word in text.split(","):
        try:
            ip = ipaddress.ip_address(word.strip())
        except ValueError:
            raise ValueError(f"bad address {word.strip()!r}") from None
        if ip.is_multicast or ip.is_unspecified or ip.is_loopback or str(ip) == "255.255.255.255":
            raise ValueError(f"{word.strip()!r} is not a unicast address")
        if str(ip) not in out:
            out.append(str(ip))
    if not 1 <= len(out) <= LINKCHECK_TARGETS_MAX:
        raise ValueError(f"1 to {LINKCHECK_TARGETS_MAX} addresses")
    return out


class LinkCheck(Record):
    """`agrlinkcheck IP[,IP...] [interval MS]` (bonding's arp_ip_target/ns_ip6_target with
    arp_interval), `-agrlinkcheck` off: {"targets": [...], "interval": ms} or None."""
    __slots__ = ("word", "off", "more")
    DEFAULTS = {"more": ("interval",)}
    # more: optional `KEY VALUE` words after the addresses

    def words(self):
        return {self.word: None, self.off: None}

    def takes_arg(self, word):
        return word == self.word

    def arg_help(self):
        return "IP addresses"

    def value(self, word, arg=None, more=None):
        if word == self.off:
            return None
        interval = (more or {}).get("interval")
        if interval is None:
            interval = LINKCHECK_DEFAULT_INTERVAL
        else:
            try:
                interval = Number("interval", *LINKCHECK_INTERVAL).value("interval", interval)
            except ValueError as exc:
                raise ValueError(f"interval: {exc}") from None
        return {"targets": parse_targets(arg), "interval": interval}

    def check(self, value, addresses=True):
        """`addresses` False: the shape only (a worker's reply, which status shows as it is,
        needs no ipaddress import to be read)."""
        if value is None:
            return True
        if not isinstance(value, dict) or set(value) != {"targets", "interval"}:
            return False
        targets, interval = value["targets"], value["interval"]
        try:
            ok = isinstance(targets, list) and all(isinstance(t, str) for t in targets) \
                and 1 <= len(targets) <= LINKCHECK_TARGETS_MAX \
                and (not addresses or parse_targets(",".join(targets)) == targets)
        except ValueError:
            return False
        return ok and type(interval) is int and LINKCHECK_INTERVAL[0] <= interval <= LINKCHECK_INTERVAL[1]

    def file_words(self, value):
        if value is None:
            return [self.off]
        return [self.word, ",".join(value["targets"]), "interval", str(value["interval"])]

    def values(self):
        return (None, {"targets": ["192.0.2.1"], "interval": 1000},
                {"targets": ["192.0.2.1", "2001:db8::1"], "interval": 10})


ANNOUNCE_MAX = 255                  # bonding's num_grat_arp / num_unsol_na limit
ANNOUNCE_INTERVAL = (10, 60000)     # milliseconds
ANNOUNCE_DEFAULT_INTERVAL = 100     # bonding spaces them by miimon (100 ms) when peer_notif_delay is 0
DOWNDELAY_MAX = 3600000             # agrdowndelay: milliseconds (an hour, as agrwtr's limit)


class Announce(Record):
    """`agrannounce N [interval MS]` (bonding's num_grat_arp/num_unsol_na and
    peer_notif_delay): {"count": N, "interval": ms}; N 0 sends no gratuitous ARP or NA."""
    __slots__ = ("word", "more")
    DEFAULTS = {"more": ("interval",)}
    # more: optional `KEY VALUE` words after the count

    def words(self):
        return {self.word: None}

    def takes_arg(self, word):
        return True

    def arg_help(self):
        return f"a number 0-{ANNOUNCE_MAX}"

    def value(self, word, arg=None, more=None):
        count = Number(self.word, 0, ANNOUNCE_MAX).value(self.word, arg)
        interval = (more or {}).get("interval")
        if interval is None:
            interval = ANNOUNCE_DEFAULT_INTERVAL
        else:
            try:
                interval = Number("interval", *ANNOUNCE_INTERVAL).value("interval", interval)
            except ValueError as exc:
                raise ValueError(f"interval: {exc}") from None
        return {"count": count, "interval": interval}

    def check(self, value):
        if not isinstance(value, dict) or set(value) != {"count", "interval"}:
            return False
        count, interval = value["count"], value["interval"]
        return type(count) is int and 0 <= count <= ANNOUNCE_MAX and type(interval) is int \
            and ANNOUNCE_INTERVAL[0] <= interval <= ANNOUNCE_INTERVAL[1]

    def file_words(self, value):
        return [self.word, str(value["count"]), "interval", str(value["interval"])]

    def values(self):
        return ({"count": 1, "interval": ANNOUNCE_DEFAULT_INTERVAL}, {"count": 0, "interval": 10},
                {"count": 3, "interval": 200}, {"count": ANNOUNCE_MAX, "interval": 60000})


class Option(Record):
    __slots__ = ("key", "kind", "default", "summary", "scope", "ifflag", "ifflag_value", "stanza")
    DEFAULTS = {"scope": "agr", "ifflag": 0, "ifflag_value": True, "stanza": ""}
    # key: control protocol, worker, state file and JSON name
    # kind: Switch, Choice or HashPolicy: words, type and range
    # default: agrannounce's is a dict: the key names the option
    # summary: one line, as agrconfig(8) lists it
    # scope: "agr", or "port" for a setting of one attached port
    # ifflag: the NetBSD if_flags bit status shows while it is on
    # ifflag_value: ... "on": while the option has this value
    # stanza: ifupdown's agr-STANZA option; "" for the key with '-' for '_'

    def __hash__(self):   # without the default, which may be a dict
        return hash((type(self), *(getattr(self, f) for f in self.FIELDS if f != "default")))

    def words(self):
        return self.kind.words()

    def check(self, value):
        return self.kind.check(value)

    def file_words(self, value, port=None):
        """The words that set this option to `value`; a port option names its port first,
        as `agrportpri re0 100`."""
        words = self.kind.file_words(value)
        return [words[0], port, *words[1:]] if self.scope == "port" else words

    def stanza_option(self):
        """Its option in an /etc/network/interfaces stanza (cli/ifupdown.py)."""
        return "agr-" + (self.stanza or self.key.replace("_", "-"))


OPTIONS = (
    Option("link0", Switch("link0", "-link0"), False,
           "round-robin distribution (breaks frame order) instead of the flow hash", ifflag=0x1000),
    Option("proto", Proto("agrproto", (("lacp", "lacp"), ("loadbalance", "loadbalance"),
                                        ("failover", "failover"), ("slb", "slb")),
                          (("link1", "loadbalance"), ("-link1", "lacp"))), "lacp",
           "LACP; static (no LACP, every port with carrier distributes); one active port, "
           "the others standby; or slb: each source MAC on one port, no switch configuration", ifflag=0x2000, ifflag_value="loadbalance", stanza="proto"),
    Option("link2", Switch("link2", "-link2"), False, "unused, kept as NetBSD's flag", ifflag=0x4000),
    Option("debug", Switch("debug", "-debug"), False, "log every LACP state transition", ifflag=0x4),
    Option("lacp_fast", Choice("lacptimeout", (("fast", True), ("slow", False))), False,
           "LACP timeout: PDUs every second and a 3 s timeout, or every 30 s and 90 s",
           stanza="lacp-timeout"),
    Option("lacp_strict", Switch("lacpstrict", "-lacpstrict"), True,
           "require a live partner before a port distributes"),
    Option("hash", HashPolicy("agrhash"), DEFAULT_POLICY, "fields of the flow hash: l2, l3, l4"),
    Option("datapath", Choice("datapath", (("auto", "auto"), ("relay", "relay"), ("ebpf", "ebpf"))),
           "auto", "kernel fast path when possible, never, or required"),
    Option("lacp_active", Choice("lacpmode", (("active", True), ("passive", False))), True,
           "LACP activity: speak first, or only once the partner has spoken", stanza="lacp-mode"),
    Option("lacp_sysprio", Number("lacpsysprio", 0, PRIORITY_MAX, (0, 1, DEFAULT_PRIORITY, PRIORITY_MAX)),
           DEFAULT_PRIORITY, "the LACP system priority (lower is preferred)"),
    Option("lacp_sysid", MacAddress("lacpsysid", "-lacpsysid"), None,
           "the LACP system id: a unicast MAC address, or agrN's own address (the default)"),
    Option("linkcheck", LinkCheck("agrlinkcheck", "-agrlinkcheck"), None,
           "loadbalance and failover: a port is up only while these addresses answer on it"),
    Option("port_priority", Number("agrportpri", 0, PRIORITY_MAX, (0, 1, DEFAULT_PRIORITY, PRIORITY_MAX)),
           DEFAULT_PRIORITY, "a port's LACP port priority (lower is preferred)", scope="port"),
    Option("max_ports", Number("agrmaxports", 0, MAX_PORTS_MAX, (0, 1, 2, MAX_PORTS_MAX)), 0,
           "at most N ports distribute, the others are standby (0: no limit)"),
    Option("min_ports", Number("agrminports", 0, MAX_PORTS_MAX, (0, 1, 2, MAX_PORTS_MAX)), 1,
           "agrN has carrier only while at least N ports distribute (0: always)"),
    Option("lacp_fallback", Switch("lacpfallback", "-lacpfallback"), False,
           "while no port hears LACP, one port carries traffic as a plain link"),
    Option("wtr_time", Number("agrwtr", 0, WTR_MAX, (0, 1, 30, WTR_MAX)), 0,
           "wait-to-restore: seconds a port that comes back waits before it distributes", stanza="wtr"),
    Option("select", Choice("agrselect", (("stable", "stable"), ("bandwidth", "bandwidth"), ("count", "count"))),
           "bandwidth", "LACP: which aggregation carries traffic when ports hear different partners: the "
           "current one while a port of it is up, the most bandwidth (default), or the most ports"),
    Option("announce", Announce("agrannounce"), {"count": 1, "interval": ANNOUNCE_DEFAULT_INTERVAL},
           "after a move: N gratuitous ARPs and unsolicited NAs for agrN's addresses, MS apart"),
    Option("down_delay", Number("agrdowndelay", 0, DOWNDELAY_MAX, (0, 1, 200, DOWNDELAY_MAX)), 0,
           "milliseconds a port's carrier or link-check loss must last before the port goes",
           stanza="downdelay"),
    Option("mac_policy", Choice("agrmacpolicy", (("same", "same"), ("active", "active"), ("follow", "follow"))),
           "same", "failover: every port takes agrN's MAC; agrN takes the active port's own; or only the "
           "active port takes agrN's (bonding's fail_over_mac none, active, follow)", stanza="mac-policy"),
    Option("lladdr", LinkAddress("lladdr", "-lladdr"), None,
           "agrN's MAC address, fixed; or the first port's (the default)"),
)
BY_KEY = {o.key: o for o in OPTIONS}
BY_WORD = {word: o for o in OPTIONS for word in o.words()}
AGR_OPTIONS = tuple(o for o in OPTIONS if o.scope == "agr")
PORT_OPTIONS = tuple(o for o in OPTIONS if o.scope == "port")


def upgrade_flags(flags):
    """Settings as releases before agrproto saved them (link1 true/false) -> today's."""
    flags = dict(flags)
    if "link1" in flags and "proto" not in flags and type(flags["link1"]) is bool:
        flags["proto"] = "loadbalance" if flags.pop("link1") else "lacp"
    return flags


def defaults(scope="agr"):
    """The settings of a new agr interface (or of a newly attached port)."""
    # a copy of a dict default (agrannounce's), so that no caller can change the schema's
    return {o.key: dict(o.default) if isinstance(o.default, dict) else o.default
            for o in OPTIONS if o.scope == scope}


def check(key, value, scope="agr"):
    """Is `value` a valid setting for option `key` of this scope? (the control protocol's check)"""
    option = BY_KEY.get(key)
    return option is not None and option.scope == scope and option.check(value)


def check_reply(key, value, scope="agr"):
    """check(), for a setting a worker reports: agrlinkcheck's addresses are checked for their
    shape only (status imports no ipaddress)."""
    option = BY_KEY.get(key)
    if option is not None and isinstance(option.kind, LinkCheck):
        return option.scope == scope and option.kind.check(value, addresses=False)
    return check(key, value, scope)


def file_words(key, value, port=None):
    """The words that set option `key` to `value` (on `port`, for a port option), as a
    configuration file says it."""
    return BY_KEY[key].file_words(value, port)
