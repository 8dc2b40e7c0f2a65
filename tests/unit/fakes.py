"""Test fakes shared by the spawner tests: batchspawner's job states, a
spawner log that keeps what it was given, and for the shared status poller
a clock the test moves and squeue as the hub account (a runner recording
every argv)."""

from __future__ import annotations

import asyncio
import enum
from typing import Any, Optional, Sequence


class Status(enum.Enum):
    """batchspawner.JobStatus (same members and values)."""

    NOTFOUND = 0
    RUNNING = 1
    PENDING = 2
    UNKNOWN = 3


class Log:
    """A spawner's ``log``: every message, formatted, in ``lines``."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)

    error = info
    warning = info


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def squeue_line(job_id: str, listing: str) -> str:
    """The shared query's line (``%i|%T|%B|%S|%r``) for ``"STATE HOST"``, or
    ``"STATE HOST|START|REASON"`` (SLURM prints N/A and None when it has neither)."""
    head, _, rest = listing.partition("|")
    state, _, host = head.partition(" ")
    start, _, reason = rest.partition("|")
    return "|".join((job_id, state, host, start or "N/A", reason or "None"))


class FakeSqueue:
    """squeue as the hub account sees it: ``jobs`` maps id -> "STATE HOST"
    (or "STATE HOST|START|REASON", see :func:`squeue_line`).

    ``gate`` (an Event) holds every call until set; ``fail`` makes the call
    exit 1 with that stderr; ``raises`` makes it raise; ``extra`` lines are
    appended to the output."""

    def __init__(self, jobs: dict[str, str]) -> None:
        self.jobs = jobs
        self.calls: list[list[str]] = []
        self.gate: Optional[asyncio.Event] = None
        self.fail = ""
        self.raises: Optional[BaseException] = None
        self.extra: list[str] = []

    async def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if self.gate is not None:
            await self.gate.wait()
        if self.raises is not None:
            raise self.raises
        if self.fail:
            return 1, "", self.fail
        ids = argv[argv.index("-j") + 1].split(",")
        if len(ids) == 1 and ids[0] not in self.jobs:
            return 1, "", "slurm_load_jobs error: Invalid job id specified\n"
        lines = [squeue_line(i, self.jobs[i]) for i in ids if i in self.jobs] + self.extra
        return 0, "\n".join(lines) + "\n", ""

    def ids(self, call: int = -1) -> list[str]:
        argv = self.calls[call]
        return argv[argv.index("-j") + 1].split(",")
