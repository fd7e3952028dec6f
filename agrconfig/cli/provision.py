"""Provisioning: /etc/ifconfig.IF files, idempotent apply and dry run.

A file holds one line of agrconfig words per line, as NetBSD's ifconfig.if(5):
`#` starts a comment, blank lines are ignored, and a line starting with `!` is a
shell command (run only from a root-owned file nobody else may write).

Applying is planned against the interface's current state: words that would
change nothing are dropped, so applying the same file twice does nothing the
second time. For an agr interface the file is the whole truth: ports it does
not name are detached, flags it does not set go back to their defaults (and so
do the settings of its ports, such as agrportpri), and, if it names any
address, addresses it does not name are removed.
"""
import errno
import os
import shlex
import stat
import subprocess
from dataclasses import dataclass, field

from .. import options, paths
from ..client import commands, workers
from ..errors import AgrError, UsageError
from .grammar import Op, parse_words

CONF_PREFIX = "ifconfig."


@dataclass
class Model:
    """What we know of one interface, updated as planned words are applied."""
    exists: bool
    agr: bool = False
    ports: list = field(default_factory=list)
    flags: dict = field(default_factory=dict)
    port_flags: dict = field(default_factory=dict)   # port -> its settings (agrportpri)
    mtu: int | None = None
    up: bool = False
    addrs: set = field(default_factory=set)


def current(name):
    """The model of `name` as it is: what commands.Snapshot reads, with the ports' defaults."""
    snap = commands.Snapshot.of(name)
    if not snap.exists:
        return Model(exists=False, agr=paths.is_agr_name(name))
    model = Model(exists=True, mtu=snap.mtu, up=snap.up, addrs=snap.addrs)
    if paths.is_agr_name(name) and snap.agr:
        model.agr, model.ports, model.flags = True, snap.ports, snap.flags
        model.port_flags = {p: {**options.defaults("port"), **o} for p, o in snap.port_options.items()}
    return model


def _step(model, op):
    """Apply `op` to the model; True when it would change something."""
    if op.word == "create":
        if model.exists:
            return False
        model.exists, model.agr, model.flags = True, True, options.defaults()
        model.mtu, model.up = 1500, False
        return True
    if op.word == "destroy":
        if not model.exists:
            return False
        model.exists, model.ports = False, []
        return True
    if op.word == "agrport":
        if op.arg in model.ports:
            return False
        model.ports.append(op.arg)
        model.port_flags[op.arg] = options.defaults("port")
        return True
    if op.word == "-agrport":
        if op.arg not in model.ports:
            return False
        model.ports.remove(op.arg)
        model.port_flags.pop(op.arg, None)
        return True
    if op.word == "portflag":
        port, key, value = op.arg
        if model.agr and model.exists and port not in model.ports:
            # As the worker would answer: the word names an attached port (in a file, it
            # follows that port's agrport line).
            raise AgrError(errno.ENOENT, "SIOCSETAGR", f"{port} is not a port of this interface")
        settings = model.port_flags.setdefault(port, options.defaults("port"))
        if settings.get(key) == value:
            return False
        settings[key] = value
        return True
    if op.word == "flag":
        key, value = op.arg
        if model.flags.get(key) == value:
            return False
        model.flags[key] = value
        return True
    if op.word == "mtu":
        if model.mtu == op.arg:
            return False
        model.mtu = op.arg
        return True
    if op.word in ("up", "down"):
        if model.up == (op.word == "up"):
            return False
        model.up = op.word == "up"
        return True
    if op.word == "address":
        action, iface, explicit = op.arg
        same = {a for a in model.addrs if a.ip == iface.ip and (not explicit or a == iface)}
        if action == "delete":
            model.addrs -= same
            return bool(same)
        if iface in model.addrs:
            return False
        if action == "set" and iface.version == 4:
            v4 = sorted((a for a in model.addrs if a.version == 4), key=str)
            if v4:
                model.addrs.discard(v4[0])
        model.addrs.add(iface)
        model.up = True
        return True
    return True


def plan(name, ops, model=None):
    """The words of `ops` that would change something (the model follows along)."""
    model = model if model is not None else current(name)
    return [op for op in ops if _step(model, op)]


def undo(file_ops, model):
    """For an agr file: the words that undo what the file does not (or no longer) say."""
    if not (model.agr and model.exists):
        return []
    out = []
    wanted_ports = [op.arg for op in file_ops if op.word == "agrport"]
    out += [Op("-agrport", port) for port in model.ports if port not in wanted_ports]
    set_keys = {op.arg[0] for op in file_ops if op.word == "flag"}
    out += [flag_op(key, value) for key, value in options.defaults().items()
            if key not in set_keys and model.flags.get(key, value) != value]
    port_keys = {(op.arg[0], op.arg[1]) for op in file_ops if op.word == "portflag"}
    out += [port_flag_op(port, key, value) for port in model.ports if port in wanted_ports
            for key, value in options.defaults("port").items()
            if (port, key) not in port_keys and model.port_flags.get(port, {}).get(key, value) != value]
    listed = [op.arg[1] for op in file_ops if op.word == "address" and op.arg[0] != "delete"]
    if listed:
        out += [Op("address", ("delete", a, True)) for a in sorted(model.addrs, key=str)
                if a not in listed and not a.ip.is_link_local]
    return [op for op in out if _step(model, op)]


