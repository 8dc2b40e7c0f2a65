"""Why a batch job's server did not start, in words for the user (no JupyterHub imports).

The spawner waits for the server of a running job to answer; when the job
ends first, it fails the spawn at once with the message built here: the
scheduler's view, the exit status and the tail of the job's output that the
job's EXIT trap reported (``hpcgw-job-report``), and what to try.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

# Limits of what a job may report (hpcgw_job_report.py sends within them).
MAX_TAIL_CHARS = 4000
MAX_STATUS = 255


class ReportRefused(ValueError):
    """A job's report is not of the accepted shape."""


@dataclass(frozen=True)
class JobReport:
    """What a job said about its own end."""

    exit_status: int
    log_tail: str


def parse_report(data: Any) -> JobReport:
    """The report body ``{"exit_status": int, "log_tail": str}``, checked."""
    if not isinstance(data, dict) or set(data) != {"exit_status", "log_tail"}:
        raise ReportRefused('body must be exactly {"exit_status": <int>, "log_tail": <str>}')
    status, tail = data["exit_status"], data["log_tail"]
    if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= MAX_STATUS:
        raise ReportRefused(f"exit_status must be an integer in 0..{MAX_STATUS}")
    if not isinstance(tail, str) or len(tail) > MAX_TAIL_CHARS:
        raise ReportRefused(f"log_tail must be a string of at most {MAX_TAIL_CHARS} characters")
    return JobReport(exit_status=status, log_tail=tail)


def _hint(tail: str) -> str:
    if ".jupyter" in tail:
        return ("Your own Jupyter configuration (~/.jupyter) stopped the server: fix or move aside the file "
                "named above (for example `mv ~/.jupyter ~/.jupyter.off`) and start again.")
    if "module" in tail.lower():
        return "A module the job loads failed: check the module names above, or ask your support team."
    return "If the lines above do not say why, send them to your support team."


def failure_message(job_id: str, where: str, state: str, report: Optional[JobReport]) -> str:
    """The spawn failure the user reads on the progress page and in the API's error."""
    ended = f"Your server's batch job {job_id} on {where} ended before the server answered"
    if report is None:
        detail = f" (scheduler state: {state or 'gone'})."
        return (f"{ended}{detail} The job left no report: it was stopped, reached its time limit or its node "
                "failed. Try again; if it happens again, send this message to your support team.")
    text = f"{ended} (exit status {report.exit_status})."
    if report.log_tail.strip():
        text += f"\nLast lines of the job's output:\n{report.log_tail.rstrip()}\n"
    return f"{text} {_hint(report.log_tail)}"
