"""Runtime paths, keyed by network namespace so every netns has its own agr0."""
import _socket   # not socket, nor re and contextlib: the supervisor imports this module, and
import errno     # those three cost it about 2 MiB (socket.py and re bring enum, selectors...)
import fcntl
import os
import stat

RUN_ROOT = os.environ.get("AGRCONFIG_RUNDIR", "/run/agrconfig")
WORKER_USER = "_agrconfig"   # the supervisors' and workers' user (worker/privs.py), who owns worker/ here
IFNAMSIZ = 15


def _decimal(text):
    return text.isascii() and text.isdigit()


def is_agr_name(name):
    """agr0, agr1, ... (agr(0|[1-9][0-9]{0,11})), at most IFNAMSIZ characters."""
    unit = name[3:]
    return (len(name) <= IFNAMSIZ and name.startswith("agr") and _decimal(unit)
            and (unit == "0" or (unit[0] != "0" and len(unit) <= 12)))


def netns_id():
    """The inode of our network namespace: stable while the namespace exists."""
    return os.stat("/proc/self/ns/net").st_ino


SO_NETNS_COOKIE = 71  # Linux 5.14+; not in Python's socket module
STAMP = "netns-cookie"
_checked = set()


def netns_cookie():
    """The kernel's 64-bit cookie of our network namespace: unlike the inode, never reused
    by a later namespace. None on kernels without SO_NETNS_COOKIE."""
    try:
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    except OSError:
        return None
    try:
        return str(int.from_bytes(s.getsockopt(_socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), "little"))
    except OSError:
        return None
    finally:
        s.close()


def run_dir(create=False):
    """This namespace's runtime directory; with `create`, made (or repaired) root-only:
    the directories 0700 and every file in them 0600, owned by us, no symbolic links."""
    path = os.path.join(RUN_ROOT, f"netns-{netns_id()}")
    if create:
        for d in (RUN_ROOT, path):
            _private_dir(d)
        with os.scandir(path) as entries:
            for entry in entries:
                # Another worker's temporary file may be renamed away under us.
                try:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o177:
                        os.chmod(entry.path, 0o600)
                    elif entry.name == WORKER_DIR and stat.S_ISDIR(st.st_mode):
                        _repair_worker_dir(entry.path, st)
                except FileNotFoundError:
                    pass
    if path not in _checked:
        _forget_dead_namespace(path)
    return path


def _forget_dead_namespace(path):
    """A namespace's inode is reused once it is gone, so the directory may hold the state,
    pid and log files of a dead namespace whose interfaces died with it. The directory is
    stamped with the namespace's cookie, which is never reused: on a mismatch, it is
    emptied before anything reads it. Checked once per process, under a lock on the
    directory so that two first commands in a new namespace do not both empty it."""
    cookie = netns_cookie()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # made, and stamped, by the first command that writes in it
    except OSError:
        _checked.add(path)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        stamp = os.path.join(path, STAMP)
        try:
            with open(stamp) as f:
                old = f.read().strip()
        except FileNotFoundError:
            old = None  # a directory from before stamps: its files are trusted as before
        if cookie is not None and old is not None and old != cookie:
            _empty(path)
            _empty(os.path.join(path, WORKER_DIR))
        if cookie is not None and old != cookie:
            tmp = f"{stamp}.tmp"
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600), "w") as f:
                f.write(cookie + "\n")
            os.replace(tmp, stamp)
    except FileNotFoundError:
        return  # removed while we waited for it (its namespace had no agr interface left)
    finally:
        os.close(fd)
    _checked.add(path)


