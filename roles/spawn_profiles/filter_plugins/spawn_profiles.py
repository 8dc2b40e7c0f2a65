"""Run the hub's own catalog validation on the controller, before any change,
and assemble the catalog the hub reads (clusters.json).

The filters only transform data: the batch scripts are read by the role's
tasks through Ansible's file lookup (role files, or a site's own path) and
handed in as text.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "files"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "slurm_client" / "filter_plugins"))

from hpcgw_profiles import Catalog, ConfigError, status_query  # noqa: E402
from slurm_time import slurm_time_seconds  # noqa: E402

SCRIPT_FILES = {"condor": "condor.sub.j2"}


def spawn_profiles_errors(data: dict[str, Any]) -> list[str]:
    """[] when the clusters/presets data loads; else the one error, naming the variable."""
    try:
        Catalog.from_data(data)
    except ConfigError as exc:
        return [str(exc)]
    return []


def spawn_profiles_script_paths(clusters: list[dict[str, Any]], templates_dir: str) -> list[str]:
    """Per cluster, in order: its batch_script, else the bundled template of
    its scheduler in templates_dir (relative: found like any role file)."""
    paths = []
    for cluster in clusters:
        scheduler = str(cluster.get("scheduler", ""))
        default = f"{templates_dir.rstrip('/')}/{SCRIPT_FILES.get(scheduler, f'{scheduler}.sh.j2')}"
        paths.append(str(cluster.get("batch_script") or default))
    return paths


def spawn_profiles_catalog(clusters: list[dict[str, Any]], presets: list[dict[str, Any]],
                           notebook_prefix: str, custom_enabled: bool, scripts: list[str],
                           exec_prefix: dict[str, str]) -> dict[str, Any]:
    """The hub's clusters.json: the admin's data plus, per cluster, the batch
    script (text, one per cluster in order, as read by the role's lookup)
    and the command prefix."""
    if len(scripts) != len(clusters):
        raise ValueError(f"spawn_profiles_catalog: {len(scripts)} batch script(s) for {len(clusters)} cluster(s)")
    out = []
    for cluster, script in zip(clusters, scripts):
        submit = str(cluster.get("submit", "local"))
        prefix = exec_prefix[submit].replace("{login_host}", str(cluster.get("login_host", "")))
        entry = {k: v for k, v in cluster.items() if k != "batch_script"}
        entry["spawner"] = {"batch_script": str(script), "exec_prefix": prefix}
        out.append(entry)
    return {"clusters": out, "presets": presets, "notebook_prefix": notebook_prefix,
            "custom_enabled": bool(custom_enabled)}


def _number(value: Any) -> int | None:
    """An integer limit, None when absent or unlimited."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _gpus(gres: Any) -> int:
    """GPUs in a node's gres ("gpu:2", "gpu:a100:4,shard:8"); 0 without any."""
    count = 0
    for item in str(gres or "").split(","):
        parts = item.strip().split(":")
        if parts[0] == "gpu" and len(parts) > 1 and parts[-1].isdigit():
            count += int(parts[-1])
    return count


def _partition_limits(partition: dict[str, Any], nodes: list[dict[str, Any]]) -> dict[str, tuple[int, str]]:
    """What a one-node job of the partition can get at most: {resource: (limit, why)}."""
    limits: dict[str, tuple[int, str]] = {}
    try:
        seconds = slurm_time_seconds(partition.get("max_time", "UNLIMITED"))
    except ValueError:  # slurm_client's own preflight names it
        seconds = None
    if seconds is not None:
        limits["walltime_min"] = (seconds // 60, f"max_time {partition.get('max_time')}")
    names = partition.get("nodes") or []
    members = nodes if "ALL" in names else [n for n in nodes if n.get("name") in names]
    if members:
        extra = partition.get("extra") or {}
        for key, node_key, scale, cap_key in (("cores", "cpus", 1, "MaxCPUsPerNode"),
                                               ("memory_gb", "real_memory", 1024, "MaxMemPerNode")):
            sizes = [_number(n.get(node_key)) for n in members]
            if None not in sizes:
                limit, why = max(sizes) // scale, f"its largest node's {node_key} {max(sizes)}"
                cap = _number(extra.get(cap_key))
                if cap is not None and cap // scale < limit:
                    limit, why = cap // scale, f"{cap_key} {cap}"
                limits[key] = (limit, why)
        limits["gpus"] = (max(_gpus(n.get("gres")) for n in members), "its nodes' gres")
    return limits


def spawn_profiles_limit_errors(clusters: list[dict[str, Any]], local: dict[str, Any],
                                remote: dict[str, dict[str, Any]]) -> list[str]:
    """Queue limits above what the SLURM partition of the same name allows.

    local: {"partitions": slurm_client_partitions, "nodes": slurm_client_nodes}
    of the gateway (clusters with submit local); remote: the same per login
    host in the inventory (clusters with submit ssh). A queue whose partition
    the bundle does not describe is not checked.
    """
    errors = []
    for index, cluster in enumerate(clusters):
        if cluster.get("scheduler") != "slurm":
            continue
        is_local = cluster.get("submit", "local") == "local"
        source = local if is_local else remote.get(str(cluster.get("login_host", "")))
        if not source:
            continue
        where = "slurm_client_partitions" + ("" if is_local else f" of {cluster.get('login_host')}")
        partitions = {p.get("name"): p for p in source.get("partitions") or [] if isinstance(p, dict)}
        for qindex, queue in enumerate(cluster.get("queues") or []):
            partition = partitions.get(queue.get("name")) if isinstance(queue, dict) else None
            if partition is None:
                continue
            limits = _partition_limits(partition, [n for n in source.get("nodes") or [] if isinstance(n, dict)])
            for key in ("walltime_min", "cores", "memory_gb", "gpus"):
                wanted = _number((queue.get(key) or {}).get("max")) if isinstance(queue.get(key), dict) else None
                if wanted is None or key not in limits or wanted <= limits[key][0]:
                    continue
                limit, why = limits[key]
                errors.append(f"spawn_profiles_clusters[{index}].queues[{qindex}].{key}.max: {wanted} is above what "
                              f"partition '{partition.get('name')}' in {where} allows ({limit}: {why}); "
                              "lower it, or the scheduler refuses the job")
    return errors


def spawn_profiles_sge_errors(clusters: list[dict[str, Any]], remote: dict[str, dict[str, Any]]) -> list[str]:
    """Grid Engine clusters against the queues the bundle builds (role gridengine).

    remote: per login host in the inventory with gridengine_enabled, its
    {"queues": gridengine_queues, "parallel_environments": ...}. A queue
    must exist there, a multi-core queue's parallel_environment must be in
    its pe_list, and cores.max must fit the queue's slots on one host (the
    PE's $pe_slots keeps a job on one node). Other clusters are not checked.
    """
    errors = []
    for index, cluster in enumerate(clusters):
        if not isinstance(cluster, dict) or cluster.get("scheduler") != "sge":
            continue
        host = str(cluster.get("login_host", ""))
        source = remote.get(host)
        if not source:
            continue
        where = f"gridengine_queues of {host}"
        queues = {q.get("name"): q for q in source.get("queues") or [] if isinstance(q, dict)}
        for qindex, queue in enumerate(cluster.get("queues") or []):
            if not isinstance(queue, dict):
                continue
            path = f"spawn_profiles_clusters[{index}].queues[{qindex}]"
            target = queues.get(queue.get("name"))
            if target is None:
                errors.append(f"{path}.name: queue '{queue.get('name')}' is not in {where} "
                              f"({', '.join(map(str, queues)) or 'none'}); qsub -q would refuse every job")
                continue
            cores = _number((queue.get("cores") or {}).get("max")) if isinstance(queue.get("cores"), dict) else None
            if cores is None or cores <= 1:
                continue
            pe = str(queue.get("parallel_environment") or cluster.get("parallel_environment") or "")
            offered = [str(x) for x in target.get("pe_list") or []]
            if pe and pe not in offered:
                errors.append(f"{path}.parallel_environment: '{pe}' is not in the pe_list of queue '{target.get('name')}' "
                              f"in {where} ({', '.join(offered) or 'none'}); a job of more than one core would never start")
            slots = _number(target.get("slots", 1))
            if slots is not None and cores > slots:
                errors.append(f"{path}.cores.max: {cores} is above the {slots} slot(s) per host of queue "
                              f"'{target.get('name')}' in {where}; lower it, or the scheduler never starts such a job")
    return errors


def spawn_profiles_shared_status(clusters: list[dict[str, Any]]) -> list[str]:
    """Names of the clusters whose status the hub queries once for all
    servers (status_query: shared, the default of local SLURM clusters)."""
    return [str(c.get("name")) for c in clusters if status_query(c) == "shared"]


def spawn_profiles_sacctmgr_clusters(clusters: list[dict[str, Any]]) -> list[str]:
    """SLURM ClusterNames the hub asks sacctmgr about (account_source: sacctmgr): sacctmgr_cluster, else the name."""
    return [str(c.get("sacctmgr_cluster") or c.get("name")) for c in clusters
            if isinstance(c, dict) and c.get("account_source") == "sacctmgr"]


def spawn_profiles_metric_queues(clusters: list[dict[str, Any]], local_enabled: bool = False) -> list[list[str]]:
    """[cluster, queue] of every queue (and ["local", "local"] for the local
    profile), sorted: the hub's metrics create their series at 0."""
    pairs = {(str(c.get("name")), str(q.get("name"))) for c in clusters for q in c.get("queues") or []
             if isinstance(q, dict)}
    if local_enabled:
        pairs.add(("local", "local"))
    return [list(pair) for pair in sorted(pairs)]


def spawn_profiles_estimate_clusters(clusters: list[dict[str, Any]]) -> list[str]:
    """Names of the clusters whose start estimate the spawn form shows: SLURM
    submitted from the gateway, where the hub's sudo rule runs any sbatch
    (sbatch --test-only); an SSH cluster's rule pins sbatch --parsable."""
    return [str(c.get("name")) for c in clusters
            if c.get("scheduler") == "slurm" and c.get("submit", "local") == "local"]


class FilterModule:
    """spawn_profiles filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"spawn_profiles_errors": spawn_profiles_errors,
                "spawn_profiles_script_paths": spawn_profiles_script_paths,
                "spawn_profiles_catalog": spawn_profiles_catalog,
                "spawn_profiles_limit_errors": spawn_profiles_limit_errors,
                "spawn_profiles_sge_errors": spawn_profiles_sge_errors,
                "spawn_profiles_shared_status": spawn_profiles_shared_status,
                "spawn_profiles_metric_queues": spawn_profiles_metric_queues,
                "spawn_profiles_estimate_clusters": spawn_profiles_estimate_clusters,
                "spawn_profiles_sacctmgr_clusters": spawn_profiles_sacctmgr_clusters}
