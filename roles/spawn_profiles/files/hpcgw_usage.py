"""Usage report of the gateway: the hub's spawn record joined with SLURM's accounting.

``hpcgw-usage-report`` (role spawn_profiles; a systemd timer runs it as root,
daily by default) reads the spawn record the hub appends to
(``hpcgw_spawnlog``: one JSON line per start), asks ``sacct`` for the jobs
those spawns submitted, and writes per user, cluster and queue: spawns,
failures with their reasons, start latency p50/p95, requested and allocated
cores, requested memory and the largest MaxRSS, requested walltime and
elapsed time, core-hours. Outputs in the output directory, one set per run
(``usage-<UTC stamp>.*``) plus ``latest.*`` links: the summary and the jobs
as CSV, both in one JSON file, and one self-contained HTML page with inline
SVG plots (spawns per day, start latency per queue, core-hours per cluster;
nothing loaded from the network). Files older than the retention are
removed.

Only the parsing, joining, aggregation and rendering live here (pure
functions, unit-tested); ``main`` runs sacct and writes the files.

A job is joined to its spawn when sacct knows its id and its submit time is
within ``JOIN_WINDOW`` of the request (a job id a scheduler reused, or one
of another cluster, is not mistaken for it). Spawns on clusters sacct on
this host does not see (``--clusters``) and local servers carry no
accounting; their columns stay empty.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

SACCT_FIELDS = ("JobID", "User", "Partition", "Cluster", "State", "Submit", "Start", "End", "ElapsedRaw",
                "AllocCPUS", "ReqCPUS", "ReqMem", "MaxRSS", "TimelimitRaw", "NodeList")
# Seconds a job's submit time may lie before/after the spawn request it joins.
JOIN_WINDOW = (-120.0, 3600.0)
SUMMARY_COLUMNS = (
    "user", "cluster", "queue", "spawns", "ready", "failed", "cancelled", "failure_reasons",
    "latency_p50_s", "latency_p95_s", "jobs_accounted", "req_cores", "alloc_cores",
    "req_mem_mb", "max_rss_mb", "req_walltime_min", "elapsed_min", "core_hours",
)
JOB_COLUMNS = (
    "requested", "user", "server", "cluster", "queue", "profile", "job_id", "outcome", "latency_s", "reason",
    "state", "submit", "start", "end", "node_list", "req_cores", "alloc_cores", "req_mem_mb",
    "max_rss_mb", "req_walltime_min", "elapsed_s", "core_hours",
)
_UNITS = {"": 1.0 / 1024 / 1024, "K": 1.0 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 * 1024, "P": 1024.0 ** 3}
_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)([nc]?)$")


# ----------------------------------------------------------------- parsing

def memory_mb(text: str, cpus: int = 1, nodes: int = 1) -> Optional[float]:
    """SLURM memory (``512M``, ``1G``, ``2000K``, ``4Gc`` per CPU, ``4Gn`` per node) in MB; None when empty."""
    match = _MEM_RE.match(text.strip())
    if not match:
        return None
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if match.group(3) == "c":
        value *= max(cpus, 1)
    elif match.group(3) == "n":
        value *= max(nodes, 1)
    return round(value, 3)


def _int(text: str) -> Optional[int]:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _epoch(text: str) -> Optional[float]:
    """sacct time under SLURM_TIME_FORMAT=%s (epoch seconds); None for Unknown/None."""
    value = _int(text.strip())
    return float(value) if value and value > 0 else None


@dataclass
class Job:
    """One job of sacct, its steps folded in (MaxRSS is the steps' largest)."""

    job_id: str
    user: str = ""
    partition: str = ""
    cluster: str = ""
    state: str = ""
    submit: Optional[float] = None
    start: Optional[float] = None
    end: Optional[float] = None
    elapsed_s: Optional[int] = None
    alloc_cpus: Optional[int] = None
    req_cpus: Optional[int] = None
    req_mem_mb: Optional[float] = None
    max_rss_mb: Optional[float] = None
    timelimit_min: Optional[int] = None
    node_list: str = ""

    @property
    def core_hours(self) -> Optional[float]:
        if self.alloc_cpus is None or self.elapsed_s is None:
            return None
        return self.alloc_cpus * self.elapsed_s / 3600.0


def parse_sacct(text: str) -> dict[str, Job]:
    """``sacct -P -n --format=<SACCT_FIELDS>`` output by job id (array/het suffixes kept)."""
    jobs: dict[str, Job] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        values = line.split("|")
        if len(values) < len(SACCT_FIELDS):
            continue
        row = dict(zip(SACCT_FIELDS, values))
        job_id, _, step = row["JobID"].partition(".")
        rss = memory_mb(row["MaxRSS"]) if row["MaxRSS"] else None
        if step:
            job = jobs.setdefault(job_id, Job(job_id))
            if rss is not None and (job.max_rss_mb is None or rss > job.max_rss_mb):
                job.max_rss_mb = rss
            continue
        job = jobs.setdefault(job_id, Job(job_id))
        alloc = _int(row["AllocCPUS"])
        job.user, job.partition, job.cluster = row["User"], row["Partition"], row["Cluster"]
        job.state = row["State"].split()[0] if row["State"] else ""
        job.submit, job.start, job.end = _epoch(row["Submit"]), _epoch(row["Start"]), _epoch(row["End"])
        job.elapsed_s = _int(row["ElapsedRaw"])
        job.alloc_cpus = alloc
        job.req_cpus = _int(row["ReqCPUS"])
        job.req_mem_mb = memory_mb(row["ReqMem"], cpus=job.req_cpus or 1)
        job.timelimit_min = _int(row["TimelimitRaw"])
        job.node_list = row["NodeList"]
        if rss is not None and (job.max_rss_mb is None or rss > job.max_rss_mb):
            job.max_rss_mb = rss
    return jobs


@dataclass
class Spawn:
    """One line of the hub's spawn record."""

    requested: float
    user: str
    cluster: str
    queue: str
    profile: str
    cores: int
    memory_gb: int
    walltime_min: int
    job_id: str
    outcome: str
    latency_s: float
    reason: str
    server: str = ""  # the server's name; "" for the user's default server (and records before named servers)


def _timestamp(text: str) -> float:
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def parse_spawn_log(lines: Iterable[str], since: float = 0.0, until: float = math.inf) -> tuple[list[Spawn], int]:
    """The record's spawns requested in [since, until); and the count of unreadable lines."""
    spawns: list[Spawn] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            spawn = Spawn(
                requested=_timestamp(str(raw["requested"])), user=str(raw["user"]),
                cluster=str(raw.get("cluster", "")), queue=str(raw.get("queue", "")),
                profile=str(raw.get("profile", "")), cores=int(raw.get("cores", 0) or 0),
                memory_gb=int(raw.get("memory_gb", 0) or 0), walltime_min=int(raw.get("walltime_min", 0) or 0),
                job_id=str(raw.get("job_id", "") or ""), outcome=str(raw.get("outcome", "")),
                latency_s=float(raw.get("latency_s", 0.0) or 0.0), reason=str(raw.get("reason", "")),
                server=str(raw.get("server", "") or ""))
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        if since <= spawn.requested < until:
            spawns.append(spawn)
    return spawns, bad


# ------------------------------------------------------------------ joining

def joined(spawn: Spawn, jobs: Mapping[str, Job], accounted: Optional[set[str]] = None) -> Optional[Job]:
    """The sacct job of a spawn: same id, submitted within JOIN_WINDOW of the request."""
    if not spawn.job_id or (accounted is not None and spawn.cluster not in accounted):
        return None
    job = jobs.get(spawn.job_id)
    if job is None or job.submit is None:
        return None
    offset = job.submit - spawn.requested
    return job if JOIN_WINDOW[0] <= offset <= JOIN_WINDOW[1] else None


def reason_key(reason: str) -> str:
    """A failure reason with its numbers (job ids, seconds) made generic, to count alike ones together."""
    return re.sub(r"\d+", "N", reason).strip() or "(no reason given)"


def percentile(values: Sequence[float], share: float) -> Optional[float]:
    """Nearest-rank percentile (share in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _round(value: Optional[float], digits: int = 3) -> Optional[float]:
    return None if value is None else round(value, digits)


def job_rows(spawns: Sequence[Spawn], jobs: Mapping[str, Job],
             accounted: Optional[set[str]] = None) -> list[dict[str, Any]]:
    """One row per spawn, with its job's accounting when joined."""
    rows = []
    for spawn in sorted(spawns, key=lambda s: (s.requested, s.user)):
        job = joined(spawn, jobs, accounted)
        rows.append({
            "requested": datetime.fromtimestamp(spawn.requested, timezone.utc).isoformat(timespec="seconds"),
            "user": spawn.user, "server": spawn.server, "cluster": spawn.cluster, "queue": spawn.queue,
            "profile": spawn.profile,
            "job_id": spawn.job_id, "outcome": spawn.outcome, "latency_s": _round(spawn.latency_s, 1),
            "reason": spawn.reason,
            "state": job.state if job else None,
            "submit": _iso(job.submit) if job else None,
            "start": _iso(job.start) if job else None,
            "end": _iso(job.end) if job else None,
            "node_list": job.node_list if job else None,
            "req_cores": spawn.cores or None,
            "alloc_cores": job.alloc_cpus if job else None,
            "req_mem_mb": (job.req_mem_mb if job and job.req_mem_mb is not None
                           else (spawn.memory_gb * 1024 or None)),
            "max_rss_mb": _round(job.max_rss_mb) if job else None,
            "req_walltime_min": (job.timelimit_min if job and job.timelimit_min is not None
                                 else (spawn.walltime_min or None)),
            "elapsed_s": job.elapsed_s if job else None,
            "core_hours": _round(job.core_hours, 4) if job else None,
        })
    return rows


def _iso(epoch: Optional[float]) -> Optional[str]:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def _sum(values: Iterable[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def summary_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per user, cluster and queue (sorted): counts, reasons, latency, resources asked for and used."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["user"], row["cluster"], row["queue"]), []).append(row)
    out = []
    for (user, cluster, queue), members in sorted(groups.items()):
        outcomes = Counter(r["outcome"] for r in members)
        reasons = Counter(reason_key(r["reason"]) for r in members if r["outcome"] != "ready")
        ready_latency = [float(r["latency_s"]) for r in members if r["outcome"] == "ready"]
        accounted = [r for r in members if r["state"] is not None]
        rss = [r["max_rss_mb"] for r in accounted if r["max_rss_mb"] is not None]
        elapsed = _sum(r["elapsed_s"] for r in accounted)
        out.append({
            "user": user, "cluster": cluster, "queue": queue,
            "spawns": len(members), "ready": outcomes.get("ready", 0), "failed": outcomes.get("failed", 0),
            "cancelled": outcomes.get("cancelled", 0),
            "failure_reasons": "; ".join(f"{count} x {text}" for text, count in sorted(
                reasons.items(), key=lambda item: (-item[1], item[0]))),
            "latency_p50_s": _round(statistics.median(ready_latency), 1) if ready_latency else None,
            "latency_p95_s": _round(percentile(ready_latency, 0.95), 1),
            "jobs_accounted": len(accounted),
            "req_cores": _sum(r["req_cores"] for r in members),
            "alloc_cores": _sum(r["alloc_cores"] for r in accounted),
            "req_mem_mb": _round(_sum(r["req_mem_mb"] for r in members)),
            "max_rss_mb": _round(max(rss)) if rss else None,
            "req_walltime_min": _sum(r["req_walltime_min"] for r in members),
            "elapsed_min": _round(elapsed / 60.0, 2) if elapsed is not None else None,
            # from the jobs' cores and seconds, not the rounded per-job values
            "core_hours": _round(_sum(r["alloc_cores"] * r["elapsed_s"] / 3600.0 for r in accounted
                                      if r["alloc_cores"] is not None and r["elapsed_s"] is not None), 4),
        })
    return out


def report(spawns: Sequence[Spawn], jobs: Mapping[str, Job], since: float, until: float,
           accounted: Optional[set[str]] = None, bad_lines: int = 0, generated: Optional[float] = None) -> dict[str, Any]:
    """The whole report as data: the JSON file, and what the CSV and HTML show."""
    rows = job_rows(spawns, jobs, accounted)
    return {
        "generated": _iso(generated if generated is not None else time.time()),
        "since": _iso(since), "until": _iso(until),
        "spawns": len(rows),
        "unreadable_record_lines": bad_lines,
        "jobs_without_accounting": sum(1 for r in rows if r["job_id"] and r["state"] is None),
        "summary": summary_rows(rows),
        "jobs": rows,
    }


# ---------------------------------------------------------------- rendering

def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV with a header; None as an empty cell (the JSON's null)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return buffer.getvalue()


PALETTE = ("#1f77b4", "#d62728", "#7f7f7f", "#2ca02c", "#ff7f0e", "#9467bd")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def svg_bars(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
             unit: str = "", stacked: bool = True, width: int = 720) -> str:
    """A bar chart as inline SVG: one group per label, series stacked or side by side, with a legend."""
    left, right, top, bottom = 60, 20, 40, 90
    height = 320
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[1][i] for s in series) if stacked else max((s[1][i] for s in series), default=0)
              for i in range(len(labels))]
    top_value = _nice_max(max(totals, default=0))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>',
             f'<text x="{left}" y="20" class="chart-title">{html.escape(title)}</text>']
    for tick in range(5):
        value = top_value * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{value:g}{unit}</text>')
    if not labels:
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle">no data</text>')
    slot = plot_w / max(len(labels), 1)
    bar_w = slot * 0.7 / (1 if stacked else max(len(series), 1))
    for i, label in enumerate(labels):
        x0 = left + slot * i + slot * 0.15
        base = 0.0
        for k, (name, values) in enumerate(series):
            value = values[i]
            h = plot_h * value / top_value
            x = x0 if stacked else x0 + k * bar_w
            y = top + plot_h - (plot_h * base / top_value) - h
            if value > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                             f'fill="{PALETTE[k % len(PALETTE)]}"><title>{html.escape(label)} {html.escape(name)}: '
                             f'{value:g}{unit}</title></rect>')
            if stacked:
                base += value
        cx = left + slot * i + slot / 2
        parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14}" text-anchor="end" class="tick" '
                     f'transform="rotate(-30 {cx:.1f} {top + plot_h + 14})">{html.escape(label)}</text>')
    for k, (name, _) in enumerate(series):
        lx = left + k * 140
        parts.append(f'<rect x="{lx}" y="{height - 18}" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>'
                     f'<text x="{lx + 16}" y="{height - 8}" class="tick">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def plots(data: Mapping[str, Any]) -> dict[str, str]:
    """The three plots of the page, as SVG strings."""
    rows = data["jobs"]
    days = sorted({r["requested"][:10] for r in rows})
    per_day = {outcome: [sum(1 for r in rows if r["requested"][:10] == d and r["outcome"] == outcome) for d in days]
               for outcome in ("ready", "failed", "cancelled")}
    queues = sorted({(r["cluster"], r["queue"]) for r in rows})
    latency: dict[str, list[float]] = {"p50": [], "p95": []}
    for cluster, queue in queues:
        values = [float(r["latency_s"]) for r in rows
                  if (r["cluster"], r["queue"]) == (cluster, queue) and r["outcome"] == "ready"]
        latency["p50"].append(statistics.median(values) if values else 0.0)
        latency["p95"].append(percentile(values, 0.95) or 0.0)
    clusters = sorted({r["cluster"] for r in rows})
    hours = [round(sum(r["core_hours"] or 0.0 for r in rows if r["cluster"] == c), 4) for c in clusters]
    return {
        "spawns_per_day": svg_bars("Spawns per day", days, [(k, v) for k, v in per_day.items()]),
        "latency_per_queue": svg_bars("Start latency per queue (ready spawns)",
                                      [f"{c}/{q}" if q else c for c, q in queues],
                                      [("p50", latency["p50"]), ("p95", latency["p95"])], unit=" s", stacked=False),
        "core_hours_per_cluster": svg_bars("Core-hours per cluster", clusters, [("core-hours", hours)]),
    }


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{'' if row.get(c) is None else html.escape(str(row.get(c)))}</td>" for c in columns)
        + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f0f0f0}.chart{border:1px solid #ddd;margin:.5em .5em 0 0}.chart-title{font-weight:bold;font-size:14px}
.tick{font-size:11px;fill:#444}.grid{stroke:#e4e4e4}.plots{display:flex;flex-wrap:wrap}"""


def to_html(data: Mapping[str, Any]) -> str:
    """One self-contained page: facts, plots (inline SVG), summary and job tables; no external resource."""
    charts = plots(data)
    facts = (f"<p>Spawns requested from {html.escape(str(data['since']))} to {html.escape(str(data['until']))}: "
             f"<strong id=\"spawn-count\">{data['spawns']}</strong>; jobs without an accounting record: "
             f"{data['jobs_without_accounting']}; unreadable record lines: {data['unreadable_record_lines']}. "
             f"Generated {html.escape(str(data['generated']))}.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>Gateway usage report</title><style>{STYLE}</style></head><body>"
            f"<h1>Gateway usage report</h1>{facts}"
            f"<div class=\"plots\">{''.join(charts.values())}</div>"
            "<h2>Per user, cluster and queue</h2>" + _table(data["summary"], SUMMARY_COLUMNS, "summary")
            + "<h2>Spawns and their jobs</h2>" + _table(data["jobs"], JOB_COLUMNS, "jobs")
            + "</body></html>\n")


# ------------------------------------------------------------------ running

def run_sacct(sacct: str, job_ids: Sequence[str], chunk: int = 200) -> str:
    """sacct's records of these jobs (all users; times as epoch seconds)."""
    env = dict(os.environ, SLURM_TIME_FORMAT="%s")
    out = []
    for i in range(0, len(job_ids), chunk):
        ids = ",".join(job_ids[i:i + chunk])
        result = subprocess.run([sacct, "-a", "-P", "-n", "--format=" + ",".join(SACCT_FIELDS), "-j", ids],
                                capture_output=True, text=True, env=env, check=False, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"sacct failed ({result.returncode}): {result.stderr.strip()}")
        out.append(result.stdout)
    return "".join(out)


def write_outputs(data: Mapping[str, Any], out_dir: Path, stamp: str) -> dict[str, Path]:
    """usage-<stamp>.{json,html}, usage-<stamp>-{summary,jobs}.csv, and latest.* links to them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {
        "json": json.dumps(data, indent=1, sort_keys=True) + "\n",
        "html": to_html(data),
        "summary.csv": to_csv(data["summary"], SUMMARY_COLUMNS),
        "jobs.csv": to_csv(data["jobs"], JOB_COLUMNS),
    }
    written = {}
    for kind, text in contents.items():
        name = f"usage-{stamp}.{kind}" if "." not in kind else f"usage-{stamp}-{kind}"
        path = out_dir / name
        tmp = path.with_name("." + name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o640)
        tmp.replace(path)
        link = out_dir / f"latest.{kind}"
        tmp_link = out_dir / f".latest.{kind}.tmp"
        if tmp_link.is_symlink() or tmp_link.exists():
            tmp_link.unlink()
        tmp_link.symlink_to(name)
        tmp_link.replace(link)
        written[kind] = path
    return written


def prune(out_dir: Path, keep_days: int, now: float) -> list[Path]:
    """Remove this command's files older than keep_days (0 keeps everything)."""
    if keep_days <= 0:
        return []
    removed = []
    for path in out_dir.glob("usage-*"):
        if path.is_file() and now - path.stat().st_mtime > keep_days * 86400:
            path.unlink()
            removed.append(path)
    return removed


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="hpcgw-usage-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spawn-log", required=True, help="the hub's spawn record (JSON lines)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--days", type=int, default=30, help="spawns of the last N days (default 30)")
    parser.add_argument("--keep-days", type=int, default=90, help="remove reports older than this (0: keep)")
    parser.add_argument("--sacct", default="/usr/bin/sacct", help="sacct command")
    parser.add_argument("--clusters", default=None,
                        help="comma-separated gateway clusters whose jobs this host's sacct sees "
                             "(absent: all; empty: none)")
    args = parser.parse_args(argv)
    now = time.time()
    since, until = now - args.days * 86400, now + 1
    try:
        with open(args.spawn_log, encoding="utf-8") as record:
            spawns, bad = parse_spawn_log(record, since, until)
    except FileNotFoundError:
        spawns, bad = [], 0
    accounted = None if args.clusters is None else {c for c in args.clusters.split(",") if c}
    ids = sorted({s.job_id for s in spawns if s.job_id and (accounted is None or s.cluster in accounted)})
    jobs = parse_sacct(run_sacct(args.sacct, ids)) if ids else {}
    data = report(spawns, jobs, since, until, accounted, bad, now)
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    written = write_outputs(data, args.out, stamp)
    prune(args.out, args.keep_days, now)
    print(json.dumps({"spawns": data["spawns"], "html": str(written["html"]), "json": str(written["json"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
