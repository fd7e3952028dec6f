"""agrconfig — configure agr(4) link aggregation interfaces, with ifconfig's words.

Usage:
  agrconfig [-n] [-v] [--json] <interface> [<word>...]
  agrconfig [-n] -f <file> <interface>
  agrconfig [-n] --boot [--confdir=<dir>]
  agrconfig --halt [--confdir=<dir>]
  agrconfig [-v] [--json] -a
  agrconfig --metrics
  agrconfig --metrics-file=<path>
  agrconfig -l [--free [-v] [--json] [listen <seconds>]]
  agrconfig -C
  agrconfig --destroy-all
  agrconfig -h | --help
  agrconfig --version

Words (applied left to right, as ifconfig does):
  create | destroy                  make or remove an agr interface (agr0, agr1, ...)
  agrport PORT | -agrport PORT      attach or detach a physical Ethernet interface
  link0 | -link0                    round-robin distribution | hash of MACs, VLAN, IP
  link1 | -link1                    static configuration without LACP | LACP (default)
  agrproto lacp|loadbalance|failover|slb  LACP (default, -link1) | static (link1) | one active port | by source MAC
  up | down                         bring the interface up or down
  mtu N                             set the MTU (on agr: also on every port)
  inet ADDR[/LEN] [netmask MASK] [alias | -alias | delete]
  inet6 ADDR[/LEN] [prefixlen N] [alias | -alias | delete]
  lacptimeout fast|slow             LACP timeout we ask of the partner (default slow)
  lacpstrict | -lacpstrict          distribute only with a live partner (default) | optimistic
  agrhash l2,l3,l4                  fields of the flow hash (default l2,l3)
  datapath auto|relay|ebpf          kernel eBPF fast path when possible (default) or not
  lacpmode active|passive           speak LACP first (default) | only once the partner has
  lacpsysprio N                     LACP system priority, 0-65535 (default 0x8000)
  lacpsysid MAC | -lacpsysid        LACP system id | agr's own MAC address (default)
  agrportpri PORT N                 an attached port's priority (LACP, failover), 0-65535 (default 0x8000)
  agrmaxports N                     at most N ports distribute, the others standby (default 0: no limit)
  agrminports N                     no carrier while fewer than N ports distribute (default 1)
  lacpfallback | -lacpfallback      one port as a plain link while no port hears LACP | never (default)
  agrwtr SECONDS                    wait-to-restore: a port that comes back waits (default 0)
  agrselect stable|bandwidth|count  LACP: the aggregation kept while up | most bandwidth (default) | most ports
  agrannounce N [interval MS]       after a move: N gratuitous ARPs / NAs, MS apart (default 1)
  agrdowndelay MS                   a port's link loss must last MS before it goes (default 0)
  agrmacpolicy same|active|follow   failover: ports take agr's MAC (default) | agr takes the active
                                    port's | the active port takes agr's
  lladdr MAC | -lladdr              agr's MAC address, fixed | the first port's (default)
  link MAC active                   NetBSD's lladdr MAC
  debug | -debug                    trace every LACP state transition in the log
  monitor [interval N] [until distributing|collecting] [timeout N]
                                    stream port and partner events (and counters every N s);
                                    with until: exit 0 once every port is so, 2 on timeout
  whichport DST [from SRC] [tcp|udp SPORT DPORT]
                                    the port a flow takes now (a query)
  diagnose [interval SECONDS]       findings, their evidence and what to do; exit 4 if any

Options:
  -n                 Dry run: print what would be done, one line per change; change nothing.
  -f <file>          Apply a configuration file (ifconfig.if(5) format) to the interface.
  --boot             Apply every ifconfig.IF file of the configuration directory.
  --halt             Destroy the agr interfaces that configuration files describe.
  --confdir=<dir>    Configuration directory [default: /etc].
  --free             With -l: only Ethernet interfaces that could become ports; with
                     pre-flight (-v, --json or listen N): what each one reaches (root).
  -a             Show every interface.
  -l             List interface names.
  -C             List interface cloners (agr).
  -v             Verbose status: traffic counters (as ifconfig -v).
  --json         Status as a JSON document.
  --destroy-all  Destroy every agr interface of this network namespace.
  --metrics      Print every agr interface's metrics (Prometheus text format 0.0.4).
  --metrics-file=<path>  Write them to a file atomically (node_exporter's textfile collector).
  -h --help      Show this text.
  --version      Show the version.

Exit status: 0 success, 1 usage error, 2 an operation failed; with -n, 0 when nothing would
change and 3 when something would; diagnose: 4 when it found something.
"""
import errno
import sys

from .. import __version__
from ..checks import valid_ifname
from ..errors import AgrError, UsageError

# -n's answer when something would change (0: nothing would), as terraform plan
# -detailed-exitcode: fleet tools tell "changed" from the status alone.
WOULD_CHANGE = 3

# What docopt gives for the usage above when no option is set.
NO_OPTIONS = {"--boot": False, "--confdir": "/etc", "--destroy-all": False, "--free": False, "--halt": False,
              "--help": False, "--json": False, "--metrics": False, "--metrics-file": None, "--version": False,
              "-C": False, "-a": False, "-f": None, "-l": False, "-n": False, "-v": False,
              "<interface>": None, "<seconds>": None, "<word>": [], "listen": False}


