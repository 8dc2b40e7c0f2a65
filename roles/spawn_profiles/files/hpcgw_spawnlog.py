"""The gateway's own record of spawns: one JSON line per finished start.

The hub's database keeps no history of past spawns, so the spawner appends
one line per start attempt to an append-only file (``configure``), when the
start ends: ready, failed or cancelled. The usage report (``hpcgw_usage``)
joins it with the scheduler's accounting. Writing never fails a spawn: an
unwritable file is logged and skipped.

Fields: ``v`` (format, 1), ``requested`` (ISO 8601 UTC, when the start
began), ``user``, ``server`` (the server's name, empty for the user's
default server; named servers let a user run several), ``cluster`` (``local`` for the gateway's own profile),
``queue``, ``profile``, ``cores``, ``memory_gb``, ``walltime_min``,
``gpus``, ``account``, ``job_id`` (empty without a job), ``outcome``
(``ready``, ``failed``, ``cancelled``), ``latency_s`` (seconds from the
request to the outcome) and ``reason`` (first line of the failure, at most
200 characters; empty when ready).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Mapping, Optional, TypeVar

log = logging.getLogger("hpcgw_spawnlog")
T = TypeVar("T")
FORMAT = 1
REASON_MAX = 200
_settings: dict[str, str] = {"path": ""}


def configure(path: str) -> None:
    """Set the file the hub appends to (empty: no record)."""
    _settings["path"] = path


def first_line(text: str, limit: int = REASON_MAX) -> str:
    """The first non-empty line of a message, cut to `limit` characters."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def entry(requested: float, user: str, choice: Mapping[str, Any], job_id: str, outcome: str,
          finished: float, reason: str = "", server: str = "") -> dict[str, Any]:
    """One record; `choice` holds cluster, queue, profile and the resources."""
    return {
        "v": FORMAT,
        "requested": datetime.fromtimestamp(requested, timezone.utc).isoformat(timespec="seconds"),
        "user": user,
        "server": server,
        "cluster": str(choice.get("cluster", "")),
        "queue": str(choice.get("queue", "")),
        "profile": str(choice.get("profile", "")),
        "cores": int(choice.get("cores", 0) or 0),
        "memory_gb": int(choice.get("memory_gb", 0) or 0),
        "walltime_min": int(choice.get("walltime_min", 0) or 0),
        "gpus": int(choice.get("gpus", 0) or 0),
        "account": str(choice.get("account", "")),
        "job_id": str(job_id or ""),
        "outcome": outcome,
        "latency_s": round(max(0.0, finished - requested), 3),
        "reason": first_line(reason),
    }


def append(record: Mapping[str, Any], path: Optional[str] = None) -> bool:
    """Append one line (created 0640); False when it could not be written."""
    target = path if path is not None else _settings["path"]
    if not target:
        return False
    line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("Spawn record not written to %s: %s", target, exc)
        return False
    return True


def _choice_of(spawner: Any) -> dict[str, Any]:
    """Cluster, queue and resources of the checked request (the wrapper's catalog)."""
    options = dict(getattr(spawner, "user_options", None) or {})
    out: dict[str, Any] = {"profile": options.get("profile", ""), "cluster": getattr(spawner, "hpcgw_cluster", "")}
    try:
        catalog, _ = spawner._load()  # pylint: disable=protected-access
        choice = catalog.choice_from_options(options)
    except Exception:  # noqa: BLE001  (the start checked it already; a record must not fail)
        choice = None
    if choice is None:
        out["cluster"] = out["cluster"] or "local"
        return out
    out.update(cluster=choice.cluster, queue=choice.queue, cores=choice.cores, memory_gb=choice.memory_gb,
               walltime_min=choice.walltime_min, gpus=choice.gpus, account=choice.account)
    return out


async def logged(spawner: Any, start: Awaitable[T]) -> T:
    """Await a child's start and append its record (the wrapper's one-line hook)."""
    requested = time.time()
    outcome, reason = "failed", ""
    try:
        result = await start
        outcome = "ready"
        return result
    except asyncio.CancelledError:
        outcome, reason = "cancelled", "the start was cancelled"
        raise
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        raise
    finally:
        child = getattr(spawner, "child_spawner", None)
        user = str(getattr(getattr(spawner, "user", None), "name", ""))
        append(entry(requested, user, _choice_of(spawner), str(getattr(child, "job_id", "") or ""),
                     outcome, time.time(), reason, server=str(getattr(spawner, "name", "") or "")))
