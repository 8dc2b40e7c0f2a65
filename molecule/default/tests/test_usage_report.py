"""Issue 12, part 3: the usage report on jobs this suite ran.

Two servers are spawned through Apache (alice's preset on debug, carol's
custom request of 2 cores on batch) and stopped; once sacct (slurmdbd on the
controller) has their final records, the report's service runs on the
gateway exactly as its timer runs it. Its numbers must be sacct's (state,
allocated cores, elapsed seconds, requested memory and walltime,
core-hours) and the spawn record's (outcome, latency, user, cluster,
queue); the JSON equals the CSVs; the HTML page renders in the test
browser (headless Chromium, from a file: the report is an admin's file,
not served) and its screenshot is kept in <project>/artifacts/report/.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import BROWSER, user_jobs, wait_no_jobs, wait_until

SPAWN_LOG = "/var/lib/jupyterhub/hpcgw-spawns.jsonl"
REPORT_DIR = "/var/lib/hpcgw-usage-report"
SERVICE = "hpcgw-usage-report.service"
TIMER = "hpcgw-usage-report.timer"
REMOTE = "/var/tmp/hpcgw-report"  # not /tmp: a tmpfs, which docker cp cannot reach
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "report"
FIELDS = "JobID,State,End,ElapsedRaw,AllocCPUS,ReqCPUS,ReqMem,TimelimitRaw,Partition,User"
# (user, spawn form, expected cluster, queue, requested cores)
SPAWNS = (
    ("alice", {"profile": "debug-1c"}, "testcluster", "debug", 1),
    ("carol", {"profile": "custom", "cluster_queue": "testcluster/batch", "cores": "2", "memory_gb": "1",
               "walltime_min": "20"}, "testcluster", "batch", 2),
)
SUMMARY_COLUMNS = (
    "user", "cluster", "queue", "spawns", "ready", "failed", "cancelled", "failure_reasons",
    "latency_p50_s", "latency_p95_s", "jobs_accounted", "req_cores", "alloc_cores",
    "req_mem_mb", "max_rss_mb", "req_walltime_min", "elapsed_min", "core_hours",
)


def _record(gateway: Host) -> list[dict[str, Any]]:
    text = gateway.check_output(f"cat {SPAWN_LOG} 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _sacct(gateway: Host, job_ids: list[str]) -> dict[str, dict[str, str]]:
    """sacct's allocation lines (-X) of these jobs, by job id; times as epoch seconds."""
    if not job_ids:
        return {}
    out = gateway.check_output(
        f"SLURM_TIME_FORMAT=%s sacct -a -X -P -n --format={FIELDS} -j {','.join(job_ids)}")
    rows = [dict(zip(FIELDS.split(","), line.split("|"))) for line in out.splitlines() if line.strip()]
    return {row["JobID"]: row for row in rows}


def _finished(gateway: Host, job_ids: list[str]) -> dict[str, dict[str, str]]:
    rows = _sacct(gateway, job_ids)
    done = all(j in rows and rows[j]["End"].isdigit() and rows[j]["State"].split()[0] not in ("RUNNING", "PENDING")
               for j in job_ids)
    return rows if done else {}


def _mb(text: str) -> float:
    """sacct's ReqMem (512M, 1G; 22.05 prints no n/c suffix, older releases 1Gn) in MB."""
    units = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 ** 2}
    text = text.rstrip("n")
    return float(text[:-1]) * units[text[-1]]


def _csv(gateway: Host, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(gateway.check_output(f"cat {REPORT_DIR}/{name}"))))


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


@pytest.fixture(scope="module")
def spawned(client: Callable[..., dict[str, Any]], gateway: Host) -> Iterator[list[dict[str, Any]]]:
    """Spawn and stop the two servers; their (user, job id, record line, expectations)."""
    users = [user for user, *_ in SPAWNS]
    for user in users:
        assert wait_no_jobs(gateway, user) == [], f"{user} still has a job from an earlier test"
    before = len(_record(gateway))
    results = []
    try:
        for user, form, cluster, queue, cores in SPAWNS:
            started = client("start", user, json.dumps(form))
            assert started.get("ready") is True, started
            jobs = user_jobs(gateway, user)
            assert len(jobs) == 1, jobs
            results.append({"user": user, "job_id": jobs[0][0], "cluster": cluster, "queue": queue, "cores": cores})
            assert client("stop", user).get("stopped") is True
            assert wait_no_jobs(gateway, user) == []
    finally:
        for user in users:
            if user_jobs(gateway, user):
                client("stop", user)
    new = _record(gateway)[before:]
    for result in results:
        lines = [line for line in new if line["job_id"] == result["job_id"]]
        assert len(lines) == 1, (result, new)
        result["line"] = lines[0]
    yield results


@pytest.fixture(scope="module")
def report(spawned: list[dict[str, Any]], gateway: Host) -> dict[str, Any]:
    """Wait for sacct's final records, then run the report's service (as the timer does) and read its JSON."""
    job_ids = [s["job_id"] for s in spawned]
    assert wait_until(lambda: _finished(gateway, job_ids), 120, interval=2), _sacct(gateway, job_ids)
    before = gateway.check_output(f"readlink {REPORT_DIR}/latest.json 2>/dev/null || true").strip()
    run = gateway.run(f"systemctl start {SERVICE}")
    assert run.rc == 0, run.stderr + gateway.check_output(f"journalctl -u {SERVICE} -n 30 --no-pager")
    after = gateway.check_output(f"readlink {REPORT_DIR}/latest.json").strip()
    assert after and after != before, (before, after)
    return json.loads(gateway.check_output(f"cat {REPORT_DIR}/latest.json"))


