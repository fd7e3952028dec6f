"""Status models (agrconfig.status) for the readers' tests, from as few JSON keys as a test
needs: the keys a worker always sends are made up here."""
from agrconfig.status import AggregateStatus, PortStatus

PROTOCOLS = {"lacp": "lacp", "loadbalance": "static", "failover": "failover", "slb": "slb"}
# A LACP port in sync with its partner, distributing: what a test's "lacp" entry does not say.
LACP = {"port_id": 1, "actor_state": 0x3D, "actor_state_str": [], "partner_state": 0x3D, "partner_state_str": [],
        "actor_key": 0x100, "actor_port_priority": 0x8000, "partner_system": "02:00:00:00:00:02",
        "partner_system_priority": 0x8000, "partner_key": 0x100, "partner_port": 3, "partner_port_priority": 0x8000,
        "selected": "SELECTED", "mux_state": "COLLECTING_DISTRIBUTING", "rx_state": "CURRENT",
        "periodic_state": "FAST_PERIODIC", "actor_churn_state": "NO_ACTOR_CHURN",
        "partner_churn_state": "NO_PARTNER_CHURN", "carrier": True, "collecting": True, "distributing": True,
        "standby": False, "limited": False, "fallback": False, "wtr_state": "RESTORED", "wtr_left": None,
        "aggregatable": True, "looped": False, "counters": {}}


def port_json(fields):
    out = {"name": "re0", "index": 1, "flags": 0, "carrier": True, **fields}
    if out.get("lacp") is not None:
        out["lacp"] = {**LACP, **out["lacp"]}
    return out


def port(fields):
    """A PortStatus: name re0, index 1, no flags, carrier, unless `fields` say otherwise."""
    return PortStatus.from_json(port_json(fields))


def aggregate(fields):
    """An AggregateStatus: agr0, the flags' protocol, no ports, unless `fields` say otherwise;
    ports may be PortStatus or their JSON."""
    fields = dict(fields)
    flags = fields.setdefault("flags", {})
    fields.setdefault("protocol", PROTOCOLS[flags.get("proto", "lacp")])
    fields["ports"] = [p.to_json() if isinstance(p, PortStatus) else port_json(p) for p in fields.get("ports", [])]
    return AggregateStatus.from_json({"name": "agr0", **fields})
