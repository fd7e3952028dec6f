"""Enumerated: a closed set of named string values, enum.StrEnum's behaviour without the enum module.

The states and kinds in a status (the LACP machines' states, the protocol, a port's role) are
StrEnum-like types: each member is an instance of its class and a str equal to its value, so
readers compare members, JSON writes the value and a status reads back to the same member.
Importing enum costs a status command about 3 ms of its start (enum imports functools,
collections, operator and types; each StrEnum class is slow to build), a tenth of the whole
command here (issue 23; tests/unit/test_imports.py keeps enum out of a status). Enumerated keeps
what the models use of StrEnum, with the same results (tests/unit/test_enumerated.py compares
them):

    class MuxState(Enumerated):
        DETACHED = "DETACHED"
        WAITING = "WAITING"

    MuxState.WAITING == "WAITING"; MuxState("WAITING") is MuxState.WAITING; MuxState["WAITING"]
    .name, .value, str() and format() give the value, repr() is StrEnum's; iteration in the
    order defined; members cannot be rebound and a class with members cannot be extended;
    copy and pickle give back the member.

Members are the class body's public names bound to a str; any other name (methods, _private
ones) is an ordinary attribute.
"""


class EnumeratedType(type):
    """The metaclass: makes the members, looks them up by value (call) and name (index)."""

    def __new__(mcls, name, bases, namespace):
        members = {k: v for k, v in namespace.items() if not k.startswith("_") and type(v) is str}
        for base in bases:
            if getattr(base, "_members_", None):
                raise TypeError(f"{name}: cannot extend {base.__name__}, which has members")
        for k in members:
            del namespace[k]
        cls = super().__new__(mcls, name, bases, namespace)
        by_name, by_value = {}, {}
        for key, value in members.items():
            member = by_value.get(value)
            if member is None:               # a second name for a value is an alias, as in enum
                member = str.__new__(cls, value)
                member._name_ = key
                by_value[value] = member
            by_name[key] = member
            type.__setattr__(cls, key, member)
        type.__setattr__(cls, "_members_", by_name)
        type.__setattr__(cls, "_by_value_", by_value)
        return cls

    def __call__(cls, value):
        """The member whose value is `value` (a member gives itself); ValueError if none."""
        try:
            return cls._by_value_[value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid {cls.__qualname__}") from None

    def __getitem__(cls, name):
        return cls._members_[name]

    def __iter__(cls):
        return iter(cls._by_value_.values())

    def __len__(cls):
        return len(cls._by_value_)

    def __contains__(cls, value):
        """A member, or a value that one has (enum's rule from Python 3.12)."""
        try:
            return value in cls._by_value_
        except TypeError:
            return False

    def __setattr__(cls, name, value):
        if name in cls.__dict__.get("_members_", ()):
            raise AttributeError(f"cannot reassign member {name!r}")
        super().__setattr__(name, value)

    def __delattr__(cls, name):
        if name in cls.__dict__.get("_members_", ()):
            raise AttributeError(f"cannot delete member {name!r}")
        super().__delattr__(name)

    def __repr__(cls):
        return f"<enum {cls.__name__!r}>"


class Enumerated(str, metaclass=EnumeratedType):
    """The base of every Enumerated type (it has no members itself)."""

    @property
    def name(self):
        return self._name_

    @property
    def value(self):
        return str.__str__(self)    # the plain str

    __str__ = str.__str__
    __format__ = str.__format__

    def __repr__(self):
        return f"<{type(self).__name__}.{self._name_}: {str.__repr__(self)}>"

    def __reduce_ex__(self, protocol):
        return type(self), (self.value,)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __setattr__(self, name, value):
        if name == "_name_" and "_name_" not in self.__dict__:
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"{type(self).__name__} members are read-only")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} members are read-only")
