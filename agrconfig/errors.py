"""Errors as NetBSD ifconfig reports them: the ioctl, the BSD message, the errno name."""
import errno

# NetBSD's strerror texts: our users read ifconfig output, not glibc's.
BSD_MESSAGES = {
    errno.EPERM: "Operation not permitted",
    errno.ENOENT: "No such file or directory",
    errno.ENXIO: "Device not configured",
    errno.EBUSY: "Device busy",
    errno.EEXIST: "File exists",
    errno.ENODEV: "Operation not supported by device",
    errno.EINVAL: "Invalid argument",
    errno.ERANGE: "Result too large",
    errno.EPROTONOSUPPORT: "Protocol not supported",
    errno.EOPNOTSUPP: "Operation not supported",
    errno.EADDRNOTAVAIL: "Can't assign requested address",
    errno.EADDRINUSE: "Address already in use",
    errno.ETIMEDOUT: "Operation timed out",
    errno.EIO: "Input/output error",
    errno.ENOSPC: "No space left on device",
    errno.EAGAIN: "Resource temporarily unavailable",
}

ERRNO_BY_NAME = {name: code for code, name in errno.errorcode.items()}


class AgrError(Exception):
    """An operation failed with an errno; printed as `agrconfig: IOCTL: Message (ENAME: detail)`."""

    def __init__(self, code, ioctl="", detail=""):
        super().__init__(code, ioctl, detail)
        self.errno = code
        self.ioctl = ioctl
        self.detail = detail

    @property
    def name(self):
        return errno.errorcode.get(self.errno, str(self.errno))

    @property
    def message(self):
        return BSD_MESSAGES.get(self.errno) or __import__("os").strerror(self.errno)

    def __str__(self):
        head = f"{self.ioctl}: {self.message}" if self.ioctl else self.message
        tail = f"{self.name}: {self.detail}" if self.detail else self.name
        return f"{head} ({tail})"

    def to_dict(self):
        return {"errno": self.name, "ioctl": self.ioctl, "detail": self.detail}

    @classmethod
    def from_dict(cls, d):
        """The error of a reply (to_dict's); what is not an errno name is EIO, and the texts
        are texts, whatever the other end sent."""
        code = ERRNO_BY_NAME.get(d.get("errno"), errno.EIO) if isinstance(d.get("errno"), str) else errno.EIO
        ioctl, detail = d.get("ioctl", ""), d.get("detail", "")
        return cls(code, ioctl if isinstance(ioctl, str) else str(ioctl),
                   detail if isinstance(detail, str) else str(detail))

    @classmethod
    def from_oserror(cls, exc, ioctl, what=""):
        code = exc.errno if isinstance(exc.errno, int) else errno.EIO
        detail = f"{what}: {exc.strerror or exc}" if what else (exc.strerror or str(exc))
        return cls(code, ioctl, detail)


class UsageError(Exception):
    """Bad words on the command line: exit status 1 with the usage text."""
