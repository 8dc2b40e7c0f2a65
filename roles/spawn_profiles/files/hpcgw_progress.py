"""What the progress page tells about a server's batch job (no JupyterHub imports).

JupyterHub's progress page follows the spawner's ``progress()`` events
(``/hub/api/users/<name>/server/progress``, an event stream) and passes
every key of an event through to the page. The gateway's batch spawners
(``hpcgw_batch``) yield one event each time their job's view changes:

* ``message`` and ``progress``, which JupyterHub's own page shows;
* ``hpcgw``: the job's data for the gateway's page template
  (``spawn_pending.html``): phase, job id, scheduler state, the pending
  reason in SLURM's words and in the user's, the start estimate, the node,
  the cluster and queue.

The view is read from what the spawner's own status queries (or the
cluster's shared poller) last said: showing it costs no scheduler command.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

STATE = re.compile(r"[A-Z][A-Z_]{0,31}")

# Phases of the page: before the job id, waiting in the queue, the job
# runs (the server starts), the job ended before its server answered.
SUBMITTING, QUEUED, RUNNING, ENDED = "submitting", "pending", "running", "ended"
PENDING_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "RESV_DEL_HOLD"}
RUNNING_STATES = {"CONFIGURING", "RUNNING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT"}
PROGRESS = {SUBMITTING: 10, QUEUED: 30, RUNNING: 70, ENDED: 90}

# SLURM's pending reasons (squeue %r), in the user's words. "will not start"
# says what to try: the request itself has to change.
REASONS = {
    "Priority": "jobs with a higher priority are ahead of yours in the queue",
    "Resources": "the cores, memory or nodes it asks for are in use; it starts when they are free",
    "Dependency": "it waits for another job to finish",
    "DependencyNeverSatisfied": "the job it depends on failed: it will not start; cancel and start again",
    "BeginTime": "its start time is still in the future",
    "JobHeldUser": "it is held by you: release it with scontrol release, or cancel it",
    "JobHeldAdmin": "it is held by an administrator: ask your support team, or cancel it",
    "ReqNodeNotAvail": "the nodes it needs are unavailable (down, drained or reserved)",
    "Reservation": "it waits for its reservation to start",
    "NodeDown": "a node it needs is down",
    "PartitionDown": "the queue is down: it starts when the queue is back",
    "PartitionInactive": "the queue is inactive: it starts when the queue is back",
    "PartitionNodeLimit": "it asks for more nodes than the queue allows: it will not start; cancel and ask for fewer",
    "PartitionTimeLimit": ("it asks for more walltime than the queue allows: it will not start; cancel and ask "
                           "for less"),
    "BadConstraints": "no node has what it asks for: it will not start; cancel and change the request",
    "InvalidAccount": "its account is not valid here: it will not start; cancel and choose another account",
    "InvalidQOS": "its QOS is not valid here: it will not start; cancel and choose another",
    "AccountNotAllowed": "its account may not use this queue: it will not start; cancel and choose another",
    "QOSNotAllowed": "its QOS may not use this queue: it will not start; cancel and choose another",
    "Cleaning": "the scheduler is still cleaning up after an earlier run of it",
    "launch failed requeued held": "its start failed and it is held: cancel and start again",
}
# Limits (QOS or account associations): the job starts when usage drops.
LIMIT_PREFIXES = (
    ("QOSMax", "PerUser", "you have reached the limit your QOS sets per user (cores, memory, nodes or jobs); "
                          "it starts when one of your other jobs ends"),
    ("QOSMax", "", "it asks for more than your QOS allows for one job: it will not start; cancel and ask for less"),
    ("QOSGrp", "", "the QOS's limit for all its jobs is reached; it starts when some of them end"),
    ("AssocMax", "PerJob", "it asks for more than your account allows for one job: it will not start; cancel and "
                           "ask for less"),
    ("AssocGrp", "", "your account's limit is reached; it starts when jobs of the account end"),
    ("AssocMax", "", "your account's limit is reached; it starts when jobs of the account end"),
)


def explain(reason: str) -> str:
    """SLURM's pending reason in the user's words ("" when SLURM gives none)."""
    if not reason or reason == "None":
        return ""
    name = reason.split(",", 1)[0].strip()
    if name in REASONS:
        return REASONS[name]
    if reason in REASONS:
        return REASONS[reason]
    for prefix, part, text in LIMIT_PREFIXES:
        if name.startswith(prefix) and part in name and name.endswith("Limit"):
            return text
    if name.endswith("Limit"):
        return "a limit of the cluster holds it; it starts when usage drops below the limit"
    return f"the scheduler says: {reason}"


@dataclass(frozen=True)
class JobView:
    """A batch job as the progress page shows it."""

    cluster: str
    queue: str = ""
    job_id: str = ""
    state: str = ""
    node: str = ""
    reason: str = ""
    start: str = ""


def job_view(cluster: str, queue: str, job_id: str, job_status: str, reason: str, start: str) -> JobView:
    """The view from the spawner's last status answer (``job_status`` is "STATE HOST")."""
    words = job_status.split()
    state = words[0] if words and STATE.fullmatch(words[0]) else ""
    node = words[1] if len(words) > 1 and state in RUNNING_STATES and words[1] != "n/a" else ""
    pending = state in PENDING_STATES or not state
    return JobView(cluster, queue, job_id, state, node, reason if pending else "", start if pending else "")


