"""Operations: one frozen class per thing a word does (create, agrport, mtu, inet, each option
of the schema, ...). The grammar (grammar.py) makes them from words; each knows

- plan(iface): what it does to the interface model (client/interface.py), updating it, and
  whether it would change anything (for -n and provisioning);
- apply_agr(name) / apply_plain(name): carrying it out on an agr interface of ours (through its
  worker) or on any other interface (rtnetlink); client/commands.py chooses, by what the
  operation says of itself (`creates`, `plain`);
- undo(before, now): the operations that put back what it changed, when a later word of the
  same command fails (a command is all or nothing);
- words(): the words that say it again (for -n, files and logs).

Adding an operation is one class here and its words in the grammar. The options of the schema
(options.py) are two classes, SetOption and SetPortOption, parameterised by the option's key:
adding an option changes nothing here.
"""
import errno

from .. import options
from ..client import ifconfig, workers
from ..client.interface import attached_ports
from ..errors import AgrError, UsageError
from ..record import Record


class Operation(Record):
    __slots__ = ()
    WORD = ""          # the word that says it
    IOCTL = "SIOCSETAGR"   # what NetBSD's ifconfig names when it fails (a user's EPERM)
    creates = False    # it makes the interface: it goes to a worker even before one exists
    plain = False      # it also works on any interface, without a worker (up, down, mtu, addresses)

    @property
    def word(self):
        """The word that named it on the command line (for error messages)."""
        return self.WORD

    @property
    def ioctl(self):
        return self.IOCTL

    def words(self):
        return [self.WORD]

    def plan(self, iface):
        """Apply it to the model `iface`; True when it would change something."""
        raise NotImplementedError

    def apply_agr(self, name):
        """Carry it out on `name`, an agr interface of ours (or about to be): through its worker."""
        raise NotImplementedError

    def apply_plain(self, name):
        """Carry it out on any other interface (a port, or one that is not ours)."""
        raise AgrError(errno.ENXIO, "SIOCSETAGR", f"{name}: no such agr interface")

    def undo(self, before, now):
        """The operations that put back what this one changed, `before` being the interface
        before the command and `now` as a later word's failure left it. An interface the
        command created goes away whole (Create's undo): nothing else to put back."""
        if not (before.exists and now.exists):
            return []
        return self.restore(before, now)

    def restore(self, before, now):
        """undo() for an interface that was there before the command and is still there."""
        return []


def _not_a_port(name, ioctl):
    """Plain ifconfig words that would break an attached port are refused: configure its agr."""
    member_of = workers.owner_of(name)
    if member_of:
        raise AgrError(errno.EBUSY, ioctl, f"{name} is a port of {member_of}; configure {member_of} instead")


# -- the interface itself ---------------------------------------------------------------------

class Create(Operation):
    __slots__ = ()
    WORD = "create"
    IOCTL = "SIOCIFCREATE"
    creates = True

    def plan(self, iface):
        if iface.exists:
            return False
        iface.exists, iface.agr, iface.flags = True, True, options.defaults()
        iface.mtu, iface.up = 1500, False
        return True

    def apply_agr(self, name):
        workers.create(name)

    def undo(self, before, now):
        return [Destroy()] if not before.exists and now.exists and now.agr else []


class Destroy(Operation):
    __slots__ = ()
    WORD = "destroy"
    IOCTL = "SIOCIFDESTROY"

    def plan(self, iface):
        if not iface.exists:
            return False
        iface.exists, iface.ports = False, []
        return True

    def apply_agr(self, name):
        workers.destroy(name)
    # No undo: destroy is a command's only word.


class _UpDown(Operation):
    __slots__ = ()
    UP = True
    IOCTL = "SIOCSIFFLAGS"
    plain = True

    def plan(self, iface):
        if iface.up == self.UP:
            return False
        iface.up = self.UP
        return True

    def apply_agr(self, name):
        workers.ensure_worker(name)
        ifconfig.set_up(name, self.UP)

    def apply_plain(self, name):
        ifconfig.set_up(name, self.UP)

    def restore(self, before, now):
        return [up_or_down(before.up)] if now.up != before.up else []


class Up(_UpDown):
    __slots__ = ()
    WORD = "up"
    UP = True


