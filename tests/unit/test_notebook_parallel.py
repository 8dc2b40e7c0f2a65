"""Role notebook_env's site configuration of Dask (dask-jobqueue) and
ipyparallel, rendered by real Ansible from the role's templates with the
demo inventory and with a site's variations: the values a SLURMCluster()
and an ipp.Cluster() take from it keep their types, and both files are
what dask and IPython load."""

from __future__ import annotations

import socket
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_run import ROOT, load_vars
from gateway_render import Case, render

ROLE = "roles/notebook_env"
DASK = f"{ROLE}/templates/dask.yaml.j2"
IPCLUSTER = f"{ROLE}/templates/ipcluster_config.py.j2"
DEMO = "inventories/demo/group_vars/notebook_nodes/notebook_env.yml"


def _node_vars(**change: Any) -> dict[str, Any]:
    """The notebook nodes' variables: the role's defaults and vars, the demo inventory, a change."""
    return {**load_vars(f"{ROLE}/defaults/main.yml", f"{ROLE}/vars/main.yml", DEMO), **change}


def _render(tmp_path: Path, **change: Any) -> tuple[dict[str, Any], str]:
    out = render([Case("dask.yaml", DASK, _node_vars(**change)),
                  Case("ipcluster_config.py", IPCLUSTER, _node_vars(**change))], tmp_path)
    return yaml.safe_load(out["dask.yaml"]), out["ipcluster_config.py"]


class _Section(dict[str, Any]):
    """A traitlets Config stand-in: sections appear on first use."""

    def __getattr__(self, name: str) -> Any:
        return self.setdefault(name, _Section())

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def _ipcluster(text: str, monkeypatch: pytest.MonkeyPatch) -> _Section:
    """Execute the ipcluster configuration as IPython's loader does, on a node
    whose eth0 has 10.1.2.3 (psutil, of the notebook environment, stubbed);
    the values it sets."""
    address = types.SimpleNamespace
    psutil = types.ModuleType("psutil")
    psutil.net_if_addrs = lambda: {  # type: ignore[attr-defined]
        "eth0": [address(family=socket.AF_INET6, address="fe80::1"), address(family=socket.AF_INET, address="10.1.2.3")]}
    monkeypatch.setitem(sys.modules, "psutil", psutil)
    config = _Section()
    exec(compile(text, "ipcluster_config.py", "exec"), {"get_config": lambda: config})  # noqa: S102 - our own render
    return config


def test_the_demo_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dask, ipcluster = _render(tmp_path)
    slurm = dask["jobqueue"]["slurm"]
    assert slurm == {
        "cores": 1, "processes": 1, "memory": "1024MiB",
        # a string: unquoted YAML 1.1 would read 00:10:00 as 600 (sexagesimal)
        "walltime": "00:10:00",
        "queue": "debug", "interface": "eth0",
        "python": "/opt/hpcgw/notebook/bin/python",
        "shared-temp-directory": "~",
        "scheduler-options": {"dashboard_address": "127.0.0.1:8787"},
        # the workers' HTTP servers (metrics) on their node's loopback
        "worker-extra-args": ["--dashboard-address", "127.0.0.1:0"],
    }
    # The dashboard through the gateway (jupyter-server-proxy is on in the demo),
    # and no plain TCP between schedulers, workers and clients (merged beside it).
    assert dask["distributed"] == {"dashboard": {"link": "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status"},
                                   "comm": {"require-encryption": True}}

    config = _ipcluster(ipcluster, monkeypatch)
    assert config["Cluster"]["engine_launcher_class"] == "slurm"
    # The controller listens on eth0's IPv4 address, where the engines connect.
    assert config["Cluster"]["controller_ip"] == "10.1.2.3"
    script = config["SlurmEngineSetLauncher"]["batch_template"]
    for line in ("#SBATCH --ntasks={n}", "#SBATCH --cpus-per-task=1", "#SBATCH --mem-per-cpu=1024M",
                 "#SBATCH --time=00:10:00", "#SBATCH --partition=debug"):
        assert line in script.splitlines(), script
    assert "#SBATCH --account" not in script
    # srun runs last, after the server job's memory and export-list variables are gone.
    assert script.rstrip().splitlines()[-2:] == ["unset SLURM_MEM_PER_NODE SLURM_MEM_PER_GPU SLURM_EXPORT_ENV",
                                                 "srun {program_and_args}"]


def test_a_site_without_partition_interface_or_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dask, ipcluster = _render(tmp_path, notebook_env_parallel_queue="", notebook_env_parallel_interface="",
                              notebook_env_server_proxy_enabled=False, notebook_env_parallel_account="astro",
                              notebook_env_parallel_cores=4, notebook_env_parallel_memory_mb=8192,
                              notebook_env_parallel_dask_config={"jobqueue": {"slurm": {
                                  "job-extra-directives": ["--qos=normal"], "walltime": "01:00:00"}}})
    slurm = dask["jobqueue"]["slurm"]
    # SLURM's default partition, the default route's address: dask-jobqueue's own defaults.
    assert "queue" not in slurm and "interface" not in slurm
    assert slurm["account"] == "astro" and slurm["cores"] == 4 and slurm["memory"] == "8192MiB"
    # The site's own configuration merged over the generated one.
    assert slurm["job-extra-directives"] == ["--qos=normal"] and slurm["walltime"] == "01:00:00"
    assert slurm["python"] == "/opt/hpcgw/notebook/bin/python"
    # No proxy: dask's own dashboard link; encryption is required all the same.
    assert dask["distributed"] == {"comm": {"require-encryption": True}}

    config = _ipcluster(ipcluster, monkeypatch)
    assert config["Cluster"]["controller_ip"] == "*" and config["Cluster"]["controller_location"]
    script = config["SlurmEngineSetLauncher"]["batch_template"]
    assert "#SBATCH --partition" not in script and "#SBATCH --account=astro" in script.splitlines()
    assert "#SBATCH --mem-per-cpu=2048M" in script.splitlines()


def test_a_site_may_turn_encryption_off_only_explicitly(tmp_path: Path) -> None:
    """The site's own Dask configuration wins over the safe default (say so in the README)."""
    dask, _ = _render(tmp_path, notebook_env_parallel_dask_config={
        "distributed": {"comm": {"require-encryption": False}}})
    assert dask["distributed"]["comm"] == {"require-encryption": False}
    assert dask["distributed"]["dashboard"]["link"] == "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status"


@pytest.mark.parametrize("template", [DASK, IPCLUSTER])
def test_the_templates_start_with_the_managed_header(template: str) -> None:
    assert (ROOT / template).read_text().startswith("{{ ansible_managed | comment }}")
