"""Gateway instances beside production on hpcgw-gw, for the scenarios of
test_instance.py (the demo's test instance: upgrade, PostgreSQL, removal)
and test_previous_major.py (an instance on the previous JupyterHub major).

An instance is converged with the gateway play only and removed with
playbooks/remove_instance.yml, both with its variables file (`-e @file`);
production's files and its hub's and proxy's PIDs must not change.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from testinfra.host import Host

from conftest import ORIGIN, playbook_env

PROJECT = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]).parents[1]
_HUB_VARS = yaml.safe_load((PROJECT / "roles" / "jupyterhub" / "vars" / "main.yml").read_text())
CURRENT_RELEASE = _HUB_VARS["jupyterhub_bundle_release"]
CURRENT_JUPYTERHUB = yaml.safe_load(
    (PROJECT / "roles" / "jupyterhub" / "defaults" / "main.yml").read_text())["jupyterhub_version"]
# The previous JupyterHub major the bundle supports (role jupyterhub's lock
# files): the other key of __jupyterhub_lock_files than jupyterhub_version.
(PREVIOUS_JUPYTERHUB,) = [v for v in _HUB_VARS["__jupyterhub_lock_files"] if v != CURRENT_JUPYTERHUB]
RECAP = re.compile(r"^hpcgw-gw\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

# Production's files and processes, which nothing of an instance may change.
PRODUCTION_FILES = [
    "/etc/jupyterhub/jupyterhub_config.py",
    "/etc/jupyterhub/clusters.json",
    "/etc/jupyterhub/secrets/cookie_secret",
    "/etc/jupyterhub/secrets/gateway_secret",
    "/etc/jupyterhub/secrets/proxy.env",
    "/etc/sudoers.d/jupyterhub",
    "/etc/systemd/system/jupyterhub.service",
    "/etc/systemd/system/configurable-http-proxy.service",
    "/etc/apache2/sites-available/010-hpcgw-gateway.conf",
    "/etc/hpcgw-local-scope.json",
    "/etc/hpcgw/instances/production.json",
]
# Everything an instance owns on the gateway ({name}: its name); gone after its removal.
_INSTANCE_PATHS = [
    "/opt/jupyterhub-{name}",
    "/etc/jupyterhub-{name}",
    "/var/lib/jupyterhub-{name}",
    "/opt/configurable-http-proxy-{name}",
    "/etc/sudoers.d/jupyterhub-{name}",
    "/usr/local/sbin/hpcgw-local-scope-{name}",
    "/usr/local/sbin/hpcgw-hub-backup-{name}",
    "/etc/hpcgw-local-scope-{name}.json",
    "/etc/apache2/hpcgw-instances/{name}.conf",
    "/etc/hpcgw/instances/{name}.json",
    "/etc/systemd/system/jupyterhub-{name}.service",
    "/etc/systemd/system/configurable-http-proxy-{name}.service",
    "/etc/systemd/system/hpcgw-hub-backup-{name}.timer",
    "/etc/systemd/system/hpcgw-usage-report-{name}.timer",
    "/etc/systemd/system/hpcgw-local_{name}.slice",
]


@dataclass(frozen=True)
class Instance:
    """One instance's variables file and what the tests derive from it."""

    vars_file: Path

    @property
    def settings(self) -> dict[str, Any]:
        return yaml.safe_load(self.vars_file.read_text())

    @property
    def name(self) -> str:
        return str(self.settings["jupyterhub_instance"])

    @property
    def base(self) -> str:
        """Its URL through Apache (no trailing slash)."""
        return ORIGIN + str(self.settings["jupyterhub_base_url"]).rstrip("/")

    @property
    def hub_api(self) -> str:
        """Its hub's API, straight to the hub's port (from the gateway)."""
        return f"{self.settings['jupyterhub_hub_connect_url']}{self.settings['jupyterhub_base_url']}hub/api/"

    @property
    def ports(self) -> list[int]:
        return [int(self.settings[key]) for key in ("jupyterhub_hub_port", "chp_port", "chp_api_port")]

    @property
    def paths(self) -> list[str]:
        return [path.format(name=self.name) for path in _INSTANCE_PATHS]

    def playbook(self, playbook: str, *args: str, tree: Path = PROJECT) -> subprocess.CompletedProcess[str]:
        """A playbook of `tree` (this one or the previous release's) with that
        tree's own roles, configuration and demo inventory, for this instance."""
        env = dict(playbook_env(), ANSIBLE_CONFIG=str(tree / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(tree / "roles"))
        return subprocess.run(
            ["ansible-playbook", "-i", str(tree / "inventories" / "demo" / "hosts.yml"), str(tree / playbook),
             "-e", f"@{tree / self.vars_file.relative_to(PROJECT)}", *args],
            cwd=tree, capture_output=True, text=True, env=env, check=False, timeout=900,
        )

    def converge(self, *args: str, tree: Path = PROJECT) -> str:
        """The gateway play for this instance; its output."""
        run = self.playbook("site.yml", "-l", "hpcgw-gw", "--tags", "gateway", *args, tree=tree)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        return run.stdout

    def record(self, gateway: Host) -> dict[str, Any]:
        return json.loads(gateway.file(f"/etc/hpcgw/instances/{self.name}.json").content_string)

    def remove(self, gateway: Host, controller: Host, user: str, password: str) -> None:
        """playbooks/remove_instance.yml: its files, accounts, units, ports and routes are gone."""
        removed = self.playbook("playbooks/remove_instance.yml")
        assert removed.returncode == 0, removed.stdout[-4000:] + removed.stderr[-2000:]
        assert [p for p in self.paths if gateway.file(p).exists] == []
        assert not gateway.user(f"jupyterhub-{self.name}").exists and not gateway.user(f"chp-{self.name}").exists
        units = gateway.check_output(
            f"systemctl list-units --all --plain --no-legend 'jupyterhub-{self.name}*' "
            f"'configurable-http-proxy-{self.name}*' 'hpcgw-*-{self.name}.*' 'hpcgw-local_{self.name}*'")
        assert units.strip() == ""
        listening = gateway.check_output("ss -ltnH")
        assert not any(f":{port} " in listening for port in self.ports), listening
        gone = controller.run(f"curl -sk -o /dev/null -w '%{{http_code}}' -u {user}:{password} {self.base}/hub/api")
        assert gone.stdout.strip() == "404", gone.stdout


def gateway_changes(output: str) -> int:
    """The gateway's `changed` count in a playbook's recap (and no failure)."""
    (changed, unreachable, failed), = RECAP.findall(output)
    assert (unreachable, failed) == ("0", "0"), output[-3000:]
    return int(changed)


def production(gateway: Host) -> dict[str, str]:
    """What must not change: production's file checksums and its hub's and proxy's PIDs."""
    sums = gateway.check_output("sha256sum " + " ".join(PRODUCTION_FILES))
    pids = {unit: gateway.check_output(f"systemctl show -p MainPID --value {unit}").strip()
            for unit in ("jupyterhub.service", "configurable-http-proxy.service")}
    return {"sums": sums, **pids}
