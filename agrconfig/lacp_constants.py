"""Slow Protocols constants the data path needs without importing the LACP core."""
SLOW_PROTOCOLS_MAC = b"\x01\x80\xc2\x00\x00\x02"
ETH_P_SLOW = 0x8809
STATE_NAMES = ("ACTIVITY", "TIMEOUT", "AGGREGATION", "SYNC", "COLLECTING", "DISTRIBUTING",
               "DEFAULTED", "EXPIRED")
