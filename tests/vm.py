"""The VM stage: Debian's own kernel (linux-image-amd64) booted under QEMU by virtme-ng over this
machine's root filesystem, running the guest tests (tests/vmstage/guest) once per test session.

The guest needs what this lab's kernel lacks (802.1Q, bonding, the bridge's VLAN filtering as a
module). KVM is used where /dev/kvm works; nested KVM hangs or aborts on some machines, so it is
probed first with a bounded boot, and QEMU's TCG (about 10x slower) is the fallback.

The root filesystem reaches the guest over 9p without caching, where every stat and open is a
round trip through an emulated device: Python's start-up took 7 s and one agrconfig command
30 s under TCG. So the interpreter's standard library, the virtual environment and the checkout
are also copied, once, into the guest's memory (one tar file read sequentially) and stacked in
front of the shared paths with overlayfs: the same paths, the same files, read from RAM; a file
left out of the copy is still found on the shared filesystem below.
"""
import glob
import importlib.util
import os
import py_compile
import re
import shlex
import signal
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET

from tests.lab import ROOT

GUEST_DIR = "tests/vmstage/guest"
# The whole stage (boot, copy, every guest test) must end within this; CI allows 12 minutes.
STAGE_TIMEOUT = float(os.environ.get("AGRCONFIG_VM_TIMEOUT", 660))
KVM_PROBE_TIMEOUT = 45
MODULES = "tun veth bonding 8021q bridge sch_ingress cls_bpf"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Left out of the in-memory copy (still reachable on the shared filesystem): big and unused.
COPY_EXCLUDES = ("site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip",
                 "lib2to3", "pip", "setuptools", "libcst", "textual", "virtme", "hypothesis",
                 "pygments", "mutmut", "coverage", "scapy", "pkg_resources", "rich", ".git", ".hypothesis", ".pytest_cache",
                 "mutants")


# Cables of two virtio-net NICs each, one QEMU hub per cable: devices whose hardware VLAN filter
# is fixed on (QEMU drops tagged frames of unregistered VLANs unless the NIC is promiscuous) and
# whose speed `ethtool -s` sets (a veth's cannot be set).
HUB_NICS = ("52:54:00:a6:00:01", "52:54:00:a6:00:02")
SECOND_HUB_NICS = ("52:54:00:a6:01:01", "52:54:00:a6:01:02")
CABLES = (HUB_NICS, SECOND_HUB_NICS)


def nic_options():
    opts = []
    for hub, cable in enumerate(CABLES, 7):
        for end, mac in enumerate(cable):
            netdev = f"agrhub{hub}{end}"
            # "=": vng would read a separate "-netdev ..." as an option of its own
            opts.append(f"--qemu-opts=-netdev hubport,id={netdev},hubid={hub} "
                        f"-device virtio-net-pci,netdev={netdev},mac={mac}")
    return opts


class VmError(Exception):
    """The VM could not run the guest tests: the reason, for every test that needed them."""


class GuestResult:
    """One guest test's outcome, as the guest's pytest wrote it into its JUnit XML."""
    __slots__ = ("nodeid", "outcome", "message", "details", "seconds")

    def __init__(self, nodeid, outcome, message="", details="", seconds=0.0):
        self.nodeid, self.outcome, self.message = nodeid, outcome, message
        self.details, self.seconds = details, seconds


class GuestRun:
    __slots__ = ("results", "accel", "seconds", "log")

    def __init__(self, results, accel, seconds, log):
        self.results, self.accel, self.seconds, self.log = results, accel, seconds, log


def vng():
    """The vng command: the virtual environment's (pip install virtme-ng), else PATH's."""
    here = os.path.join(os.path.dirname(sys.executable), "vng")
    if os.access(here, os.X_OK):
        return here
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if os.access(os.path.join(d, "vng"), os.X_OK):
            return os.path.join(d, "vng")
    raise VmError("vng not found: `pip install virtme-ng` into the test environment (scripts/bootstrap test)")


def kernel():
    """Debian's kernel image (linux-image-amd64), the newest if several."""
    found = sorted(glob.glob("/boot/vmlinuz-*-amd64"), key=_version_key)
    if not found:
        raise VmError("no /boot/vmlinuz-*-amd64: `apt-get install linux-image-amd64` (scripts/bootstrap test)")
    release = os.path.basename(found[-1])[len("vmlinuz-"):]
    if not os.path.isdir(f"/lib/modules/{release}"):
        raise VmError(f"/lib/modules/{release} is missing: the kernel's modules are not installed")
    return found[-1]


def _version_key(path):
    return [int(n) for n in re.findall(r"\d+", os.path.basename(path))]


def _base_argv(image, accel, memory, cpus):
    argv = [vng(), "--run", image, "--user", "root", "--memory", memory, "--cpus", str(cpus)]
    return argv + (["--disable-kvm"] if accel == "tcg" else [])


def _env():
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(vng()) + os.pathsep + GUEST_PATH + os.pathsep + env.get("PATH", "")
    return env


