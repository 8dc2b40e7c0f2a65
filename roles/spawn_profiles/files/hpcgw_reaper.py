"""Cancel the gateway's batch jobs that no server of the hub owns.

A hub-managed service of the hpc-gateway bundle (role spawn_profiles). Every
``--interval`` seconds it lists, on each cluster the gateway submits to
locally, the jobs carrying this gateway's mark (``--comment=hpcgw:<tag>``,
set by the batch script), and the job ids the hub's servers hold (pending
spawns included: the spawner saves the id right after submitting). A marked
job that no server owns and that was submitted more than ``--grace`` seconds
ago is an orphan (a spawn lost to a crash, a server forgotten): it is
cancelled as its user (``sudo -n -u <user> scancel <id>``, within the hub's
sudo rules) and the cancel is logged. ``--dry-run`` logs only.

Only the standard library; the hub's API token and URL come from the
environment JupyterHub gives its services.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

LOG = logging.getLogger("hpcgw-reaper")
SQUEUE_FORMAT = "%i|%u|%k|%V|%T"
JOB_ID = re.compile(r"[0-9]+\Z")
USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}\Z")

Runner = Callable[[Sequence[str]], str]


@dataclass(frozen=True)
class Job:
    """A batch job of the scheduler's listing."""

    job_id: str
    user: str
    comment: str
    submitted: datetime
    state: str


def mark(tag: str) -> str:
    """The comment the batch script gives the gateway's jobs."""
    return f"hpcgw:{tag}"


def parse_squeue(output: str) -> list[Job]:
    """Jobs from ``squeue -h -o '%i|%u|%k|%V|%T'``; malformed lines are skipped."""
    jobs = []
    for line in output.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 5 or not JOB_ID.match(fields[0]) or not USER.match(fields[1]):
            continue
        try:
            submitted = datetime.fromisoformat(fields[3])
        except ValueError:
            continue
        jobs.append(Job(fields[0], fields[1], fields[2], submitted, fields[4]))
    return jobs


def owned_job_ids(users: Iterable[Mapping[str, Any]]) -> set[str]:
    """Job ids the hub's servers hold (from GET /users with server state)."""
    owned = set()
    for user in users:
        for server in (user.get("servers") or {}).values():
            state = server.get("state") or {}
            for holder in (state, state.get("child_state") or {}):
                job_id = str(holder.get("job_id") or "")
                if job_id:
                    owned.add(job_id)
    return owned


def orphans(jobs: Iterable[Job], owned: set[str], tag: str, now: datetime, grace: float) -> list[Job]:
    """This gateway's jobs that no server owns, older than the grace period."""
    limit = now - timedelta(seconds=grace)
    return [job for job in jobs
            if job.comment == mark(tag) and job.job_id not in owned and job.submitted <= limit]


def local_clusters(catalog: Mapping[str, Any]) -> list[str]:
    """Names of the SLURM clusters the gateway submits to itself."""
    return [c["name"] for c in catalog.get("clusters", [])
            if c.get("scheduler") == "slurm" and c.get("submit", "local") == "local"]


def hub_users(api_url: str, token: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every user with servers, their server state included (paginated)."""
    users: list[dict[str, Any]] = []
    offset = 0
    while True:
        request = urllib.request.Request(
            f"{api_url.rstrip('/')}/users?state=active&include_stopped_servers=false&offset={offset}&limit=200",
            headers={"Authorization": f"token {token}", "Accept": "application/jupyterhub-pagination+json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the hub's own API)
            page = json.loads(response.read())
        items = page.get("items", page) if isinstance(page, dict) else page
        users.extend(items)
        following = (page.get("_pagination") or {}).get("next") if isinstance(page, dict) else None
        if not following:
            return users
        offset = int(following["offset"])


def run(argv: Sequence[str]) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=60).stdout


@dataclass
class Reaper:
    """One pass: list, compare, cancel (or only say so)."""

    tag: str
    grace: float
    dry_run: bool
    squeue: str = "/usr/bin/squeue"
    scancel: str = "/usr/bin/scancel"
    runner: Runner = run

    def gateway_jobs(self) -> list[Job]:
        return parse_squeue(self.runner([self.squeue, "-h", "-a", "-o", SQUEUE_FORMAT]))

    def cancel(self, job: Job) -> None:
        self.runner(["sudo", "-n", "-u", job.user, self.scancel, job.job_id])

    def sweep(self, owned: set[str], now: Optional[datetime] = None) -> list[Job]:
        found = orphans(self.gateway_jobs(), owned, self.tag, now or datetime.now(), self.grace)
        for job in found:
            if self.dry_run:
                LOG.warning("Orphan job %s of %s (submitted %s, %s): would cancel (dry run)",
                            job.job_id, job.user, job.submitted.isoformat(), job.state)
                continue
            try:
                self.cancel(job)
            except (OSError, subprocess.SubprocessError) as exc:
                LOG.error("Orphan job %s of %s: cancel failed: %s", job.job_id, job.user, exc)
                continue
            LOG.warning("Cancelled orphan job %s of %s (submitted %s, %s): no server of the hub owns it",
                        job.job_id, job.user, job.submitted.isoformat(), job.state)
        return found


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="hpcgw-reaper", description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="/etc/jupyterhub/clusters.json")
    parser.add_argument("--tag", required=True, help="this gateway's mark (hpcgw:<tag> job comment)")
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--grace", type=float, default=300.0)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(list(argv[1:]))
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s %(name)s] %(message)s")
    api_url, token = environ.get("JUPYTERHUB_API_URL", ""), environ.get("JUPYTERHUB_API_TOKEN", "")
    if not api_url or not token:
        LOG.error("JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN must be set (run it as a hub service)")
        return 2
    catalog = json.loads(Path(args.catalog).read_text(encoding="utf-8"))
    clusters = local_clusters(catalog)
    LOG.info("Watching %s every %.0f s (grace %.0f s%s); clusters reached over SSH are not swept",
             ", ".join(clusters) or "no local SLURM cluster", args.interval, args.grace,
             ", dry run" if args.dry_run else "")
    reaper = Reaper(tag=args.tag, grace=args.grace, dry_run=args.dry_run)
    while True:
        if clusters:
            try:
                reaper.sweep(owned_job_ids(hub_users(api_url, token)))
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                LOG.error("Sweep skipped: %s", exc)
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
