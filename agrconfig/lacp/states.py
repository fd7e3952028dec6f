"""The LACP machines' states (and the Selected variable), apart from the machines: status
(agrconfig/status.py) names them, and a status command must not import the core to read them."""
from ..enumerated import Enumerated

# Actor/Partner state bits, least significant first (§6.4.2.3 h).
ACTIVITY = 0x01
TIMEOUT = 0x02
AGGREGATION = 0x04
SYNCHRONIZATION = 0x08
COLLECTING = 0x10
DISTRIBUTING = 0x20
DEFAULTED = 0x40
EXPIRED = 0x80
SYNC = SYNCHRONIZATION

STATE_BITS = (
    (ACTIVITY, "ACTIVITY"), (TIMEOUT, "TIMEOUT"), (AGGREGATION, "AGGREGATION"), (SYNC, "SYNC"),
    (COLLECTING, "COLLECTING"), (DISTRIBUTING, "DISTRIBUTING"), (DEFAULTED, "DEFAULTED"),
    (EXPIRED, "EXPIRED"),
)


class ActorChurnState(Enumerated):
    NO_ACTOR_CHURN = "NO_ACTOR_CHURN"
    ACTOR_CHURN_MONITOR = "ACTOR_CHURN_MONITOR"
    ACTOR_CHURN = "ACTOR_CHURN"


class MuxState(Enumerated):
    DETACHED = "DETACHED"
    WAITING = "WAITING"
    ATTACHED = "ATTACHED"
    COLLECTING_DISTRIBUTING = "COLLECTING_DISTRIBUTING"


class PartnerChurnState(Enumerated):
    NO_PARTNER_CHURN = "NO_PARTNER_CHURN"
    PARTNER_CHURN_MONITOR = "PARTNER_CHURN_MONITOR"
    PARTNER_CHURN = "PARTNER_CHURN"


class PeriodicState(Enumerated):
    NO_PERIODIC = "NO_PERIODIC"
    FAST_PERIODIC = "FAST_PERIODIC"
    SLOW_PERIODIC = "SLOW_PERIODIC"
    PERIODIC_TX = "PERIODIC_TX"


class RxState(Enumerated):
    INITIALIZE = "INITIALIZE"
    PORT_DISABLED = "PORT_DISABLED"
    LACP_DISABLED = "LACP_DISABLED"
    EXPIRED = "EXPIRED"
    DEFAULTED = "DEFAULTED"
    CURRENT = "CURRENT"


class WtrState(Enumerated):
    DOWN = "DOWN"
    WAITING = "WAITING"
    RESTORED = "RESTORED"


class Selected(Enumerated):
    """The Selected variable (§6.4.8)."""
    SELECTED = "SELECTED"
    UNSELECTED = "UNSELECTED"
    STANDBY = "STANDBY"
