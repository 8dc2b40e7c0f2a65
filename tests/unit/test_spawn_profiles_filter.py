"""The catalog the role writes for the hub: admin data plus the batch script
and command prefix of each cluster, loadable by the hub's own loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcgw_profiles import Catalog
from spawn_profiles import (
    spawn_profiles_catalog,
    spawn_profiles_errors,
    spawn_profiles_script_paths,
    spawn_profiles_shared_status,
)

ROOT = Path(__file__).resolve().parents[2]
BATCH = ROOT / "roles" / "spawn_profiles" / "files" / "batch"
EXEC = {"local": "sudo -n -u {username}", "ssh": "sudo -n -u {username} ssh {login_host}"}
CLUSTERS = [
    {"name": "a", "scheduler": "slurm", "queues": [{"name": "q", "cores": {"max": 2}}]},
    {"name": "b", "scheduler": "condor", "submit": "ssh", "login_host": "login1",
     "batch_script": "/srv/site/b.sub", "queues": [{"name": "q", "cores": {"max": 2}}]},
]


def test_script_paths_name_the_bundled_template_or_the_sites() -> None:
    assert spawn_profiles_script_paths(CLUSTERS, "batch") == ["batch/slurm.sh.j2", "/srv/site/b.sub"]
    assert spawn_profiles_script_paths(CLUSTERS[:1] * 2, "/srv/tpl/") == ["/srv/tpl/slurm.sh.j2"] * 2
    assert spawn_profiles_script_paths([], "batch") == []


def test_every_scheduler_has_its_bundled_template() -> None:
    for scheduler in ("slurm", "torque", "pbs", "sge", "lsf", "condor"):
        (path,) = spawn_profiles_script_paths([{"scheduler": scheduler}], str(BATCH))
        assert Path(path).is_file(), path


def test_catalog_carries_script_and_prefix() -> None:
    scripts = [(BATCH / "slurm.sh.j2").read_text(), "#!/bin/sh\n{{cmd}}\n"]
    catalog = spawn_profiles_catalog(CLUSTERS, [], "/opt/nb", True, scripts, EXEC)
    a, b = catalog["clusters"]
    assert a["spawner"]["batch_script"] == scripts[0]
    assert a["spawner"]["exec_prefix"] == "sudo -n -u {username}"
    assert b["spawner"] == {"batch_script": "#!/bin/sh\n{{cmd}}\n", "exec_prefix": "sudo -n -u {username} ssh login1"}
    assert "batch_script" not in b
    assert Catalog.from_data(catalog).clusters[1].submit == "ssh"


def test_catalog_refuses_scripts_that_do_not_match_the_clusters() -> None:
    with pytest.raises(ValueError, match="1 batch script"):
        spawn_profiles_catalog(CLUSTERS, [], "/opt/nb", True, ["#!/bin/sh\n"], EXEC)


def test_errors_filter_names_the_variable() -> None:
    assert spawn_profiles_errors({"clusters": [{"name": "x", "scheduler": "slurm", "queues": []}]}) == [
        "spawn_profiles_clusters[0].queues: must be a non-empty list"]
    assert spawn_profiles_errors({"clusters": []}) == []


def test_shared_status_names_the_local_slurm_clusters_not_opted_out() -> None:
    clusters = [*CLUSTERS,
                {"name": "c", "scheduler": "slurm", "submit": "ssh", "login_host": "l1"},
                {"name": "d", "scheduler": "slurm", "submit": "local", "status_query": "user"},
                {"name": "e", "scheduler": "slurm", "status_query": "shared"}]
    assert spawn_profiles_shared_status(clusters) == ["a", "e"]
    assert spawn_profiles_shared_status([]) == []