def flag_op(key, value):
    words = options.file_words(key, value)
    return Op("flag", (key, value), words[0])


def port_flag_op(port, key, value):
    words = options.file_words(key, value, port)
    return Op("portflag", (port, key, value), words[0])


def words_of(op):
    """The agrconfig words that say `op` (for dry runs and logs)."""
    if op.word in ("create", "destroy", "up", "down"):
        return [op.word]
    if op.word in ("agrport", "-agrport", "mtu"):
        return [op.word, str(op.arg)]
    if op.word == "flag":
        return options.file_words(*op.arg)
    if op.word == "portflag":
        port, key, value = op.arg
        return options.file_words(key, value, port)
    if op.word == "address":
        action, iface, _explicit = op.arg
        words = ["inet" if iface.version == 4 else "inet6", str(iface)]
        return words + ({"set": [], "alias": ["alias"], "delete": ["delete"]}[action])
    return [op.word]


# -- files ------------------------------------------------------------------------------

@dataclass
class Line:
    number: int
    ops: list = None
    shell: str = None
    shell_ok: bool = False  # the file, as read, was root's and writable by nobody else


def read_file(path):
    """Parse a configuration file; raises UsageError naming the line."""
    lines = []
    with open(path) as f:
        # Checked on the file we read, not on the path: it cannot be swapped in between.
        st = os.fstat(f.fileno())
        shell_ok = st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        for number, raw in enumerate(f, 1):
            text = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("!") else raw.strip()
            if not text:
                continue
            if text.startswith("!"):
                lines.append(Line(number, shell=text[1:].strip(), shell_ok=shell_ok))
                continue
            try:
                lines.append(Line(number, ops=parse_words(shlex.split(text))))
            except (UsageError, ValueError) as exc:
                raise UsageError(f"{path}:{number}: {exc}") from None
    return lines


def _safe_for_shell(path, line):
    if not line.shell_ok:
        raise AgrError(errno.EPERM, "ifconfig.if", f"{path}: '!' lines run only from a root-owned "
                       "file that nobody else may write")


def apply_file(path, name, apply_ops, dry_run=False, out=print):
    """Apply one configuration file to interface `name` with `apply_ops(name, ops)` (the
    executor: client.commands.apply); returns the planned changes."""
    lines = read_file(path)
    model = current(name)
    changes = []
    # Line by line, so that `!` commands run where they stand; then the undo words.
    for line in lines:
        if line.shell is None:
            _run(name, plan(name, line.ops, model), dry_run, out, apply_ops, changes)
            continue
        changes.append(("!", line.shell))
        if dry_run:
            out(f"!{line.shell}")
            continue
        _safe_for_shell(path, line)
        proc = subprocess.run(["/bin/sh", "-c", line.shell])
        if proc.returncode != 0:
            raise AgrError(errno.EIO, "ifconfig.if", f"{path}:{line.number}: command failed "
                           f"({proc.returncode})")
    file_ops = [op for line in lines if line.ops for op in line.ops]
    _run(name, undo(file_ops, model), dry_run, out, apply_ops, changes)
    return changes


def _run(name, ops, dry_run, out, apply_ops, changes):
    for op in ops:
        changes.append((name, op))
        if dry_run:
            out(" ".join(["agrconfig", name, *words_of(op)]))
    if ops and not dry_run:
        apply_ops(name, ops)


def config_files(confdir):
    """(interface, path) for every ifconfig.IF file: other interfaces first (their
    addresses go before any agr takes them as ports), then agr0, agr1, ..."""
    try:
        entries = sorted(os.listdir(confdir))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        if not entry.startswith(CONF_PREFIX):
            continue
        name = entry[len(CONF_PREFIX):]
        if not name or len(name) > 15 or "/" in name or name.endswith(("~", ".bak", ".orig", ".dpkg-old")):
            continue
        found.append((name, os.path.join(confdir, entry)))
    key = lambda item: (1, int(item[0][3:])) if paths.is_agr_name(item[0]) else (0, item[0])
    return sorted(found, key=key)


def boot(confdir, apply_ops, dry_run=False, out=print, err=None, changes=None):
    """Apply every configuration file; go on past a failing one and report them all. The
    planned changes are added to `changes` when given."""
    failures = []
    for name, path in config_files(confdir):
        try:
            done = apply_file(path, name, apply_ops, dry_run=dry_run, out=out)
            if changes is not None:
                changes.extend(done)
        except (AgrError, UsageError, OSError) as exc:
            failures.append(f"{path}: {exc}")
            if err:
                err(f"agrconfig: {path}: {exc}")
    return failures


def halt(confdir):
    """Destroy the agr interfaces that configuration files describe (boot unit stop)."""
    for name, _path in reversed(config_files(confdir)):
        if paths.is_agr_name(name) and workers.exists(name):
            workers.destroy(name)

