"""agrconfig.jsontext writes and reads what json does, byte for byte and error for error: on
the recorded worker replies (tests/unit/data/status), the status documents render makes of
them, and values hypothesis makes up."""
import json
import math
import os
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agrconfig import jsontext
from agrconfig.status import AggregateStatus, Protocol, plain

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "status")


def recorded():
    for name in sorted(os.listdir(FIXTURES)):
        with open(os.path.join(FIXTURES, name), "rb") as f:
            yield name, f.read()


def test_the_c_half_is_there():
    # Without _json every call goes to json: right, but not what the commands are measured with.
    assert jsontext._scan is not None


@pytest.mark.parametrize("name,raw", list(recorded()))
def test_recorded_replies_read_and_write_as_json_does(name, raw):
    doc = json.loads(raw)
    assert jsontext.loads(raw) == doc
    assert jsontext.loads(raw.decode()) == doc
    for indent in (None, 0, 1, 2, "\t"):
        assert jsontext.dumps(doc, indent=indent) == json.dumps(doc, indent=indent)
    reply = doc["worker_reply"]
    ws = AggregateStatus.from_json(reply)
    # render's --json: models, read-only mappings and enums through default=plain
    odd = {"status": ws, "flags": ws.flags, "protocol": ws.protocol, "ports": ws.ports, "n": [1.5, None, True]}
    for indent in (None, 2):
        assert jsontext.dumps(odd, indent=indent, default=plain) == json.dumps(odd, indent=indent, default=plain)


def test_status_json_output_is_unchanged():
    from agrconfig.cli import render
    from agrconfig.client.inspect import Facts
    from agrconfig.net import rtnl
    for _name, raw in recorded():
        ws = AggregateStatus.from_json(json.loads(raw)["worker_reply"])
        doc = render.document(Facts(rtnl.link("lo"), [], None, ws))
        out = render.json_doc(doc)
        assert jsontext.dumps(out, indent=2, default=plain) == json.dumps(out, indent=2, default=plain)
        assert jsontext.dumps([out, out], indent=2, default=plain) == json.dumps([out, out], indent=2, default=plain)


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text())
keys = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5), st.tuples(inner, inner),
                                                        st.dictionaries(keys, inner, max_size=5)), max_leaves=30)


def same(a, b):
    return json.dumps(a) == json.dumps(b)   # NaN != NaN: compare their text


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from([None, 0, 1, 2, "  "]))
def test_any_value_writes_as_json_does(value, indent):
    assert jsontext.dumps(value, indent=indent) == json.dumps(value, indent=indent)


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_text_reads_as_json_does(value):
    text = json.dumps(value)
    assert same(jsontext.loads(text), json.loads(text))
    assert same(jsontext.loads(f" \n{text}\t ".encode()), json.loads(f" \n{text}\t ".encode()))


def error_of(fn, arg):
    try:
        return ("ok", json.dumps(fn(arg)))
    except Exception as exc:   # noqa: BLE001 (the very exception is compared)
        return (type(exc), str(exc))


@pytest.mark.parametrize("text", ["", " ", "{", "[1,]", '{"a": 1} x', "\ufeff{}", "nul", '"\\x"', "1 2", "{'a': 1}",
                                  b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b'{"a": "\xff"}', b"[1]", b"  ", "NaN",
                                  "-Infinity", '{"a": [1, 2, {"b": null}]}', "[" * 100000])
def test_bad_and_odd_texts_fail_or_read_as_json_does(text):
    assert error_of(jsontext.loads, text) == error_of(json.loads, text)


def test_errors_are_jsons_when_json_was_never_imported():
    # _json raises json's JSONDecodeError only when json.decoder is loaded: a command has not
    # loaded it (a SystemError was seen, on a truncated state file).
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from agrconfig import jsontext\n"
            "for text in sys.argv[2:]:\n"
            "    try: jsontext.loads(text)\n"
            "    except ValueError as exc: print(type(exc).__name__, exc)\n")
    texts = ['{"name": "agr0", "ports": [{"name": "re0", "ind', '{"a": 1', "[1,", '"\\x"', "", "1 2"]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-S", "-c", code, root, *texts], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"JSONDecodeError {error_of(json.loads, t)[1]}" for t in texts]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), st.binary(max_size=30)))
def test_any_garbage_reads_or_fails_as_json_does(text):
    assert error_of(jsontext.loads, text) == error_of(json.loads, text)


@pytest.mark.parametrize("indent", [None, 2])
def test_bad_values_fail_as_json_does(indent):
    loop = []
    loop.append(loop)
    for value in (loop, {"a": object()}, {(1, 2): 1}, {"s": {1, 2}}, MappingProxyType({"a": 1})):
        assert error_of(lambda v: jsontext.dumps(v, indent=indent), value) == \
            error_of(lambda v: json.dumps(v, indent=indent), value)
    assert jsontext.dumps(MappingProxyType({"a": Protocol.LACP}), indent=indent, default=dict) == \
        json.dumps(MappingProxyType({"a": Protocol.LACP}), indent=indent, default=dict)
    assert jsontext.dumps([math.inf, -math.inf, math.nan], indent=indent) == \
        json.dumps([math.inf, -math.inf, math.nan], indent=indent)
