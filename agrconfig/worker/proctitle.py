"""The supervisor's and worker's names in ps, pgrep -f and psutil: "agrconfig: worker agr0".

The kernel reads /proc/PID/cmdline from the memory that held our argv, which is ours to
write, through /proc/self/mem. setproctitle does the same from C but imports logging (about
0.7 MiB in each of two processes per aggregate); this is all we need of it.
"""
import ctypes

PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4


def set_title(title):
    """Overwrite our argv area with `title`, cut to fit, padded with NULs. Returns False where
    the kernel refuses (the title is cosmetic, except that the client recognises supervisors by it)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        start, end = int(fields[45]), int(fields[46])   # arg_start and arg_end: fields 48 and 49
        data = title.encode()[:max(end - start - 1, 0)]
        # After the uid change (privs.py) the process is not dumpable, so its /proc/self/mem
        # is root's: dumpable for the write only.
        libc = ctypes.CDLL(None, use_errno=True)
        dumpable = libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)
        if dumpable == 0:
            libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        try:
            with open("/proc/self/mem", "r+b", buffering=0) as mem:
                mem.seek(start)
                mem.write(data + b"\0" * (end - start - len(data)))
        finally:
            if dumpable == 0:
                libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False
