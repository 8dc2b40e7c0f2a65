"""--check on the converged gateway reports no changes (runs last)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path


def test_check_mode_reports_no_changes() -> None:
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(scenario.parents[1] / "roles"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--check", str(scenario / "converge.yml")],
        capture_output=True, text=True, env=env, check=False, timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    recap = re.findall(r"hpcgw3-gateway\s*:\s*ok=\d+\s+changed=(\d+)", run.stdout)
    assert recap and recap[-1] == "0", run.stdout[-3000:]