def quick_args(argv):
    """The everyday forms (`[-n] [-v] [--json] IF [WORD...]`, `[-v] [--json] -a`, `--metrics`)
    as docopt parses them, without docopt: its import and parse cost a status more than the
    status itself. None for anything else, which docopt parses (and explains when it is
    wrong). tests/unit/test_imports.py holds the two to the same answers."""
    flags = []
    for word in argv:
        if word not in ("-n", "-v", "--json", "-a", "--metrics"):
            break
        if word in flags:
            return None
        flags.append(word)
    rest = argv[len(flags):]
    if "--metrics" in flags:
        if len(flags) > 1 or rest:
            return None
    elif "-a" in flags:
        if "-n" in flags or rest:
            return None
    elif not rest or rest[0].startswith("-"):
        return None
    args = dict(NO_OPTIONS, **{flag: True for flag in flags})
    if rest:
        args["<interface>"], args["<word>"] = rest[0], rest[1:]
    return args


def _docopt_message(exc):
    """docopt-ng's complaint as one 'agrconfig:' line, then the usage. Its own words for a
    misplaced option are a Python repr ("Warning: found unmatched (duplicate?) arguments
    [Option('-f', None, 1, 'a')]"); name the options instead."""
    import re

    from docopt import DocoptExit
    usage = (DocoptExit.usage or "").strip()
    text = str(exc).strip()
    message = text[:-len(usage)].strip() if usage and text.endswith(usage) else text
    if message.startswith("Warning: found unmatched"):
        names = [s or l for s, l in re.findall(r"Option\((?:'(-[^']*)'|None), (?:'(--[^']*)'|None)", message)]
        message = f"option {' '.join(dict.fromkeys(names))} not valid here" if names else "bad arguments"
    elif not message:
        message = "an interface or an option is needed"
    return f"agrconfig: {message}\n{usage}" if usage else f"agrconfig: {message}"


def _status(args, changes):
    return WOULD_CHANGE if args["-n"] and changes else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = quick_args(argv)
    if args is None:
        from docopt import DocoptExit, docopt
        try:
            args = docopt(__doc__, argv, options_first=True, version=f"agrconfig {__version__}")
        except DocoptExit as exc:
            print(_docopt_message(exc), file=sys.stderr)
            return 1
        except SystemExit as exc:  # --help / --version
            return 0 if exc.code in (None, 0) else 1
    # Each branch imports what it needs: the front end's start-up is most of a status command.
    try:
        if args["-l"] and (args["-v"] or args["--json"] or args["listen"]):
            if not args["--free"]:
                raise UsageError("-v, --json and listen go with -l --free (pre-flight)")
            from . import preflight
            listen = preflight.parse_listen(args["<seconds>"]) if args["listen"] else None
            print(preflight.run(as_json=args["--json"], listen=listen), end="")
            return 0
        if args["-l"]:
            from ..client import inspect
            print(" ".join(inspect.free_ports() if args["--free"] else inspect.names()))
            return 0
        if args["--metrics"] or args["--metrics-file"]:
            from . import metrics
            if args["--metrics-file"]:
                metrics.write_file(args["--metrics-file"])
            else:
                print(metrics.text(), end="")
            return 0
        if args["-C"]:
            print("agr")
            return 0
        if args["--destroy-all"]:
            from ..client import commands, workers
            with commands.Namespace("SIOCIFDESTROY", "--destroy-all"):
                workers.destroy_all()
            return 0
        if args["-a"]:
            from . import render
            print(render.render_all(as_json=args["--json"], verbose=args["-v"]), end="")
            return 0
        if args["--boot"]:
            from . import provision
            from ..client import commands
            changes = []
            failures = provision.boot(args["--confdir"], commands.apply, dry_run=args["-n"],
                                      err=lambda m: print(m, file=sys.stderr), changes=changes)
            return 2 if failures else _status(args, changes)
        if args["--halt"]:
            from . import provision
            from ..client import commands
            with commands.Namespace("SIOCIFDESTROY", "--halt"):
                provision.halt(args["--confdir"])
            return 0
        name = args["<interface>"]
        words = args["<word>"]
        if not valid_ifname(name):  # the kernel's rules, in octets: 'é' * 8 is too long
            raise UsageError(f"bad interface name {name!r}")
        if not args["-f"] and not words:
            from . import render
            print(render.render(name, as_json=args["--json"], verbose=args["-v"]), end="")
            return 0
        from ..client import commands
        if args["-f"]:
            from . import provision
            changes = provision.apply_file(args["-f"], name, commands.apply, dry_run=args["-n"])
            return _status(args, changes)
        from .grammar import parse_query, parse_words
        query = parse_query(words)   # monitor, whichport: nothing to plan or apply
        if query is not None:
            return query.run(name, as_json=args["--json"], dry_run=args["-n"])
        ops = parse_words(words)
        if args["-n"]:
            from . import provision
            planned = provision.plan(name, ops)
            for op in planned:
                print(" ".join(["agrconfig", name, *op.words()]))
            return _status(args, planned)
        commands.apply(name, ops)
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
    except OSError as exc:   # a configuration file that is missing or unreadable, say
        print(f"agrconfig: {exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
