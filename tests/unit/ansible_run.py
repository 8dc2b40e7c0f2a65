"""Run the bundle's real playbooks against localhost for unit-level checks.

Only plays that change nothing run this way (validation, rendering into a
temporary directory), so the tests are safe on any machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run_playbook(playbook: Path, tmp_path: Path, groups: dict[str, dict[str, Any]],
                 extra_vars: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `playbook` with an inventory of one local host per group.

    groups maps a group name to that host's variables; the host is named
    after the group so delegation and hostvars work as in a real inventory.
    """
    inventory: dict[str, Any] = {"all": {"children": {}}}
    for group, host_vars in groups.items():
        inventory["all"]["children"][group] = {"hosts": {f"{group}-host": host_vars}}
    return run_inventory(playbook, tmp_path, inventory, extra_vars)


def run_inventory(playbook: Path, tmp_path: Path, inventory: dict[str, Any],
                  extra_vars: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `playbook` with this inventory (YAML inventory structure); every
    host is reached with the local connection and this interpreter."""
    inventory = {"all": dict(inventory.get("all", {}))}
    inventory["all"]["vars"] = dict(inventory["all"].get("vars", {}), ansible_connection="local",
                                    ansible_python_interpreter=sys.executable)
    inv_file = tmp_path / "hosts.yml"
    inv_file.write_text(yaml.safe_dump(inventory))
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inv_file), str(playbook)]
    if extra_vars:
        vars_file = tmp_path / "extra.yml"
        vars_file.write_text(yaml.safe_dump(extra_vars))
        cmd += ["-e", f"@{vars_file}"]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def load_vars(*relative: str) -> dict[str, Any]:
    """Merge the YAML variable files given relative to the repository root."""
    merged: dict[str, Any] = {}
    for rel in relative:
        merged.update(yaml.safe_load((ROOT / rel).read_text()) or {})
    return merged
