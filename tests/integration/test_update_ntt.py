"""update_NTT (802.1AX-2014 6.4.9) end to end, against a scripted partner in a namespace."""
import json
import sys

from tests.integration.helpers import aggregate, host_pair, status_json
from tests.lab import ROOT


def test_a_stale_copy_of_our_state_is_answered_at_once_with_the_long_timeout(lab):
    a, b = host_pair(lab, ports=("re0",))
    aggregate(lab, a, ports=("re0",), words=("lacptimeout", "slow"))
    proc = lab.run(b, "env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "tests.integration.lacp_partner",
                   "re0", timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "error" not in result, result
    # The long timeout is in force on both sides: without update_NTT the answer would be our
    # next slow periodic LACPDU, up to 30 s away. Answered "at once" means within the
    # transmit machine's reach, with room for a loaded 2-core machine.
    for bit, seconds in result["latency"].items():
        assert seconds is not None and seconds < 1.0, (bit, result)
    doc = status_json(lab, a)
    assert doc["linkinfo"]["info_data"]["ad_lacp_rate"] == "slow"
    (port,) = doc["agrports"]
    assert port["ad_partner_oper_port_state"] & 0x02 == 0, "the partner asks for slow PDUs too"
    assert port["flags"] == 0x3, "and the partner is in the bundle again"
