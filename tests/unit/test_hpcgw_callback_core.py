"""The only bodies a job's token may post to /hub/api/batchspawner."""

from __future__ import annotations

from typing import Any

import pytest

import hpcgw_job_report
from hpcgw_callback_core import MAX_TAIL_CHARS, CallbackRefused, JobReport, PortReport, parse_callback


def test_the_port_of_batchspawner_singleuser_is_accepted() -> None:
    assert parse_callback({"port": 40389}) == PortReport(40389)


def test_the_job_reporters_body_is_accepted() -> None:
    body = hpcgw_job_report.report(3, "x" * hpcgw_job_report.MAX_TAIL_CHARS)
    assert parse_callback(body) == JobReport(3, "x" * MAX_TAIL_CHARS)
    assert hpcgw_job_report.MAX_TAIL_CHARS == MAX_TAIL_CHARS


@pytest.mark.parametrize("body", [
    None, [], [1234], {}, {"port": "1234"}, {"port": True}, {"port": 0}, {"port": 70000},
    {"port": 1234, "ip": "10.9.9.9"}, {"ip": "10.9.9.9"}, {"port": 1234, "server": {"url": "x"}},
    {"exit_status": 3}, {"log_tail": ""}, {"exit_status": 3, "log_tail": "", "port": 1},
    {"exit_status": "3", "log_tail": ""}, {"exit_status": True, "log_tail": ""},
    {"exit_status": 256, "log_tail": ""}, {"exit_status": -1, "log_tail": ""},
    {"exit_status": 3, "log_tail": 5}, {"exit_status": 3, "log_tail": "x" * (MAX_TAIL_CHARS + 1)},
])
def test_other_bodies_are_refused(body: Any) -> None:
    with pytest.raises(CallbackRefused):
        parse_callback(body)
