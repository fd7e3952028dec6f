"""ifconfig words -> operations: the grammar, shared by the command line and configuration files."""
from .. import options
from ..checks import is_number, valid_ifname  # noqa: F401 (valid_ifname: for the command line)
from ..errors import UsageError
from .ops import (QUERIES, AddAddress, AddPort, Create, DeleteAddress, Destroy, Down, RemovePort,
                  SetMtu, SetOption, SetPortOption, Up)

# The on/off words of the option schema: word -> (option key, value).
FLAG_WORDS = {word: (o.key, value) for o in options.OPTIONS if isinstance(o.kind, options.Switch)
              for word, value in o.words().items()}
# The words that are an operation by themselves.
SIMPLE = {cls.WORD: cls for cls in (Create, Destroy, Up, Down)}
SIMPLE_WORDS = set(SIMPLE)
PORT_WORDS = {cls.WORD: cls for cls in (AddPort, RemovePort)}
ADDRESS_ACTIONS = {"alias": "alias", "-alias": "delete", "delete": "delete"}


def parse_query(words):
    """A query (monitor, whichport: the first word, taking the others as its own), or None."""
    query = QUERIES.get(words[0]) if words else None
    return query(tuple(words[1:])) if query else None


# The command line's own flags, which docopt takes before the interface only.
FLAGS_FIRST = frozenset({"-v", "--json", "-n", "-a", "-l", "-f"})


def parse_words(words):
    """ifconfig words -> list of operations (ops.py). Raises UsageError naming the bad word."""
    ops = []
    i = 0

    def arg(what):
        nonlocal i
        if i >= len(words):
            raise UsageError(f"{_say(words[i - 1])}: missing {what}")
        i += 1
        return words[i - 1]

    while i < len(words):
        word = words[i]
        i += 1
        if word in SIMPLE:
            ops.append(SIMPLE[word]())
        elif word in options.BY_WORD:
            option = options.BY_WORD[word]
            kind = option.kind
            port = None
            if option.scope == "port":   # `agrportpri PORT N`: the port first
                port = arg("interface name")
                if not valid_ifname(port):
                    raise UsageError(f"{word}: bad interface name {port!r}")
                if i >= len(words):
                    raise UsageError(f"{word}: missing {kind.arg_help()}")
            try:
                if kind.takes_arg(word) and getattr(kind, "more", ()):
                    # `agrlinkcheck IP,IP interval MS`: optional KEY VALUE words follow
                    first, more = arg(kind.arg_help()), {}
                    while i < len(words) and words[i] in kind.more and words[i] not in more:
                        key = words[i]
                        i += 1
                        more[key] = arg("a value")
                    value = kind.value(word, first, more)
                else:
                    value = kind.value(word, arg(kind.arg_help())) if kind.takes_arg(word) else kind.value(word)
            except ValueError as exc:
                raise UsageError(f"{word}: {exc}") from None
            if word == getattr(kind, "alias", None):   # NetBSD's `link MAC active`
                if i >= len(words) or words[i] != kind.suffix:
                    raise UsageError(f"{word}: say `{word} MAC {kind.suffix}` (agr keeps no inactive address)")
                i += 1
            if port is None:
                ops.append(SetOption(option.key, value, word))
            else:
                ops.append(SetPortOption(port, option.key, value, word))
        elif word in PORT_WORDS:
            port = arg("interface name")
            if not valid_ifname(port):
                raise UsageError(f"{word}: bad interface name {port!r}")
            ops.append(PORT_WORDS[word](port))
        elif word == "mtu":
            text = arg("MTU")
            # ASCII digits only: str.isdigit() also admits '²' (int() refuses it) and
            # Arabic-Indic digits, and int() refuses more than 4300 digits.
            if not is_number(text) or not options.MTU_MIN <= int(text) <= options.MTU_MAX:
                raise UsageError(f"mtu: bad value {text!r} ({options.MTU_MIN}-{options.MTU_MAX})")
            ops.append(SetMtu(int(text)))
        elif word in ("inet", "inet6") or _looks_like_address(word):
            family = word if word in ("inet", "inet6") else ("inet6" if ":" in word else "inet")
            text = arg("address") if word in ("inet", "inet6") else word
            prefix = None
            action = "set"
            while i < len(words) and words[i] in ("netmask", "prefixlen") + tuple(ADDRESS_ACTIONS):
                key = words[i]
                i += 1
                if key in ADDRESS_ACTIONS:
                    action = ADDRESS_ACTIONS[key]
                    continue
                value = arg(key)
                try:
                    if key == "netmask" and family == "inet":
                        prefix = parse_netmask(value)
                    elif key == "prefixlen" and family == "inet6" and is_number(value):
                        prefix = int(value)
                    else:
                        raise ValueError(f"{key} does not go with {family}")
                except ValueError as exc:
                    raise UsageError(f"{key}: {exc}") from None
            try:
                iface, explicit = parse_address(family, text, prefix)
            except ValueError as exc:
                raise UsageError(f"{family}: {exc}") from None
            if action == "delete":
                ops.append(DeleteAddress(iface, explicit))
            else:
                ops.append(AddAddress(iface, action == "alias"))
        elif word in FLAGS_FIRST:   # `agrconfig agr0 -v`: ifconfig's flags come first
            raise UsageError(f"{word} goes before the interface: agrconfig {word} <interface> ...")
        else:
            raise UsageError(f"{_say(word)}: bad value" if word.startswith("-") else f"{_say(word)}: unknown word")
    if any(isinstance(op, Destroy) for op in ops) and len(ops) > 1:
        raise UsageError("destroy takes no other words")
    check_together(ops)
    return ops


