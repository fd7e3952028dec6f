"""A port joins whole or not at all: when the state file cannot be written before anything
changes, the port is not left in the member list (CI saw such a half-added port make every
later status fail with KeyError, since the LACP core never heard of it)."""
import types

import pytest

from agrconfig.worker import transactions
from agrconfig.worker.members import Members


class Link(types.SimpleNamespace):
    pass


def test_a_failed_first_save_leaves_no_member(monkeypatch):
    members = Members("agr9", tap_index=1)
    link = Link(name="s9p0", index=74, mac="02:00:00:00:00:01", mtu=1500, up=True, flags=0)
    monkeypatch.setattr(members, "check_new", lambda name: link)
    monkeypatch.setattr(transactions, "snapshot", lambda l: {"name": l.name, "index": l.index, "mac": l.mac,
                                                             "mtu": l.mtu, "up": l.up, "promisc": False, "sysctl": {}})
    touched = []

    def save():
        raise FileNotFoundError(2, "No such file or directory")

    agr = types.SimpleNamespace(members=members, mac="02:00:00:00:00:09", save=save,
                                path=types.SimpleNamespace(slow_only=False, attach_port=touched.append),
                                aggregation=types.SimpleNamespace(add_port=lambda *a: touched.append(a)))
    with pytest.raises(FileNotFoundError):
        transactions.PortTransactions(agr).add(0.0, "s9p0")
    assert len(members) == 0 and members.find(74) is None
    assert touched == []