def _empty(path):
    """Unlink the files (and links) in `path`, if it is there."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        pass
    except (FileNotFoundError, NotADirectoryError):
        pass


def _private_dir(path):
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        from .errors import AgrError
        raise AgrError(errno.EPERM, "", f"{path}: not a directory of ours; remove it")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


# The workers' own directory (issue 24): netns-X/worker, owned by the workers' user, group
# root, mode 2770 (setgid: the files made in it are group root's, 0640). The supervisor makes
# it as root, opens it and keeps the fd across its uid change; the worker reaches it through
# that fd only (/proc/self/fd/N: a process may always open its own fds' names), since
# netns-X above it stays root's 0700, which the root workers of earlier releases enforce on
# every save. A root front end reads and removes its files as group root, so without
# CAP_DAC_OVERRIDE too. Files of earlier releases' root workers stay in netns-X itself
# ("legacy"), where the front end still reads them and a new supervisor adopts them.
WORKER_DIR = "worker"
WORKER_DIR_MODE = 0o2770
WORKER_FILE_MODE = 0o640
_worker_fd = None


def _repair_worker_dir(path, st):
    """The workers' directory and files loosened by someone: back to 2770 and 0640 (best
    effort: without CAP_FOWNER, root may not chmod the workers' files; their supervisor does
    at its next start)."""
    try:
        if stat.S_IMODE(st.st_mode) != WORKER_DIR_MODE:
            os.chmod(path, WORKER_DIR_MODE)
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for entry in os.listdir(dfd):
                _fix_file(dfd, entry, None)
        finally:
            os.close(dfd)
    except PermissionError:
        pass


def _fix_file(dfd, entry, uid):
    """Mode 0640 (and, as root with `uid`, owner uid:root) for a file in the workers'
    directory, through an fd: the workers may swap a name for a link at any time, and root
    must never chmod or chown what a link points at. Anything but a regular file is removed
    (as root) or left alone."""
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except FileNotFoundError:
        return
    except OSError:   # ELOOP: a link; ENXIO: a socket
        if uid is not None:
            _unlink_at(dfd, entry)
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            if uid is not None:
                _unlink_at(dfd, entry)
            return
        if stat.S_IMODE(st.st_mode) != WORKER_FILE_MODE:
            os.fchmod(fd, WORKER_FILE_MODE)
        if uid is not None and (st.st_uid, st.st_gid) != (uid, 0):
            os.fchown(fd, uid, 0)
    finally:
        os.close(fd)


def _unlink_at(dfd, entry):
    try:
        os.unlink(entry, dir_fd=dfd)
    except (FileNotFoundError, IsADirectoryError):
        pass


def read_regular(path, limit=1 << 20):
    """The bytes of the regular file `path` (at most `limit`), never through a link nor from a
    FIFO: the workers' directory is theirs, and root reads it (OSError otherwise)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(fd, limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def worker_dir():
    """The directory of the workers' files: through the fd a supervisor holds, or by path."""
    if _worker_fd is not None:
        return f"/proc/self/fd/{_worker_fd}"
    return os.path.join(run_dir(), WORKER_DIR)


def open_worker_dir(uid):
    """As root, before the uid change: make (or repair) netns-X/worker for `uid`, hold it open
    for worker_dir(), and return the fd."""
    global _worker_fd
    run_dir(create=True)
    path = os.path.join(run_dir(), WORKER_DIR)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        # Modes first, owners then: root changes the modes of its own files (or, with
        # CAP_FOWNER, of the user's), and chown keeps a directory's setgid bit.
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != WORKER_DIR_MODE:
            os.fchmod(fd, WORKER_DIR_MODE)
        if (st.st_uid, st.st_gid) != (uid, 0):
            os.fchown(fd, uid, 0)
        for entry in os.listdir(fd):   # a user whose uid changed: its files follow it
            _fix_file(fd, entry, uid)
    except BaseException:
        os.close(fd)
        raise
    _worker_fd = fd
    return fd


def adopt_legacy(name, uid):
    """As root: move the state and log files an earlier release's root worker left in netns-X
    into the workers' directory (an upgrade), unless newer ones are there; drop its pid file."""
    legacy, own = run_dir(), worker_dir()
    for suffix in (".state", ".log"):
        old, new = os.path.join(legacy, name + suffix), os.path.join(own, name + suffix)
        try:
            if not os.path.lexists(new) and stat.S_ISREG(os.lstat(old).st_mode):
                os.chmod(old, WORKER_FILE_MODE)   # root's file: before it is the user's
                os.rename(old, new)
                os.chown(new, uid, 0, follow_symlinks=False)
        except FileNotFoundError:
            pass
    for suffix in (".state", ".pid"):
        try:
            os.unlink(os.path.join(legacy, name + suffix))
        except FileNotFoundError:
            pass


def state_file(name):
    return os.path.join(worker_dir(), f"{name}.state")


def pid_file(name):
    return os.path.join(worker_dir(), f"{name}.pid")


def log_file(name):
    """Used where there is no syslog (/dev/log) or AGRCONFIG_LOG=file; removed with the interface."""
    return os.path.join(worker_dir(), f"{name}.log")


