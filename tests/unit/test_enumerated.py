"""enumerated.Enumerated behaves as enum.StrEnum does for what the models use: every Enumerated type of the
code is compared with a StrEnum of the same members, operation by operation."""
import ast
import copy
import enum
import json
import os
import pickle

import pytest

from agrconfig import jsontext
from agrconfig.enumerated import Enumerated
from agrconfig.lacp import machine, selection, states
from agrconfig.status import Protocol, Role
from agrconfig.worker import join, macpolicy

TYPES = [states.ActorChurnState, states.MuxState, states.PartnerChurnState, states.PeriodicState, states.RxState,
         states.WtrState, states.Selected, Protocol, Role, join.Mode, selection.SelectPolicy, macpolicy.MacPolicy]


def twin(cls):
    """A StrEnum with the members of `cls`, in its order."""
    return enum.StrEnum(cls.__name__, [(m.name, m.value) for m in cls])


def test_every_enumerated_type_of_the_code_is_listed_here():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = set()
    for folder, _dirs, files in os.walk(os.path.join(root, "agrconfig")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    tree = ast.parse(f.read())
                found |= {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                          and any(getattr(b, "id", getattr(b, "attr", None)) == "Enumerated" for b in node.bases)}
    assert found == {cls.__name__ for cls in TYPES}


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
def test_an_enumerated_type_does_what_a_strenum_does(cls):
    other = twin(cls)
    assert [m.name for m in cls] == [m.name for m in other] and len(cls) == len(other)
    for mine, theirs in zip(cls, other):
        assert isinstance(mine, cls) and isinstance(mine, str)
        assert mine == theirs == theirs.value and hash(mine) == hash(theirs)
        assert (mine.name, mine.value, str(mine), f"{mine}", f"{mine:>30}", "%s" % mine) == \
            (theirs.name, theirs.value, str(theirs), f"{theirs}", f"{theirs:>30}", "%s" % theirs)
        assert type(mine.value) is str and type(str(mine)) is str
        assert repr(mine) == repr(theirs)
        assert cls(mine.value) is mine and cls(mine) is mine and cls[mine.name] is mine
        assert mine.value in cls and mine in cls
        assert jsontext.dumps({"s": mine}) == json.dumps({"s": theirs}) == json.dumps({"s": mine})
        assert jsontext.dumps([mine], indent=2) == json.dumps([theirs], indent=2)
        assert pickle.loads(pickle.dumps(mine)) is mine
        assert copy.copy(mine) is mine and copy.deepcopy({"k": mine})["k"] is mine
        assert sorted(cls) == sorted(other)   # ordered as their values, as strings are
    assert repr(cls) == repr(other)


@pytest.mark.parametrize("bad", ["nonsense", "", None, 3, ("x",), ["x"]])
def test_a_value_that_is_no_member_is_refused_as_strenum_refuses_it(bad):
    other = twin(states.MuxState)
    with pytest.raises(ValueError) as mine:
        states.MuxState(bad)
    with pytest.raises(ValueError) as theirs:
        other(bad)
    assert str(mine.value) == str(theirs.value).replace(other.__qualname__, states.MuxState.__qualname__)
    assert bad not in states.MuxState
    with pytest.raises(KeyError):
        states.MuxState["nonsense"]


def test_members_are_fixed():
    with pytest.raises(AttributeError):
        states.MuxState.WAITING = "ATTACHED"
    with pytest.raises(AttributeError):
        del states.MuxState.WAITING
    with pytest.raises(AttributeError):
        states.MuxState.WAITING.extra = 1
    with pytest.raises(AttributeError):
        states.MuxState.WAITING._name_ = "ATTACHED"
    with pytest.raises(TypeError):
        class More(states.MuxState):
            EXTRA = "EXTRA"
    assert states.MuxState.WAITING.name == "WAITING"


def test_methods_and_private_names_are_no_members_and_aliases_are_one_member():
    class Kind(Enumerated):
        """A kind."""
        A = "a"
        B = "b"
        ALSO_A = "a"
        _hidden = "h"
        number = 3

        def upper(self):
            return self.value.upper()

    assert list(Kind) == [Kind.A, Kind.B] and len(Kind) == 2
    assert Kind.ALSO_A is Kind.A and Kind["ALSO_A"] is Kind.A and Kind.A.name == "A"
    assert Kind._hidden == "h" and Kind.number == 3 and Kind.B.upper() == "B"
    assert Kind.__doc__ == "A kind." and "h" not in Kind


def test_the_machines_keep_their_states_as_members():
    """Machine.enter stores State(new): a member, whatever str equal to one it was given."""
    from agrconfig.lacp.mux import Mux
    assert Mux.State is states.MuxState and issubclass(Mux.State, Enumerated)
    assert machine.Machine.__annotations__["State"] == "type[Enumerated]"
