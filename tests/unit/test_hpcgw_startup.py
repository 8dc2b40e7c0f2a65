"""What the user reads when a job ends before its server answers, and the
watched start that notices it at once."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

import hpcgw_startup as startup
from fakes import Log, Status
from hpcgw_callback_core import JobReport


def test_a_broken_user_config_is_named_with_the_output() -> None:
    report = JobReport(1, "File \"/home/alice/.jupyter/jupyter_server_config.py\", line 1\nSystemExit: 3")
    text = startup.failure_message("12", "testcluster", "COMPLETED", report)
    assert "batch job 12 on testcluster ended before the server answered (exit status 1)" in text
    assert "SystemExit: 3" in text
    assert "~/.jupyter" in text and "mv ~/.jupyter" in text


def test_a_failing_module_gets_its_hint() -> None:
    text = startup.failure_message("5", "c", "FAILED", JobReport(1, "Lmod has detected: module python/9 unknown"))
    assert "A module the job loads failed" in text


def test_a_python_traceback_is_not_taken_for_a_module() -> None:
    tail = 'File "<frozen runpy>", line 98, in _run_module_code\nsocket.gaierror: Name or service not known'
    text = startup.failure_message("5", "c", "", JobReport(1, tail))
    assert "module" not in text.split("gaierror")[-1]
    assert "send them to your support team" in text


def test_a_package_in_dot_local_gets_its_hint() -> None:
    tail = 'File "/home/alice/.local/lib/python3.11/site-packages/tornado/web.py"\nImportError: x'
    assert "mv ~/.local ~/.local.off" in startup.failure_message("5", "c", "", JobReport(1, tail))


def test_without_a_report_the_scheduler_state_is_given() -> None:
    text = startup.failure_message("7", "testcluster", "NODE_FAIL", None)
    assert "scheduler state: NODE_FAIL" in text and "left no report" in text
    assert "(scheduler state: gone)" in startup.failure_message("7", "c", "", None)


class Failed(Exception):
    pass


class FakeBatch:
    """batchspawner's cancel and clear_state (which empties job_status too), as WatchedStart sees them."""

    cancelled: list[str]

    async def cancel_batch_job(self) -> None:
        self.cancelled.append(self.job_id)  # type: ignore[attr-defined]

    def clear_state(self) -> None:
        self.job_id = ""
        self.job_status = ""
        self.hpcgw_starting = False


class FakeJob(startup.WatchedStart, FakeBatch):
    """A batch spawner whose scheduler answers from a script of states, one
    per query; ``events`` (query number -> action) sets the port, posts a
    report or makes the server answer, as the real job and hub would."""

    job_states = Status
    startup_poll_interval = 0.01
    hpcgw_job_check_interval = 0.05
    http_timeout = 1

    def __init__(self, states: list[Status], events: dict[int, str] | None = None) -> None:
        self.states = states
        self.events = events or {}
        self.queries = 0
        self.answering = False
        self.job_id = ""
        self.job_status = ""
        self.hpcgw_job_report: JobReport | None = None
        self.ip = ""
        self.port = 0
        self.log = Log()
        self.cancelled = []
        self.hpcgw_starting = False
        self.persisted: list[tuple[str, bool]] = []

    def hpcgw_persist(self) -> None:
        self.persisted.append((self.job_id, self.hpcgw_starting))

    async def submit_batch_script(self) -> str:
        self.job_id = "12"
        return self.job_id

    async def query_job_status(self) -> Status:
        state = self.states[min(self.queries, len(self.states) - 1)]
        self.queries += 1
        event = self.events.get(self.queries, "")
        if "port" in event:
            self.port = 40389
        if "report" in event:
            self.hpcgw_job_report = JobReport(3, "SystemExit: 3 in ~/.jupyter/jupyter_server_config.py")
        if "answer" in event:
            self.answering = True
        self.job_status = "RUNNING hpcgw-c1" if state is Status.RUNNING else ""
        return state

    def state_gethost(self) -> str:
        return "hpcgw-c1"

    def traits(self) -> dict[str, Any]:
        """The ip/port trait defaults, as traitlets gives them."""
        return {"ip": SimpleNamespace(default_value="0.0.0.0"), "port": SimpleNamespace(default_value=0)}

    async def hpcgw_server_answers(self) -> bool:
        return self.answering

    def hpcgw_failure(self, message: str) -> Exception:
        return Failed(message)


