"""A switch port's far end for the pre-flight test, run in the switch's namespace:
`lldp_switch.py COUNTS_FILE LLDP_PORT [OTHER_PORT...]`.

Sends an LLDPDU (built with scapy: chassis ID = the port's MAC, port ID = its name, system
name "switch-s") out of LLDP_PORT every 0.5 s, and counts the Slow Protocols frames that
arrive on every port named, writing {port: count} to COUNTS_FILE (atomically) after each.
"""
import json
import os
import select
import socket
import sys
import time

from scapy.contrib.lldp import (LLDPDUChassisID, LLDPDUEndOfLLDPDU, LLDPDUPortID, LLDPDUSystemName,
                                LLDPDUTimeToLive)
from scapy.layers.l2 import Ether

ETH_P_ALL, PACKET_OUTGOING = 0x0003, 4
SYSTEM_NAME = "switch-s"


def lldp_frame(port, mac):
    return bytes(Ether(dst="01:80:c2:00:00:0e", src=mac, type=0x88CC)
                 / LLDPDUChassisID(subtype=4, id=mac)
                 / LLDPDUPortID(subtype=5, id=port.encode())
                 / LLDPDUTimeToLive(ttl=120)
                 / LLDPDUSystemName(system_name=SYSTEM_NAME.encode())
                 / LLDPDUEndOfLLDPDU())


def write(path, counts):
    with open(path + ".tmp", "w") as f:
        json.dump(counts, f)
    os.replace(path + ".tmp", path)


def main(path, lldp_port, *others):
    socks = {}
    for port in (lldp_port, *others):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((port, ETH_P_ALL))
        socks[s] = port
    counts = {port: 0 for port in socks.values()}
    write(path, counts)
    mac = open(f"/sys/class/net/{lldp_port}/address").read().strip()
    frame = lldp_frame(lldp_port, mac)
    sender = next(s for s, p in socks.items() if p == lldp_port)
    next_lldp = 0.0
    while True:
        now = time.monotonic()
        if now >= next_lldp:
            sender.send(frame)
            next_lldp = now + 0.5
        ready, _, _ = select.select(list(socks), [], [], max(0.0, next_lldp - now))
        for s in ready:
            data, addr = s.recvfrom(2048)
            if addr[2] != PACKET_OUTGOING and data[12:14] == b"\x88\x09":
                counts[socks[s]] += 1
                write(path, counts)


if __name__ == "__main__":
    main(*sys.argv[1:])
