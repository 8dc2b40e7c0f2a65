"""What is free on a cluster right now, and when the scheduler would start a job.

Pure Python (no JupyterHub import), unit-tested in ``tests/unit``; the hub's
spawn page (:mod:`hpcgw_spawner`) and its estimate API
(:mod:`hpcgw_form_api`) use it.

* :class:`AvailabilityPoller`: per cluster with ``status_query: shared``
  (SLURM the gateway submits to itself), one ``sinfo`` and one ``squeue``
  as the hub account, without sudo, at most once per ``interval`` for every
  page view of every user (the coalescing of
  :class:`hpcgw_status.SharedStatusPoller`: one query in flight, an answer
  reused while fresh). A page view never waits for more than ``max_wait``;
  a failed query keeps nothing (the form then shows nothing rather than
  old numbers);
* :func:`estimate_argv` / :func:`parse_estimate`: ``sbatch --test-only``
  built only from a validated :class:`hpcgw_profiles.Choice` (no value of
  the request reaches the command line otherwise), run as the user through
  the hub's existing sudo rule for ``sbatch``;
* :class:`RateLimiter`: a token bucket per user for the estimate API.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from hpcgw_profiles import Choice
from hpcgw_status import COUNTER, CommandCounter, Runner, run_exec

LOG = logging.getLogger("JupyterHub.hpcgw_sched")

# sinfo: one line per partition, "<partition> <nodes A/I/O/T> <cpus A/I/O/T>".
SINFO_FORMAT = "%R %F %C"
COUNTS = re.compile(r"([0-9]{1,9})/([0-9]{1,9})/([0-9]{1,9})/([0-9]{1,9})")
PARTITION = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# sbatch --test-only (stderr): "sbatch: Job 12 to start at 2026-11-25T22:19:18
# using 2 processors on nodes hpcgw-c1 in partition debug".
ESTIMATE = re.compile(r"Job ([0-9]{1,20}) to start at ([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}) "
                      r"using ([0-9]{1,9}) processors on nodes ([A-Za-z0-9_.,\[\]-]{1,255})"
                      r"(?: in partition ([A-Za-z0-9_.-]{1,64}))?")
USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")


@dataclass(frozen=True)
class Free:
    """One partition right now: idle nodes and cores (of the nodes that are up), jobs pending."""

    idle_nodes: int
    total_nodes: int
    idle_cores: int
    total_cores: int
    pending_jobs: int

    def as_dict(self) -> dict[str, int]:
        return {"idle_nodes": self.idle_nodes, "total_nodes": self.total_nodes, "idle_cores": self.idle_cores,
                "total_cores": self.total_cores, "pending_jobs": self.pending_jobs}


def parse_sinfo(output: str) -> dict[str, tuple[int, int, int, int]]:
    """``sinfo -h -a -o '%R %F %C'`` -> {partition: (idle nodes, nodes, idle cores, cores)}.

    A partition on several lines (sinfo splits by node state in some
    versions) is summed; malformed lines are skipped.
    """
    out: dict[str, tuple[int, int, int, int]] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) != 3 or not PARTITION.fullmatch(fields[0]):
            continue
        nodes, cpus = COUNTS.fullmatch(fields[1]), COUNTS.fullmatch(fields[2])
        if not nodes or not cpus:
            continue
        old = out.get(fields[0], (0, 0, 0, 0))
        out[fields[0]] = (old[0] + int(nodes.group(2)), old[1] + int(nodes.group(4)),
                          old[2] + int(cpus.group(2)), old[3] + int(cpus.group(4)))
    return out


def parse_pending(output: str) -> dict[str, int]:
    """``squeue -h -a -t PENDING -o '%P'`` -> {partition: pending jobs}; a job
    pending in several partitions ("debug,batch") counts in each."""
    out: dict[str, int] = {}
    for line in output.splitlines():
        for name in line.strip().split(","):
            if PARTITION.fullmatch(name):
                out[name] = out.get(name, 0) + 1
    return out


def combine(sinfo: dict[str, tuple[int, int, int, int]], pending: dict[str, int]) -> dict[str, Free]:
    return {name: Free(n_idle, n_all, c_idle, c_all, pending.get(name, 0))
            for name, (n_idle, n_all, c_idle, c_all) in sinfo.items()}


class AvailabilityPoller:
    """A cluster's free nodes and cores and pending jobs, shared by every page view."""

    def __init__(self, cluster: str, bin_dir: str = "/usr/bin", runner: Runner = run_exec, *,
                 interval: float = 30.0, max_wait: float = 3.0, timeout: float = 15.0,
                 clock: Callable[[], float] = time.monotonic, counter: CommandCounter = COUNTER) -> None:
        self.cluster = cluster
        self.sinfo = f"{bin_dir.rstrip('/')}/sinfo"
        self.squeue = f"{bin_dir.rstrip('/')}/squeue"
        self.runner = runner
        self.interval = interval
        self.max_wait = max_wait
        self.timeout = timeout
        self.clock = clock
        self.counter = counter
        self.calls = 0
        self._free: dict[str, Free] = {}
        self._taken_at: Optional[float] = None
        self._inflight: Optional[asyncio.Future[None]] = None

    def fresh(self, now: float) -> bool:
        return self._taken_at is not None and now - self._taken_at < self.interval

    async def current(self) -> tuple[dict[str, Free], Optional[float]]:
        """({partition: Free}, age in seconds or None): refreshed when older than
        ``interval`` (one query for all callers), waiting at most ``max_wait``."""
        if not self.fresh(self.clock()):
            if self._inflight is None:
                self._inflight = asyncio.ensure_future(self._refresh())
            try:
                await asyncio.wait_for(asyncio.shield(self._inflight), self.max_wait)
            except asyncio.TimeoutError:
                pass  # the query goes on for the next page view
            except Exception:  # noqa: BLE001  (logged by _refresh)
                pass
        if self._taken_at is None:
            return {}, None
        return dict(self._free), max(0.0, self.clock() - self._taken_at)

    async def _refresh(self) -> None:
        try:
            started = self.clock()
            self.calls += 1
            self.counter.count(self.cluster, "availability")
            sinfo = await self.runner([self.sinfo, "-h", "-a", "-o", SINFO_FORMAT])
            pending = await self.runner([self.squeue, "-h", "-a", "-t", "PENDING", "-o", "%P"])
            if sinfo[0] != 0 or pending[0] != 0:
                raise RuntimeError((sinfo[2] or pending[2]).strip()[:200] or "exit status not 0")
            self._free = combine(parse_sinfo(sinfo[1]), parse_pending(pending[1]))
            self._taken_at = started
        except Exception as exc:  # noqa: BLE001  (no numbers rather than wrong ones)
            LOG.warning("Availability query on %s failed: %s", self.cluster, exc)
            self._free, self._taken_at = {}, None
        finally:
            self._inflight = None


