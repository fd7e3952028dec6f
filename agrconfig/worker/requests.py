"""The worker's control requests: one handler per request type (ipc/protocol.py's Requests).

Every request but ping is answered with the worker's status (its to_json()); those that may
change something write the state file first. A ping is answered with who answers only, its
name and pid (what every release's front end reads of a ping's result: the pid, to upgrade an
older worker), so that the ping before every change costs no status (~0.5 ms of a command).
"""
import errno
import os

from ..errors import AgrError
from ..ipc import protocol

HANDLERS = {
    protocol.Status: lambda worker, req, now: None,
    protocol.Ping: lambda worker, req, now: None,
    protocol.Save: lambda worker, req, now: None,   # the state file is written below (the front end found it unusable)
    protocol.Shutdown: lambda worker, req, now: setattr(worker, "stopping", True),
    protocol.AddPort: lambda worker, req, now: worker.ports.add(now, str(req.port)),
    protocol.DelPort: lambda worker, req, now: worker.ports.remove(now, str(req.port)),
    protocol.SetPort: lambda worker, req, now: worker.ports.set(now, str(req.port), req.flags),
    protocol.SetMtu: lambda worker, req, now: worker.members.set_mtu(int(req.mtu)),
    protocol.SetFlags: lambda worker, req, now: worker.set_flags(now, req.flags),
}
UNSAVED = (protocol.Status, protocol.Ping, protocol.Shutdown)   # they change nothing to keep


def handle(worker, req, now):
    """Carry out `req` on `worker`; returns the worker's status as JSON."""
    handler = HANDLERS.get(type(req))
    if handler is None:
        raise AgrError(errno.EINVAL, "control", f"unknown request {req.OP!r}")
    handler(worker, req, now)
    if type(req) not in UNSAVED:
        worker.save()
    if type(req) is protocol.Ping:
        return {"name": worker.name, "pid": os.getpid()}
    return worker.status().to_json()
