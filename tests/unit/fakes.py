"""Test fakes shared by the spawner tests: batchspawner's job states and a
spawner log that keeps what it was given."""

from __future__ import annotations

import enum
from typing import Any


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
