"""Why a batch job's server did not start, in words for the user (no JupyterHub imports).

The spawner waits for the server of a running job to answer; when the job
ends first, it fails the spawn at once with the message built here: the
scheduler's view, the exit status and the tail of the job's output that the
job's EXIT trap reported (``hpcgw-job-report``), and what to try.
"""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any, Optional

import hpcgw_audit
from hpcgw_audit import which_server
from hpcgw_callback_core import JobReport

MODULE_FAILURE = re.compile(r"\bLmod\b|\bmodule(cmd)?: |unable to locate a modulefile|module load", re.IGNORECASE)


def _hint(tail: str) -> str:
    if ".jupyter" in tail:
        return ("Your own Jupyter configuration (~/.jupyter) may have stopped the server: fix or move aside "
                "the file named above (for example `mv ~/.jupyter ~/.jupyter.off`) and start again.")
    if "/.local/lib/python" in tail:
        return ("A Python package in your ~/.local takes the place of the server's own: remove it, or move "
                "~/.local aside (`mv ~/.local ~/.local.off`), and start again.")
    if "no free port for the Jupyter server" in tail:
        return ("Every port the site opens for Jupyter servers on that node is taken: start again in a few "
                "minutes (another node may have one), or ask your support team to widen the cluster's port_range.")
    if MODULE_FAILURE.search(tail):
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


# Why a running server's job ended, by the scheduler's last state (SLURM's
# long names; the other schedulers' jobs end with "gone").
END_REASONS = {
    "TIMEOUT": "reached its time limit (the walltime you asked for)",
    "DEADLINE": "reached its deadline",
    "NODE_FAIL": "ended because its compute node failed",
    "BOOT_FAIL": "ended because its compute node failed to boot",
    "PREEMPTED": "was preempted by a job of higher priority",
    "OUT_OF_MEMORY": "ran out of memory (ask for more in the form)",
    "CANCELLED": "was cancelled outside the gateway (scancel, or an administrator)",
    "FAILED": "ended with an error",
    "COMPLETED": "ended",
}
# The notice of each server's end, by (user, server name): a user with
# several servers is told about each, and a start forgets its own only.
_last_end: dict[tuple[str, str], str] = {}


def end_message(job_id: str, where: str, status_text: str, server: str = "") -> str:
    """What the user's next page says about a server whose job ended by itself."""
    words = status_text.split()
    state = words[0].rstrip("+") if words and words[0].isupper() else ""
    reason = END_REASONS.get(state, "ended")
    return f"{which_server(server, f'batch job {job_id} on {where}')} {reason}. Start a new one when you are ready."


def remember_end(user: str, message: str, server: str = "") -> None:
    _last_end[(user, server)] = message


def forget_end(user: str, server: str = "") -> None:
    _last_end.pop((user, server), None)


def end_notice_html(user: Any) -> str:
    """Template variable (JupyterHub calls it with the page's user): the
    notices of the user's servers (the default one first), escaped."""
    name = getattr(user, "name", "")
    notices = [message for (owner, _server), message in sorted(_last_end.items()) if owner == name] if name else []
    return "<br>".join(html.escape(message) for message in notices)


def failure_html(message: str) -> str:
    """The message for the progress and error pages: the output as preformatted text."""
    head, sep, rest = message.partition("\nLast lines of the job's output:\n")
    if not sep:
        return html.escape(message)
    tail, _, hint = rest.rpartition("\n")
    return (f"{html.escape(head)}<br>Last lines of the job's output:"
            f"<pre>{html.escape(tail)}</pre>{html.escape(hint.strip())}")


