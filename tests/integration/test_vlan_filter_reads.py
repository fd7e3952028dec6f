"""What the VLAN filter reads from this kernel: ethtool's features by name, checked against the
ethtool command (an independent decoder). This kernel has neither 802.1Q nor bridge VLAN
filtering: the rest of the VLAN filter is tested in the VM stage, on Debian's kernel."""
import json
import sys

from tests.lab import ROOT


def py(lab, ns, code):
    proc = lab.run(ns, sys.executable, "-c", f"import sys; sys.path.insert(0, {ROOT!r})\n{code}")
    return json.loads(proc.stdout)


def test_features_are_read_as_ethtool_reads_them(lab):
    ns = lab.netns("a")
    lab.ip(ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    lab.run(ns, "ethtool", "-K", "v0", "tx-checksum-ip-generic", "off")
    shown = {}
    for line in lab.run(ns, "ethtool", "-k", "v0").stdout.splitlines()[1:]:
        name, _, rest = line.strip().partition(": ")
        shown[name] = rest.startswith("on")
    ours = py(lab, ns, "import json; from agrconfig.net import ethtool\n"
                       f"print(json.dumps({{n: ethtool.feature('v0', n) for n in {sorted(shown)!r}}}))")
    known = {n: v for n, v in ours.items() if v is not None}
    # ethtool's old aliases (rx-checksumming, ...) are no kernel names: those alone are unknown.
    assert len(known) >= 30 and "rx-vlan-filter" in known and "tx-checksum-ip-generic" in known
    assert known == {n: shown[n] for n in known}
    assert known["tx-checksum-ip-generic"] is False and known["rx-vlan-filter"] is False
