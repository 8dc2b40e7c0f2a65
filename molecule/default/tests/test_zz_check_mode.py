"""`--check` of the whole site.yml on the converged cluster reports no change
on any host (runs last; the scenario's only check-mode step)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import playbook_env

RECAP = re.compile(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def test_check_mode_reports_no_changes() -> None:
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    env = playbook_env()
    run = subprocess.run(
        ["ansible-playbook", "-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent), "--check", str(scenario / "converge.yml")],
        capture_output=True, text=True, env=env, check=False, timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    recap = {host: (int(changed), int(unreachable), int(failed))
             for host, changed, unreachable, failed in RECAP.findall(run.stdout)}
    assert {"hpcgw-gw", "hpcgw-ctl", "hpcgw-c1", "hpcgw-c2"} <= set(recap), run.stdout[-3000:]
    assert {host: counts for host, counts in recap.items() if counts != (0, 0, 0)} == {}, run.stdout[-5000:]