class WatchedStart:
    """``start`` of a batch spawner that fails as soon as the job ends.

    batchspawner 1.3.0 waits for the server's port without looking at the
    job again, and JupyterHub then waits ``http_timeout`` for an HTTP
    answer: a job that died on the way (a broken ``~/.jupyter``, a failing
    module load, a lost node) was noticed only after minutes, and
    JupyterHub 6.1.1 could then crash on its unfinished spawn future
    (``InvalidStateError``). Here start returns only once the server
    answers HTTP, and raises the moment the job reports its failure
    (``hpcgw_job_report``, set by the callback handler) or the scheduler no
    longer lists it as running (checked every ``hpcgw_job_check_interval``
    seconds). While the scheduler cannot answer (UNKNOWN) it keeps waiting.

    A mixin before a batchspawner class; the composed class provides the
    attributes below (``hpcgw_batch.GatewayBatchMixin``).
    """

    job_states: Any
    startup_poll_interval: float
    hpcgw_job_check_interval: float
    http_timeout: int
    job_id: str
    job_status: str
    hpcgw_job_report: Optional[JobReport]
    log: Any

    def hpcgw_where(self) -> str:
        return "the cluster"

    def hpcgw_persist(self) -> None:
        """Save the spawner's state now (the wrapper replaces this)."""

    # True from the submit until the server answers; saved with the state.
    hpcgw_starting: bool
    # Set by start() in this hub process: a saved hpcgw_starting without it
    # is a spawn the hub restarted in the middle of.
    _hpcgw_live_start = False

    async def hpcgw_server_answers(self) -> bool:
        raise NotImplementedError

    def hpcgw_failure(self, message: str) -> Exception:
        return RuntimeError(message)

    def _ended(self, state: str) -> Exception:
        message = failure_message(self.job_id, self.hpcgw_where(), state, self.hpcgw_job_report)
        self.log.warning("Spawn failed: %s", message)
        return self.hpcgw_failure(message)

    def hpcgw_job_pending(self, pending: bool) -> None:
        """The job waits in the scheduler's queue (True) or no longer (False);
        the composed class counts it (``hpcgw_metrics``)."""

    async def _wait_running(self) -> None:
        states = self.job_states
        try:
            while True:
                if self.hpcgw_job_report is not None:
                    raise self._ended("")
                status = await self.query_job_status()  # type: ignore[attr-defined]
                if status == states.RUNNING:
                    return
                if status not in (states.PENDING, states.UNKNOWN):
                    raise self._ended(self.job_status.strip())
                if status == states.PENDING:
                    self.hpcgw_job_pending(True)
                await asyncio.sleep(self.startup_poll_interval)
        finally:
            self.hpcgw_job_pending(False)

    async def _wait_answer(self) -> None:
        states = self.job_states
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.hpcgw_job_check_interval
        answer_deadline: Optional[float] = None
        while True:
            if self.hpcgw_job_report is not None:
                raise self._ended("")
            if self.port:  # type: ignore[attr-defined]
                if answer_deadline is None:
                    answer_deadline = loop.time() + self.http_timeout
                if await self.hpcgw_server_answers():
                    return
                if loop.time() > answer_deadline:
                    raise self.hpcgw_failure(
                        f"Your server (batch job {self.job_id}) did not answer within {self.http_timeout} s "
                        "of reporting its port; the job is cancelled. Try again, or send this message to your "
                        "support team.")
            if loop.time() >= next_check:
                status = await self.query_job_status()  # type: ignore[attr-defined]
                if status not in (states.RUNNING, states.UNKNOWN):
                    raise self._ended(self.job_status.strip())
                next_check = loop.time() + self.hpcgw_job_check_interval
            await asyncio.sleep(self.startup_poll_interval)

    def _user_name(self) -> str:
        return str(getattr(getattr(self, "user", None), "name", ""))

    def _server_name(self) -> str:
        """The server's name ("" for the user's default server)."""
        return str(getattr(self, "name", "") or "")

    async def start(self) -> tuple[str, int]:
        forget_end(self._user_name(), self._server_name())
        self.hpcgw_job_report = None
        # As batchspawner: the job's environment (JUPYTERHUB_SERVICE_URL) is
        # built from these defaults; the job reports its real port.
        self.ip = self.traits()["ip"].default_value  # type: ignore[attr-defined]
        self.port = self.traits()["port"].default_value  # type: ignore[attr-defined]
        if getattr(self, "server", None):
            self.server.port = self.port  # type: ignore[attr-defined]
        self._hpcgw_live_start = True
        await self.submit_batch_script()  # type: ignore[attr-defined]
        if not self.job_id:
            raise self.hpcgw_failure("The scheduler accepted no job (no job id in its answer).")
        self.hpcgw_starting = True
        self.hpcgw_persist()
        await self._wait_running()
        self.ip = self.state_gethost()  # type: ignore[attr-defined]
        await self._wait_answer()
        self.hpcgw_starting = False
        self.log.info("Notebook server job %s answers at %s:%s", self.job_id, self.ip, self.port)  # type: ignore[attr-defined]
        return self.ip, self.port  # type: ignore[attr-defined]

    async def poll(self) -> Optional[int]:
        """None while the job runs; a spawn interrupted by a hub restart is
        cancelled (its server was never handed to the proxy: it would run
        to its walltime as an orphan) and reported as stopped."""
        if self.hpcgw_starting and not self._hpcgw_live_start:
            self.log.warning("Job %s was still starting when the hub restarted: cancelling it", self.job_id)
            hpcgw_audit.emit("stop", user=self._user_name(), server=self._server_name() or None, job_id=self.job_id,
                             by="hub", reason="the hub restarted while the job was starting")
            try:
                await self.cancel_batch_job()  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001  (the poll must answer; the reaper retries)
                self.log.error("Cancelling job %s failed: %s", self.job_id, exc)
            self.clear_state()  # type: ignore[attr-defined]
            return 1
        states = self.job_states
        if await self.query_job_status() in (states.PENDING, states.RUNNING, states.UNKNOWN):  # type: ignore[attr-defined]
            return None
        # The job ended by itself (walltime, node failure, scancel): the hub
        # now removes the server; the user's next page says why. (As
        # batchspawner's poll, but the final state is read before
        # clear_state empties it.)
        job_id, final = self.job_id, self.job_status
        self.clear_state()  # type: ignore[attr-defined]
        if job_id:
            message = end_message(job_id, self.hpcgw_where(), final, self._server_name())
            remember_end(self._user_name(), message, self._server_name())
            hpcgw_audit.emit("stop", user=self._user_name(), server=self._server_name() or None, job_id=job_id,
                             by="scheduler", reason=final.split()[0] if final.split() else "gone")
            self.log.warning("%s", message)
        return 1