def test_spawn_record_has_one_line_per_start(spawned: list[dict[str, Any]]) -> None:
    for spawn in spawned:
        line = spawn["line"]
        assert (line["user"], line["cluster"], line["queue"], line["cores"], line["outcome"], line["reason"]) == (
            spawn["user"], spawn["cluster"], spawn["queue"], spawn["cores"], "ready", ""), line
        assert 0 < line["latency_s"] < 300, line


def test_report_jobs_match_sacct_and_the_record(report: dict[str, Any], spawned: list[dict[str, Any]],
                                                gateway: Host) -> None:
    rows = {row["job_id"]: row for row in report["jobs"] if row["job_id"]}
    accounting = _sacct(gateway, [s["job_id"] for s in spawned])
    for spawn in spawned:
        row, acct, line = rows[spawn["job_id"]], accounting[spawn["job_id"]], spawn["line"]
        assert (row["user"], row["cluster"], row["queue"], row["outcome"]) == (
            spawn["user"], spawn["cluster"], spawn["queue"], "ready"), row
        assert row["latency_s"] == round(line["latency_s"], 1), (row, line)
        assert row["state"] == acct["State"].split()[0], (row, acct)
        assert (acct["User"], acct["Partition"]) == (spawn["user"], spawn["queue"]), acct
        assert row["alloc_cores"] == int(acct["AllocCPUS"]) == spawn["cores"], (row, acct)
        assert row["req_cores"] == spawn["cores"]
        assert row["elapsed_s"] == int(acct["ElapsedRaw"]) > 0, (row, acct)
        assert row["req_mem_mb"] == pytest.approx(_mb(acct["ReqMem"])), (row, acct)
        assert row["req_walltime_min"] == int(acct["TimelimitRaw"]) == line["walltime_min"], (row, acct)
        assert row["core_hours"] == round(int(acct["AllocCPUS"]) * int(acct["ElapsedRaw"]) / 3600, 4)


def test_report_counts_every_recorded_spawn_and_every_accounted_job(report: dict[str, Any],
                                                                     gateway: Host) -> None:
    record = _record(gateway)
    assert report["spawns"] == len(record)  # all of them are within the report's 30 days
    known = set(_sacct(gateway, sorted({line["job_id"] for line in record if line["job_id"]})))
    assert {row["job_id"] for row in report["jobs"] if row["state"] is not None} == known
    for row in report["summary"]:
        group = [line for line in record if (line["user"], line["cluster"], line["queue"]) == (
            row["user"], row["cluster"], row["queue"])]
        assert row["spawns"] == len(group), row
        assert row["ready"] == sum(1 for line in group if line["outcome"] == "ready"), row
        assert row["failed"] == sum(1 for line in group if line["outcome"] == "failed"), row


def test_json_equals_csv(report: dict[str, Any], gateway: Host) -> None:
    summary, jobs = _csv(gateway, "latest.summary.csv"), _csv(gateway, "latest.jobs.csv")
    assert [list(r) for r in summary[:1]] == [list(SUMMARY_COLUMNS)]
    assert len(summary) == len(report["summary"]) and len(jobs) == len(report["jobs"])
    for got, want in zip(summary, report["summary"]):
        assert got == {k: _cell(v) for k, v in want.items() if k in got}, (got, want)
    for got, want in zip(jobs, report["jobs"]):
        assert got == {k: _cell(want[k]) for k in got}, (got, want)


def test_timer_is_enabled_and_scheduled(gateway: Host) -> None:
    assert gateway.check_output(f"systemctl is-enabled {TIMER}").strip() == "enabled"
    timers = gateway.check_output(f"systemctl list-timers --all --no-pager {TIMER}")
    assert TIMER in timers and SERVICE in timers, timers
    files = gateway.check_output(f"stat -L -c '%U %a' {REPORT_DIR} {REPORT_DIR}/latest.json").splitlines()
    assert files == ["root 2750", "root 640"], files


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
    return struct.unpack(">II", data[16:24])


def test_html_renders_in_the_browser(report: dict[str, Any], browser: Host) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "report.html"
        subprocess.run(["docker", "cp", "-L", f"hpcgw-gw:{REPORT_DIR}/latest.html", str(local)], check=True)
        page = local.read_text(encoding="utf-8")
        browser.run_expect([0], f"rm -rf {REMOTE} && mkdir -p {REMOTE}")
        subprocess.run(["docker", "cp", str(local), f"{BROWSER}:{REMOTE}/report.html"], check=True)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    chromium = ("chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage "
                "--window-size=1400,2000 --virtual-time-budget=2000")
    dom = browser.run(f"{chromium} --dump-dom file://{REMOTE}/report.html")
    assert dom.rc == 0, dom.stderr
    assert dom.stdout.count("<svg") == 3, dom.stdout[:2000]
    assert f'id="spawn-count">{report["spawns"]}<' in dom.stdout
    for spawn_row in report["summary"]:
        assert f"<td>{spawn_row['user']}</td>" in dom.stdout
    shot = browser.run(f"{chromium} --screenshot={REMOTE}/report.png file://{REMOTE}/report.html")
    assert shot.rc == 0, shot.stderr
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    subprocess.run(["docker", "cp", f"{BROWSER}:{REMOTE}/report.png", str(ARTIFACTS / "report.png")], check=True)
    (ARTIFACTS / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    width, height = _png_size(ARTIFACTS / "report.png")
    assert (width, height) == (1400, 2000)
    assert (ARTIFACTS / "report.png").stat().st_size > 20_000
    print("report screenshot:", ARTIFACTS / "report.png", shlex.quote(str(ARTIFACTS / "report.json")))
