"""Cables made of TAP pairs, for ports whose speed a test sets (`ethtool -s TAP speed N`): veth
reports 10000 Mb/s and cannot be told otherwise. Run in a namespace as
`python tapwire.py A1:B1 A2:B2 ...`: it creates each TAP, prints "ready", and copies every
frame of A to B and back until killed (the lab kills what runs in its namespaces). A TAP keeps
its fd, so its carrier, when moved to another namespace."""
import fcntl
import os
import select
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main(pairs):
    peer = {}
    for pair in pairs:
        a, b = (open_tap(n) for n in pair.split(":"))
        peer[a], peer[b] = b, a
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select(list(peer), [], [])
        for fd in readable:
            try:
                frame = os.read(fd, 65536)
                os.write(peer[fd], frame)
            except OSError:
                pass   # the far end is down: the frame is lost, as on a cable


if __name__ == "__main__":
    main(sys.argv[1:])
