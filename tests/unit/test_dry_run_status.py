"""-n's exit status for fleet tools: 0 when nothing would change, 3 when something would; 1 and
2 keep their meanings. main() runs for real against an Interface model (provision.current replaced) and
applies nothing (commands.apply must not be called in a dry run)."""
import copy

import pytest

from agrconfig.cli import main as cli, provision
from agrconfig.client import commands
from agrconfig.client.interface import Interface
from tests.unit.test_provision_plan import MANUAL, agr, plain


@pytest.fixture
def world(monkeypatch, capsys):
    models = {}

    def current(name):
        return copy.deepcopy(models.get(name, Interface(exists=False, agr=name.startswith("agr"))))

    def apply(name, ops):
        raise AssertionError(f"a dry run applied {name} {ops}")

    monkeypatch.setattr(provision, "current", current)
    monkeypatch.setattr(commands, "apply", apply)

    def run(*argv):
        code = cli.main(list(argv))
        return code, capsys.readouterr()
    return models, run


def test_words(world):
    models, run = world
    code, out = run("-n", "agr0", "create")
    assert code == 3 and out.out == "agrconfig agr0 create\n"
    models["agr0"] = agr(ports=["re0"], lacp_fast=True)
    assert run("-n", "agr0", "create", "agrport", "re0", "lacptimeout", "fast") == (0, ("", ""))
    assert run("-n", "agr0", "lacptimeout", "slow")[0] == 3


def test_file(world, tmp_path):
    models, run = world
    conf = tmp_path / "ifconfig.agr0"
    conf.write_text(MANUAL)
    models["agr0"] = agr(ports=["re0", "re1"], addrs=["192.0.2.10/24"], lacp_fast=True)
    assert run("-n", "-f", str(conf), "agr0") == (0, ("", ""))
    conf.write_text(MANUAL.replace("agrport re1\n", ""))
    code, out = run("-n", "-f", str(conf), "agr0")
    assert (code, out.out) == (3, "agrconfig agr0 -agrport re1\n")


def test_boot(world, tmp_path):
    models, run = world
    (tmp_path / "ifconfig.agr0").write_text(MANUAL)
    (tmp_path / "ifconfig.re0").write_text("up\n")
    models["agr0"] = agr(ports=["re0", "re1"], addrs=["192.0.2.10/24"], lacp_fast=True)
    models["re0"] = plain()
    assert run("-n", "--boot", f"--confdir={tmp_path}")[0] == 0
    models["re0"] = plain(up=False)
    assert run("-n", "--boot", f"--confdir={tmp_path}")[0] == 3
    # A failing file is 2 even when another would change.
    (tmp_path / "ifconfig.agr1").write_text("frobnicate\n")
    code, out = run("-n", "--boot", f"--confdir={tmp_path}")
    assert code == 2 and "ifconfig.agr1" in out.err


def test_usage_error_and_status_keep_their_meanings(world, monkeypatch):
    _models, run = world
    assert run("-n", "agr0", "frobnicate")[0] == 1
    from agrconfig.cli import render
    monkeypatch.setattr(render, "render", lambda name, as_json=False, verbose=False: "status\n")
    assert run("-n", "agr0") == (0, ("status\n", ""))


def test_usage_text_says_it():
    assert "3 when something would" in " ".join(cli.__doc__.split())


def test_missing_file_is_an_operation_failure(world, tmp_path):
    _models, run = world
    missing = tmp_path / "ifconfig.agr0"
    for argv in (("-n", "-f", str(missing), "agr0"), ("-f", str(missing), "agr0")):
        code, out = run(*argv)
        assert code == 2 and out.err == f"agrconfig: {missing}: No such file or directory\n", out
