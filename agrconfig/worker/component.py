"""The worker's event loop and the one interface of the parts it drives.

A component is anything with these four methods (ipc/server.py's Server has them without
importing this module):

    fds()                  (file, key, events) to watch now: a socket or fd, what to hand back
                           to on_readable, and READ/WRITE (selectors' values; 0: not now)
    deadline()             when on_timer has something to do (monotonic seconds), or None
    on_timer(now)          called once every turn of the loop, with the turn's `now`
    on_readable(now, key)  one of its fds is ready

An absent part is a null object (a Component that lists nothing and never has a deadline),
so the loop, and whoever holds a part, never asks whether it is there.

The loop reads the clock once a turn, after select() returns, and hands that `now` to every
component it calls in the turn: no component reads the clock itself. (How long select() may
wait is the loop's own business, measured from a read just before it, so that a long turn,
such as a port being added, does not make the next deadline late.)
"""
import select
import time
from ..logger import log


READ, WRITE = 1, 2      # selectors.EVENT_READ and EVENT_WRITE


class _Key:
    __slots__ = ("fileobj", "fd", "events", "data")

    def __init__(self, fileobj, fd, events, data):
        self.fileobj, self.fd, self.events, self.data = fileobj, fd, events, data


def _fd(fileobj):
    fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
    if fd < 0:
        raise ValueError(f"invalid file descriptor: {fd}")
    return fd


class Selector:
    """What the loop uses of selectors.EpollSelector (register, modify, unregister, select,
    close; keys with .data), on select.epoll: selectors, and signal.py beside it, would import
    enum, functools, collections.abc and math into every worker (~0.5 MiB private each,
    bench/RESULTS.md). A closed file is found by identity, as selectors finds it."""

    def __init__(self):
        self.epoll = select.epoll()
        self.keys = {}    # fd -> _Key

    def _key(self, fileobj):
        try:
            key = self.keys.get(_fd(fileobj))
        except ValueError:
            key = None
        if key is None or key.fileobj is not fileobj:
            key = next((k for k in self.keys.values() if k.fileobj is fileobj), None)
        if key is None:
            raise KeyError(f"{fileobj!r} is not registered")
        return key

    @staticmethod
    def _mask(events):
        return (select.EPOLLIN if events & READ else 0) | (select.EPOLLOUT if events & WRITE else 0)

    def register(self, fileobj, events, data=None):
        fd = _fd(fileobj)
        if fd in self.keys:
            raise KeyError(f"{fileobj!r} (fd {fd}) is already registered")
        self.epoll.register(fd, self._mask(events))
        self.keys[fd] = _Key(fileobj, fd, events, data)

    def modify(self, fileobj, events, data=None):
        key = self._key(fileobj)
        if events != key.events:
            self.epoll.modify(key.fd, self._mask(events))
        key.events, key.data = events, data

    def unregister(self, fileobj):
        key = self._key(fileobj)
        del self.keys[key.fd]
        try:
            self.epoll.unregister(key.fd)
        except OSError:   # closed already: the kernel dropped it with the file
            pass

    def select(self, timeout=None):
        """[(key, READ|WRITE)] of the ready files, waiting at most `timeout` seconds (None:
        without end), rounded up to the millisecond as selectors does (no early wake-up)."""
        if timeout is None:
            timeout = -1
        elif timeout <= 0:
            timeout = 0
        else:
            timeout = -(-timeout * 1000 // 1) / 1000
        ready = []
        for fd, mask in self.epoll.poll(timeout, max(len(self.keys), 1)):
            key = self.keys.get(fd)
            if key is not None:
                events = (WRITE if mask & ~select.EPOLLIN else 0) | (READ if mask & ~select.EPOLLOUT else 0)
                ready.append((key, events & key.events))
        return ready

    def close(self):
        self.epoll.close()
        self.keys.clear()


class Component:
    """The loop's view of a part of the worker; every method does nothing by default."""

    def fds(self):
        return ()

    def deadline(self):
        return None

    def on_timer(self, now):
        pass

    def on_readable(self, now, key):
        pass

    def close(self):
        pass


class Loop:
    """Run components: wait for their fds or their earliest deadline, then hand the turn's
    `now` to the ready ones (on_readable) and to all of them (on_timer).

    An exception from on_readable is logged and the turn goes on: one bad event must not take
    the interface down. One from on_timer ends the loop (the worker exits and its supervisor
    restarts it): a timer that fails would fail again at once, every turn."""

    def __init__(self, components, clock=time.monotonic, selector=None, name="agr"):
        # A list, or a function giving the list each turn (a part may be replaced meanwhile).
        self.components = components if callable(components) else lambda: components
        self.clock = clock
        self.sel = selector if selector is not None else Selector()
        self.name = name
        self.watched = {}     # file -> (events, (component, key)) as registered
        self.now = clock()

    def deadline(self, components):
        """The earliest deadline of the components, or None."""
        return min((t for t in (c.deadline() for c in components) if t is not None), default=None)

    def run(self, stopping):
        """Turn until `stopping()` says so (it is asked after every event too)."""
        while not stopping():
            self.turn(stopping)

    def turn(self, stopping=lambda: False):
        """One turn: wait (at most until the earliest deadline), then events, then timers."""
        components = self.components()
        self._watch(components)
        deadline = self.deadline(components)
        timeout = None if deadline is None else max(0.0, deadline - self.clock())
        ready = self.sel.select(timeout)
        now = self.now = self.clock()
        for key, _events in ready:
            component, what = key.data
            try:
                component.on_readable(now, what)
            except Exception:  # one bad event must not take the interface down
                log.exception("%s: error handling an event", self.name)
            if stopping():
                break
        for component in self.components():
            component.on_timer(now)

    def _watch(self, components):
        """Register what the components list now, and only that."""
        wanted = {}
        for component in components:
            for fileobj, what, events in component.fds():
                if events:
                    wanted[fileobj] = (events, (component, what))
        for fileobj in [f for f in self.watched if f not in wanted]:
            del self.watched[fileobj]
            try:
                self.sel.unregister(fileobj)   # found by identity when it is closed already
            except (KeyError, ValueError):
                pass
        for fileobj, entry in wanted.items():
            have = self.watched.get(fileobj)
            if have == entry:
                continue
            try:
                if have is None:
                    self.sel.register(fileobj, *entry)
                else:
                    self.sel.modify(fileobj, *entry)
            except (KeyError, ValueError, OSError) as exc:   # closed under our feet: not watched
                log.debug("%s: cannot watch %r: %s", self.name, fileobj, exc)
                continue
            self.watched[fileobj] = entry

    def close(self):
        self.sel.close()
