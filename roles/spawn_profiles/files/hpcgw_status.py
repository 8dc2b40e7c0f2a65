"""One scheduler status query per cluster per interval, shared by every server.

Pure Python (no batchspawner or JupyterHub import), unit-tested in
``tests/unit``. batchspawner asks the scheduler about each server's job on
its own (``sudo -u <user> squeue -j <id>``), every ``startup_poll_interval``
(0.5 s) while the job starts and every ``Spawner.poll_interval`` (30 s)
afterwards: at 500 servers some 17 sudo+squeue calls a second
(batchspawner#292). For a SLURM cluster the gateway submits to itself
(``status_query: shared``), :class:`SharedStatusPoller` instead asks once,
as the hub account and without sudo, about every job the hub's servers
asked about recently::

    squeue -h -a -t all -o '%i|%T|%B|%S|%r' -j <id1>,<id2>,...

and every server's status query reads that answer: the state and batch
host decide (as the per-user ``%T %B`` did), the start estimate (``%S``)
and the pending reason (``%r``: Priority, Resources, QOS limits...) are
shown on the progress page. The rules:

* coalescing: concurrent requests share one call (one in-flight query per
  cluster); an answer serves every request within its freshness window,
  short (``starting_window``, 1 s) while a job of the cluster is starting,
  else ``idle_window`` (25 s: just under the hub's poll interval, 30 s
  with a 10 % jitter, so a server's poll never reads an answer its own
  previous poll already read, and a job's end is seen by the next poll
  as before);
* explicit job ids with ``-t all``: a job that ended within SLURM's
  MinJobAge is still listed with its final state (TIMEOUT, NODE_FAIL, ...),
  so a job missing from a successful answer is gone;
* a failed query (controller unreachable, munge down, a timeout) is
  UNKNOWN for every job it covered: their servers are kept (as the
  per-user path, batchspawner#315). A query of a single id that SLURM
  answers with "Invalid job id specified" means that job is gone;
* at most ``chunk`` ids per call;
* only lines naming a job id that was asked for, in SLURM's format, count;
  a requested job whose line is malformed (field count, state, host) or
  repeated is UNKNOWN; a start time or reason outside SLURM's formats is
  dropped (they are shown, never decide, and never shown raw).

The per-user query (``squeue -h -j <id> -t all -o '%T|%B|%S|%r'``) is read
by :func:`parse_user_status` with the same rules.

:data:`COUNTER` counts the scheduler commands the hub issues, per cluster
and kind, and writes them to a JSON file (for benchmarks: the number of
status calls must not grow with the number of servers). Each command's
duration and whether it failed without a verdict go to the callables in
:data:`OBSERVERS` (:func:`observe`; the hub's config adds
``hpcgw_metrics``'s, this module imports no metrics library).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Iterator, Mapping, Optional, Sequence

LOG = logging.getLogger("JupyterHub.hpcgw_status")

SQUEUE_FORMAT = "%i|%T|%B|%S|%r"
# The per-user status query's format (hpcgw_batch.GatewaySlurmSpawner).
USER_FORMAT = "%T|%B|%S|%r"
JOB_ID = re.compile(r"[0-9]{1,20}")
STATE = re.compile(r"[A-Z][A-Z_]{0,31}")
HOST = re.compile(r"[A-Za-z0-9_.:/()\[\],-]{1,255}")
# %S with SLURM_TIME_FORMAT=standard; N/A (or Unknown) while SLURM has no estimate.
START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
NO_START = {"N/A", "Unknown", "None", ""}
# %r: a reason name (Priority, QOSMaxCpuPerUserLimit) or the scheduler's
# description ("Nodes required for job are DOWN, DRAINED or reserved ...").
REASON = re.compile(r"[A-Za-z0-9 _.,:;()\[\]/+=@#'-]{1,200}")
# Said on stderr (exit 1) by squeue -j <one id> for a job SLURM no longer knows.
GONE = re.compile(r"Invalid job id specified")
# Environment variables that would filter squeue's answer (and so make a
# running job look gone): never handed to the shared query.
SQUEUE_FILTERS = re.compile(r"SQUEUE_[A-Z0-9_]+|SLURM_CLUSTERS")

LISTED, GONE_KIND, UNKNOWN = "listed", "gone", "unknown"

Runner = Callable[[Sequence[str]], Awaitable[tuple[int, str, str]]]
# (cluster, kind, seconds, ok): one scheduler command; ok is False when it
# failed without a verdict (no answer, timeout, an unusable answer).
Observer = Callable[[str, str, float, bool], None]
OBSERVERS: list[Observer] = []


def observe(cluster: str, kind: str, seconds: float, ok: bool) -> None:
    """Tell every observer about one scheduler command (an observer's error is logged, never raised)."""
    for observer in list(OBSERVERS):
        try:
            observer(cluster or "-", kind, seconds, ok)
        except Exception:  # noqa: BLE001  (metrics never break a spawn or a poll)
            LOG.exception("Scheduler command observer %r failed", observer)


@dataclass(frozen=True)
class Answer:
    """The scheduler's word on one job.

    ``kind`` is ``listed`` (``text`` is what ``squeue -o '%T %B'`` prints
    for it, e.g. ``RUNNING c1``, which batchspawner's patterns read),
    ``gone`` (``text`` empty) or ``unknown`` (``text`` says why). A listed
    job also has its start time (``start``, ISO, empty when SLURM has no
    estimate) and its reason (``reason``, empty for SLURM's None).
    """

    kind: str
    text: str = ""
    start: str = ""
    reason: str = ""


def check_id(job_id: str) -> str:
    """``job_id`` when it is a plain SLURM job id, else ValueError."""
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise ValueError(f"not a slurm job id: {str(job_id)[:40]!r}")
    return job_id


def parse_fields(fields: Sequence[str]) -> Optional[Answer]:
    """``[state, host, start, reason]`` -> a listed Answer; None when malformed.

    State and host decide (strict); a start or reason outside SLURM's
    formats is dropped, never passed on.
    """
    if len(fields) != 4:
        return None
    state, host, start, reason = (f.strip() for f in fields)
    if not STATE.fullmatch(state) or (host and not HOST.fullmatch(host)):
        return None
    start = start if START.fullmatch(start) and start not in NO_START else ""
    reason = reason if REASON.fullmatch(reason) and reason != "None" else ""
    return Answer(LISTED, f"{state} {host}".strip(), start, reason)


def parse_listing(output: str, wanted: set[str]) -> dict[str, Optional[Answer]]:
    """squeue's lines for the wanted ids: id -> listed Answer (None: malformed or repeated).

    Lines naming another id, or no id at all, are ignored.
    """
    found: dict[str, Optional[Answer]] = {}
    for line in output.splitlines():
        fields = line.split("|")
        job_id = fields[0].strip()
        if job_id not in wanted:
            continue
        answer = parse_fields(fields[1:]) if fields[0] == job_id else None
        found[job_id] = None if job_id in found else answer
    return found


def parse_user_status(output: str) -> Optional[Answer]:
    """The per-user query's answer (``-o '%T|%B|%S|%r'``, its last line); None
    when it is not in that format (a site's own ``batch_query_cmd``)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines or "|" not in lines[-1]:
        return None
    return parse_fields(lines[-1].split("|"))


def chunks(ids: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])


def query_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The hub's environment without the variables that filter squeue's
    answer, and SLURM's standard (ISO) time format for the start time."""
    env = {k: v for k, v in environ.items() if not SQUEUE_FILTERS.fullmatch(k)}
    env["SLURM_TIME_FORMAT"] = "standard"
    return env


async def run_exec(argv: Sequence[str], timeout: float = 30.0) -> tuple[int, str, str]:
    """Run argv (no shell) as the hub account: exit status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=query_env(os.environ))
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:  # timed out or cancelled: leave no squeue behind
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return int(proc.returncode or 0), out.decode(errors="replace"), err.decode(errors="replace")


class CommandCounter:
    """Scheduler commands issued by the hub, per cluster and kind.

    Kinds: ``status-shared`` (one squeue of the poller), ``status-user``
    (one per-user status query), ``submit``, ``cancel``. With ``path`` set,
    a background task rewrites the JSON file every ``every`` seconds while
    the counts change.
    """

    def __init__(self, clock: Callable[[], float] = time.time, every: float = 10.0) -> None:
        self.clock = clock
        self.every = every
        self.started = clock()
        self.counts: dict[str, dict[str, int]] = {}
        self.path: Optional[Path] = None
        self._dirty = False
        self._task: Optional[asyncio.Task[None]] = None

    def count(self, cluster: str, kind: str) -> None:
        per_cluster = self.counts.setdefault(cluster or "-", {})
        per_cluster[kind] = per_cluster.get(kind, 0) + 1
        self._dirty = True
        self._ensure_writer()

    def snapshot(self) -> dict[str, object]:
        return {"started": round(self.started, 3), "updated": round(self.clock(), 3), "pid": os.getpid(),
                "counts": {c: dict(sorted(k.items())) for c, k in sorted(self.counts.items())}}

    def write(self) -> None:
        """Replace the JSON file at once (readers never see half of it)."""
        if self.path is None:
            return
        text = json.dumps(self.snapshot(), indent=1, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".hpcgw-counts.", dir=str(self.path.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._dirty = False

    def _ensure_writer(self) -> None:
        if self.path is None or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._writer())

    async def _writer(self) -> None:
        while True:
            if self._dirty:
                try:
                    self.write()
                except OSError as exc:
                    LOG.warning("Scheduler command counts not written to %s: %s", self.path, exc)
            await asyncio.sleep(self.every)


COUNTER = CommandCounter()


class SharedStatusPoller:
    """The status of a cluster's jobs, one squeue for all of them (see the module)."""

    def __init__(self, cluster: str, squeue: str = "/usr/bin/squeue", runner: Runner = run_exec, *,
                 starting_window: float = 1.0, idle_window: float = 25.0, chunk: int = 500,
                 keep: float = 120.0, starting_keep: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, counter: CommandCounter = COUNTER) -> None:
        self.cluster = cluster
        self.squeue = squeue
        self.runner = runner
        self.starting_window = starting_window
        self.idle_window = idle_window
        self.chunk = max(1, int(chunk))
        self.keep = keep  # a job nobody asked about for this long leaves the query
        self.starting_keep = starting_keep  # ... and counts as starting for this long
        self.clock = clock
        self.counter = counter
        self._asked: dict[str, tuple[float, bool]] = {}  # job id -> (last asked, starting)
        self._answers: dict[str, Answer] = {}
        self._taken_at: Optional[float] = None
        self._inflight: Optional[asyncio.Future[dict[str, Answer]]] = None

    def window(self, now: float) -> float:
        """How old an answer may be: short while a job of the cluster starts."""
        starting = any(s and now - t <= self.starting_keep for t, s in self._asked.values())
        return self.starting_window if starting else self.idle_window

    async def status(self, job_id: str, starting: bool = False) -> Answer:
        """The job's status, from a fresh enough answer or a new (shared) query."""
        check_id(job_id)
        now = self.clock()
        self._asked[job_id] = (now, starting)
        while True:
            if (job_id in self._answers and self._taken_at is not None
                    and now - self._taken_at < self.window(now)):
                return self._answers[job_id]
            if self._inflight is None:
                self._inflight = asyncio.ensure_future(self._refresh())
            # shield: a caller cancelled (a stopped spawn) leaves the query to the others
            answers = await asyncio.shield(self._inflight)
            if job_id in answers:
                return answers[job_id]
            now = self.clock()  # asked while that query ran: the next one covers it

    async def _refresh(self) -> dict[str, Answer]:
        try:
            started = self.clock()
            self._asked = {j: v for j, v in self._asked.items() if started - v[0] <= self.keep}
            answers: dict[str, Answer] = {}
            for ids in chunks(sorted(self._asked, key=int), self.chunk):
                answers.update(await self._query(ids))
            self._answers, self._taken_at = answers, started
            return answers
        finally:
            self._inflight = None

    async def _query(self, ids: list[str]) -> dict[str, Answer]:
        argv = [self.squeue, "-h", "-a", "-t", "all", "-o", SQUEUE_FORMAT, "-j", ",".join(ids)]
        self.counter.count(self.cluster, "status-shared")
        LOG.debug("Scheduler status query on %s for %d job(s): %s", self.cluster, len(ids),
                  " ".join(argv[:-1] + [f"<{len(ids)} ids>"]))
        began = self.clock()
        try:
            code, out, err = await self.runner(argv)
        except Exception as exc:  # noqa: BLE001  (no answer is no verdict: keep the servers)
            observe(self.cluster, "status-shared", self.clock() - began, False)
            return self._unknown(ids, f"{type(exc).__name__}: {exc}")
        gone = code != 0 and len(ids) == 1 and bool(GONE.search(err))
        observe(self.cluster, "status-shared", self.clock() - began, code == 0 or gone)
        if code != 0:
            if gone:
                return {ids[0]: Answer(GONE_KIND)}
            return self._unknown(ids, err.strip()[:200] or f"squeue exit status {code}")
        listed = parse_listing(out, set(ids))
        answers = {}
        for job_id in ids:
            if job_id not in listed:
                answers[job_id] = Answer(GONE_KIND)
            else:
                answers[job_id] = listed[job_id] or Answer(
                    UNKNOWN, "squeue's line for the job is malformed or repeated")
        return answers

    def _unknown(self, ids: list[str], why: str) -> dict[str, Answer]:
        LOG.warning("Scheduler status query on %s failed; %d job(s) unknown for now (kept): %s",
                    self.cluster, len(ids), why)
        return {job_id: Answer(UNKNOWN, why) for job_id in ids}


POLLERS: dict[str, SharedStatusPoller] = {}


def configure(shared_clusters: Sequence[str], squeue: str, counts_file: str = "",
              runner: Runner = run_exec, **options: float) -> None:
    """One poller per cluster with ``status_query: shared`` (the hub's config calls this)."""
    POLLERS.clear()
    for name in shared_clusters:
        POLLERS[name] = SharedStatusPoller(name, squeue, runner, **options)  # type: ignore[arg-type]
    COUNTER.path = Path(counts_file) if counts_file else None


def poller_for(cluster: str) -> Optional[SharedStatusPoller]:
    """The cluster's shared poller; None: its servers ask as their user."""
    return POLLERS.get(cluster) if cluster else None
