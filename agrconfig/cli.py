"""agrconfig — configure agr(4) link aggregation interfaces, with ifconfig's words.

Usage:
  agrconfig [--json] <interface> [<word>...]
  agrconfig [--json] -a
  agrconfig -l
  agrconfig -C
  agrconfig --destroy-all
  agrconfig -h | --help
  agrconfig --version

Words (applied left to right, as ifconfig does):
  create | destroy                  make or remove an agr interface (agr0, agr1, ...)
  agrport PORT | -agrport PORT      attach or detach a physical Ethernet interface
  link0 | -link0                    round-robin distribution | hash of MACs, VLAN, IP
  link1 | -link1                    static configuration without LACP | LACP (default)
  up | down                         bring the interface up or down
  mtu N                             set the MTU (on agr: also on every port)
  inet ADDR[/LEN] [netmask MASK] [alias | -alias | delete]
  inet6 ADDR[/LEN] [prefixlen N] [alias | -alias | delete]
  lacptimeout fast|slow             LACP timeout we ask of the partner (default slow)
  lacpstrict | -lacpstrict          distribute only with a live partner (default) | optimistic
  agrhash l2,l3,l4                  fields of the flow hash (default l2,l3)
  debug | -debug                    trace every LACP state transition in the log

Options:
  -a             Show every interface.
  -l             List interface names.
  -C             List interface cloners (agr).
  --json         Status as a JSON document.
  --destroy-all  Destroy every agr interface of this network namespace.
  -h --help      Show this text.
  --version      Show the version.

Exit status: 0 success, 1 usage error, 2 an operation failed.
"""
import errno
import fcntl
import json
import os
import sys
from dataclasses import dataclass

from docopt import DocoptExit, docopt

from . import __version__
from .errors import AgrError, UsageError
from .paths import is_agr_name

AGR_ONLY = "valid only with agr(4) interfaces"


@dataclass(frozen=True)
class Op:
    word: str
    arg: object = None
    text: str = ""

    @property
    def word_text(self):
        return self.text or self.word


FLAG_WORDS = {
    "link0": ("link0", True), "-link0": ("link0", False),
    "link1": ("link1", True), "-link1": ("link1", False),
    "link2": ("link2", True), "-link2": ("link2", False),
    "debug": ("debug", True), "-debug": ("debug", False),
    "lacpstrict": ("lacp_strict", True), "-lacpstrict": ("lacp_strict", False),
}
SIMPLE_WORDS = {"create", "destroy", "up", "down"}
ADDRESS_ACTIONS = {"alias": "alias", "-alias": "delete", "delete": "delete"}


def parse_words(words):
    """ifconfig words -> list of Op. Raises UsageError naming the bad word."""
    from .ifconfig import parse_address, parse_netmask
    from .worker.flowhash import parse_policy

    ops = []
    i = 0

    def arg(what):
        nonlocal i
        if i >= len(words):
            raise UsageError(f"{words[i - 1]}: missing {what}")
        i += 1
        return words[i - 1]

    while i < len(words):
        word = words[i]
        i += 1
        if word in SIMPLE_WORDS:
            ops.append(Op(word))
        elif word in FLAG_WORDS:
            ops.append(Op("flag", FLAG_WORDS[word], word))
        elif word in ("agrport", "-agrport"):
            port = arg("interface name")
            if not port or len(port) > 15 or "/" in port or port.strip() != port:
                raise UsageError(f"{word}: bad interface name {port!r}")
            ops.append(Op(word, port))
        elif word == "mtu":
            text = arg("MTU")
            if not text.isdigit() or not 68 <= int(text) <= 65535:
                raise UsageError(f"mtu: bad value {text!r} (68-65535)")
            ops.append(Op("mtu", int(text)))
        elif word == "lacptimeout":
            text = arg("fast or slow")
            if text not in ("fast", "slow"):
                raise UsageError(f"lacptimeout: {text!r} is neither fast nor slow")
            ops.append(Op("flag", ("lacp_fast", text == "fast"), word))
        elif word == "agrhash":
            text = arg("hash layers")
            try:
                ops.append(Op("flag", ("hash", parse_policy(text)), word))
            except ValueError as exc:
                raise UsageError(f"agrhash: {exc}") from None
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
                    elif key == "prefixlen" and family == "inet6" and value.isdigit():
                        prefix = int(value)
                    else:
                        raise ValueError(f"{key} does not go with {family}")
                except ValueError as exc:
                    raise UsageError(f"{key}: {exc}") from None
            try:
                iface, explicit = parse_address(family, text, prefix)
            except ValueError as exc:
                raise UsageError(f"{family}: {exc}") from None
            ops.append(Op("address", (action, iface, explicit)))
        else:
            raise UsageError(f"{word}: bad value" if word.startswith("-") else f"{word}: unknown word")
    if any(op.word == "destroy" for op in ops) and len(ops) > 1:
        raise UsageError("destroy takes no other words")
    return ops