def accelerator(image):
    """"kvm" when a KVM guest boots and answers within KVM_PROBE_TIMEOUT, else "tcg".
    AGRCONFIG_VM_ACCEL=kvm|tcg skips the probe."""
    forced = os.environ.get("AGRCONFIG_VM_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return "tcg"
    os.close(fd)
    marker = "agrconfig-kvm-answers"
    out, _finished = run_bounded(_base_argv(image, "kvm", "512M", 1) + ["--", f"echo {marker}"],
                                 KVM_PROBE_TIMEOUT)
    return "kvm" if marker in out else "tcg"    # else it failed, or hung (nested KVM): never printed


def run_bounded(argv, timeout):
    """(output, finished in time): vng forks QEMU, so a late VM is ended as a process group."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        return proc.communicate(timeout=timeout)[0], True
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0], False


def copy_tree(path):
    """A tar file of the interpreter's standard library, the virtual environment and the checkout
    (their paths inside it as on this machine, without the leading /), for the guest's RAM."""
    tops = copied_paths()

    def keep(info):
        return None if os.path.basename(info.name) in COPY_EXCLUDES or info.name.endswith(
            (".opt-1.pyc", ".opt-2.pyc")) else info

    with tarfile.open(path, "w") as tar, tempfile.TemporaryDirectory() as scratch:
        for top in tops:
            tar.add(top, arcname=top.lstrip("/"), filter=keep)
            _add_bytecode(tar, top, scratch, keep)
    return tops


def _add_bytecode(tar, top, scratch, keep):
    """Compiled modules where the tree has none (PYTHONDONTWRITEBYTECODE, as in CI here): the
    guest would otherwise compile every module in every process, under TCG."""
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if keep(tarfile.TarInfo(d)) is not None and d != "__pycache__"]
        for name in files:
            source = os.path.join(folder, name)
            cache = importlib.util.cache_from_source(source)
            if not name.endswith(".py") or os.path.exists(cache):
                continue
            target = os.path.join(scratch, "c.pyc")
            if py_compile.compile(source, cfile=target, doraise=False) is not None:
                tar.add(target, arcname=cache.lstrip("/"))


def copied_paths():
    tops = [os.path.realpath(p) for p in (sysconfig.get_paths()["stdlib"], sys.prefix, ROOT)]
    # One overlay per top directory: none inside another.
    return [t for t in dict.fromkeys(tops) if not any(t != o and t.startswith(o + "/") for o in tops)]


def guest_script(result_dir, tops, pytest_args):
    """What the guest runs: modules, the in-memory copy, then pytest on the guest tests."""
    q = shlex.quote
    overlays = "".join(
        f"mkdir -p {q('/run/hvcopy' + t)} && mount -t overlay overlay "
        f"-o lowerdir={q('/run/hvcopy' + t)}:{q(t)} {q(t)} || echo 'overlay on {t} failed'\n"
        for t in tops)
    return f"""set -u
export PATH={GUEST_PATH}
exec >{q(result_dir)}/guest.log 2>&1
echo "kernel $(uname -r)"
modprobe -a {MODULES} || echo "modprobe failed"
start=$(date +%s)
mkdir -p /run/hvcopy && mount -t tmpfs -o size=1200m hvcopy /run/hvcopy &&
    tar -xf {q(result_dir)}/copy.tar -C /run/hvcopy && rm -f {q(result_dir)}/copy.tar || echo "copy failed"
{overlays}echo "copied into memory in $(( $(date +%s) - start )) s"
cd {q(ROOT)}
AGRCONFIG_VM_GUEST=1 PYTHONDONTWRITEBYTECODE=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 AGRCONFIG_TEST_PREFIX={q(os.environ.get("AGRCONFIG_TEST_PREFIX", "v"))} \\
    {q(sys.executable)} -m pytest -p no:cacheprovider -v -o junit_logging=all \\
    --junitxml={q(result_dir)}/guest.xml {" ".join(q(a) for a in pytest_args)}
echo $? >{q(result_dir)}/guest.rc
"""


def run_guest_suite(result_dir, pytest_args=(GUEST_DIR,), memory="2G", cpus=2, timeout=None):
    """Boot the VM once, run the guest tests, return their results by node id."""
    timeout = STAGE_TIMEOUT if timeout is None else timeout
    start = time.monotonic()
    image = kernel()
    accel = accelerator(image)
    tops = copy_tree(os.path.join(result_dir, "copy.tar"))
    with open(os.path.join(result_dir, "guest.sh"), "w") as f:
        f.write(guest_script(result_dir, tops, pytest_args))
    argv = _base_argv(image, accel, memory, cpus) + nic_options() + ["--rwdir", result_dir, "--",
                                                                     f"sh {result_dir}/guest.sh"]
    left = timeout - (time.monotonic() - start)
    console, finished = run_bounded(argv, max(left, 1))
    if not finished:
        console = f"the VM ({accel}) did not finish within {timeout:.0f} s\n" + console
    log = console + _read(os.path.join(result_dir, "guest.log"))
    seconds = time.monotonic() - start
    xml = os.path.join(result_dir, "guest.xml")
    if not os.path.exists(xml):
        raise VmError(f"the guest wrote no results ({accel}, {seconds:.0f} s):\n{log[-6000:]}")
    return GuestRun(parse_junit(xml), accel, seconds, log)


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def parse_junit(path):
    """{node id: GuestResult} from pytest's JUnit XML (module-level test functions)."""
    results = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        nodeid = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        outcome, message, details = "passed", "", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                message, details = node.get("message", ""), node.text or ""
                break
        for out in ("system-out", "system-err"):
            node = case.find(out)
            if node is not None and node.text:
                details += f"\n--- guest {out} ---\n{node.text}"
        results[nodeid] = GuestResult(nodeid, outcome, message, details, float(case.get("time", 0)))
    return results


def collect_guest_tests(args=(GUEST_DIR,)):
    """The guest tests' node ids, collected here (not run: the guest conftest refuses that)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, AGRCONFIG_VM_GUEST="collect"))
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    if proc.returncode != 0 or not ids:
        raise VmError(f"collecting the guest tests failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return ids
