"""agrconfig — configure agr(4) link aggregation interfaces, with ifconfig's words.

Usage:
  agrconfig [-n] [--json] <interface> [<word>...]
  agrconfig [-n] -f <file> <interface>
  agrconfig [-n] --boot [--confdir=<dir>]
  agrconfig --halt [--confdir=<dir>]
  agrconfig [--json] -a
  agrconfig -l [--free]
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
  datapath auto|relay|ebpf          kernel eBPF fast path when possible (default) or not
  debug | -debug                    trace every LACP state transition in the log
  monitor [interval N] [until distributing|collecting] [timeout N]
                                    stream port and partner events (and counters every N s);
                                    with until: exit 0 once every port is so, 2 on timeout

Options:
  -n                 Dry run: print what would be done, one line per change; change nothing.
  -f <file>          Apply a configuration file (ifconfig.if(5) format) to the interface.
  --boot             Apply every ifconfig.IF file of the configuration directory.
  --halt             Destroy the agr interfaces that configuration files describe.
  --confdir=<dir>    Configuration directory [default: /etc].
  --free             With -l: only Ethernet interfaces that could become ports.
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
import os
import sys
from docopt import DocoptExit, docopt

from . import __version__
from .errors import AgrError, UsageError
from .words import parse_words, valid_ifname
from .paths import is_agr_name

AGR_ONLY = "valid only with agr(4) interfaces"


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
        ifconfig.apply_address(name, op.arg)
    else:
        raise AgrError(errno.ENXIO, "SIOCSETAGR", f"{name}: no such agr interface")


def _docopt_message(exc):
    """docopt-ng's complaint as one 'agrconfig:' line, then the usage. Its own words for a
    misplaced option are a Python repr ("Warning: found unmatched (duplicate?) arguments
    [Option('-f', None, 1, 'a')]"); name the options instead."""
    import re
    usage = (DocoptExit.usage or "").strip()
    text = str(exc).strip()
    message = text[:-len(usage)].strip() if usage and text.endswith(usage) else text
    if message.startswith("Warning: found unmatched"):
        names = [s or l for s, l in re.findall(r"Option\((?:'(-[^']*)'|None), (?:'(--[^']*)'|None)", message)]
        message = f"option {' '.join(dict.fromkeys(names))} not valid here" if names else "bad arguments"
    elif not message:
        message = "an interface or an option is needed"
    return f"agrconfig: {message}\n{usage}" if usage else f"agrconfig: {message}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = docopt(__doc__, argv, options_first=True, version=f"agrconfig {__version__}")
    except DocoptExit as exc:
        print(_docopt_message(exc), file=sys.stderr)
        return 1
    except SystemExit as exc:  # --help / --version
        return 0 if exc.code in (None, 0) else 1
    # Each branch imports what it needs: the front end's start-up is most of a status command.
    try:
        if args["-l"]:
            from . import status
            print(" ".join(status.free_ports() if args["--free"] else status.names()))
            return 0
        if args["-C"]:
            print("agr")
            return 0
        if args["--destroy-all"]:
            from . import agr
            with Namespace():
                agr.destroy_all()
            return 0
        if args["-a"]:
            from . import status
            print(status.render_all(as_json=args["--json"]), end="")
            return 0
        from . import provision, status
        if args["--boot"]:
            failures = provision.boot(args["--confdir"], dry_run=args["-n"],
                                      err=lambda m: print(m, file=sys.stderr))
            return 2 if failures else 0
        if args["--halt"]:
            with Namespace():
                provision.halt(args["--confdir"])
            return 0
        name = args["<interface>"]
        words = args["<word>"]
        if not valid_ifname(name):  # the kernel's rules, in octets: 'é' * 8 is too long
            raise UsageError(f"bad interface name {name!r}")
        if args["-f"]:
            provision.apply_file(args["-f"], name, dry_run=args["-n"])
            return 0
        if not words:
            print(status.render(name, as_json=args["--json"]), end="")
            return 0
        if words[0] == "monitor":
            from . import monitor
            return monitor.run(name, words[1:], as_json=args["--json"])
        ops = parse_words(words)
        if args["-n"]:
            for op in provision.plan(name, ops):
                print(" ".join(["agrconfig", name, *provision.words_of(op)]))
            return 0
        apply(name, ops)
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
