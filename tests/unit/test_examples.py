"""examples/ansible/agrconfig.yml says "changed" by agrconfig -n's exit status (0 nothing, 3
something; others fail). tests/package/test_ansible.py runs it with ansible-playbook."""
import os

import yaml   # PyYAML, in the test extra: a missing module fails the test, it does not skip it
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_ansible_playbook_uses_the_dry_run_status():
    with open(os.path.join(ROOT, "examples", "ansible", "agrconfig.yml")) as f:
        [play] = yaml.safe_load(f)
    tasks = {t["name"]: t for t in play["tasks"]}
    copy = next(t for t in play["tasks"] if "ansible.builtin.copy" in t)
    assert copy["ansible.builtin.copy"]["dest"] == "{{ agr_conf_dest }}"
    assert play["vars"]["agr_conf_dest"] == "/etc/ifconfig.{{ agr_interface }}"
    plan = tasks["Plan (dry run; also under --check)"]
    assert " -n -f " in plan["ansible.builtin.command"]
    assert plan["changed_when"] == "agr_plan.rc == 3"
    assert plan["failed_when"] == "agr_plan.rc not in [0, 3]"
    assert plan["check_mode"] is False
    apply = tasks["Apply the file"]
    assert " -f " in apply["ansible.builtin.command"] and " -n " not in apply["ansible.builtin.command"]
    assert apply["when"] == "agr_plan.rc | default(0) == 3"
