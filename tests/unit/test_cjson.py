"""agrconfig.cjson against the json package it stands in for: same values, text and errors."""
import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from agrconfig import cjson

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


def same(a, b):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, derandomize=True)
@given(values)
def test_dumps_is_json_dumps(value):
    assert cjson.dumps(value) == json.dumps(value)
    assert same(cjson.loads(cjson.dumps(value)), value)


@settings(max_examples=500, derandomize=True)
@given(st.text(alphabet=' \t\n\r{}[]":,0123456789.eE+-truefalsnIiyNa\\u', max_size=30))
def test_loads_is_json_loads_on_any_text(text):
    try:
        want = json.loads(text)
    except json.JSONDecodeError as exc:
        with pytest.raises(json.JSONDecodeError) as got:
            cjson.loads(text)
        assert (got.value.msg, got.value.pos) == (exc.msg, exc.pos)
    else:
        assert same(cjson.loads(text), want)


@pytest.mark.parametrize("text", ["", "  ", "{} x", "[1,]", '{"a" 1}', "\n [1] \n", " NaN", "-Infinity",
                                  '"\\ud800"', "1e400", '{"a": {"b": [true, false, null]}}', "01"])
def test_loads_edges(text):
    test_loads_is_json_loads_on_any_text.hypothesis.inner_test(text)


def test_errors_are_json_errors():
    with pytest.raises(TypeError, match="not JSON serializable"):
        cjson.dumps({"a": object()})
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        cjson.dumps(loop)
    with pytest.raises(TypeError):
        cjson.loads(b"{}")
    with pytest.raises(RecursionError):
        cjson.loads("[" * 100000)
