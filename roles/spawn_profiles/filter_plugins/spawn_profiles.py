"""Run the hub's own catalog validation on the controller, before any change."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "files"))

from hpcgw_profiles import Catalog, ConfigError  # noqa: E402


def spawn_profiles_errors(data: dict[str, Any]) -> list[str]:
    """[] when the clusters/presets data loads; else the one error, naming the variable."""
    try:
        Catalog.from_data(data)
    except ConfigError as exc:
        return [str(exc)]
    return []


SCRIPT_FILES = {"condor": "condor.sub.j2"}


def spawn_profiles_catalog(clusters: list[dict[str, Any]], presets: list[dict[str, Any]],
                           notebook_prefix: str, custom_enabled: bool, templates_dir: str,
                           exec_prefix: dict[str, str]) -> dict[str, Any]:
    """The hub's clusters.json: the admin's data plus, per cluster, the batch
    script (the site's own file or the bundled one) and the command prefix."""
    out = []
    for cluster in clusters:
        scheduler = str(cluster.get("scheduler", ""))
        script_path = cluster.get("batch_script") or str(
            Path(templates_dir) / SCRIPT_FILES.get(scheduler, f"{scheduler}.sh.j2"))
        submit = str(cluster.get("submit", "local"))
        prefix = exec_prefix[submit].replace("{login_host}", str(cluster.get("login_host", "")))
        entry = {k: v for k, v in cluster.items() if k != "batch_script"}
        entry["spawner"] = {"batch_script": Path(script_path).read_text(encoding="utf-8"),
                            "exec_prefix": prefix}
        out.append(entry)
    return {"clusters": out, "presets": presets, "notebook_prefix": notebook_prefix,
            "custom_enabled": bool(custom_enabled)}


class FilterModule:
    """spawn_profiles filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"spawn_profiles_errors": spawn_profiles_errors,
                "spawn_profiles_catalog": spawn_profiles_catalog}
