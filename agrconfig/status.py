"""The status of an agr interface: one typed model, built once in the worker (worker/report.py),
sent over the control socket as JSON (to_json) and read back by the front end (from_json).

Its readers (worker/reasons.py, cli/render.py, monitor.py, metrics.py, whichport.py, findings.py
and the front end's snapshot) read these objects, never the JSON: a key is spelled here only.

The JSON document is the one release 0.2.0's worker sent, key for key, plus SCHEMA_KEY. A reply
without SCHEMA_KEY is a 0.2.0 worker's (schema 0) and reads the same way; an older front end
reads this worker's document as it read 0.2.0's (it ignores the extra key). A newer worker's
keys that this code does not know are ignored: one release apart, either way, still talks.

Keyed collections whose keys are open (the data path's counters, stats64, options by key) are
read-only mappings. States the LACP core names are its own Enumerated types (enumerated.py: StrEnum's
behaviour without enum): readers compare members, and the JSON carries their names, as before.
"""
from . import options
from .enumerated import Enumerated
from .lacp.states import ActorChurnState, MuxState, PartnerChurnState, PeriodicState, RxState, Selected, WtrState
from .record import Record

MappingProxyType = type(type.__dict__)   # types.MappingProxyType, without importing types

SCHEMA = 1              # 1: this model (0: a 0.2.0 worker's reply, the same keys without this one)
SCHEMA_KEY = "schema"

__all__ = ["SCHEMA", "SCHEMA_KEY", "Protocol", "Role", "Transition", "HistoryView", "LinkcheckStatus",
           "FailoverPortStatus", "FailoverStatus", "LacpPortStatus", "Aggregator", "LacpStatus",
           "PortStatus", "AggregateStatus", "SlbStatus", "frozen", "plain", "ActorChurnState", "MuxState", "PartnerChurnState",
           "PeriodicState", "RxState", "Selected", "WtrState"]


class Protocol(Enumerated):
    """How ports are chosen (status's "protocol"): agrproto lacp, loadbalance (static), failover."""
    LACP = "lacp"
    STATIC = "static"
    FAILOVER = "failover"
    SLB = "slb"


class Role(Enumerated):
    """An agrproto failover port's role."""
    ACTIVE = "active"
    STANDBY = "standby"
    DOWN = "down"


# Values that frozen() and _dump() return as they are: the commonest, tested first.
_SCALARS = frozenset({int, str, float, bool, type(None)})


