"""The catalog the role writes for the hub: admin data plus the batch script
and command prefix of each cluster, loadable by the hub's own loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcgw_profiles import Catalog
from spawn_profiles import (spawn_profiles_catalog, spawn_profiles_errors, spawn_profiles_limit_errors,
                            spawn_profiles_estimate_clusters, spawn_profiles_metric_queues, spawn_profiles_script_paths,
                            spawn_profiles_shared_status)

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


NODES = [{"name": "c[1-4]", "cpus": 32, "real_memory": 192000},
         {"name": "g1", "cpus": 64, "real_memory": 512000, "gres": "gpu:a100:4"}]
PARTITIONS = [{"name": "cpu", "nodes": ["c[1-4]"], "max_time": "2-00:00:00"},
              {"name": "gpu", "nodes": ["g1"], "extra": {"MaxMemPerNode": 262144}},
              {"name": "all", "nodes": ["ALL"], "max_time": "UNLIMITED"}]


def _queue(name: str, **limits: int) -> dict[str, object]:
    return {"name": name, **{key: {"max": value} for key, value in limits.items()}}


def test_queue_limits_follow_the_partition() -> None:
    local = {"partitions": PARTITIONS, "nodes": NODES}
    clusters = [{"name": "a", "scheduler": "slurm", "queues": [
        _queue("cpu", walltime_min=2880, cores=32, memory_gb=187, gpus=0),   # at the limits: 192000 MB // 1024
        _queue("gpu", walltime_min=10 ** 6, cores=64, memory_gb=256, gpus=4),  # no max_time: unlimited
        _queue("all", walltime_min=10 ** 6, cores=64, memory_gb=500, gpus=4),  # the largest node of ALL
        _queue("unknown", cores=1000),                                         # not described: not checked
    ]}]
    assert spawn_profiles_limit_errors(clusters, local, {}) == []
    clusters[0]["queues"] = [_queue("cpu", walltime_min=2881, cores=33, memory_gb=188, gpus=1),
                             _queue("gpu", memory_gb=257)]
    errors = spawn_profiles_limit_errors(clusters, local, {})
    assert [e.split(":")[0] for e in errors] == [
        "spawn_profiles_clusters[0].queues[0].walltime_min.max", "spawn_profiles_clusters[0].queues[0].cores.max",
        "spawn_profiles_clusters[0].queues[0].memory_gb.max", "spawn_profiles_clusters[0].queues[0].gpus.max",
        "spawn_profiles_clusters[0].queues[1].memory_gb.max"]
    assert "(2880: max_time 2-00:00:00)" in errors[0]
    assert "(256: MaxMemPerNode 262144)" in errors[4]


def test_only_the_partitions_the_bundle_knows_are_compared() -> None:
    big = [_queue("cpu", cores=999)]
    local = {"partitions": PARTITIONS, "nodes": NODES}
    clusters = [
        {"name": "ssh-unknown", "scheduler": "slurm", "submit": "ssh", "login_host": "login1", "queues": big},
        {"name": "pbs", "scheduler": "pbs", "submit": "ssh", "login_host": "login2", "queues": big},
        {"name": "ssh-known", "scheduler": "slurm", "submit": "ssh", "login_host": "login3", "queues": big},
    ]
    errors = spawn_profiles_limit_errors(clusters, local, {"login3": local, "login2": local})
    assert len(errors) == 1
    assert errors[0].startswith("spawn_profiles_clusters[2].queues[0].cores.max: 999 is above what partition 'cpu' "
                                "in slurm_client_partitions of login3 allows")
    assert spawn_profiles_limit_errors([dict(clusters[0], submit="local")], {"partitions": [], "nodes": []}, {}) == []


def test_shared_status_names_the_local_slurm_clusters_not_opted_out() -> None:
    clusters = [*CLUSTERS,
                {"name": "c", "scheduler": "slurm", "submit": "ssh", "login_host": "l1"},
                {"name": "d", "scheduler": "slurm", "submit": "local", "status_query": "user"},
                {"name": "e", "scheduler": "slurm", "status_query": "shared"}]
    assert spawn_profiles_shared_status(clusters) == ["a", "e"]
    assert spawn_profiles_shared_status([]) == []


def test_metric_queues_are_every_cluster_queue_pair_sorted() -> None:
    clusters = [*CLUSTERS, {"name": "c", "queues": [{"name": "long"}, {"name": "debug"}]}]
    assert spawn_profiles_metric_queues(clusters) == [["a", "q"], ["b", "q"], ["c", "debug"], ["c", "long"]]
    assert spawn_profiles_metric_queues([], True) == [["local", "local"]]


def test_estimate_only_where_the_sudo_rule_allows_sbatch_test_only() -> None:
    clusters = [{"name": "a", "scheduler": "slurm"}, {"name": "b", "scheduler": "slurm", "submit": "ssh"},
                {"name": "c", "scheduler": "slurm", "submit": "local", "status_query": "user"},
                {"name": "d", "scheduler": "pbs", "submit": "ssh"}]
    assert spawn_profiles_estimate_clusters(clusters) == ["a", "c"]
