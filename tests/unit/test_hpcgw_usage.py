"""The usage report: sacct parsing, the join with the hub's spawn record,
the per user/cluster/queue aggregation and the CSV, JSON and HTML outputs,
on fixture data shaped like Debian bookworm's SLURM 22.05 sacct output
(SLURM_TIME_FORMAT=%s) and hpcgw_spawnlog's lines."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import hpcgw_usage as usage

T0 = 1795645000  # 2026-11-25T21:56:40Z
# sacct -a -P -n --format=<SACCT_FIELDS> -j ... as the demo's SLURM prints it.
SACCT = "\n".join([
    f"101|alice|debug|testcluster|COMPLETED|{T0 + 2}|{T0 + 5}|{T0 + 65}|60|2|2|1024M||10|hpcgw-c1",
    f"101.batch|||testcluster|COMPLETED|{T0 + 5}|{T0 + 5}|{T0 + 65}|60|2|2||204800K||hpcgw-c1",
    f"102|alice|debug|testcluster|CANCELLED by 20001|{T0 + 102}|{T0 + 103}|{T0 + 403}|300|1|1|1G||10|hpcgw-c2",
    f"102.batch|||testcluster|CANCELLED|{T0 + 103}|{T0 + 103}|{T0 + 403}|300|1|1||512000K||hpcgw-c2",
    f"102.0|||testcluster|COMPLETED|{T0 + 103}|{T0 + 103}|{T0 + 403}|300|1|1||600M||hpcgw-c2",
    f"103|bob|batch|testcluster|FAILED|{T0 + 90002}|{T0 + 90003}|{T0 + 90004}|1|1|1|2Gc||60|hpcgw-c1",
    f"103.batch|||testcluster|FAILED|{T0 + 90003}|{T0 + 90003}|{T0 + 90004}|1|1|1||||hpcgw-c1",
    # a job id the scheduler reused long after the spawn that got it first
    f"104|carol|debug|testcluster|COMPLETED|{T0 + 999999}|{T0 + 999999}|{T0 + 1000099}|100|1|1|1G||10|hpcgw-c1",
    f"105|alice|debug|testcluster|PENDING|{T0 + 200}|Unknown|Unknown|0|0|1|1G||10|None assigned",
    "",
])


def _line(offset: float, user: str, cluster: str, queue: str, job_id: str, outcome: str,
          latency: float, reason: str = "", cores: int = 1) -> str:
    from datetime import datetime, timezone
    return json.dumps({
        "v": 1, "requested": datetime.fromtimestamp(T0 + offset, timezone.utc).isoformat(timespec="seconds"),
        "user": user, "cluster": cluster, "queue": queue, "profile": "custom", "cores": cores, "memory_gb": 1,
        "walltime_min": 10, "gpus": 0, "account": "", "job_id": job_id, "outcome": outcome,
        "latency_s": latency, "reason": reason})


SPAWN_LOG = [
    _line(0, "alice", "testcluster", "debug", "101", "ready", 8.0, cores=2),
    _line(100, "alice", "testcluster", "debug", "102", "ready", 20.0),
    _line(90000, "bob", "testcluster", "batch", "103", "failed", 4.0,
          "Your server's batch job 103 on Demo ended before the server answered (exit status 1)."),
    _line(90100, "bob", "testcluster", "batch", "", "failed", 0.5, "The scheduler accepted no job (no job id in its answer)."),
    _line(90200, "bob", "testcluster", "batch", "777", "failed", 3.0,
          "Your server's batch job 777 on Demo ended before the server answered (exit status 1)."),
    _line(300, "carol", "testcluster", "debug", "104", "cancelled", 2.0, "the start was cancelled"),
    _line(400, "carol", "local", "", "", "ready", 3.0),
    "{not json",
    "",
]


@pytest.fixture()
def data() -> dict:
    spawns, bad = usage.parse_spawn_log(SPAWN_LOG)
    return usage.report(spawns, usage.parse_sacct(SACCT), T0 - 10, T0 + 10 ** 6, bad_lines=bad, generated=T0 + 10 ** 6)


def test_memory_units() -> None:
    assert usage.memory_mb("1024M") == 1024
    assert usage.memory_mb("1G") == 1024
    assert usage.memory_mb("204800K") == 200
    assert usage.memory_mb("2Gc", cpus=3) == 6144
    assert usage.memory_mb("4Gn", nodes=2) == 8192
    assert usage.memory_mb("") is None
    assert usage.memory_mb("16?") is None


def test_sacct_steps_fold_into_their_job() -> None:
    jobs = usage.parse_sacct(SACCT)
    assert sorted(jobs) == ["101", "102", "103", "104", "105"]
    job = jobs["102"]
    assert (job.user, job.partition, job.state, job.alloc_cpus, job.elapsed_s) == ("alice", "debug", "CANCELLED", 1, 300)
    assert job.max_rss_mb == 600  # the largest of the steps (500 MB batch, 600 MB step 0)
    assert job.req_mem_mb == 1024 and job.timelimit_min == 10
    assert jobs["103"].req_mem_mb == 2048  # per CPU
    assert jobs["105"].start is None and jobs["105"].elapsed_s == 0
    assert jobs["101"].core_hours == pytest.approx(2 * 60 / 3600)


def test_unreadable_and_out_of_window_lines() -> None:
    spawns, bad = usage.parse_spawn_log(SPAWN_LOG, since=T0 + 50, until=T0 + 90050)
    assert bad == 1
    assert [s.job_id for s in spawns] == ["102", "103", "104", ""]


def test_join_needs_the_submit_time_near_the_request(data: dict) -> None:
    by_job = {r["job_id"]: r for r in data["jobs"] if r["job_id"]}
    assert by_job["101"]["state"] == "COMPLETED" and by_job["101"]["alloc_cores"] == 2
    assert by_job["104"]["state"] is None  # id reused 11 days later: not this spawn's job
    assert by_job["777"]["state"] is None  # sacct does not know it
    assert data["jobs_without_accounting"] == 2
    assert data["unreadable_record_lines"] == 1
    spawns, _ = usage.parse_spawn_log(SPAWN_LOG)
    only_other = usage.job_rows(spawns, usage.parse_sacct(SACCT), accounted={"elsewhere"})
    assert all(r["state"] is None for r in only_other)


def test_summary_per_user_cluster_queue(data: dict) -> None:
    rows = {(r["user"], r["cluster"], r["queue"]): r for r in data["summary"]}
    assert list(rows) == [("alice", "testcluster", "debug"), ("bob", "testcluster", "batch"),
                          ("carol", "local", ""), ("carol", "testcluster", "debug")]
    alice = rows[("alice", "testcluster", "debug")]
    assert (alice["spawns"], alice["ready"], alice["failed"], alice["jobs_accounted"]) == (2, 2, 0, 2)
    assert (alice["latency_p50_s"], alice["latency_p95_s"]) == (14.0, 20.0)
    assert (alice["req_cores"], alice["alloc_cores"]) == (3, 3)
    assert alice["req_mem_mb"] == 2048 and alice["max_rss_mb"] == 600
    assert alice["req_walltime_min"] == 20 and alice["elapsed_min"] == 6.0
    assert alice["core_hours"] == pytest.approx(round((2 * 60 + 1 * 300) / 3600, 4))
    bob = rows[("bob", "testcluster", "batch")]
    assert (bob["spawns"], bob["failed"], bob["latency_p50_s"], bob["jobs_accounted"]) == (3, 3, None, 1)
    assert bob["failure_reasons"] == (
        "2 x Your server's batch job N on Demo ended before the server answered (exit status N).; "
        "1 x The scheduler accepted no job (no job id in its answer).")
    carol = rows[("carol", "testcluster", "debug")]
    assert (carol["cancelled"], carol["alloc_cores"], carol["core_hours"]) == (1, None, None)


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 21))
    assert usage.percentile(values, 0.95) == 19
    assert usage.percentile([5.0], 0.95) == 5.0
    assert usage.percentile([], 0.5) is None


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_equals_json(data: dict) -> None:
    for key, columns in (("summary", usage.SUMMARY_COLUMNS), ("jobs", usage.JOB_COLUMNS)):
        rows = _csv_rows(usage.to_csv(data[key], columns))
        assert len(rows) == len(data[key])
        for got, want in zip(rows, data[key]):
            assert got == {c: "" if want[c] is None else str(want[c]) for c in columns}


def test_html_is_self_contained_with_three_plots(data: dict) -> None:
    page = usage.to_html(data)
    assert page.count("<svg ") == 3
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    for svg in re.findall(r"<svg .*?</svg>", page, re.S):
        ET.fromstring(svg)  # well-formed
    assert 'id="spawn-count">7<' in page
    assert "Spawns per day" in page and "Core-hours per cluster" in page
    # two days of spawns, one bar group each
    assert ">2026-11-25<" in page and ">2026-11-26<" in page


def test_html_escapes_record_text(data: dict) -> None:
    spawns, _ = usage.parse_spawn_log([_line(0, "alice", "testcluster", "debug", "9", "failed", 1.0,
                                             "<script>alert(1)</script>")])
    page = usage.to_html(usage.report(spawns, {}, T0 - 10, T0 + 10))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_empty_record_still_renders() -> None:
    page = usage.to_html(usage.report([], {}, T0, T0 + 10))
    assert page.count("<svg ") == 3 and "no data" in page


def test_outputs_links_and_retention(tmp_path: Path, data: dict) -> None:
    old = tmp_path / "usage-20200101T000000Z.html"
    old.write_text("old")
    os.utime(old, (T0 - 100 * 86400, T0 - 100 * 86400))
    written = usage.write_outputs(data, tmp_path, "20261125T000000Z")
    assert (tmp_path / "latest.html").resolve() == written["html"].resolve()
    assert json.loads((tmp_path / "latest.json").read_text())["spawns"] == 7
    assert oct(written["json"].stat().st_mode & 0o777) == "0o640"
    usage.write_outputs(data, tmp_path, "20261126T000000Z")  # links move on
    assert os.readlink(tmp_path / "latest.summary.csv") == "usage-20261126T000000Z-summary.csv"
    removed = usage.prune(tmp_path, 30, T0)
    assert removed == [old] and not old.exists()
    assert usage.prune(tmp_path, 0, T0 + 10 ** 9) == []


def test_main_runs_sacct_on_the_recorded_job_ids(tmp_path: Path) -> None:
    record = tmp_path / "spawns.jsonl"
    from datetime import datetime, timezone
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record.write_text(json.dumps({"requested": now, "user": "alice", "cluster": "testcluster", "queue": "debug",
                                  "job_id": "42", "outcome": "ready", "latency_s": 5}) + "\n"
                      + json.dumps({"requested": now, "user": "bob", "cluster": "vialogin", "queue": "debug",
                                    "job_id": "43", "outcome": "ready", "latency_s": 6}) + "\n")
    calls = tmp_path / "calls"
    fake = tmp_path / "sacct"
    fake.write_text(f"#!/bin/sh\necho \"$SLURM_TIME_FORMAT $@\" >> {calls}\n"
                    "echo \"42|alice|debug|testcluster|COMPLETED|$(date +%s)|$(date +%s)|$(date +%s)|30|1|1|1G||10|c1\"\n")
    fake.chmod(0o755)
    out = tmp_path / "out"
    assert usage.main(["--spawn-log", str(record), "--out", str(out), "--sacct", str(fake),
                       "--clusters", "testcluster"]) == 0
    call = calls.read_text().split()
    assert call[0] == "%s" and call[-2:] == ["-j", "42"]  # vialogin's job is not asked for
    data = json.loads((out / "latest.json").read_text())
    assert [r["elapsed_s"] for r in data["jobs"]] == [30, None]
