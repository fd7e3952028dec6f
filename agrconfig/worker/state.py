"""The worker's state file: what must survive a worker crash."""
import json
import os

from .. import paths


def load(name):
    """The saved state of `name`, or None when there is none or it is unreadable."""
    try:
        with open(paths.state_file(name)) as f:
            state = json.load(f)
    except (FileNotFoundError, ValueError, OSError):
        return None
    if not isinstance(state, dict) or state.get("name") != name or not isinstance(state.get("ports"), list):
        return None
    return state


def save(state):
    path = paths.state_file(state["name"])
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, path)  # atomic: a crash leaves the old or the new state, never half


def remove(name):
    for path in (paths.state_file(name), paths.pid_file(name), paths.log_file(name)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def all_names():
    """Names of every agr interface with a state file in this network namespace."""
    try:
        entries = os.listdir(paths.run_dir())
    except FileNotFoundError:
        return []
    names = [e[:-len(".state")] for e in entries if e.endswith(".state")]
    return sorted((n for n in names if paths.is_agr_name(n)), key=lambda n: int(n[3:]))


def owner_of(port_name):
    """The agr interface whose state lists `port_name` as a member, or None."""
    for name in all_names():
        state = load(name)
        if state and any(p.get("name") == port_name for p in state["ports"]):
            return name
    return None
