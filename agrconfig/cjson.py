"""json.loads and json.dumps for the worker, through the interpreter's C accelerator alone.

The json package imports re for patterns that only its pure-Python fallbacks use; with re,
that is about 0.5 MiB in every worker (bench/RESULTS.md, issue 23). The C scanner and encoder
in _json are the ones json itself uses, called with json's default settings, so the text and
the values are the same. Without _json (not CPython), the json package is used.
"""
try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None

_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
_WHITESPACE = " \t\n\r"


class _Context:
    """The attributes _json.make_scanner reads from a JSONDecoder, at json.loads' defaults."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo = None


def _error(msg, doc, pos):
    from json.decoder import JSONDecodeError  # only for bad input: it brings re
    return JSONDecodeError(msg, doc, pos)


def _default(o):
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


if _json is not None:
    _scan = _json.make_scanner(_Context())

    def loads(text):
        """json.loads(text) for a str: the same value, or the same JSONDecodeError (a ValueError)."""
        if not isinstance(text, str):
            raise TypeError(f"the JSON object must be str, not {text.__class__.__name__}")
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = _scan(text, start)
        except StopIteration as err:
            raise _error("Expecting value", text, err.value) from None
        end += len(text) - end - len(text[end:].lstrip(_WHITESPACE))
        if end != len(text):
            raise _error("Extra data", text, end)
        return value

    def dumps(value):
        """json.dumps(value) at its defaults: the same text, or the same error."""
        if isinstance(value, str):
            return _json.encode_basestring_ascii(value)
        encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii, None,
                                    ": ", ", ", False, False, True)  # as json: a fresh circular check
        return "".join(encode(value, 0))
else:  # pragma: no cover
    import json
    loads, dumps = json.loads, json.dumps
