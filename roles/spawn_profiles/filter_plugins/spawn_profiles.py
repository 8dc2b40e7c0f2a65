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

from hpcgw_profiles import Catalog, ConfigError, status_query  # noqa: E402

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


def spawn_profiles_shared_status(clusters: list[dict[str, Any]]) -> list[str]:
    """Names of the clusters whose status the hub queries once for all
    servers (status_query: shared, the default of local SLURM clusters)."""
    return [str(c.get("name")) for c in clusters if status_query(c) == "shared"]


class FilterModule:
    """spawn_profiles filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"spawn_profiles_errors": spawn_profiles_errors,
                "spawn_profiles_script_paths": spawn_profiles_script_paths,
                "spawn_profiles_catalog": spawn_profiles_catalog,
                "spawn_profiles_shared_status": spawn_profiles_shared_status}
