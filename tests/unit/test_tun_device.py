"""/dev/net/tun before a worker needs it: the front end loads the tun module where it is
missing, and says exactly what is wrong where the module is loaded and the node is not.
The paths are temporary files; the real /dev/net/tun is never touched."""
import errno

import pytest

from agrconfig import worker
from agrconfig.errors import AgrError
from agrconfig.worker import tap


@pytest.fixture
def host(tmp_path):
    class Host:
        device = tmp_path / "dev" / "net" / "tun"
        misc = tmp_path / "sys" / "class" / "misc" / "tun"
        proc_misc = tmp_path / "proc" / "misc"
        loads = []

        def register(self):
            self.misc.mkdir(parents=True)
            (self.misc / "dev").write_text("10:200\n")

        def load(self, node=True, ok=True):
            """A modprobe that loads the module (and devtmpfs makes the node) or fails."""
            def run():
                self.loads.append(1)
                if ok:
                    self.register()
                    if node:
                        self.device.parent.mkdir(parents=True, exist_ok=True)
                        self.device.touch()
                    return True, ""
                return False, "modprobe tun: FATAL: Module tun not found in directory /lib/modules/6.1.0"
            return run

        def ensure(self, load):
            tap.ensure_device(str(self.device), lambda: tap.tun_registered(str(self.misc), str(self.proc_misc)),
                              load)
    return Host()


def test_a_present_node_needs_nothing(host):
    host.device.parent.mkdir(parents=True)
    host.device.touch()
    host.ensure(host.load())
    assert host.loads == []


def test_a_missing_module_is_loaded(host):
    host.ensure(host.load())
    assert host.loads == [1] and host.device.exists()


def test_a_loaded_module_without_its_node_is_said_exactly(host):
    host.register()
    with pytest.raises(AgrError) as caught:
        host.ensure(host.load())
    assert host.loads == [], "the module is there: nothing to load"
    assert caught.value.errno == errno.ENOENT
    assert caught.value.detail == (f"{host.device} is missing although the tun module is loaded: "
                                   f"create the node (mknod {host.device} c 10 200)")


def test_a_module_loaded_whose_node_does_not_appear_is_said_so_too(host):
    with pytest.raises(AgrError) as caught:
        host.ensure(host.load(node=False))
    assert host.loads == [1]
    assert "missing although the tun module is loaded" in caught.value.detail


def test_a_driver_built_in_is_seen_in_proc_misc_where_sys_is_not_mounted(host):
    """Built in (no /sys/module/tun), no /sys: /proc/misc names it, with its minor."""
    host.proc_misc.parent.mkdir(parents=True)
    host.proc_misc.write_text("234 btrfs-control\n200 tun\n237 loop-control\n")
    with pytest.raises(AgrError) as caught:
        host.ensure(host.load())
    assert host.loads == []
    assert caught.value.detail.endswith("create the node (mknod %s c 10 200)" % host.device)


def test_a_module_that_cannot_be_loaded_is_said_so(host):
    with pytest.raises(AgrError) as caught:
        host.ensure(host.load(ok=False))
    assert caught.value.errno == errno.ENOENT and caught.value.ioctl == "SIOCIFCREATE"
    assert caught.value.detail == (f"{host.device} is missing and the tun module could not be loaded "
                                   "(modprobe tun: FATAL: Module tun not found in directory /lib/modules/6.1.0)")
    assert str(caught.value).startswith("SIOCIFCREATE: No such file or directory (ENOENT: ")


def test_spawn_checks_before_it_forks(monkeypatch):
    """The front end (root) checks; the worker is not started when the node cannot be had."""
    from agrconfig.worker import process
    forks = []
    monkeypatch.setattr(process, "spawn", lambda name, resume: forks.append(name))

    def missing():
        raise AgrError(errno.ENOENT, "SIOCIFCREATE", "/dev/net/tun is missing")
    monkeypatch.setattr(tap, "ensure_device", missing)
    with pytest.raises(AgrError):
        worker.spawn("agr0", resume=False)
    assert forks == []
    monkeypatch.setattr(tap, "ensure_device", lambda: None)
    worker.spawn("agr0", resume=False)
    assert forks == ["agr0"]


def test_modprobe_is_asked_for_tun_and_its_failure_is_reported(monkeypatch):
    import subprocess
    calls = []

    def run(argv, **kw):
        calls.append((argv, kw["env"]["PATH"]))
        return subprocess.CompletedProcess(argv, 1, "", "modprobe: FATAL: Module tun not found\n")
    monkeypatch.setattr(subprocess, "run", run)
    assert tap._modprobe() == (False, "modprobe tun: modprobe: FATAL: Module tun not found")
    assert calls[0][0] == ["modprobe", "tun"] and calls[0][1].endswith(":/usr/sbin:/sbin")
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(argv, 0, "", ""))
    assert tap._modprobe()[0] is True

    def absent(argv, **kw):
        raise FileNotFoundError(2, "No such file or directory", "modprobe")
    monkeypatch.setattr(subprocess, "run", absent)
    loaded, why = tap._modprobe()
    assert not loaded and why.startswith("modprobe tun: ") and "No such file" in why
