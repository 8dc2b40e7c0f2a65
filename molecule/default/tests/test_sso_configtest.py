"""Non-basic SSO modes: rendered with their modules installed, configtest OK."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def test_shibboleth_mellon_openidc_pass_configtest() -> None:
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(scenario.parents[1] / "roles"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(scenario / "sso_configtest.yml")],
        capture_output=True, text=True, env=env, check=False, timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for mode in ("shibboleth", "mellon", "openidc"):
        assert f"Configtest ({mode})" in run.stdout
