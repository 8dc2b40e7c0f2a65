"""The job's own failure report, as the hub checks it, and the message the user reads."""

from __future__ import annotations

from typing import Any

import pytest

import hpcgw_job_report
import hpcgw_startup as startup


def test_the_reporters_body_is_accepted() -> None:
    body = hpcgw_job_report.report(3, "x" * hpcgw_job_report.MAX_TAIL_CHARS)
    assert startup.parse_report(body) == startup.JobReport(3, "x" * startup.MAX_TAIL_CHARS)
    assert hpcgw_job_report.MAX_TAIL_CHARS == startup.MAX_TAIL_CHARS


@pytest.mark.parametrize("body", [
    None, [], {"exit_status": 3}, {"log_tail": ""}, {"exit_status": 3, "log_tail": "", "port": 1},
    {"exit_status": "3", "log_tail": ""}, {"exit_status": True, "log_tail": ""},
    {"exit_status": 256, "log_tail": ""}, {"exit_status": -1, "log_tail": ""},
    {"exit_status": 3, "log_tail": 5}, {"exit_status": 3, "log_tail": "x" * 4001},
])
def test_other_bodies_are_refused(body: Any) -> None:
    with pytest.raises(startup.ReportRefused):
        startup.parse_report(body)


def test_a_broken_user_config_is_named_with_the_output() -> None:
    report = startup.JobReport(1, "File \"/home/alice/.jupyter/jupyter_server_config.py\", line 1\nSystemExit: 3")
    text = startup.failure_message("12", "testcluster", "COMPLETED", report)
    assert "batch job 12 on testcluster ended before the server answered (exit status 1)" in text
    assert "SystemExit: 3" in text
    assert "~/.jupyter" in text and "mv ~/.jupyter" in text


def test_a_failing_module_gets_its_hint() -> None:
    text = startup.failure_message("5", "c", "FAILED", startup.JobReport(1, "Lmod has detected: module python/9 unknown"))
    assert "A module the job loads failed" in text


def test_without_a_report_the_scheduler_state_is_given() -> None:
    text = startup.failure_message("7", "testcluster", "NODE_FAIL", None)
    assert "scheduler state: NODE_FAIL" in text and "left no report" in text
    assert "(scheduler state: gone)" in startup.failure_message("7", "c", "", None)
