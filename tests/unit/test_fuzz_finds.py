"""The bugs tests/fuzz found, one test each (their inputs are in tests/corpus/*/crash-*)."""
import errno
import json

import pytest

from agrconfig.cli import provision
from agrconfig.errors import AgrError, UsageError
from agrconfig.ipc import client, protocol


@pytest.mark.parametrize("raw", [b"[" * 5000, b'{"op": ' + b'{"a":' * 5000])
def test_a_request_nested_too_deep_is_einval(raw):
    # json.loads raised RecursionError: the worker's server answered nothing and logged a
    # traceback per request.
    with pytest.raises(AgrError) as exc:
        protocol.parse_request(raw)
    assert exc.value.errno == errno.EINVAL and "malformed request" in exc.value.detail


@pytest.mark.parametrize("err", [{"errno": None}, {"errno": 5}, {"errno": ["EBUSY"]}, {"errno": "__name__"},
                                 {"errno": "errorcode"}, {"errno": "EBUSY", "detail": 7, "ioctl": None}])
def test_an_odd_error_in_a_reply_is_an_agr_error(err):
    # getattr(errno, name) took any attribute of the errno module, and refused non-strings
    # with TypeError: a reply from whatever holds the socket's name broke the front end.
    with pytest.raises(AgrError) as exc:
        client.reply_of("agr0", json.dumps({"error": err}).encode())
    e = exc.value
    assert type(e.errno) is int and str(e) and isinstance(e.ioctl, str) and isinstance(e.detail, str)
    assert e.errno == (errno.EBUSY if err["errno"] == "EBUSY" else errno.EIO)


def test_error_names_still_round_trip():
    for code in (errno.EPERM, errno.EBUSY, errno.ENOENT, errno.EMSGSIZE):
        e = AgrError(code, "control", "x")
        assert AgrError.from_dict(e.to_dict()).to_dict() == e.to_dict()


def test_a_configuration_file_that_is_not_utf8_names_its_line(tmp_path):
    # The text-mode read raised UnicodeDecodeError, which `--boot` does not catch: one bad
    # file stopped every later one.
    path = tmp_path / "ifconfig.agr0"
    path.write_bytes(b"create\nagrport re0\nup \x80\n")
    with pytest.raises(UsageError, match=r"ifconfig.agr0:3: not UTF-8 text"):
        provision.read_file(str(path))


def test_configuration_lines_split_as_in_text_mode(tmp_path):
    path = tmp_path / "ifconfig.agr0"
    path.write_bytes("create\r\nagrport re0\ragrport ré1 # é\n".encode())
    lines = provision.read_file(str(path))
    assert [line.number for line in lines] == [1, 2, 3]
    assert [type(op).__name__ for line in lines for op in line.ops] == ["Create", "AddPort", "AddPort"]


def test_boot_goes_on_past_a_file_that_is_not_utf8(tmp_path):
    (tmp_path / "ifconfig.agr0").write_bytes(b"create \xff\n")
    failures = provision.boot(str(tmp_path), apply_ops=None, dry_run=True, out=lambda line: None)
    assert len(failures) == 1 and "not UTF-8" in failures[0]


def test_a_status_with_an_infinite_number_is_a_value_error():
    # int(float("inf")) raised OverflowError out of from_json: Python's json reads Infinity.
    from agrconfig.status import AggregateStatus
    from tests.unit.statuses import aggregate
    doc = aggregate({}).to_json()
    doc["speed"] = float("inf")
    with pytest.raises(ValueError, match="speed"):
        AggregateStatus.from_json(json.loads(json.dumps(doc)))


@pytest.mark.parametrize("key,value", [("mac_policy", 0.1), ("announce", "3"), ("wtr_time", "9"),
                                       ("linkcheck", {"targets": 1}), ("link0", "yes")])
def test_a_status_with_a_bad_setting_is_a_value_error(key, value):
    # The flags were taken as sent: render indexed tables (KeyError) and did arithmetic with them.
    from agrconfig.status import AggregateStatus
    from tests.unit.statuses import aggregate
    doc = aggregate({}).to_json()
    doc["flags"][key] = value
    with pytest.raises(ValueError, match=key):
        AggregateStatus.from_json(doc)


def test_a_status_keeps_a_newer_workers_names_and_unknown_settings():
    from agrconfig.status import AggregateStatus
    from tests.unit.statuses import aggregate
    doc = aggregate({}).to_json()
    doc["flags"].update(mac_policy="somenewpolicy", newsetting=[1])
    status = AggregateStatus.from_json(doc)
    assert status.flags["mac_policy"] == "somenewpolicy" and status.flags["newsetting"] == (1,)


def test_json_status_shows_odd_values_of_a_reply(monkeypatch):
    # A value the model keeps as JSON (a read-only mapping) broke json.dumps.
    from agrconfig.cli import render
    from agrconfig.status import AggregateStatus
    from tests.unit.statuses import aggregate
    doc = aggregate({}).to_json()
    doc["datapath"] = {"x": [1]}
    facts = {"ifname": "agr0", "ifindex": 5, "flags": 0, "flags_str": [], "mtu": 1500, "address": "",
             "operstate": "UP", "carrier": True, "addr_info": [], "stats64": {},
             "agr": AggregateStatus.from_json(doc)}
    monkeypatch.setattr(render, "document", lambda f: f)
    monkeypatch.setattr(render.inspect, "describe", lambda name: facts)
    out = json.loads(render.render("agr0", as_json=True))
    assert out["linkinfo"]["info_data"]["datapath"] == {"x": [1]}
