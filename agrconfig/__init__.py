"""agrconfig: NetBSD agr(4) link aggregation (IEEE 802.1AX LACP) for Linux."""
__version__ = "0.5.0"
