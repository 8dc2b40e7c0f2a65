"""A server that cannot start fails the spawn at once, with the reason.

A user's broken ~/.jupyter configuration, or a job that fails before the
server starts (here: the single-user launcher missing on the nodes): the
REST API answers with an error status and the job's own output, within
seconds of the job's end (not after http_timeout), no job is left, and the
hub never logs an uncaught exception.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Callable

from testinfra.host import Host

from conftest import user_jobs, wait_no_jobs

PRESET = json.dumps({"profile": "debug-1c"})
# From the POST to the failed state: the job's start (scheduling, Python)
# plus one report; the hub's http_timeout is 120 s.
FAIL_WITHIN_SECONDS = 30
LAUNCHER = "/opt/hpcgw/notebook/bin/batchspawner-singleuser"


def _failed_message(result: dict[str, Any]) -> str:
    """The failure the user is told: the API's error, or the progress stream's."""
    if result["api_status"] >= 400:
        return str((result.get("api_body") or {}).get("message", ""))
    events = result.get("progress") or []
    assert events and events[-1].get("failed") is True, result
    return str(events[-1].get("message", ""))


def _assert_failed_fast_and_clean(result: dict[str, Any], gateway: Host, log: str) -> str:
    assert result["api_status"] in (202, 502), result
    assert result["seconds"] < FAIL_WITHIN_SECONDS, result
    assert not result["server"], result
    assert wait_no_jobs(gateway, "alice") == []
    for crash in ("Uncaught exception", "InvalidStateError", "never showed up"):
        assert crash not in log, crash
    return _failed_message(result)


def test_a_broken_user_config_fails_with_its_traceback(
    client: Callable[..., dict[str, Any]], gateway: Host, hub_log: Callable[..., str]
) -> None:
    assert wait_no_jobs(gateway, "alice") == [], "alice still has a job from an earlier test"
    config = "/home/alice/.jupyter/jupyter_server_config.py"
    gateway.check_output("runuser -u alice -- sh -c " + shlex.quote(
        f"mkdir -p /home/alice/.jupyter && printf 'raise SystemExit(3)\\n' > {config}"))
    try:
        result = client("outcome", "alice", PRESET)
    finally:
        gateway.check_output("runuser -u alice -- rm -f " + config)
    message = _assert_failed_fast_and_clean(result, gateway, hub_log())
    assert "exit status 3" in message, message
    assert "Your own Jupyter configuration (~/.jupyter)" in message, message
    # The server works again once the configuration is fixed.
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    assert client("stop", "alice").get("stopped") is True
    assert wait_no_jobs(gateway, "alice") == []


def test_a_job_failing_before_the_server_starts_names_the_cause(
    client: Callable[..., dict[str, Any]], gateway: Host, node: Callable[[str], Host],
    hub_log: Callable[..., str]
) -> None:
    assert wait_no_jobs(gateway, "alice") == [], "alice still has a job from an earlier test"
    compute = node("hpcgw-c1")  # /opt/hpcgw is one volume shared by the compute nodes
    compute.check_output(f"mv {LAUNCHER} {LAUNCHER}.off")
    try:
        result = client("outcome", "alice", PRESET)
    finally:
        compute.check_output(f"mv {LAUNCHER}.off {LAUNCHER}")
    message = _assert_failed_fast_and_clean(result, gateway, hub_log())
    assert "exit status 127" in message, message
    assert "batchspawner-singleuser: command not found" in message, message
    assert user_jobs(gateway, "alice") == []