def frozen(value):
    """A JSON object as a read-only mapping (nested ones too), a list as a tuple."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, (dict, MappingProxyType)):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value


def plain(value):
    """The JSON form of a model, a read-only mapping or a tuple of them (what to_json writes)."""
    return _dump(value)


def _dump(value):
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Model):
        return value.to_json()
    if isinstance(value, Enumerated):
        return value.value
    if isinstance(value, (dict, MappingProxyType)):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    return value


def _member(enum, value):
    """An Enumerated member from its JSON name; a name this release does not know (a newer worker's)
    is kept as the string, equal to no member."""
    try:
        return enum(value)
    except ValueError:
        if not isinstance(value, str):
            raise
        return value


def _load(kind, value):
    if value is None or kind is None:
        return frozen(value)
    if isinstance(kind, list):          # [Model]: a JSON list of them
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {type(value).__name__}")
        return tuple(_load(kind[0], v) for v in value)
    if isinstance(kind, type) and issubclass(kind, Model):
        return kind.from_json(value)
    if isinstance(kind, type) and issubclass(kind, Enumerated):
        return _member(kind, value)
    return kind(value)


class Model(Record):
    """A Record that is a JSON object: each field is a key of the same name (KEYS renames),
    KINDS says how a value is read (a Model, [Model], an Enumerated, or a function; else kept as
    JSON, objects read-only), OMIT lists the keys left out while None (sent only sometimes),
    ABSENT what a missing key means in a reply (else DEFAULTS; else the reply is malformed)."""
    __slots__ = ()
    KEYS = {}
    KINDS = {}
    OMIT = ()
    ABSENT = {}

    def to_json(self):
        cls = type(self)
        out = {}
        for name, key, omit in cls.__dict__.get("_KEYS_OUT") or cls._keys_out():
            value = getattr(self, name)
            if value is None:
                if not omit:
                    out[key] = None
            else:
                out[key] = _dump(value)
        return out

    @classmethod
    def _keys_out(cls):
        """(field, key, left out while None) per field, for to_json; made once per class."""
        cls._KEYS_OUT = tuple((name, cls.KEYS.get(name, name), name in cls.OMIT) for name in cls.FIELDS)
        return cls._KEYS_OUT

    @classmethod
    def from_json(cls, doc):
        """Read a JSON object; ValueError if it is not one of ours."""
        if not isinstance(doc, (dict, MappingProxyType)):
            raise ValueError(f"{cls.__name__}: expected an object, got {type(doc).__name__}")
        # Built field by field from the class's plan: every field is set exactly once here,
        # so Record.__init__'s checks of keyword arguments (a third of a status's decoding,
        # ~1 ms per aggregate) have nothing to find. The values are checked as before.
        self = object.__new__(cls)
        for name, key, load, missing in cls.__dict__.get("_PLAN") or cls._plan():
            if key in doc:
                value = doc[key]
                if value is not None:
                    try:
                        value = load(value)
                    except (TypeError, ValueError, OverflowError) as exc:   # int(Infinity)
                        raise ValueError(f"{cls.__name__}.{key}: {exc}") from None
            elif missing:
                value = missing[0]
            else:
                raise ValueError(f"{cls.__name__}: no {key!r}")
            _set(self, name, value)
        return self

    @classmethod
    def _plan(cls):
        """(field, key, reader of a value that is not None, (value when the key is missing,)
        or ()) per field, as _load and the rules above read them; made once per class."""
        plan = []
        for name in cls.FIELDS:
            if name in cls.ABSENT:
                missing = (cls.ABSENT[name],)
            elif name in cls.OMIT or name in cls.DEFAULTS:
                missing = (cls.DEFAULTS.get(name),)
            else:
                missing = ()
            plan.append((name, cls.KEYS.get(name, name), _reader(cls.KINDS.get(name)), missing))
        cls._PLAN = tuple(plan)
        return cls._PLAN


_set = object.__setattr__


def _reader(kind):
    """_load(kind, value) for a value that is not None, as one function."""
    if kind is None:
        return frozen
    if isinstance(kind, list):
        return lambda value: _load(kind, value)
    if isinstance(kind, type) and issubclass(kind, Model):
        return kind.from_json
    if isinstance(kind, type) and issubclass(kind, Enumerated):
        return lambda value: _member(kind, value)
    return kind


# -- one port's parts ---------------------------------------------------------------------------

class Transition(Model):
    """One state change of a port's receive, mux or churn machine (history.py)."""
    __slots__ = ("time", "machine", "old", "new", "cause")


class HistoryView(Model):
    """What a port went through since the worker started: counts, last change, last LACPDU;
    for diagnose (None from a worker before them): the last LACPDU inter-arrival times, the
    seconds since the mux machine changed state, and since each time the port stopped distributing."""
    __slots__ = ("counts", "last_change", "lacpdu_age", "transitions", "lacpdu_intervals", "mux_age",
                 "flap_ages")
    KINDS = {"transitions": [Transition]}
    OMIT = ("lacpdu_intervals", "mux_age", "flap_ages")
    DEFAULTS = {"counts": frozen({}), "last_change": None, "lacpdu_age": None, "transitions": (),
                "lacpdu_intervals": None, "mux_age": None, "flap_ages": None}


class LinkcheckStatus(Model):
    """agrlinkcheck's verdict on a port: up, and seconds since a target was heard (None: never)."""
    __slots__ = ("up", "heard_ago")
    KINDS = {"up": bool}


class FailoverPortStatus(Model):
    """agrproto failover: a port's role, and what is left of its wait-to-restore."""
    __slots__ = ("role", "wtr_left")
    KINDS = {"role": Role}


class LacpPortStatus(Model):
    """The LACP core's view of a port (LacpCore.port_status), 802.1AX's variables."""
    __slots__ = ("port_id", "actor_state", "actor_state_str", "partner_state", "partner_state_str",
                 "actor_key", "actor_port_priority", "partner_system", "partner_system_priority",
                 "partner_key", "partner_port", "partner_port_priority", "selected", "mux_state",
                 "rx_state", "periodic_state", "actor_churn_state", "partner_churn_state", "carrier",
                 "collecting", "distributing", "standby", "limited", "fallback", "wtr_state", "wtr_left",
                 "aggregatable", "looped", "counters")
    KINDS = {"actor_state": int, "partner_state": int, "selected": Selected, "mux_state": MuxState,
             "rx_state": RxState, "periodic_state": PeriodicState, "actor_churn_state": ActorChurnState,
             "partner_churn_state": PartnerChurnState, "wtr_state": WtrState}
    DEFAULTS = {"counters": frozen({})}

    def counter(self, key):
        """One of the 802.1AX counters (lacpdu_rx, marker_tx, ...); 0 when not counted."""
        return self.counters.get(key, 0)


# -- the aggregate ----------------------------------------------------------------------------

class Aggregator(Model):
    """The aggregation LACP selected: our key, the partner's system and key, its ports."""
    __slots__ = ("actor_key", "partner_system", "partner_key", "ports")
    DEFAULTS = {"actor_key": None, "partner_system": None, "partner_key": None, "ports": ()}


class LacpStatus(Model):
    """The LACP core's view of the aggregate (LacpCore.status)."""
    __slots__ = ("system", "system_priority", "fast_timeout", "strict", "active", "fallback_port",
                 "aggregator", "ports")
    KINDS = {"aggregator": Aggregator, "ports": [LacpPortStatus]}
    DEFAULTS = {"fallback_port": None, "aggregator": Aggregator(), "ports": ()}


class FailoverStatus(Model):
    """agrproto failover: the active port's index (None: none) and the wait-to-restore time."""
    __slots__ = ("active", "wtr")


class SlbStatus(Model):
    """agrproto slb: the designated port's index (broadcast and multicast are accepted there
    only; None: none), how many (MAC, VLAN) pairs agrN sends from are learned, and how many
    learned MACs moved to another port (each announced by a learning frame)."""
    __slots__ = ("designated", "learned", "moved")
    DEFAULTS = {"learned": 0, "moved": 0}


class PortStatus(Model):
    """One port of agrN: its flags (options.PORT_FLAGS), link, counters, the aggregation's view
    of it (lacp, failover, or loadbalance's wait) and why it is not distributing."""
    __slots__ = ("name", "index", "flags", "carrier", "original_mac", "speed", "duplex_full", "counters",
                 "options", "stats64", "lacp", "static_wtr_left", "failover", "history", "linkcheck",
                 "reason_kind", "reason", "down_delay_left")
    KEYS = {"static_wtr_left": "wtr_left"}   # loadbalance's wait, at the port's own level
    KINDS = {"index": int, "flags": int, "lacp": LacpPortStatus, "failover": FailoverPortStatus,
             "history": HistoryView, "linkcheck": LinkcheckStatus,
             "options": lambda value: frozen({**options.defaults("port"), **value})}
    OMIT = ("lacp", "static_wtr_left", "failover", "linkcheck", "down_delay_left")
    DEFAULTS = {"original_mac": None, "speed": None, "duplex_full": None, "counters": frozen({}),
                "options": frozen(options.defaults("port")), "stats64": None, "lacp": None,
                "static_wtr_left": None, "failover": None, "history": HistoryView(), "linkcheck": None,
                "reason_kind": None, "reason": None,
                "down_delay_left": None}   # agrdowndelay: seconds until a held loss applies

    @property
    def collecting(self):
        return bool(self.flags & options.PORT_COLLECTING)

    @property
    def distributing(self):
        return bool(self.flags & options.PORT_DISTRIBUTING)

    @property
    def wtr_left(self):
        """Seconds of wait-to-restore left, whichever aggregation counts it (None: no wait;
        failover's own entry says 0.0 then, as release 0.2.0 did)."""
        if self.lacp is not None:
            return self.lacp.wtr_left
        if self.failover is not None:
            return self.failover.wtr_left or None
        return self.static_wtr_left

    @property
    def standby(self):
        """Ready, and idle by design: agrproto failover's standby, agrmaxports' standby."""
        return (self.failover is not None and self.failover.role == Role.STANDBY) or \
            (self.lacp is not None and bool(self.lacp.limited))

    @property
    def port_priority(self):
        return self.options["port_priority"]


def _flags(value):
    """agrN's settings, defaults filled in: a value of a known option must be one the schema
    allows (readers index tables and do arithmetic with them), except a name of a Choice,
    which may be a newer worker's."""
    flags = {**options.defaults(), **value}
    for key, v in value.items():
        option = options.BY_KEY.get(key)
        if option is None or option.scope != "agr" or options.check_reply(key, v):
            continue
        if not (isinstance(option.kind, options.Choice) and isinstance(v, str)):
            raise ValueError(f"bad value {v!r} for flag {key!r}")
    return frozen(flags)


class AggregateStatus(Model):
    """agrN as its worker sees it: settings (flags, by option key, defaults filled in), the
    aggregation, the data path, the ports and the totals."""
    __slots__ = ("schema", "name", "pid", "mac", "flags", "protocol", "datapath", "datapath_note",
                 "datapath_mode", "ports", "counters", "stats64", "lacp", "failover", "speed", "announced",
                 "slb")
    KEYS = {"schema": SCHEMA_KEY}
    KINDS = {"protocol": Protocol, "ports": [PortStatus], "lacp": LacpStatus, "failover": FailoverStatus,
             "flags": lambda value: _flags(value), "speed": int, "slb": SlbStatus}
    # speed: Mbit/s that agrN reports (its distributing ports' sum); None unknown (none
    # distributes, or a 0.2.0 worker, which set none).
    OMIT = ("stats64", "failover", "speed", "announced", "slb")
    ABSENT = {"schema": 0}   # a 0.2.0 worker's reply
    DEFAULTS = {"schema": SCHEMA, "pid": None, "mac": None, "datapath": "relay", "datapath_note": "",
                "datapath_mode": None, "counters": frozen({}), "stats64": None, "lacp": None,
                "failover": None, "speed": None,
                "announced": None,   # agrannounce: frames sent after moves (None: a 0.2.0 worker)
                "slb": None}

    def port(self, name):
        """The port called `name`, or None."""
        return next((p for p in self.ports if p.name == name), None)

    def port_by_index(self, index):
        return next((p for p in self.ports if p.index == index), None)

    @property
    def distributing(self):
        """The distributing ports, in the order of addition (the data paths' order)."""
        return tuple(p for p in self.ports if p.distributing)

    @property
    def active_port(self):
        """agrproto failover's active port (a PortStatus), or None."""
        return None if self.failover is None else self.port_by_index(self.failover.active)

    @property
    def designated_port(self):
        """agrproto slb's designated port (a PortStatus), or None."""
        return None if self.slb is None else self.port_by_index(self.slb.designated)

    @property
    def fallback_port(self):
        """The port carrying traffic in lacpfallback (a PortStatus), or None."""
        return next((p for p in self.ports if p.lacp is not None and p.lacp.fallback), None)