def in_worker():
    """Is this a supervisor or worker, holding the workers' directory open?"""
    return _worker_fd is not None


def directories():
    """Where state, pid and log files are: the workers' directory, then, outside a worker,
    netns-X itself (an earlier release's root workers)."""
    return (worker_dir(),) if _worker_fd is not None else (worker_dir(), run_dir())


def places(path):
    """Where to read the file `path` (state_file(...) etc.) names: in the workers' directory,
    then, outside a worker, where an earlier release's root worker wrote it."""
    if _worker_fd is not None:
        return (path,)
    return (path, os.path.join(run_dir(), os.path.basename(path)))


def lock_file():
    """One lock per namespace: mutating commands are serialized, ports cannot race."""
    return os.path.join(run_dir(create=True), "lock")


def revive_lock_file():
    """Taken while a worker is revived or destroyed (see agr.ensure_worker)."""
    return os.path.join(run_dir(create=True), "revive.lock")


def control_address(name):
    # Abstract socket: Linux scopes it to the network namespace, and it leaves no file behind.
    return f"\0agrconfig/{name}"


# The runtime directory lives while its namespace has agr interfaces. It is removed when a
# command that holds the namespace lock finds none left, and when a command finds that the
# namespace itself is gone. The lock files are inside it, so a lock is taken again when the file
# turned out to be unlinked by the time we held it: a lock on an unlinked file excludes no one.
BOOKKEEPING = frozenset({"lock", "revive.lock", STAMP, f"{STAMP}.tmp"})


def take_lock(path_of, blocking=True):
    """An fd holding flock(LOCK_EX) on the file path_of() names (it makes the directory), or
    None when not `blocking` and someone else holds it."""
    while True:
        path = path_of()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue   # the directory was removed between being made and the open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        if os.fstat(fd).st_nlink:
            return fd
        os.close(fd)   # unlinked with its directory while we waited: take the new one


def lock_namespace():
    return take_lock(lock_file)


def unlock_namespace(fd):
    """Release the namespace lock; first, with it held, remove the runtime directory when no agr
    interface is left in it."""
    try:
        _remove_if_unused(fd)
    finally:
        os.close(fd)


def _remove_if_unused(_held):
    path = run_dir()
    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)   # as _forget_dead_namespace: not while it stamps
        if not _unused(dfd):
            return
        # The revive lock, after the namespace lock as always: a status command reviving a
        # worker holds it (it does so only where a state file is, but we look once more).
        revive = _open_existing(path, "revive.lock", dfd)
        try:
            if revive is not None:
                fcntl.flock(revive, fcntl.LOCK_EX)
            _remove_dir(path, dfd)
        finally:
            if revive is not None:
                os.close(revive)
    finally:
        os.close(dfd)


def _unused(dfd):
    """Does the directory hold only bookkeeping files, and an empty workers' directory?"""
    names = set(os.listdir(dfd))
    if WORKER_DIR in names:
        names.discard(WORKER_DIR)
        try:
            if _listdir_at(dfd, WORKER_DIR):
                return False
        except OSError:
            return False
    return BOOKKEEPING.issuperset(names)


def _listdir_at(dfd, name):
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _open_existing(path, name, dfd):
    try:
        return os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except FileNotFoundError:
        return None


def _remove_dir(path, dfd, everything=False):
    """Empty and remove a runtime directory whose locks we hold: only bookkeeping files unless
    `everything` (its namespace is gone). Anything else (a subdirectory, a file that appeared)
    keeps it. True when removed."""
    names = os.listdir(dfd)
    if not everything and not _unused(dfd):
        return False
    for name in names:
        try:
            if name == WORKER_DIR:
                if everything:
                    _empty(os.path.join(path, WORKER_DIR))
                os.rmdir(name, dir_fd=dfd)   # ENOTEMPTY: a worker's file appeared meanwhile
            else:
                os.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            pass
        except (IsADirectoryError, NotADirectoryError):
            return False
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            return False
    try:
        os.rmdir(path)
    except OSError as exc:   # ENOTEMPTY: a command made a file there just now
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            raise
        return False
    _checked.discard(path)
    return True


INIT_NET_NS = 0xEFFFFFF9   # the inodes of the initial namespaces are fixed (include/linux/proc_ns.h)
INIT_PID_NS = 0xEFFFFFFC