def _start(job: FakeJob) -> tuple[Any, float]:
    began = time.monotonic()
    try:
        result: Any = asyncio.run(job.start())
    except Failed as exc:
        result = exc
    return result, time.monotonic() - began


def test_a_server_that_answers_is_started() -> None:
    job = FakeJob([Status.PENDING, Status.RUNNING, Status.RUNNING], {2: "port", 3: "answer"})
    result, _ = _start(job)
    assert result == ("hpcgw-c1", 40389)


def test_a_job_reporting_its_failure_after_the_port_fails_at_once() -> None:
    """The issue's case: port reported, then the server exits and the job reports."""
    job = FakeJob([Status.RUNNING], {1: "port+report"})
    result, took = _start(job)
    assert isinstance(result, Failed)
    assert "exit status 3" in str(result) and "~/.jupyter" in str(result)
    assert took < 0.5


def test_a_job_gone_without_report_fails_within_one_check() -> None:
    job = FakeJob([Status.RUNNING, Status.NOTFOUND], {1: "port"})
    result, took = _start(job)
    assert isinstance(result, Failed)
    assert "left no report" in str(result) and "batch job 12" in str(result)
    assert took < job.hpcgw_job_check_interval * 4


def test_a_job_that_dies_before_its_port_fails_too() -> None:
    job = FakeJob([Status.PENDING, Status.RUNNING, Status.NOTFOUND])
    result, _ = _start(job)
    assert isinstance(result, Failed) and "left no report" in str(result)


def test_a_job_leaving_the_queue_while_pending_fails() -> None:
    result, _ = _start(FakeJob([Status.PENDING, Status.NOTFOUND]))
    assert isinstance(result, Failed) and "scheduler state: gone" in str(result)


def test_an_unreachable_scheduler_is_waited_for() -> None:
    job = FakeJob([Status.RUNNING, Status.UNKNOWN, Status.UNKNOWN, Status.RUNNING], {1: "port", 4: "answer"})
    result, _ = _start(job)
    assert result == ("hpcgw-c1", 40389)


def test_a_silent_server_fails_after_http_timeout() -> None:
    job = FakeJob([Status.RUNNING], {1: "port"})
    result, took = _start(job)
    assert isinstance(result, Failed) and "did not answer within 1 s" in str(result)
    assert 1 <= took < 3


def test_the_html_message_keeps_the_output_preformatted_and_escaped() -> None:
    text = startup.failure_message("12", "c", "", JobReport(1, "<script>x</script>\nline2"))
    page = startup.failure_html(text)
    assert "<pre>&lt;script&gt;x&lt;/script&gt;\nline2</pre>" in page
    assert "<script>" not in page


def test_the_job_is_saved_as_starting_right_after_submit() -> None:
    job = FakeJob([Status.RUNNING], {1: "port", 2: "answer"})
    assert _start(job)[0] == ("hpcgw-c1", 40389)
    assert job.persisted == [("12", True)]
    assert job.hpcgw_starting is False  # saved by JupyterHub once start returns


def test_a_spawn_interrupted_by_a_hub_restart_is_cancelled() -> None:
    """A fresh hub process loads the saved state of a spawn still starting:
    its job would run to the walltime with no server in the hub."""
    restored = FakeJob([Status.PENDING])
    restored.job_id, restored.hpcgw_starting = "12", True
    assert asyncio.run(restored.poll()) == 1
    assert restored.cancelled == ["12"] and restored.job_id == ""


def test_a_running_server_restored_after_a_restart_is_kept() -> None:
    restored = FakeJob([Status.RUNNING])
    restored.job_id = "12"
    assert asyncio.run(restored.poll()) is None
    assert restored.cancelled == []


def test_a_spawn_in_progress_in_this_hub_is_not_cancelled_by_a_poll() -> None:
    job = FakeJob([Status.PENDING, Status.PENDING, Status.RUNNING], {3: "port+answer"})

    async def start_and_poll() -> Any:
        task = asyncio.ensure_future(job.start())
        await asyncio.sleep(0.015)
        polled = await job.poll()
        return polled, await task

    polled, started = asyncio.run(start_and_poll())
    assert polled is None and started == ("hpcgw-c1", 40389) and job.cancelled == []


