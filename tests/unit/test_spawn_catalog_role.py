"""Role spawn_profiles' own catalog tasks, run by Ansible against scratch
virtualenvs: the batch scripts are found through the file lookup (the role's
files/batch, or a site's path), clusters.json passes the hub's loader (the
task's validate), and both it and the config snippet match their golden
files for the demo inventory (golden/spawn_profiles/; HPCGW_UPDATE_GOLDEN=1
rewrites them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_run import ROOT, load_vars, run_inventory
from golden_files import GOLDEN, assert_golden

PLAYBOOK = Path(__file__).parent / "playbooks" / "spawn_catalog.yml"
BATCH = ROOT / "roles" / "spawn_profiles" / "files" / "batch"
SITE_SCRIPT = "#!/bin/sh\n# site {{ username }}\n{{ cmd }}\n\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the role's tasks set owner root")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """host -> its scratch configuration directory, after one playbook run."""
    tmp = tmp_path_factory.mktemp("catalog")
    site = tmp / "site.sh.j2"
    site.write_text(SITE_SCRIPT)
    inventories: dict[str, dict[str, Any]] = {
        "demo": load_vars("inventories/demo/group_vars/gateway/spawn_profiles.yml"),
        "site": {"spawn_profiles_clusters": [
            {"name": "a", "scheduler": "pbs", "queues": [{"name": "q", "cores": {"max": 2}}]},
            {"name": "b", "scheduler": "slurm", "batch_script": str(site), "queues": [{"name": "q", "cores": {"max": 2}}]},
        ]},
    }
    hosts: dict[str, Any] = {}
    dirs: dict[str, Path] = {}
    for host, inventory in inventories.items():
        venv, etc = tmp / host / "venv", tmp / host / "etc"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        (etc / "jupyterhub_config.d").mkdir(parents=True)
        hosts[host] = {**inventory, "jupyterhub_venv": str(venv), "jupyterhub_config_dir": str(etc),
                       "jupyterhub_group": "root", "spawn_profiles_gateway_tag": "hpcgw-gw",
                       "jupyterhub_state_dir": "/var/lib/jupyterhub"}
        dirs[host] = etc
    result = run_inventory(PLAYBOOK, tmp, {"all": {"children": {"gateway": {"hosts": hosts}}}})
    assert result.returncode == 0, result.stdout + result.stderr
    return dirs


def test_demo_catalog_and_snippet_match_golden(installed: dict[str, Path]) -> None:
    etc = installed["demo"]
    catalog = json.loads((etc / "clusters.json").read_text())
    for cluster in catalog["clusters"]:  # each cluster's scheduler's bundled template
        assert cluster["spawner"]["batch_script"] == (BATCH / f"{cluster['scheduler']}.sh.j2").read_text()
    assert_golden(GOLDEN / "spawn_profiles" / "clusters.demo.json", (etc / "clusters.json").read_text())
    snippet = (etc / "jupyterhub_config.d" / "50-spawn-profiles.py").read_text()
    compile(snippet, "50-spawn-profiles.py", "exec")
    # The scratch paths as the role's defaults name them.
    snippet = snippet.replace(str(etc), "/etc/jupyterhub").replace(str(etc.parent / "venv"), "/opt/jupyterhub")
    assert_golden(GOLDEN / "spawn_profiles" / "50-spawn-profiles.demo.py", snippet)


def test_a_sites_batch_script_replaces_the_bundled_one(installed: dict[str, Path]) -> None:
    a, b = json.loads((installed["site"] / "clusters.json").read_text())["clusters"]
    assert a["spawner"]["batch_script"] == (BATCH / "pbs.sh.j2").read_text()
    # Read verbatim: trailing newlines kept, batchspawner's {{ }} not rendered by Ansible.
    assert b["spawner"]["batch_script"] == SITE_SCRIPT


def test_the_page_templates_are_installed_for_the_hub(installed: dict[str, Path]) -> None:
    templates = installed["demo"] / "templates"
    role_files = ROOT / "roles" / "spawn_profiles" / "files" / "templates"
    assert sorted(p.name for p in templates.iterdir()) == sorted(p.name for p in role_files.iterdir())
    for page in role_files.iterdir():
        assert (templates / page.name).read_text() == page.read_text()
        assert (templates / page.name).stat().st_mode & 0o777 == 0o644
    snippet = (installed["demo"] / "jupyterhub_config.d" / "50-spawn-profiles.py").read_text()
    assert f"c.JupyterHub.template_paths.insert(0, {json.dumps(str(templates))})" in snippet
