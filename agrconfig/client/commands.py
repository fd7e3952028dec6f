"""Carry out parsed operations (cli/ops.py): agr words through the interface's worker, plain
ifconfig words through rtnetlink, serialized per network namespace. One command is all or
nothing: when a word fails, what the words before it changed is undone."""
import errno

from .. import paths
from ..errors import AgrError
from . import workers
from .interface import Interface

AGR_ONLY = "valid only with agr(4) interfaces"


def require_root(ioctl, word):
    """Only root may change interfaces: anyone else is refused with EPERM before anything is
    read or locked, as NetBSD's ifconfig is by its first ioctl. The workers refuse the same
    requests on their own (ipc/protocol.refusal): this is for a clear message."""
    if not workers.privileged():
        raise AgrError(errno.EPERM, ioctl, f"{word}: only root may change interfaces")


class Namespace:
    """Serializes mutating commands within this network namespace (root's: `ioctl` and `word`
    say what a user is refused)."""

    def __init__(self, ioctl="SIOCSETAGR", word="change"):
        self.ioctl, self.word = ioctl, word

    def __enter__(self):
        require_root(self.ioctl, self.word)
        self.fd = paths.lock_namespace()
        return self

    def __exit__(self, *exc):
        paths.unlock_namespace(self.fd)   # removes the runtime directory if no agr is left


def apply(name, ops):
    """Carry out the operations on interface `name`, left to right."""
    if ops:
        require_root(ops[0].ioctl, ops[0].word)
    if not paths.is_agr_name(name):
        if any(op.creates for op in ops):
            raise AgrError(errno.EINVAL, "SIOCIFCREATE",
                           f"{name!r}: only agr<N> interfaces can be created (at most 15 characters)")
        agr_only = [op for op in ops if not op.plain]
        if agr_only:
            raise AgrError(errno.EINVAL, "SIOCSETAGR", f"{agr_only[0].word}: {AGR_ONLY}")
    with Namespace():
        # Only a later word's failure has anything to undo: a single word costs no snapshot.
        before = Interface.read(name) if len(ops) > 1 else None
        for done, op in enumerate(ops):
            try:
                _apply(name, op)
            except AgrError as exc:
                if done:
                    failed = roll_back(name, before, ops[:done])
                    if failed:
                        exc.detail += f"; the words before it could not all be undone: {failed}"
                raise


def _apply(name, op):
    if workers.manages(name, op):
        op.apply_agr(name)
    else:
        op.apply_plain(name)


def roll_back(name, before, done_ops):
    """Undo what `done_ops` changed on `name` since `before` (the last first); returns what
    could not be undone."""
    now = Interface.read(name)
    steps = []
    for op in reversed(done_ops):
        steps += [step for step in op.undo(before, now) if step not in steps]
    failures = []
    for step in steps:
        try:
            _apply(name, step)
        except (AgrError, OSError) as exc:
            failures.append(f"{' '.join(step.words())}: {exc.detail if isinstance(exc, AgrError) else exc}")
    return "; ".join(failures)