@pytest.mark.parametrize(("status_text", "reason"), [
    ("TIMEOUT hpcgw-c1", "reached its time limit"),
    ("NODE_FAIL hpcgw-c2", "its compute node failed"),
    ("CANCELLED+ hpcgw-c1", "was cancelled outside the gateway"),
    ("OUT_OF_MEMORY hpcgw-c1", "ran out of memory"),
    ("slurm_load_jobs error: Invalid job id specified", "ended."),
    ("", "ended."),
])
def test_the_end_of_a_running_job_is_told_by_its_state(status_text: str, reason: str) -> None:
    text = startup.end_message("12", "Demo cluster", status_text)
    assert text.startswith("Your last server (batch job 12 on Demo cluster) ")
    assert reason in text


def test_a_job_ending_by_itself_leaves_a_notice_until_the_next_start() -> None:
    job = FakeJob([Status.RUNNING])
    job.user = SimpleNamespace(name="alice-notice")  # type: ignore[attr-defined]
    job.job_id = "12"
    assert asyncio.run(job.poll()) is None
    assert startup.end_notice_html(job.user) == ""  # type: ignore[attr-defined]

    async def timed_out() -> Status:
        job.job_status = "TIMEOUT hpcgw-c1"
        return Status.NOTFOUND

    job.query_job_status = timed_out  # type: ignore[method-assign]
    assert asyncio.run(job.poll()) == 1
    notice = startup.end_notice_html(SimpleNamespace(name="alice-notice"))
    assert "reached its time limit" in notice and "batch job 12" in notice
    assert startup.end_notice_html(SimpleNamespace(name="bob")) == ""
    assert startup.end_notice_html(None) == ""
    again = FakeJob([Status.RUNNING], {1: "port+answer"})
    again.user = SimpleNamespace(name="alice-notice")  # type: ignore[attr-defined]
    asyncio.run(again.start())
    assert startup.end_notice_html(SimpleNamespace(name="alice-notice")) == ""


def test_each_server_keeps_its_own_end_notice() -> None:
    """Two servers of one user: each job's end is told with the server's name,
    and a start forgets its own server's notice only."""
    def ended(server: str, job_id: str, state: str) -> FakeJob:
        job = FakeJob([Status.NOTFOUND])
        job.user = SimpleNamespace(name="alice-two")  # type: ignore[attr-defined]
        job.name = server  # type: ignore[attr-defined]
        job.job_id = job_id

        async def gone() -> Status:
            job.job_status = state
            return Status.NOTFOUND

        job.query_job_status = gone  # type: ignore[method-assign]
        assert asyncio.run(job.poll()) == 1
        return job

    ended("debug", "21", "TIMEOUT hpcgw-c1")
    ended("batch", "22", "NODE_FAIL hpcgw-c2")
    notice = startup.end_notice_html(SimpleNamespace(name="alice-two"))
    assert "Your server &quot;debug&quot; (batch job 21 on the cluster) reached its time limit" in notice
    assert "Your server &quot;batch&quot; (batch job 22 on the cluster) ended because its compute node failed" in notice
    assert startup.end_notice_html(SimpleNamespace(name="alice")) == ""
    again = FakeJob([Status.RUNNING], {1: "port+answer"})
    again.user = SimpleNamespace(name="alice-two")  # type: ignore[attr-defined]
    again.name = "debug"  # type: ignore[attr-defined]
    asyncio.run(again.start())
    notice = startup.end_notice_html(SimpleNamespace(name="alice-two"))
    assert "debug" not in notice and "batch job 22" in notice
    startup.forget_end("alice-two", "batch")
    assert startup.end_notice_html(SimpleNamespace(name="alice-two")) == ""


def test_the_default_servers_notice_comes_first() -> None:
    startup.remember_end("carol-two", "named one", "zeta")
    startup.remember_end("carol-two", "default one")
    try:
        assert startup.end_notice_html(SimpleNamespace(name="carol-two")) == "default one<br>named one"
    finally:
        startup.forget_end("carol-two")
        startup.forget_end("carol-two", "zeta")
