"""Port changes as transactions: a port joins agrN whole or not at all, and leaves it whole.

Adding saves the state file before it changes anything, so that a worker that dies midway
still gives the port back; a failure undoes what was done (agrN's MAC, the port's settings,
the data path's hold on it). Removing takes the port out of every part of the worker in the
order that lets nothing send on it once it is given back.
"""
import errno

from ..errors import AgrError
from ..net import rtnl
from .port import Member, snapshot
from ..logger import log



class PortTransactions:
    """The port changes of one worker. `agr` is the worker: its members, mac, tap_index,
    aggregation, path, linkcheck and history, and its save(), recompute() and system_mac()."""

    def __init__(self, agr):
        self.agr = agr

    def add(self, now, name):
        agr = self.agr
        link = agr.members.check_new(name)
        port = Member(snapshot(link))
        first = not len(agr.members)
        old_mac = agr.mac
        # Saved before any change: a crash from here on still restores the port.
        agr.members.add(port)
        try:
            agr.save()
        except BaseException:
            agr.members.remove(port)   # nothing else was touched yet
            raise
        try:
            if first and link.mac != agr.mac and agr.flags["lladdr"] is None:   # lladdr: a fixed one
                rtnl.set_mac(agr.tap_index, link.mac)
                agr.mac = link.mac
                agr.aggregation.set_system_mac(now, agr.system_mac())
            agr.members.attach(port, agr.port_mac(port), slow_only=agr.path.slow_only)
            agr.path.attach_port(port.index)
        except Exception:
            agr.members.remove(port)
            agr.path.detach_port(port.index)
            port.restore()
            if agr.mac != old_mac:
                try:
                    rtnl.set_mac(agr.tap_index, old_mac)
                    agr.mac = old_mac
                except AgrError:
                    pass
            agr.save()
            raise
        agr.linkcheck.add_port(now, port)   # down until a target answers on it
        agr.aggregation.add_port(now, port)
        agr.recompute()
        agr.vlans.sync()   # its filter passes agrN's VLANs
        log.info("%s: port %s attached", agr.name, name)

    def set(self, now, name, flags):
        """A port's own settings (agrportpri): only of a port attached to us."""
        agr = self.agr
        port = agr.members.by_name(name)
        if port is None:
            raise AgrError(errno.ENOENT, "SIOCSETAGR", f"{name} is not a port of {agr.name}")
        port.options.update(flags)
        agr.aggregation.configure_port(now, port)
        log.info("%s: port %s: %s", agr.name, name, ", ".join(f"{k} {v}" for k, v in sorted(flags.items())))

    def remove(self, now, name):
        """`-agrport`: the port leaves and gets its own settings back."""
        self.drop(now, self.agr.members.check_leaving(name), restore=True)

    def drop(self, now, port, restore):
        """The port leaves; `restore` False when it is gone (nothing to give back)."""
        agr = self.agr
        agr.linkcheck.remove_port(port.index)
        agr.members.remove(port)
        agr.aggregation.remove_port(now, port.index)
        agr.history.forget(port.index)
        agr.announcer.forget(port.index)   # nothing more from it (agrannounce's rounds)
        agr.recompute()
        agr.path.detach_port(port.index)
        agr.members.release(port, restore)
        agr.save()
        log.info("%s: port %s detached", agr.name, port.name)
