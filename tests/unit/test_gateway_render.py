"""The gateway's generated files (the hub account's sudo rules, the hub's
configuration and spawn_profiles' snippet, the proxy's unit, each cluster's
command prefix) rendered from the demo and example inventories match the
reviewed golden files. Each fact has one owner (issue 14): the files agree
because they are rendered from the same variables.

Regenerate after a reviewed change: HPCGW_UPDATE_GOLDEN=1 pytest tests/unit/test_gateway_render.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ansible_run import load_vars, run_playbook

PLAYBOOK = Path(__file__).parent / "playbooks" / "render_gateway.yml"
GOLDEN = Path(__file__).parent / "golden" / "gateway"
FILES = ("sudoers", "jupyterhub_config.py", "50-spawn-profiles.py", "configurable-http-proxy.service", "exec_prefix.json")
INVENTORIES = {
    "demo": ("inventories/demo/group_vars/all/slurm.yml", "inventories/demo/group_vars/all/demo_users.yml",
             "inventories/demo/group_vars/gateway/front.yml", "inventories/demo/group_vars/gateway/spawn_profiles.yml"),
    "example": ("inventories/example/group_vars/gateway/slurm.yml", "inventories/example/group_vars/gateway/front.yml",
                "inventories/example/group_vars/gateway/spawn_profiles.yml"),
}


def _render(tmp_path: Path, inventory: str, **change: Any) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    gateway = dict(load_vars(*INVENTORIES[inventory]), munge_key_source_host="gateway-host", **change)
    # The demo's hub binds to a fact (the container's address): a fixed one here.
    result = run_playbook(PLAYBOOK, tmp_path, {"gateway": gateway},
                          {"render_dir": str(out), "jupyterhub_hub_ip": "10.0.0.5"})
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.parametrize("inventory", sorted(INVENTORIES))
def test_matches_golden(tmp_path: Path, inventory: str) -> None:
    out = _render(tmp_path, inventory)
    for name in FILES:
        golden = GOLDEN / inventory / name
        if os.environ.get("HPCGW_UPDATE_GOLDEN") == "1":
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text((out / name).read_text())
        assert (out / name).read_text() == golden.read_text(), name


def test_the_sudo_rules_allow_what_the_prefixes_run() -> None:
    """Every cluster's prefix is the start of a command its sudo rule allows."""
    for inventory in INVENTORIES:
        sudoers = (GOLDEN / inventory / "sudoers").read_text()
        for name, prefix in json.loads((GOLDEN / inventory / "exec_prefix.json").read_text()).items():
            assert prefix.startswith("sudo -n -u {username}"), (inventory, name)
            command = prefix.removeprefix("sudo -n -u {username}").strip()
            if command:  # ssh -F <config> <host>: pinned in the rule, dots escaped
                ssh, _, config, host = command.split(" ")
                assert f"{ssh} ^-F {config.replace('.', '[.]')} {host.replace('.', '[.]')} (" in sudoers, (inventory, name)
            else:
                assert "/usr/bin/sbatch" in sudoers, (inventory, name)


def test_the_hub_and_apache_follow_the_proxys_ports(tmp_path: Path) -> None:
    out = _render(tmp_path, "demo", chp_port=9000, chp_api_port=9001)
    config = (out / "jupyterhub_config.py").read_text()
    unit = (out / "configurable-http-proxy.service").read_text()
    assert 'c.JupyterHub.bind_url = "http://127.0.0.1:9000/"' in config
    assert 'c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:9001"' in config
    assert "--port 9000" in unit and "--api-port 9001" in unit


def test_the_proxy_and_the_rules_follow_their_owners(tmp_path: Path) -> None:
    out = _render(tmp_path, "demo", jupyterhub_hub_port=8181, jupyterhub_proxy_env_file="/etc/jupyterhub/secrets/p.env",
                  ssh_submit_client_config="/etc/ssh/other_config", spawn_profiles_slurm_bin_dir="/opt/slurm/bin")
    unit = (out / "configurable-http-proxy.service").read_text()
    assert "--default-target http://10.0.0.5:8181 " in unit
    assert "EnvironmentFile=/etc/jupyterhub/secrets/p.env" in unit
    sudoers = (out / "sudoers").read_text()
    assert "/usr/bin/ssh ^-F /etc/ssh/other_config hpcgw-ctl (" in sudoers
    assert "/opt/slurm/bin/sbatch" in sudoers and "/usr/bin/sbatch" not in sudoers
    assert json.loads((out / "exec_prefix.json").read_text())["vialogin"] == (
        "sudo -n -u {username} /usr/bin/ssh -F /etc/ssh/other_config hpcgw-ctl")


def test_without_clusters_only_the_local_profile_is_allowed(tmp_path: Path) -> None:
    out = _render(tmp_path, "demo", spawn_profiles_clusters=[], spawn_profiles_presets=[])
    sudoers = (out / "sudoers").read_text()
    assert "HPCGW_BATCH" not in sudoers
    assert sudoers.rstrip().endswith("jupyterhub ALL=(HPCGW_USERS) NOPASSWD: HPCGW_LOCAL")