def check_together(ops):
    """Settings of one command that exclude each other (the worker refuses them across commands)."""
    last = {op.key: op for op in ops if isinstance(op, SetOption)}
    if "lladdr" in last and "mac_policy" in last and last["lladdr"].value is not None \
            and last["mac_policy"].value == "active":
        raise UsageError(f"{last['lladdr'].word} and agrmacpolicy active exclude each other "
                         "(under active, agr takes the active port's own address)")


def _say(word):
    """A word for an error message: quoted when it holds a newline, escape or nothing at all,
    so the message stays one line and cannot drive the terminal."""
    return word if word and word.isprintable() and word.strip() == word else repr(word)


def _looks_like_address(word):
    import ipaddress   # here and below: only address words need it, not every command's start
    try:
        ipaddress.ip_interface(word.split("%", 1)[0])
        return True
    except ValueError:
        return False


def classful_prefix(addr):
    """BSD's default netmask when none is given: by the address's historic class."""
    first = int(addr) >> 24
    if first < 128:
        return 8
    if first < 192:
        return 16
    return 24


def parse_netmask(text):
    """'255.255.255.0', '0xffffff00' or '24' -> prefix length."""
    import ipaddress
    try:
        if text.lower().startswith("0x"):
            mask = ipaddress.IPv4Address(int(text, 16))
        elif is_number(text, 3):
            return int(ipaddress.ip_network(f"0.0.0.0/{int(text)}").prefixlen)
        else:
            mask = ipaddress.IPv4Address(text)
        return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    except ValueError as exc:
        raise ValueError(f"bad netmask {text!r}") from exc


def parse_address(family, text, prefix=None):
    """ADDR[/LEN] (an IPv6 scope '%if' is accepted and dropped) -> (ip_interface, explicit)."""
    import ipaddress
    addr, _, length = text.partition("/")
    addr = addr.split("%", 1)[0]
    ip = ipaddress.ip_address(addr)
    want = 4 if family == "inet" else 6
    if ip.version != want:
        raise ValueError(f"{text!r} is not an {family} address")
    if length:
        if not is_number(length, 3):
            raise ValueError(f"bad prefix length in {text!r}")
        prefix = int(length)
    explicit = prefix is not None
    if prefix is None:
        prefix = classful_prefix(ip) if want == 4 else 64
    if not 0 <= prefix <= (32 if want == 4 else 128):
        raise ValueError(f"bad prefix length {prefix}")
    return ipaddress.ip_interface(f"{ip}/{prefix}"), explicit
