"""Open vSwitch as an independent LACP partner, in a network namespace of its own.

The daemons run with the userspace datapath (datapath_type=netdev: no kernel
module) and private run/db/log directories, started and stopped by the test.
Facts learnt on this machine (Debian openvswitch-switch 3.1):
- `other_config:userspace-tso-enable=true` must be set before ovs-vswitchd starts,
  or TCP through the bond crawls (checksums are finished in software).
- OVS uses system priority 65534 and port priority 65535, does not answer Marker
  PDUs, and sends LACPDUs only every 30 s until its partner has spoken.
- Member state is read from `bond/show` (enabled/disabled): in `lacp/show`, OVS's
  own collecting/distributing bits stay set while its partner is defaulted.
- The kernel stack on OVS's veth ends must stay quiet (arp_ignore=8, no IPv6), or it
  answers ARP for the internal port's address with the veth's own MAC.
- This kernel has no tc classifiers but bpf, so a silent partner is made with a
  zero-length queue on its port (`pfifo limit 0`): everything it sends is dropped.
"""
import os
import re
import shutil
import signal
import tempfile
import time

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


class OvsPartner:
    def __init__(self, lab, ns_suffix="ovs"):
        for tool in ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ovsdb-tool"):
            if not shutil.which(tool):
                raise RuntimeError(f"Open vSwitch is not installed ({tool} missing): apt install openvswitch-switch")
        self.lab = lab
        self.ns = lab.netns(ns_suffix)
        self.dir = tempfile.mkdtemp(prefix="agr-ovs-")
        self.env = {"OVS_RUNDIR": self.dir, "OVS_DBDIR": self.dir, "OVS_LOGDIR": self.dir,
                    "OVS_SYSCONFDIR": self.dir}
        self.db = f"unix:{self.dir}/db.sock"
        try:
            self._start()
        except Exception:
            self.close()
            raise

    # -- running commands in the OVS namespace with the private directories --------------
    def run(self, *argv, check=True, timeout=30):
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        return self.lab.run(self.ns, "env", *env.split(), *argv, check=check, timeout=timeout)

    def vsctl(self, *args, check=True):
        return self.run("ovs-vsctl", f"--db={self.db}", "--timeout=20", *args, check=check).stdout

    def appctl(self, *args, check=True):
        return self.run("ovs-appctl", "-t", self._ctl(), *args, check=check).stdout

    def _ctl(self):
        pid = open(f"{self.dir}/ovs-vswitchd.pid").read().strip()
        return f"{self.dir}/ovs-vswitchd.{pid}.ctl"

    def _start(self):
        d = self.dir
        self.run("ovsdb-tool", "create", f"{d}/conf.db", SCHEMA)
        self.run("ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb-server.pid",
                 "--detach", f"--log-file={d}/ovsdb.log", f"--unixctl={d}/ovsdb-server.ctl")
        self.vsctl("--no-wait", "init")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:userspace-tso-enable=true")
        self.run("ovs-vswitchd", self.db, f"--pidfile={d}/ovs-vswitchd.pid", "--detach",
                 f"--log-file={d}/vswitchd.log")
        self.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")

    # -- building ------------------------------------------------------------------------
    def _own(self, ports):
        for port in ports:
            # The kernel must not answer on OVS's ports itself (it would answer ARP for
            # int0's address with the veth's MAC): OVS owns them.
            self.lab.run(self.ns, "sysctl", "-qw", f"net.ipv4.conf.{port}.arp_ignore=8",
                         f"net.ipv6.conf.{port}.disable_ipv6=1")
            self.lab.ip(self.ns, "link", "set", port, "up")

    def add_bond(self, name, ports, lacp_time="fast", mode="balance-tcp", lacp="active"):
        self._own(ports)
        self.vsctl("add-bond", "br0", name, *ports, f"lacp={lacp}", f"bond_mode={mode}",
                   f"other_config:lacp-time={lacp_time}")

    def add_ports(self, ports):
        """Plain switch ports, each on its own: a switch whose LAG is not configured yet."""
        self._own(ports)
        for port in ports:
            self.vsctl("add-port", "br0", port)

    def bond_ports(self, name, ports, lacp_time="fast", mode="balance-tcp"):
        """Plain ports made into a LACP bond, in one transaction (the switch configured)."""
        deletes = [w for port in ports for w in ("--", "del-port", "br0", port)]
        self.vsctl(*deletes[1:], "--", "add-bond", "br0", name, *ports, "lacp=active",
                   f"bond_mode={mode}", f"other_config:lacp-time={lacp_time}")

    def add_internal(self, name, address_cidr):
        self.vsctl("add-port", "br0", name, "--", "set", "interface", name, "type=internal")
        self.lab.wait_for(lambda: self.lab.ip(self.ns, "link", "show", name, check=False).returncode == 0,
                          what=f"OVS internal port {name}")
        self.lab.ip(self.ns, "addr", "add", address_cidr, "dev", name)
        self.lab.ip(self.ns, "link", "set", name, "up")

    # -- reading what OVS thinks ---------------------------------------------------------------
    def lacp_show(self, bond):
        """`ovs-appctl lacp/show BOND` as a dict; members keyed by interface name."""
        text = self.appctl("lacp/show", bond)
        out = {"members": {}}
        member = None
        for raw in text.splitlines():
            line = raw.strip()
            m = re.match(r"^(member|slave): (\S+): (.*)$", line)
            if m:
                member = out["members"].setdefault(m.group(2), {"status": m.group(3)})
                continue
            if line.startswith("actor state:") or line.startswith("partner state:"):
                words = set(line.split(":", 1)[1].split())
                (member if member is not None else out)[line.split()[0] + "_state"] = words
                continue
            if ":" not in line:
                continue
            key, _, value = line.partition(":")
            key, value = key.strip().replace(" ", "_"), value.strip()
            if member is None:
                out[key] = value
            else:
                member[key] = value
        if "sys_priority" in out:
            out["sys_priority"] = int(out["sys_priority"])
        return out

    def bond_show(self, bond):
        text = self.appctl("bond/show", bond)
        out = {"members": {}}
        member = None
        for raw in text.splitlines():
            line = raw.strip()
            m = re.match(r"^(member|slave) (\S+): (enabled|disabled)$", line)
            if m:
                member = out["members"][m.group(2)] = {"enabled": m.group(3) == "enabled"}
                continue
            if line.startswith("may_enable:") and member is not None:
                member["may_enable"] = line.split(":", 1)[1].strip() == "true"
            elif line.startswith("lacp_status:"):
                out["lacp_status"] = line.split(":", 1)[1].strip()
        return out

    def wait_member_enabled(self, bond, names, timeout=30):
        def enabled():
            members = self.bond_show(bond)["members"]
            return all(members.get(n, {}).get("enabled") for n in names)
        return self.lab.wait_for(enabled, timeout=timeout, interval=0.2, what=f"OVS members {names} enabled")

    # -- faults -----------------------------------------------------------------------------------
    def drop_lacp(self, port):
        """Silence OVS on `port` (carrier stays up): every frame it sends there is dropped."""
        self.lab.run(self.ns, "tc", "qdisc", "replace", "dev", port, "root", "pfifo", "limit", "0")

    def allow_lacp(self, port):
        self.lab.run(self.ns, "tc", "qdisc", "del", "dev", port, "root", check=False)

    # -- teardown -----------------------------------------------------------------------------------
    def close(self):
        for name in ("ovs-vswitchd", "ovsdb-server"):
            try:
                pid = int(open(f"{self.dir}/{name}.pid").read())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    os.kill(pid, 0)
                    time.sleep(0.05)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