def phase(view: JobView) -> str:
    if not view.job_id:
        return SUBMITTING
    if not view.state or view.state in PENDING_STATES:
        return QUEUED
    if view.state in RUNNING_STATES:
        return RUNNING
    return ENDED


def seconds_until(start: str, now: datetime) -> Optional[int]:
    """Seconds from ``now`` to SLURM's start estimate (ISO, the hub's local time); None without one."""
    try:
        when = datetime.strptime(start, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return max(0, int((when - now).total_seconds()))


def _minutes(seconds: int) -> str:
    if seconds < 90:
        return "within a minute or two"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"in about {minutes} min"
    return f"in about {minutes // 60} h {minutes % 60:02d} min"


def message(view: JobView, now: datetime) -> str:
    """One line for JupyterHub's own page and the event log."""
    where = f"{view.cluster}" + (f" (queue {view.queue})" if view.queue else "")
    current = phase(view)
    if current == SUBMITTING:
        return f"Submitting your server's batch job to {where}..."
    if current == QUEUED:
        if not view.state:
            return f"Batch job {view.job_id} submitted to {where}; asking the scheduler about it..."
        text = f"Batch job {view.job_id} is waiting in the queue of {where}"
        why = explain(view.reason)
        text += f": {why}." if why else "."
        wait = seconds_until(view.start, now)
        if wait is not None:
            text += f" The scheduler expects it to start at {view.start.replace('T', ' ')} ({_minutes(wait)})."
        return text
    if current == RUNNING:
        on = f" on {view.node}" if view.node else ""
        return f"Batch job {view.job_id} is running{on}; your server is starting..."
    return f"Batch job {view.job_id} has ended ({view.state})."


def event(view: JobView, now: datetime) -> dict[str, Any]:
    """The progress event for ``view``; its ``hpcgw`` key is the page template's data."""
    current = phase(view)
    data: dict[str, Any] = {
        "phase": current, "cluster": view.cluster, "queue": view.queue, "job_id": view.job_id,
        "state": view.state, "node": view.node, "reason": view.reason, "reason_text": explain(view.reason),
        "start": view.start, "start_in_s": seconds_until(view.start, now),
    }
    return {"progress": PROGRESS[current], "message": message(view, now), "hpcgw": data}


async def follow(read: Callable[[], JobView], interval: float = 1.0,
                 clock: Callable[[], datetime] = datetime.now,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> AsyncIterator[dict[str, Any]]:
    """An event now and one each time the view changes (read every ``interval`` s), until cancelled."""
    last: Optional[JobView] = None
    while True:
        current = read()
        if current != last:
            last = current
            yield event(current, clock())
        await sleep(interval)