def live_namespaces(proc="/proc"):
    """({inode of every network namespace a process is in or a mount (ip netns add) holds},
    complete). `complete` is False when some process might be in a namespace we cannot name:
    we are not in the initial PID namespace (processes are hidden from us), a process's ns link
    or a mount namespace's table cannot be read. A process whose ns link is refused (as the
    init of some VMs) is named through the inode of its /proc/PID/net/dev, which each network
    namespace has its own of, when a readable process shares it. Namespaces held only by an
    open file or a socket, or only by a thread that changed namespace, are not seen."""
    live = {INIT_NET_NS}
    by_netdev, unknown, mounts_seen = {}, [], set()
    try:
        complete = os.stat(f"{proc}/self/ns/pid").st_ino == INIT_PID_NS
    except OSError:
        complete = False
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            netdev = os.stat(f"{proc}/{pid}/net/dev").st_ino
        except OSError:
            netdev = None   # gone, or a zombie (which holds no namespace)
        try:
            ino = os.stat(f"{proc}/{pid}/ns/net").st_ino
            live.add(ino)
            if netdev is not None:
                by_netdev[netdev] = ino
        except FileNotFoundError:
            continue   # gone
        except OSError:
            unknown.append(netdev)
        try:
            mnt = os.stat(f"{proc}/{pid}/ns/mnt").st_ino
        except FileNotFoundError:
            continue
        except OSError:
            mnt = None   # not readable: read its table anyway
        if mnt is not None and mnt in mounts_seen:
            continue
        mounts_seen.add(mnt)
        try:
            with open(f"{proc}/{pid}/mountinfo") as f:
                table = f.read()
        except FileNotFoundError:
            continue
        except OSError:
            complete = False
            continue
        live |= nsfs_networks(table)
    for netdev in unknown:
        if netdev in by_netdev:
            live.add(by_netdev[netdev])
        else:
            complete = False
    return live, complete


def nsfs_networks(mountinfo):
    """The network namespaces that nsfs mounts in a mountinfo table hold (ip netns add)."""
    out = set()
    for line in mountinfo.splitlines():
        fields, _, fs = line.partition(" - ")
        root = fields.split(" ")[3:4]
        if fs.startswith("nsfs ") and root and root[0].startswith("net:[") and root[0].endswith("]"):
            out.add(int(root[0][5:-1]))
    return out


SWEEP_MAX = 256   # directories locked at once by one sweep


def sweep(scan=live_namespaces):
    """Remove the runtime directories of network namespaces that are gone; their names.

    A directory is taken only with its locks (directory, namespace, revive) got without waiting,
    and the namespaces are looked at again once they are held: a command in that namespace
    (which keeps it alive) either holds a lock, and the directory is skipped, or waits behind
    ours and is seen by the second look. A namespace made meanwhile with the dead one's inode
    is seen by the second look too. Where the look is not `complete`, only directories holding
    no agr interface's files are removed, which is harmless even for a live namespace."""
    own = os.path.join(RUN_ROOT, f"netns-{netns_id()}")
    live, _complete = scan()
    try:
        names = os.listdir(RUN_ROOT)
    except FileNotFoundError:
        return []
    dead = [n for n in names if n.startswith("netns-") and _decimal(n[6:]) and int(n[6:]) not in live
            and os.path.join(RUN_ROOT, n) != own][:SWEEP_MAX]
    held = []
    removed = []
    try:
        for name in dead:
            locked = _lock_without_waiting(os.path.join(RUN_ROOT, name))
            if locked is not None:
                held.append((name, locked))
        if not held:
            return []
        live, complete = scan()
        for name, fds in held:
            if int(name[6:]) not in live and _remove_dir(os.path.join(RUN_ROOT, name), fds[0], everything=complete):
                removed.append(name)
    finally:
        for _name, fds in held:
            for fd in reversed(fds):
                os.close(fd)
    return removed


def _lock_without_waiting(path):
    """[directory fd, lock fds...] all flocked, or None when any is busy or the path is not a
    directory of ours."""
    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    fds = [dfd]
    try:
        st = os.fstat(dfd)
        if st.st_uid != os.geteuid():
            raise BlockingIOError
        fcntl.flock(dfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for name in ("lock", "revive.lock"):
            fd = _open_existing(path, name, dfd)
            if fd is not None:
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fds
    except OSError:
        for fd in fds:
            os.close(fd)
        return None
