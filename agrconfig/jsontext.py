"""JSON text for the commands' path, without the json package: json imports re and compiles
its patterns at import, about 4 ms of every command's start here (python -X importtime);
_json, its C half, is all that reading and writing JSON needs.

loads() returns what json.loads returns; a text it does not read at once (an error, a byte
order mark, UTF-16) goes to json.loads, so that errors are json's own, word for word.
dumps() writes the text json.dumps writes with the same arguments, indent included: json
writes indented text with its pure-Python encoder, built here from the C encoder's leaves in
about a third of the time (tests/unit/test_jsontext.py compares the two).
"""
try:
    import _json
except ImportError:        # an interpreter without the C accelerator: json's own code
    _json = None

WHITESPACE = " \t\n\r"     # JSON's, and json's (its decoder skips these only)
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """What _json.make_scanner reads of a json.JSONDecoder made with no arguments."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo = {}


_scan = _json.make_scanner(_Context()) if _json is not None else None


def loads(data):
    """json.loads(data), for str or bytes."""
    if _scan is not None:
        text = data
        if isinstance(data, (bytes, bytearray)):
            # json's detect_encoding says UTF-8 when there is no BOM and no NUL up front
            text = None
            if not data.startswith(b"\xef\xbb\xbf") and b"\x00" not in data[:4] and len(data) >= 4:
                try:
                    text = data.decode("utf-8", "surrogatepass")
                except UnicodeDecodeError:
                    pass
        if isinstance(text, str):
            start = len(text) - len(text.lstrip(WHITESPACE))
            try:
                value, end = _scan(text, start)
            except Exception:   # noqa: BLE001 (json says what, below)
                # Not JSON. _json raises json's errors only when json.decoder is loaded (a
                # SystemError else); StopIteration is json's "Expecting value". json.loads
                # reads it again and raises its own error.
                value, end = None, -1
            if end >= 0 and not text[end:].strip(WHITESPACE):
                return value
    import json
    return json.loads(data)


def _default(o):
    """json.JSONEncoder.default."""
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj, indent=None, default=None):
    """json.dumps(obj, indent=indent, default=default), its other arguments as json's defaults."""
    if _json is None:
        import json
        return json.dumps(obj, indent=indent, default=default)
    if isinstance(obj, str):
        return _json.encode_basestring_ascii(obj)
    default = default or _default
    if indent is None:
        encode = _json.make_encoder({}, default, _json.encode_basestring_ascii, None, ": ", ", ",
                                      False, False, True)
        return "".join(encode(obj, 0))
    if not isinstance(indent, str):
        indent = " " * indent
    out = []
    _Indented(out.append, indent, default).value(obj, 0)
    return "".join(out)


def _floatstr(o, _repr=float.__repr__, inf=float("inf")):
    if o != o:
        return "NaN"
    if o == inf:
        return "Infinity"
    if o == -inf:
        return "-Infinity"
    return _repr(o)


_SCALARS = frozenset({str, int, float, bool, type(None)})   # exactly these: a subclass takes the long way
_CONTAINERS = (list, tuple)


class _Indented:
    """json.encoder._make_iterencode with an indent, separators (',', ': '), check_circular,
    allow_nan and ensure_ascii: the same text, the same errors, its leaves written by _json."""

    def __init__(self, write, indent, default):
        self.write, self.indent, self.default = write, indent, default
        self.markers = {}
        self.string = _json.encode_basestring_ascii
        self.flat = {}    # level -> the C encoder of a container of scalars there

    def _flat(self, o, level, opening, closing):
        """A list or dict of scalars only, at `level` (its items' indent), in one call of the C
        encoder: its item separator carries the newline and the indent, so its text is json's
        but for the newlines after the opening bracket and before the closing one."""
        encode = self.flat.get(level)
        if encode is None:
            encode = self.flat[level] = _json.make_encoder(
                None, self.default, self.string, None, ": ", ",\n" + self.indent * level, False, False, True)
        text = "".join(encode(o, 0))
        self.write(opening + "\n" + self.indent * level + text[1:-1] + "\n" + self.indent * (level - 1) + closing)

    def leaf(self, o):
        """A scalar's text (json's order: bool before int), or None for anything else."""
        if isinstance(o, str):
            return self.string(o)
        if o is None:
            return "null"
        if o is True:
            return "true"
        if o is False:
            return "false"
        if isinstance(o, int):
            return int.__repr__(o)
        if isinstance(o, float):
            return _floatstr(o)
        return None

    def value(self, o, level):
        text = self.leaf(o)
        if text is not None:
            self.write(text)
        elif isinstance(o, (list, tuple)):
            self.list(o, level)
        elif isinstance(o, dict):
            self.dict(o, level)
        else:
            marker = self._enter(o)
            self.value(self.default(o), level)
            del self.markers[marker]

    def _enter(self, o):
        marker = id(o)
        if marker in self.markers:
            raise ValueError("Circular reference detected")
        self.markers[marker] = o
        return marker

    def list(self, items, level):
        if not items:
            self.write("[]")
            return
        if type(items) in _CONTAINERS and all(type(o) in _SCALARS for o in items):
            self._flat(items, level + 1, "[", "]")
            return
        marker = self._enter(items)
        write, leaf = self.write, self.leaf
        level += 1
        newline = "\n" + self.indent * level
        write("[" + newline)
        separator = "," + newline
        first = True
        for o in items:
            if first:
                first = False
            else:
                write(separator)
            text = leaf(o)
            if text is None:
                self.value(o, level)
            else:
                write(text)
        write("\n" + self.indent * (level - 1) + "]")
        del self.markers[marker]

    def dict(self, d, level):
        if not d:
            self.write("{}")
            return
        if type(d) is dict and all(type(o) in _SCALARS for o in d.values()) and all(type(k) is str for k in d):
            self._flat(d, level + 1, "{", "}")
            return
        marker = self._enter(d)
        write, leaf = self.write, self.leaf
        level += 1
        newline = "\n" + self.indent * level
        write("{" + newline)
        separator = "," + newline
        first = True
        for key, o in d.items():
            if isinstance(key, str):
                pass
            elif isinstance(key, float):
                key = _floatstr(key)
            elif key is True:
                key = "true"
            elif key is False:
                key = "false"
            elif key is None:
                key = "null"
            elif isinstance(key, int):
                key = int.__repr__(key)
            else:
                raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")
            if first:
                first = False
            else:
                write(separator)
            write(self.string(key))
            write(": ")
            text = leaf(o)
            if text is None:
                self.value(o, level)
            else:
                write(text)
        write("\n" + self.indent * (level - 1) + "}")
        del self.markers[marker]
