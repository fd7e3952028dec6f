"""agrN's totals from the data path's per-port counters (worker/counters.py) and their text."""
from agrconfig.cli import stats
from agrconfig.worker import counters


def test_totals_are_the_ports_sums_plus_what_only_agr_drops():
    ports = {3: {"tx_packets": 5, "tx_bytes": 500, "rx_packets": 7, "rx_bytes": 700, "rx_dropped": 1,
                 "rx_slow": 9, "rx_slow_limited": 2},
             4: {"tx_packets": 1, "tx_bytes": 60, "rx_packets": 0, "rx_bytes": 0}}
    got = counters.agr_stats64({"tx_drop_no_port": 4, "tx_errors": 2, "rx_errors": 3}, ports)
    assert got == {"rx": {"bytes": 700, "packets": 7, "errors": 3, "dropped": 1},
                   "tx": {"bytes": 560, "packets": 6, "errors": 2, "dropped": 4}}
    # Slow Protocols frames (rx_slow, rx_slow_limited) are the port's, not agrN's traffic.
    assert counters.port_stats64(ports[3])["rx"] == {"bytes": 700, "packets": 7, "errors": 0, "dropped": 1}


def test_no_ports_no_traffic():
    assert counters.agr_stats64({}, {}) == {"rx": {"bytes": 0, "packets": 0, "errors": 0, "dropped": 0},
                                            "tx": {"bytes": 0, "packets": 0, "errors": 0, "dropped": 0}}


def test_kernel_stats_in_iproute2_shape_and_verbose_lines():
    got = stats.from_kernel({"rx_packets": 2, "rx_bytes": 20, "tx_packets": 1, "tx_bytes": 10, "rx_dropped": 5})
    assert got["rx"]["packets"] == 2 and got["rx"]["dropped"] == 5 and got["tx"]["bytes"] == 10
    assert stats.from_kernel({}) == {}
    assert stats.lines(got, "\t") == ["\tinput: 2 packets, 20 bytes, 0 errors, 5 drops",
                                      "\toutput: 1 packets, 10 bytes, 0 errors, 0 drops"]
