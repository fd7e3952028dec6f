"""Record: a frozen, typed value with named fields, cheap to import.

The models that cross a module boundary (status, operations, requests) are Records. They
behave as frozen dataclasses do (keyword or positional construction, defaults, equality,
hashing, repr, replace) without importing dataclasses, which pulls in inspect and costs
several milliseconds on every command's start (measured with -X importtime).

    class PortStatus(Record):
        __slots__ = ("name", "flags", "carrier")
        DEFAULTS = {"carrier": False}

A subclass names its fields in __slots__ (in order) and may give DEFAULTS; fields of a base
Record come first. Values are not checked against a type here: the constructors of each model
(from_json and the worker's builders) are where values are made, and they check there.
"""

_MISSING = object()


class Record:
    __slots__ = ()
    DEFAULTS = {}
    FIELDS = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__slots__", ())
        if isinstance(own, str):
            own = (own,)
        cls.FIELDS = tuple(getattr(cls.__mro__[1], "FIELDS", ())) + tuple(own)
        defaults = {}
        for base in reversed(cls.__mro__[1:]):
            defaults.update(getattr(base, "DEFAULTS", {}))
        defaults.update(cls.__dict__.get("DEFAULTS", {}))
        cls.DEFAULTS = defaults

    def __init__(self, *args, **kwargs):
        fields = self.FIELDS
        if args:
            if len(args) > len(fields):
                raise TypeError(f"{type(self).__name__} takes {len(fields)} fields, got {len(args)}")
            values = dict(zip(fields, args))
            for key, value in kwargs.items():
                if key in values:
                    raise TypeError(f"{type(self).__name__}: {key!r} given twice")
                values[key] = value
        else:
            values = kwargs
        # Each field from the values, else its default; a name that is no field is found by
        # counting (the models are built often: the worker's status, every command's reading).
        defaults, setattr_, used = self.DEFAULTS, object.__setattr__, 0
        for name in fields:
            if name in values:
                setattr_(self, name, values[name])
                used += 1
            elif name in defaults:
                setattr_(self, name, defaults[name])
            else:
                self._unknown(values)
                raise TypeError(f"{type(self).__name__}: missing field {name!r}")
        if used != len(values):
            self._unknown(values)

    def _unknown(self, values):
        for key in values:
            if key not in self.FIELDS:
                raise TypeError(f"{type(self).__name__} has no field {key!r}")

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _values(self):
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self):
        return hash((type(self), self._values()))

    def __repr__(self):
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self):
        return (type(self), self._values())

    def replace(self, **changes):
        """A copy with some fields changed (dataclasses.replace)."""
        values = {name: getattr(self, name) for name in self.FIELDS}
        values.update(changes)
        return type(self)(**values)

    def as_dict(self):
        """Field name -> value, one level deep."""
        return {name: getattr(self, name) for name in self.FIELDS}


def replace(record, **changes):
    """dataclasses.replace's form, for Records."""
    return record.replace(**changes)
