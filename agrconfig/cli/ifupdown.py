"""ifupdown's agr-* options: agr interfaces from /etc/network/interfaces, as ifenslave does bonds.

    auto agr0
    iface agr0 inet static
        address 192.0.2.10/24
        agr-ports re0 re1
        agr-lacp-timeout fast

The package's hooks /etc/network/if-pre-up.d/agrconfig and if-post-down.d/agrconfig run
`python3 -m agrconfig.cli.ifupdown` with ifupdown's environment: IFACE, PHASE, and IF_AGR_PORTS,
IF_AGR_LACP_TIMEOUT, ... for the stanza's agr-* options. Every option of the schema
(options.py) has one: Option.stanza_option(). pre-up creates the interface, sets the options and
attaches the ports, after removing the ports' addresses as ifenslave does (logged); post-down
destroys it, which gives the ports back their state. A stanza without agr-* options is left
alone: its interface may come from /etc/ifconfig.agrN instead.
"""
import errno
import os
import sys

from .. import options, paths
from .. import logger
from ..errors import AgrError, UsageError
from ..logger import log
from ..net import rtnl
from . import provision
from .grammar import parse_words
from .ops import AddPort, SetPortOption

PORTS = "agr-ports"
LINK1 = "agr-link1"   # before agrproto: `agr-link1 yes|no` still reads as link1 / -link1
SWITCH = {"yes": True, "on": True, "true": True, "1": True,
          "no": False, "off": False, "false": False, "0": False}


def stanza_options():
    """{stanza option: Option} for every option of the schema."""
    return {o.stanza_option(): o for o in options.OPTIONS}


def env_name(stanza_option):
    """ifupdown exports option `agr-lacp-timeout` as IF_AGR_LACP_TIMEOUT."""
    return "IF_" + stanza_option.upper().replace("-", "_")


def _value_words(option, text):
    """The agrconfig words for one stanza option's value."""
    kind, text = option.kind, " ".join(text.split())
    if isinstance(kind, options.Switch):
        if text.lower() in SWITCH:
            return kind.file_words(SWITCH[text.lower()])
        if text in kind.words():    # `agr-link0 -link0` says it too
            return [text]
        raise UsageError(f"{option.stanza_option()} {text!r}: use yes or no")
    if isinstance(kind, options.HashPolicy):
        return [kind.word, text.replace(" ", ",")]   # `agr-hash l2 l3 l4` or `l2,l3,l4`
    if isinstance(kind, options.LinkCheck):         # `agr-linkcheck 192.0.2.1 192.0.2.9 interval 500`
        if text in (kind.off, "none", "off"):
            return [kind.off]
        words = text.split()
        cut = words.index("interval") if "interval" in words else len(words)
        return [kind.word, ",".join(w.strip(",") for w in words[:cut]), *words[cut:]]
    if isinstance(kind, options.Announce):           # `agr-announce 3 interval 200`
        return [kind.word, *text.split()]
    if isinstance(kind, options.MacAddress) and text in (kind.off, "default"):
        return [kind.off]                           # back to agrN's own address
    if option.scope == "port":                      # `agr-port-priority re0 100 re1 200`
        pairs = text.split()
        if not pairs or len(pairs) % 2:
            raise UsageError(f"{option.stanza_option()} {text!r}: give PORT VALUE pairs")
        return [w for port, value in zip(pairs[::2], pairs[1::2]) for w in (kind.word, port, value)]
    return [kind.word, text]


def stanza(env):
    """(ports, option words) from ifupdown's environment; None when the stanza has no agr-*
    option. Unknown agr-* options are a usage error: a misspelt option must not pass."""
    known = {env_name(s): o for s, o in stanza_options().items()}
    given = {k: v for k, v in env.items() if k.startswith("IF_AGR_")}
    if not given:
        return None
    unknown = sorted(set(given) - set(known) - {env_name(PORTS), env_name(LINK1)})
    if unknown:
        names = ", ".join(k[3:].lower().replace("_", "-") for k in unknown)
        raise UsageError(f"unknown stanza option {names} (known: {', '.join([PORTS, *stanza_options()])})")
    ports = given.get(env_name(PORTS), "").split()
    if ports == ["none"]:
        ports = []
    words = []
    if env_name(LINK1) in given:
        text = given[env_name(LINK1)].strip().lower()
        if text not in SWITCH:
            raise UsageError(f"{LINK1} {text!r}: use yes or no")
        words += ["link1" if SWITCH[text] else "-link1"]
    for key, option in known.items():
        if key in given:
            words += _value_words(option, given[key])
    return ports, words


def _strip_port(port):
    """Remove every address of a future port, the automatic IPv6 link-local included, as
    ifenslave does for bond slaves: agrconfig refuses a port with addresses (EBUSY). The
    worker then sets addr_gen_mode and disable_ipv6 on it so none comes back, and puts them
    back when the port leaves."""
    link = rtnl.link(port)
    if link is None:
        raise AgrError(errno.ENOENT, "SIOCSETAGR", f"no such interface: {port}")
    gone = []
    for addr in rtnl.addresses(link.index):
        rtnl.del_address(link.index, addr)
        gone.append(f"{addr.address}/{addr.prefixlen}")
    if gone:
        log.warning("agrconfig: %s: addresses removed for %s: %s", port, os.environ.get("IFACE"),
                    ", ".join(gone))


def up(name, ports, words, apply_ops):
    """Create `name` if it is not there, set its options, attach the ports not attached yet.
    Planned against what is there, so the pre-up of a second (inet6) stanza changes nothing."""
    ops = parse_words(["create", *words, *[w for p in ports for w in ("agrport", p)]])
    # A port's settings name an attached port: after the agrport operations.
    ops = [op for op in ops if not isinstance(op, SetPortOption)] + [op for op in ops if isinstance(op, SetPortOption)]
    for attempt in range(3):
        planned = provision.plan(name, ops)
        if not planned:
            return
        for op in planned:
            if isinstance(op, AddPort):
                _strip_port(op.port)
        try:
            apply_ops(name, planned)
            return
        except AgrError as exc:
            # A carrier change between the removal and the attach can bring the link-local back.
            if exc.errno != errno.EBUSY or "has addresses" not in str(exc) or attempt == 2:
                raise


def down(name, apply_ops):
    """Destroy `name` if it is there (its ports get back their MAC, MTU, flags and sysctls)."""
    planned = provision.plan(name, parse_words(["destroy"]))
    if planned:
        apply_ops(name, planned)
        log.info("agrconfig: %s destroyed, its ports restored", name)


def _logging():
    # stderr for ifup's output, and syslog where there is one (ifenslave logs both ways).
    if os.path.exists("/dev/log"):
        logger.to_syslog("agrconfig-ifupdown", stderr=True)
    log.setLevel(logger.INFO)


def main(env=None):
    env = os.environ if env is None else env
    name, phase = env.get("IFACE", ""), env.get("PHASE", "")
    _logging()
    try:
        found = stanza(env)
        if found is None:
            return 0
        if not paths.is_agr_name(name):
            raise UsageError(f"{name}: agr-* options belong in the stanza of an agr interface")
        from ..client import commands
        if phase == "pre-up":
            up(name, *found, commands.apply)
        elif phase == "post-down":
            down(name, commands.apply)
        return 0
    except (UsageError, AgrError) as exc:
        log.error("agrconfig: %s: %s", name, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