def _looks_like_address(word):
    import ipaddress
    try:
        ipaddress.ip_interface(word.split("%", 1)[0])
        return True
    except ValueError:
        return False


# -- executing -------------------------------------------------------------------

class Namespace:
    """Serializes mutating commands within this network namespace."""

    def __enter__(self):
        from . import paths
        self.fd = os.open(paths.lock_file(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def apply(name, ops):
    """Carry out the operations on interface `name`, left to right."""
    from . import agr
    agr_words = [op for op in ops if op.word in ("create", "destroy", "agrport", "-agrport", "flag")]
    if not is_agr_name(name):
        if any(op.word == "create" for op in ops):
            raise AgrError(errno.EINVAL, "SIOCIFCREATE",
                           f"{name!r}: only agr<N> interfaces can be created (at most 15 characters)")
        if agr_words:
            raise AgrError(errno.EINVAL, "SIOCSETAGR", f"{agr_words[0].word_text}: {AGR_ONLY}")
    with Namespace():
        for op in ops:
            if agr.manages(name, op):
                agr.apply(name, op)
            else:
                apply_plain(name, op)


def apply_plain(name, op):
    """An ifconfig word on an interface that is not ours (a port, or any other)."""
    from . import agr, ifconfig
    member_of = agr.owner_of(name)
    if member_of and op.word in ("mtu", "address"):
        raise AgrError(errno.EBUSY, "SIOCSIFMTU" if op.word == "mtu" else "SIOCAIFADDR",
                       f"{name} is a port of {member_of}; configure {member_of} instead")
    if op.word in ("up", "down"):
        ifconfig.set_up(name, op.word == "up")
    elif op.word == "mtu":
        ifconfig.set_mtu(name, op.arg)
    elif op.word == "address":
        action, iface, explicit = op.arg
        if action == "delete":
            ifconfig.delete_address(name, iface, explicit)
        else:
            ifconfig.add_address(name, iface, alias=action == "alias" or iface.version == 6)
    else:
        raise AgrError(errno.ENXIO, "SIOCSETAGR", f"{name}: no such agr interface")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = docopt(__doc__, argv, options_first=True, version=f"agrconfig {__version__}")
    except DocoptExit as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except SystemExit as exc:  # --help / --version
        return 0 if exc.code in (None, 0) else 1
    from . import agr, status
    try:
        if args["-l"]:
            print(" ".join(status.names()))
            return 0
        if args["-C"]:
            print("agr")
            return 0
        if args["--destroy-all"]:
            with Namespace():
                agr.destroy_all()
            return 0
        if args["-a"]:
            print(status.render_all(as_json=args["--json"]), end="")
            return 0
        name = args["<interface>"]
        words = args["<word>"]
        if not name or len(name) > 15 or "/" in name or not name.isprintable() or " " in name:
            raise UsageError(f"bad interface name {name!r}")
        if not words:
            print(status.render(name, as_json=args["--json"]), end="")
            return 0
        apply(name, parse_words(words))
        return 0
    except UsageError as exc:
        print(f"agrconfig: {exc}", file=sys.stderr)
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 1
    except AgrError as exc:
        print(f"agrconfig: {exc}", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(f"agrconfig: {AgrError(errno.EPERM, '', f'{exc.strerror}; run as root')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