class Down(_UpDown):
    __slots__ = ()
    WORD = "down"
    UP = False


def up_or_down(up):
    return Up() if up else Down()


class SetMtu(Operation):
    __slots__ = ("mtu",)
    WORD = "mtu"
    IOCTL = "SIOCSIFMTU"
    plain = True

    def words(self):
        return [self.WORD, str(self.mtu)]

    def plan(self, iface):
        if iface.mtu == self.mtu:
            return False
        iface.mtu = self.mtu
        return True

    def apply_agr(self, name):
        workers.request(name, "setmtu", mtu=self.mtu)

    def apply_plain(self, name):
        _not_a_port(name, "SIOCSIFMTU")
        ifconfig.set_mtu(name, self.mtu)

    def restore(self, before, now):
        return [SetMtu(before.mtu)] if now.mtu != before.mtu else []


# -- ports --------------------------------------------------------------------------------------

class AddPort(Operation):
    __slots__ = ("port",)
    WORD = "agrport"

    def words(self):
        return [self.WORD, self.port]

    def plan(self, iface):
        if self.port in iface.ports:
            return False
        iface.ports.append(self.port)
        iface.port_flags[self.port] = options.defaults("port")
        return True

    def apply_agr(self, name):
        workers.request(name, "addport", port=self.port)

    def restore(self, before, now):
        return [RemovePort(self.port)] if self.port in now.ports and self.port not in before.ports else []


class RemovePort(Operation):
    __slots__ = ("port",)
    WORD = "-agrport"

    def words(self):
        return [self.WORD, self.port]

    def plan(self, iface):
        if self.port not in iface.ports:
            return False
        iface.ports.remove(self.port)
        iface.port_flags.pop(self.port, None)
        return True

    def apply_agr(self, name):
        workers.request(name, "delport", port=self.port)

    def restore(self, before, now):
        if self.port not in before.ports or self.port in now.ports:
            return []
        # Attached again, it starts from the defaults: its own settings follow.
        settings = before.port_flags.get(self.port, {})
        return [AddPort(self.port)] + [SetPortOption.of(self.port, key, value) for key, value in settings.items()
                                       if value != options.defaults("port").get(key)]


# -- the options of the schema ----------------------------------------------------------------

class SetOption(Operation):
    """An agr interface's option (options.py) set to a value, by `word` (as typed: link1 and
    agrproto loadbalance both set proto)."""
    __slots__ = ("key", "value", "word")

    @classmethod
    def of(cls, key, value):
        """The operation as a file says it."""
        return cls(key, value, options.file_words(key, value)[0])

    def words(self):
        return options.file_words(self.key, self.value)

    @property
    def ioctl(self):
        from ..ipc.protocol import flags_ioctl
        return flags_ioctl({self.key: self.value})

    def plan(self, iface):
        if iface.flags.get(self.key) == self.value:
            return False
        iface.flags[self.key] = self.value
        return True

    def apply_agr(self, name):
        workers.request(name, "setflags", flags={self.key: self.value})

    def restore(self, before, now):
        if self.key not in before.flags or now.flags.get(self.key) == before.flags[self.key]:
            return []
        return [SetOption.of(self.key, before.flags[self.key])]


class SetPortOption(Operation):
    """An attached port's option (options.py, scope "port": agrportpri) set to a value."""
    __slots__ = ("port", "key", "value", "word")

    @classmethod
    def of(cls, port, key, value):
        return cls(port, key, value, options.file_words(key, value, port)[0])

    def words(self):
        return options.file_words(self.key, self.value, self.port)

    def plan(self, iface):
        if iface.agr and iface.exists and self.port not in iface.ports:
            # As the worker would answer: the word names an attached port (in a file, it
            # follows that port's agrport line).
            raise AgrError(errno.ENOENT, "SIOCSETAGR", f"{self.port} is not a port of this interface")
        settings = iface.port_flags.setdefault(self.port, options.defaults("port"))
        if settings.get(self.key) == self.value:
            return False
        settings[self.key] = self.value
        return True

    def apply_agr(self, name):
        workers.request(name, "setport", port=self.port, flags={self.key: self.value})

    def restore(self, before, now):
        if self.port not in before.ports or self.port not in now.ports:
            return []   # attached or detached by the command: AddPort's and RemovePort's undo
        was, is_ = before.port_flags.get(self.port, {}), now.port_flags.get(self.port, {})
        if self.key not in was or is_.get(self.key) == was[self.key]:
            return []
        return [SetPortOption.of(self.port, self.key, was[self.key])]


