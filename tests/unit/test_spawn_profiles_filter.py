"""The catalog the role writes for the hub: admin data plus the batch script
and command prefix of each cluster, loadable by the hub's own loader."""

from __future__ import annotations

from pathlib import Path

from hpcgw_profiles import Catalog
from spawn_profiles import spawn_profiles_catalog, spawn_profiles_errors

ROOT = Path(__file__).resolve().parents[2]
EXEC = {"local": "sudo -n -u {username}", "ssh": "sudo -n -u {username} ssh {login_host}"}


def test_catalog_carries_script_and_prefix(tmp_path: Path) -> None:
    site_script = tmp_path / "site.sh"
    site_script.write_text("#!/bin/sh\n{{cmd}}\n")
    clusters = [
        {"name": "a", "scheduler": "slurm", "queues": [{"name": "q", "cores": {"max": 2}}]},
        {"name": "b", "scheduler": "condor", "submit": "ssh", "login_host": "login1",
         "batch_script": str(site_script), "queues": [{"name": "q", "cores": {"max": 2}}]},
    ]
    catalog = spawn_profiles_catalog(clusters, [], "/opt/nb", True, str(ROOT / "templates" / "batch"), EXEC)
    a, b = catalog["clusters"]
    assert a["spawner"]["batch_script"] == (ROOT / "templates/batch/slurm.sh.j2").read_text()
    assert a["spawner"]["exec_prefix"] == "sudo -n -u {username}"
    assert b["spawner"] == {"batch_script": "#!/bin/sh\n{{cmd}}\n", "exec_prefix": "sudo -n -u {username} ssh login1"}
    assert "batch_script" not in b
    assert Catalog.from_data(catalog).clusters[1].submit == "ssh"


def test_errors_filter_names_the_variable() -> None:
    assert spawn_profiles_errors({"clusters": [{"name": "x", "scheduler": "slurm", "queues": []}]}) == [
        "spawn_profiles_clusters[0].queues: must be a non-empty list"]
    assert spawn_profiles_errors({"clusters": []}) == []
