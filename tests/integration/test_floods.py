"""Floods: a hostile partner's LACPDU storm and a flapping carrier do not take agr0 down."""
import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from tests.integration.helpers import agr_pair, port_flags, status_json, wait_distributing
from tests.integration.test_worker import worker_procs

pytestmark = pytest.mark.integration
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# 1000 LACPDUs a second for `seconds`, from a system that is not the real partner.
FLOOD = textwrap.dedent("""
    import socket, sys, time
    sys.path.insert(0, sys.argv[3])
    from agrconfig.lacp import pdu as P
    seconds = float(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((sys.argv[1], 0))
    src = bytes.fromhex("02beef000001")
    n = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for _ in range(10):
            actor = P.LacpInfo(0x8000, src, 99, 0x8000, n % 65535 + 1, 0x3d)
            partner = P.LacpInfo(0, bytes(6), 0, 0, 0, 0)
            frame = P.SLOW_PROTOCOLS_MAC + src + b"\\x88\\x09" + P.encode(P.Lacpdu(actor, partner))
            s.send(frame)
            n += 1
        time.sleep(max(0.0, start + n / 1000.0 - time.monotonic()))
    print(n)
""")


def test_lacpdu_flood_is_rate_limited_and_does_not_starve_other_ports(lab):
    a, b = agr_pair(lab, words=("lacptimeout", "fast"))
    flood = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-c", FLOOD, "re0", "6", ROOT],
                             stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        # While it lasts, the other port keeps distributing and traffic flows.
        for _ in range(4):
            assert port_flags(lab, a)["re1"] == 3
            assert lab.ping(a, "192.0.2.2", count=3)
        sent = int(flood.communicate(timeout=20)[0])
    finally:
        if flood.poll() is None:
            flood.kill()
    assert sent >= 4000
    doc = status_json(lab, a)
    re0 = next(p for p in doc["agrports"] if p["ifname"] == "re0")
    limited = re0["counters"]["rx_slow_limited"]
    assert limited >= sent * 0.8, f"{limited} of {sent} flood frames dropped by the rate limit"
    # Once it stops, the real partner takes re0 back.
    wait_distributing(lab, a, ["re0", "re1"])


CARRIER = textwrap.dedent("""
    import sys, time
    from pyroute2 import IPRoute
    ipr = IPRoute()
    idx = ipr.link_lookup(ifname=sys.argv[1])[0]
    for i in range(int(sys.argv[2])):
        ipr.link("set", index=idx, state="down" if i % 2 == 0 else "up")
        time.sleep(float(sys.argv[3]))
""")


def test_carrier_toggled_200_times_ends_right_without_leaks(lab):
    a, b = agr_pair(lab, words=("lacptimeout", "fast"))
    (w,) = worker_procs(lab, a)
    time.sleep(1)
    fds, rss = w.num_fds(), w.memory_info().rss
    # 200 changes in 20 s on b's end of re0: a sees carrier loss and return each time.
    subprocess.run(["ip", "netns", "exec", b, sys.executable, "-c", CARRIER, "re0", "200", "0.1"],
                   check=True, timeout=120)
    wait_distributing(lab, a, ["re0", "re1"])
    assert lab.ping(a, "192.0.2.2", count=2)
    (w2,) = worker_procs(lab, a)
    assert w2.pid == w.pid, "the worker did not survive"
    assert w.num_fds() <= fds, f"fds grew from {fds} to {w.num_fds()}"
    growth = (w.memory_info().rss - rss) / 2**20
    assert growth < 4, f"RSS grew by {growth:.1f} MiB"
    assert psutil.pid_exists(w.pid)
