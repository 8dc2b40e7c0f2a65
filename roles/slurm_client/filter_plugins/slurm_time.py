"""Jinja filters for SLURM's time syntax (used to validate partition limits)."""

from __future__ import annotations

import re
from typing import Any, Callable

UNLIMITED = ("UNLIMITED", "INFINITE")

# SLURM accepts: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (sbatch(1), slurm.conf(5)).
_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"^(\d+)$"), ("m",)),
    (re.compile(r"^(\d+):(\d{1,2})$"), ("m", "s")),
    (re.compile(r"^(\d+):(\d{1,2}):(\d{1,2})$"), ("h", "m", "s")),
    (re.compile(r"^(\d+)-(\d+)$"), ("d", "h")),
    (re.compile(r"^(\d+)-(\d+):(\d{1,2})$"), ("d", "h", "m")),
    (re.compile(r"^(\d+)-(\d+):(\d{1,2}):(\d{1,2})$"), ("d", "h", "m", "s")),
)
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def slurm_time_seconds(value: Any) -> int | None:
    """Seconds in a SLURM time string; None for UNLIMITED/INFINITE.

    Raises ValueError for anything SLURM would not accept, so a typo in an
    inventory stops the play instead of reaching slurm.conf.
    """
    text = str(value).strip()
    if text.upper() in UNLIMITED:
        return None
    for pattern, units in _PATTERNS:
        match = pattern.match(text)
        if match:
            parts = [int(group) for group in match.groups()]
            for unit, amount in zip(units, parts):
                if unit in ("m", "s") and len(units) > 1 and unit != units[0] and amount > 59:
                    raise ValueError(f"'{text}': {unit} field must be below 60")
                if unit == "h" and units[0] == "d" and amount > 23:
                    raise ValueError(f"'{text}': hours after a day count must be below 24")
            return sum(_SECONDS[u] * p for u, p in zip(units, parts))
    raise ValueError(
        f"'{text}' is not a SLURM time (use minutes, HH:MM:SS, D-HH:MM:SS or UNLIMITED)"
    )


def is_slurm_time(value: Any) -> bool:
    """True when SLURM accepts the value as a time limit."""
    try:
        slurm_time_seconds(value)
    except ValueError:
        return False
    return True


class FilterModule:
    """SLURM time filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "slurm_time_seconds": slurm_time_seconds,
            "is_slurm_time": is_slurm_time,
        }
