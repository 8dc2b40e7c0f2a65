"""Render the gateway roles' templates with real Ansible, as a converge would.

One ``ansible-playbook`` run (tests/unit/playbooks/render_templates.yml,
local connection, output into a scratch directory) renders every case.
The variables come in the layers of the real play (playbooks/gateway.yml):

* the defaults of every role of that play, as inventory group ``all``;
* the scenario's inventory variables (a case's ``inventory``), as host vars;
* the vars of the role task that renders the template (e.g. the getent
  result the sudo rules read), as host vars too;
* the roles' ``vars/main.yml``, as play vars (above the inventory, as role
  vars are);
* fixed facts (FACTS), so the render is the same on every machine;
* role_path, the directory of the template's role, as Ansible sets it for
  that role's tasks (role variables read other roles' files through it).

Nothing names a role variable here except the scenarios' own data, so a
variable renamed or a template moved between roles is picked up by
regenerating the golden files (``HPCGW_UPDATE_GOLDEN=1``, see golden_files).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ansible_run import ROOT, load_vars, run_inventory

PLAYBOOK = Path(__file__).parent / "playbooks" / "render_templates.yml"
GATEWAY_PLAY = ROOT / "playbooks" / "gateway.yml"
SECRET = "golden-fixture-secret-0123456789abcdef"
# The gateway's facts: what setup and getent would report on a Debian host.
FACTS: dict[str, Any] = {
    "fqdn": "gw.example.invalid",
    "hostname": "gw",
    "default_ipv4": {"address": "172.30.0.10", "interface": "eth0"},
    "distribution": "Debian",
    "distribution_major_version": "12",
    "os_family": "Debian",
    "getent_passwd": {
        "root": ["x", "0", "0", "root", "/root", "/bin/bash"],
        "daemon": ["x", "1", "1", "daemon", "/usr/sbin", "/usr/sbin/nologin"],
        "www-data": ["x", "33", "33", "www-data", "/var/www", "/usr/sbin/nologin"],
        "_shibd": ["x", "101", "103", "", "/var/lib/shibboleth", "/usr/sbin/nologin"],
        "munge": ["x", "102", "104", "", "/nonexistent", "/usr/sbin/nologin"],
        "jupyterhub": ["x", "998", "998", "", "/var/lib/jupyterhub", "/usr/sbin/nologin"],
        "chp": ["x", "997", "997", "", "/nonexistent", "/usr/sbin/nologin"],
        "slurm": ["x", "64030", "64030", "", "/nonexistent", "/usr/sbin/nologin"],
        "svcacct": ["x", "900", "900", "", "/home/svcacct", "/bin/bash"],
        # a system account whose primary group is the users' group
        "svcbatch": ["x", "901", "30000", "", "/nonexistent", "/usr/sbin/nologin"],
        "alice": ["x", "20001", "20001", "", "/home/alice", "/bin/bash"],
        "bob": ["x", "20002", "20002", "", "/home/bob", "/bin/bash"],
    },
    "getent_group": {"hpcgw-users": ["x", "30000", "alice,bob,svcacct"]},
}


@dataclass(frozen=True)
class Case:
    """One rendered file: golden name, template (relative to the repository),
    variables, and the role whose task renders it (default: the template's
    own role; a test's template names the role it stands in for)."""

    name: str
    template: str
    inventory: dict[str, Any] = field(default_factory=dict)
    role: str = ""


def gateway_roles() -> list[str]:
    """The roles of the gateway play, in order."""
    play = yaml.safe_load(GATEWAY_PLAY.read_text())[0]
    return [r["role"] if isinstance(r, dict) else str(r) for r in play["roles"]]


def role_layers(roles: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(defaults, vars) of these roles, merged in play order."""
    defaults: dict[str, Any] = {}
    role_vars: dict[str, Any] = {}
    for role in roles:
        for layer, merged in (("defaults", defaults), ("vars", role_vars)):
            path = ROOT / "roles" / role / layer / "main.yml"
            if path.exists():
                merged.update(yaml.safe_load(path.read_text()) or {})
    return defaults, role_vars


def _template_tasks(tasks: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always"):
            found += _template_tasks(task.get(key))
        module = task.get("ansible.builtin.template") or task.get("template")
        if isinstance(module, dict):
            found.append(task)
    return found


def task_vars(template: str) -> dict[str, Any]:
    """The vars of the role task(s) that render this template (src = its file name)."""
    path = ROOT / template
    role_dir = path.parents[1]
    merged: dict[str, Any] = {}
    for tasks_file in sorted((role_dir / "tasks").glob("*.yml")):
        for task in _template_tasks(yaml.safe_load(tasks_file.read_text())):
            module = task.get("ansible.builtin.template") or task.get("template")
            if module.get("src") == path.relative_to(role_dir / "templates").as_posix():
                merged.update(task.get("vars") or {})
    return merged


def inventory_vars(inventory_dir: str, group: str) -> dict[str, Any]:
    """group_vars/all then group_vars/<group> of an inventory (files in name order)."""
    files = [p.relative_to(ROOT).as_posix()
             for sub in ("all", group)
             for p in sorted((ROOT / inventory_dir / "group_vars" / sub).glob("*.yml"))]
    return load_vars(*files)


def fixture_secret() -> dict[str, str]:
    """What slurp returns for the shared secret file (__gateway_apache_secret)."""
    return {"content": base64.b64encode(f"{SECRET}\n".encode()).decode(), "encoding": "base64"}


def render(cases: list[Case], tmp_path: Path) -> dict[str, str]:
    """Render every case in one playbook run; name -> rendered text."""
    defaults, role_vars = role_layers(gateway_roles())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    role_vars_file = tmp_path / "role_vars.yml"
    role_vars_file.write_text(yaml.safe_dump(role_vars))
    hosts = {}
    for case in cases:
        template = ROOT / case.template
        hosts[case.name] = {**task_vars(case.template), **case.inventory,
                            "render_src": str(template), "render_dest": str(out_dir / case.name)}
        role = case.role or (template.parents[1].name if template.parents[2] == ROOT / "roles" else "")
        if role:
            hosts[case.name]["role_path"] = str(ROOT / "roles" / role)
    inventory = {"all": {"vars": defaults, "children": {"gateway": {"hosts": hosts}}}}
    result = run_inventory(PLAYBOOK, tmp_path, inventory,
                           {"render_role_vars_file": str(role_vars_file), "render_facts": FACTS})
    if result.returncode != 0:
        raise AssertionError(f"rendering failed:\n{result.stdout}\n{result.stderr}")
    return {case.name: (out_dir / case.name).read_text() for case in cases}
