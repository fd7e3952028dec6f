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

from .. import options, paths
from ..client import workers
from ..client.interface import Interface
from ..errors import AgrError, UsageError
from ..record import Record
from .grammar import check_together, parse_words
from .ops import AddAddress, AddPort, DeleteAddress, RemovePort, SetOption, SetPortOption

CONF_PREFIX = "ifconfig."


def current(name):
    """The model of `name` as it is (client/interface.py)."""
    return Interface.read(name)


def plan(name, ops, model=None):
    """The operations of `ops` that would change something (the model follows along)."""
    model = model if model is not None else current(name)
    return [op for op in ops if op.plan(model)]


def undo(file_ops, model):
    """For an agr file: the operations that undo what the file does not (or no longer) say."""
    if not (model.agr and model.exists):
        return []
    out = []
    wanted_ports = [op.port for op in file_ops if isinstance(op, AddPort)]
    out += [RemovePort(port) for port in model.ports if port not in wanted_ports]
    set_keys = {op.key for op in file_ops if isinstance(op, SetOption)}
    out += [SetOption.of(key, value) for key, value in options.defaults().items()
            if key not in set_keys and model.flags.get(key, value) != value]
    port_keys = {(op.port, op.key) for op in file_ops if isinstance(op, SetPortOption)}
    out += [SetPortOption.of(port, key, value) for port in model.ports if port in wanted_ports
            for key, value in options.defaults("port").items()
            if (port, key) not in port_keys and model.port_flags.get(port, {}).get(key, value) != value]
    listed = [op.iface for op in file_ops if isinstance(op, AddAddress)]
    if listed:
        out += [DeleteAddress(a, True) for a in sorted(model.addrs, key=str)
                if a not in listed and not a.ip.is_link_local]
    return [op for op in out if op.plan(model)]


def exclusions_first(file_ops, model):
    """The undo words that must go before the file's own: a setting the file leaves out (so it
    goes back to its default at the end) that excludes one the file sets (lladdr and
    agrmacpolicy active)."""
    said = {op.key: op.value for op in file_ops if isinstance(op, SetOption)}
    out = []
    if model.flags.get("lladdr") and "lladdr" not in said and said.get("mac_policy") == "active":
        out.append(SetOption.of("lladdr", None))
    if model.flags.get("mac_policy") == "active" and said.get("lladdr") and "mac_policy" not in said:
        out.append(SetOption.of("mac_policy", options.BY_KEY["mac_policy"].default))
    return out


# -- files ------------------------------------------------------------------------------

class Line(Record):
    """One line of a file: its operations, or a `!` shell command."""
    __slots__ = ("number", "ops", "shell", "shell_ok")
    DEFAULTS = {"ops": None, "shell": None, "shell_ok": False}  # shell_ok: root's, nobody else may write


def read_file(path):
    """Parse a configuration file; raises UsageError naming the line."""
    lines = []
    with open(path, "rb") as f:
        # Checked on the file we read, not on the path: it cannot be swapped in between.
        st = os.fstat(f.fileno())
        shell_ok = st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        data = f.read()
    # Lines as text mode splits them (\n, \r\n, \r), each decoded alone: a byte that is not
    # UTF-8 is a usage error naming its line.
    for number, line in enumerate(data.splitlines(), 1):
        try:
            raw = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}:{number}: not UTF-8 text ({exc.reason})") from None
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
    try:
        check_together([op for line in lines if line.ops for op in line.ops])   # the file as a whole
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
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
    file_ops = [op for line in lines if line.ops for op in line.ops]
    _run(name, plan(name, exclusions_first(file_ops, model), model), dry_run, out, apply_ops, changes)
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
    _run(name, undo(file_ops, model), dry_run, out, apply_ops, changes)
    return changes


def _run(name, ops, dry_run, out, apply_ops, changes):
    for op in ops:
        changes.append((name, op))
        if dry_run:
            out(" ".join(["agrconfig", name, *op.words()]))
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

