"""DPDK's bonding driver (802.3ad mode) as a second independent LACP partner.

tests/dpdk/dpdk_partner.c is built on first use against Debian's libdpdk (dpdk-dev,
librte-net-bond23, librte-net-af-packet23, which scripts/bootstrap installs for the tests) and
runs in a namespace of its own on af_packet members, without hugepages. It answers ARP and
ICMP echo for one address, writes the bond's 802.3ad view of each member to a JSON file, and
takes a member out of the bond while its interface has no carrier (af_packet tells DPDK
nothing of carrier). Facts learnt on this machine (DPDK 22.11):
- the bond's actor always asks for the long timeout (its state has no LACP_Timeout bit), so
  it sends every 30 s once in sync unless we ask for the short timeout;
- system priority 0xffff, port priority 0x00ff, port numbers from 1, key 0x21 here;
- in mode 4 the bond drops broadcasts unless promiscuous: the program turns it on;
- it answers a Marker Information with a Marker Response, and sends no Marker of its own.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile

from tests.lab import ROOT, sh

SOURCE = os.path.join(ROOT, "tests", "dpdk", "dpdk_partner.c")
# DPDK's own state bits (rte_eth_bond_8023ad.h), as 802.1AX numbers them.
ACTIVITY, TIMEOUT, AGGREGATION, SYNC, COLLECTING, DISTRIBUTING = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20


def build():
    """The partner program, compiled once per version of its source."""
    if not shutil.which("pkg-config") or sh("pkg-config", "--exists", "libdpdk", check=False).returncode:
        raise RuntimeError("DPDK is not installed (pkg-config libdpdk fails): "
                           "apt install dpdk-dev librte-net-bond23 librte-net-af-packet23 pkg-config gcc")
    source = open(SOURCE, "rb").read()
    binary = os.path.join(tempfile.gettempdir(), f"agrconfig-dpdk-partner-{hashlib.sha256(source).hexdigest()[:12]}")
    if not os.path.exists(binary):
        flags = sh("pkg-config", "--cflags", "--libs", "libdpdk").stdout.split()
        part = binary + f".{os.getpid()}"
        sh("gcc", "-O2", "-Wall", "-Werror", "-o", part, SOURCE, *flags, "-lrte_net_bond", "-lrte_bus_vdev",
           timeout=120)
        os.replace(part, binary)
    return binary


class DpdkPartner:
    """The bond, on interfaces `members` of namespace `ns`, answering for `address`."""

    def __init__(self, lab, ns, members, address):
        self.lab = lab
        self.ns = ns
        self.members = list(members)
        self.dir = tempfile.mkdtemp(prefix="agr-dpdk-")
        self.state_file = os.path.join(self.dir, "state.json")
        self.file_prefix = f"agr{lab.prefix}"   # DPDK's runtime files: /var/run/dpdk/<prefix>
        for member in self.members:
            # The kernel stack on the members stays quiet: DPDK answers, not Linux.
            lab.run(ns, "sysctl", "-qw", f"net.ipv6.conf.{member}.disable_ipv6=1")
            lab.run(ns, "sysctl", "-qw", f"net.ipv4.conf.{member}.arp_ignore=8")
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, build(), "--no-huge", "-m", "256", "--no-pci",
             f"--file-prefix={self.file_prefix}", "--log-level=lib.eal:warning", "--",
             address, self.state_file, *self.members],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            lab.wait_for(lambda: self.proc.poll() is not None or os.path.exists(self.state_file),
                         timeout=30, what="the DPDK partner's first state")
            if self.proc.poll() is not None:
                raise RuntimeError(f"the DPDK partner exited ({self.proc.returncode}): {self.output()}")
        except BaseException:
            self.close()
            raise

    def output(self):
        self.log.flush()
        return open(self.log.name).read()

    def state(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the DPDK partner died ({self.proc.returncode}): {self.output()}")
        with open(self.state_file) as f:
            return json.load(f)

    def member(self, name):
        return self.state()["members"][name]

    def distributing(self, name):
        m = self.member(name)
        return m["in_bond"] and m["actor_state"] & DISTRIBUTING and m["partner_state"] & SYNC

    def wait_distributing(self, names, timeout=30):
        self.lab.wait_for(lambda: all(self.distributing(n) for n in names), timeout=timeout,
                          what=f"DPDK distributing on {', '.join(names)}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(f"/var/run/dpdk/{self.file_prefix}", ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

