"""Record, the frozen base of the typed models: construction, defaults, freezing, equality."""
import pickle
import subprocess
import sys

import pytest

from agrconfig.record import Record


class Point(Record):
    __slots__ = ("x", "y")
    DEFAULTS = {"y": 0}


class Point3(Point):
    __slots__ = ("z",)
    DEFAULTS = {"z": 9}


def test_fields_in_order_with_defaults_and_inheritance():
    assert Point.FIELDS == ("x", "y")
    assert Point3.FIELDS == ("x", "y", "z")
    assert Point(1).y == 0
    assert Point3(1, 2) == Point3(x=1, y=2, z=9)
    assert Point3.DEFAULTS == {"y": 0, "z": 9}


def test_missing_unknown_and_doubled_fields_are_refused():
    with pytest.raises(TypeError, match="missing field 'x'"):
        Point()
    with pytest.raises(TypeError, match="no field 'w'"):
        Point(1, w=2)
    with pytest.raises(TypeError, match="given twice"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="takes 2 fields"):
        Point(1, 2, 3)


def test_frozen():
    p = Point(1, 2)
    with pytest.raises(AttributeError, match="frozen"):
        p.x = 5
    with pytest.raises(AttributeError, match="frozen"):
        del p.y
    with pytest.raises(AttributeError):
        p.other = 1     # __slots__: no instance dict
    assert p.x == 1


def test_equality_hash_repr_replace_pickle():
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert Point(1, 2) != Point3(1, 2)      # another type is never equal
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(1, 3)}) == 2
    assert repr(Point3(1, 2, 3)) == "Point3(x=1, y=2, z=3)"
    assert Point(1, 2).replace(y=5) == Point(1, 5)
    assert Point(1, 2).as_dict() == {"x": 1, "y": 2}
    assert pickle.loads(pickle.dumps(Point3(1, 2, 3))) == Point3(1, 2, 3)


def test_cheap_to_import():
    """It must not pull dataclasses (and with it inspect) into a command's start."""
    code = "import sys, agrconfig.record; print('dataclasses' in sys.modules, 'inspect' in sys.modules)"
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         cwd=__file__.rsplit("/tests/", 1)[0])
    assert out.stdout.split() == ["False", "False"], out
