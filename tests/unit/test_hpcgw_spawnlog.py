"""The hub's spawn record: one JSON line per start, whatever its outcome;
a record that cannot be written never fails the spawn."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import hpcgw_spawnlog as spawnlog
import hpcgw_usage
from hpcgw_profiles import Choice


class FakeCatalog:
    def choice_from_options(self, options: dict[str, Any]) -> Choice | None:
        if options.get("profile") == "local":
            return None
        return Choice(cluster="testcluster", queue="debug", cores=2, memory_gb=1, walltime_min=10, gpus=0, account="")

def _spawner(job_id: str = "", profile: str = "debug-1c") -> Any:
    return SimpleNamespace(
        user=SimpleNamespace(name="alice"), user_options={"profile": profile}, hpcgw_cluster="testcluster",
        child_spawner=SimpleNamespace(job_id=job_id), _load=lambda: (FakeCatalog(), {}))

@pytest.fixture()
def record(tmp_path: Path) -> Any:
    path = tmp_path / "spawns.jsonl"
    spawnlog.configure(str(path))
    yield path
    spawnlog.configure("")

def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]

def test_ready_start_is_recorded_with_its_choice_and_job(record: Path) -> None:
    spawner = _spawner("4711")

    async def start() -> tuple[str, int]:
        await asyncio.sleep(0.05)
        return "hpcgw-c1", 8888

    assert asyncio.run(spawnlog.logged(spawner, start())) == ("hpcgw-c1", 8888)
    [line] = _lines(record)
    assert {k: line[k] for k in ("user", "cluster", "queue", "cores", "memory_gb", "walltime_min", "job_id",
                                 "outcome", "reason", "profile")} == {
        "user": "alice", "cluster": "testcluster", "queue": "debug", "cores": 2, "memory_gb": 1,
        "walltime_min": 10, "job_id": "4711", "outcome": "ready", "reason": "", "profile": "debug-1c"}
    assert 0.04 <= line["latency_s"] < 5
    assert oct(record.stat().st_mode & 0o777) == "0o640"

def test_failed_start_keeps_the_first_line_of_its_reason(record: Path) -> None:
    async def start() -> None:
        raise RuntimeError("Your server's batch job 12 ended before the server answered\nLast lines:\nsecret-ish output")

    with pytest.raises(RuntimeError):
        asyncio.run(spawnlog.logged(_spawner("12"), start()))
    [line] = _lines(record)
    assert (line["outcome"], line["reason"]) == ("failed", "Your server's batch job 12 ended before the server answered")

def test_cancelled_start_and_local_profile(record: Path) -> None:
    async def start() -> None:
        raise asyncio.CancelledError()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(spawnlog.logged(_spawner(profile="local"), start()))
    [line] = _lines(record)
    assert (line["outcome"], line["cluster"], line["queue"], line["job_id"]) == ("cancelled", "testcluster", "", "")

def test_lines_are_appended_and_read_back_by_the_report(record: Path) -> None:
    for n in range(3):
        spawnlog.append(spawnlog.entry(1795645000 + n, "bob", {"cluster": "c", "queue": "q", "cores": 1}, str(n),
                                       "ready", 1795645010 + n))
    spawns, bad = hpcgw_usage.parse_spawn_log(record.read_text().splitlines())
    assert bad == 0 and [s.job_id for s in spawns] == ["0", "1", "2"]
    assert spawns[0].latency_s == 10.0

def test_unwritable_record_does_not_fail_the_spawn(tmp_path: Path) -> None:
    spawnlog.configure(str(tmp_path / "missing-dir" / "spawns.jsonl"))
    try:
        async def start() -> str:
            return "ok"
        assert asyncio.run(spawnlog.logged(_spawner("1"), start())) == "ok"
    finally:
        spawnlog.configure("")
    assert not spawnlog.append({"x": 1})  # not configured: nothing written

def test_reason_is_cut() -> None:
    assert len(spawnlog.first_line("x" * 500)) == spawnlog.REASON_MAX
    assert spawnlog.first_line("\n\n  second  \nthird") == "second"


def test_a_named_servers_start_records_its_name(record: Path) -> None:
    """Several servers per user: each record says which server it started
    (empty for the default one), and the report's job rows carry it."""
    async def start() -> tuple[str, int]:
        return "hpcgw-c1", 8888

    named = _spawner("4712")
    named.name = "debug"
    asyncio.run(spawnlog.logged(named, start()))
    asyncio.run(spawnlog.logged(_spawner("4713"), start()))
    lines = _lines(record)
    assert [(line["job_id"], line["server"]) for line in lines] == [("4712", "debug"), ("4713", "")]
    spawns, bad = hpcgw_usage.parse_spawn_log(record.read_text().splitlines())
    assert bad == 0
    rows = hpcgw_usage.job_rows(spawns, {})
    assert sorted((row["job_id"], row["server"]) for row in rows) == [("4712", "debug"), ("4713", "")]
    assert "server" in hpcgw_usage.JOB_COLUMNS