# -- addresses --------------------------------------------------------------------------------

class _Address(Operation):
    __slots__ = ()
    plain = True

    @property
    def word(self):
        return "inet" if self.iface.version == 4 else "inet6"

    @property
    def ioctl(self):
        return self.IOCTL + ("" if self.iface.version == 4 else "_IN6")

    def apply_agr(self, name):
        if not attached_ports(name):
            raise AgrError(errno.EINVAL, "SIOCAIFADDR",
                           "no way to configure agr interfaces without attaching physical interfaces")
        self._apply_address(name)

    def apply_plain(self, name):
        _not_a_port(name, "SIOCAIFADDR")
        self._apply_address(name)

    def restore(self, before, now):
        # Only this word's address (or the IPv4 address an inet replaced): the kernel's own, such
        # as a link-local address that came with `up`, are not ours to take away.
        ip, replaced_v4 = self.iface.ip, self.replaces_v4()
        return ([DeleteAddress(a, True) for a in sorted(now.addrs - before.addrs, key=str) if a.ip == ip] +
                [AddAddress(a, True) for a in sorted(before.addrs - now.addrs, key=str)
                 if a.ip == ip or (replaced_v4 and a.version == 4)])

    def replaces_v4(self):
        return False


class AddAddress(_Address):
    """inet ADDR (replaces the first IPv4 address, as BSD) or inet ADDR alias (adds one); inet6
    always adds. The interface comes up with it."""
    __slots__ = ("iface", "alias")
    IOCTL = "SIOCAIFADDR"

    def words(self):
        return [self.word, str(self.iface)] + (["alias"] if self.alias else [])

    def replaces_v4(self):
        return not self.alias and self.iface.version == 4

    def plan(self, iface):
        if self.iface in iface.addrs:
            return False
        if self.replaces_v4():
            v4 = sorted((a for a in iface.addrs if a.version == 4), key=str)
            if v4:
                iface.addrs.discard(v4[0])
        iface.addrs.add(self.iface)
        iface.up = True
        return True

    def _apply_address(self, name):
        ifconfig.add_address(name, self.iface, alias=self.alias or self.iface.version == 6)

    def restore(self, before, now):
        return super().restore(before, now) + ([up_or_down(before.up)] if now.up != before.up else [])


class DeleteAddress(_Address):
    """inet ADDR delete: with `explicit`, only ADDR with that prefix length."""
    __slots__ = ("iface", "explicit")
    IOCTL = "SIOCDIFADDR"

    def words(self):
        return [self.word, str(self.iface), "delete"]

    def plan(self, iface):
        same = {a for a in iface.addrs if a.ip == self.iface.ip and (not self.explicit or a == self.iface)}
        iface.addrs -= same
        return bool(same)

    def _apply_address(self, name):
        ifconfig.delete_address(name, self.iface, self.explicit)


# -- queries: they change nothing, and are not planned ------------------------------------------

class Query(Record):
    """A word that asks (monitor, whichport) and takes the rest of the command line."""
    __slots__ = ("args",)
    WORD = ""

    def words(self):
        return [self.WORD, *self.args]


class Monitor(Query):
    __slots__ = ()
    WORD = "monitor"

    def run(self, name, as_json=False, dry_run=False):
        from . import monitor
        return monitor.run(name, list(self.args), as_json=as_json)


class WhichPort(Query):
    __slots__ = ()
    WORD = "whichport"

    def run(self, name, as_json=False, dry_run=False):
        if dry_run:
            raise UsageError("whichport is a query: it takes no -n")
        from . import whichport
        return whichport.run(name, list(self.args), as_json=as_json)


class Diagnose(Query):
    __slots__ = ()
    WORD = "diagnose"

    def run(self, name, as_json=False, dry_run=False):
        if dry_run:
            raise UsageError("diagnose is a query: it takes no -n")
        from . import diagnose
        return diagnose.run(name, list(self.args), as_json=as_json)


QUERIES = {q.WORD: q for q in (Monitor, WhichPort, Diagnose)}