POLLERS: dict[str, AvailabilityPoller] = {}


def configure(clusters: Sequence[str], bin_dir: str, runner: Runner = run_exec, **options: float) -> None:
    """One availability poller per cluster with ``status_query: shared`` (the hub's config calls this)."""
    POLLERS.clear()
    for name in clusters:
        POLLERS[name] = AvailabilityPoller(name, bin_dir, runner, **options)  # type: ignore[arg-type]


async def availability(cluster: str) -> tuple[dict[str, Free], Optional[float]]:
    poller = POLLERS.get(cluster)
    return await poller.current() if poller else ({}, None)


# --- start estimate ---------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """The scheduler's answer: a start time (its local time, ISO) or why not."""

    start: str = ""
    processors: int = 0
    nodes: str = ""
    partition: str = ""
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"start": self.start or None, "processors": self.processors, "nodes": self.nodes,
                "partition": self.partition, "message": self.message}


def estimate_argv(sudo_prefix: Sequence[str], sbatch: str, user: str, choice: Choice) -> list[str]:
    """``sudo -n -u <user> <sbatch> --test-only ...`` for a validated choice.

    Every value is the checked choice's (names from the catalog, integers
    within the queue's limits) or ours; each is one argv element, no shell.
    """
    if not USER.fullmatch(user):
        raise ValueError(f"not a user name for sudo: {user[:40]!r}")
    hours, minutes = divmod(choice.walltime_min, 60)
    argv = [*sudo_prefix, "-u", user, sbatch, "--test-only", "--wrap=true", "--job-name=hpcgw-estimate",
            "--chdir=/tmp", "--output=/dev/null", "--nodes=1", "--ntasks=1", f"--partition={choice.queue}",
            f"--time={hours:02d}:{minutes:02d}:00", f"--mem={choice.memory_gb}G",
            f"--cpus-per-task={choice.cores}"]
    if choice.gpus:
        argv.append(f"--gres=gpu:{choice.gpus}")
    if choice.account:
        argv.append(f"--account={choice.account}")
    return argv


def parse_estimate(code: int, out: str, err: str) -> Estimate:
    """sbatch --test-only's answer: the start estimate, or the scheduler's own refusal."""
    found = ESTIMATE.search(err) or ESTIMATE.search(out)
    if code == 0 and found:
        return Estimate(found.group(2), int(found.group(3)), found.group(4), found.group(5) or "")
    lines = [line.strip() for line in (err + "\n" + out).splitlines() if line.strip()]
    said = lines[-1] if lines else f"sbatch exit status {code}"
    said = re.sub(r"^sbatch: (error: )?", "", said)
    return Estimate(message=("The scheduler says: " + "".join(c for c in said if c.isprintable()))[:300])


class RateLimiter:
    """A token bucket per key: ``burst`` at once, then one per ``every`` seconds."""

    def __init__(self, burst: int = 5, every: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.every = every
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """0 when allowed (a token is used), else the seconds until the next token."""
        now = self.clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) / self.every)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) * self.every
