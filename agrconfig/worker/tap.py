"""The TAP device that is agrN: /dev/net/tun, persistent, with the virtio-net header."""
import errno
import fcntl
import os
import struct

from ..errors import AgrError

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUNGETIFF = 0x800454D2
TUNSETCARRIER = 0x400454E2
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08

VNET_HDR_LEN = 10  # struct virtio_net_hdr; the same on the port sockets

TUN_DEVICE = "/dev/net/tun"
TUN_CLASS = "/sys/class/misc/tun"  # the driver registered: loaded as a module, or built in
PROC_MISC = "/proc/misc"           # the same where /sys is not mounted


def tun_registered(misc_class=TUN_CLASS, proc_misc=PROC_MISC):
    """(registered, 'major minor') of the tun driver's misc device."""
    try:
        with open(os.path.join(misc_class, "dev")) as f:
            return True, f.read().strip().replace(":", " ")
    except OSError:
        pass
    try:
        with open(proc_misc) as f:
            minors = [line.split()[0] for line in f if line.split()[1:] == ["tun"]]
    except OSError:
        minors = []
    return (True, f"10 {minors[0]}") if minors else (False, "10 200")


def ensure_device(device=TUN_DEVICE, registered=tun_registered, load=None):
    """Make sure `device` is there before a worker needs it, loading the tun module if the
    driver is not there: called by the front end, which runs as root; the worker keeps no
    CAP_SYS_MODULE. Raises AgrError(ENOENT) saying what is missing."""
    if os.path.exists(device):
        return
    there, numbers = registered()
    if not there:
        loaded, why = (load or _modprobe)()
        if os.path.exists(device):
            return
        there, numbers = registered()
        if not (loaded and there):
            raise AgrError(errno.ENOENT, "SIOCIFCREATE",
                           f"{device} is missing and the tun module could not be loaded ({why})")
    # Some containers: the driver is there, the node is not (no devtmpfs in their /dev).
    raise AgrError(errno.ENOENT, "SIOCIFCREATE", f"{device} is missing although the tun module is "
                   f"loaded: create the node (mknod {device} c {numbers})")


def _modprobe():
    """(loaded, why not) of `modprobe tun`."""
    import subprocess
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    try:
        proc = subprocess.run(["modprobe", "tun"], capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"modprobe tun: {exc}"
    return proc.returncode == 0, f"modprobe tun: {proc.stderr.strip() or f'exit status {proc.returncode}'}"


def open_tap(name, persist=True):
    """Open (or re-attach to) TAP `name`; returns the fd.

    IFF_VNET_HDR plus offloads lets 64 KB GSO frames and frames with unfinished
    checksums cross the relay whole.
    """
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        ifr = struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
        fcntl.ioctl(fd, TUNSETIFF, ifr)
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
        fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
        if persist:
            fcntl.ioctl(fd, TUNSETPERSIST, 1)
    except OSError:
        os.close(fd)
        raise
    return fd


def unpersist(fd):
    """Drop persistence: the TAP goes away when the last fd closes."""
    fcntl.ioctl(fd, TUNSETPERSIST, 0)


def attached_name(fd):
    """The name of the TAP this fd is attached to, or None (detached: the device was deleted)."""
    try:
        ifr = fcntl.ioctl(fd, TUNGETIFF, bytes(40))
    except OSError:
        return None
    return ifr[:16].split(b"\0", 1)[0].decode()


def set_carrier(fd, on):
    """agrN's carrier (agrminports). Attaching an fd (TUNSETIFF) turns it on: set it after
    every attach."""
    fcntl.ioctl(fd, TUNSETCARRIER, struct.pack("i", 1 if on else 0))
