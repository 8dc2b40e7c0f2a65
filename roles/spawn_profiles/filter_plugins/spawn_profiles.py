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


class FilterModule:
    """spawn_profiles filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"spawn_profiles_errors": spawn_profiles_errors}
