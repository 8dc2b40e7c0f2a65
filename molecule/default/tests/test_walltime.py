"""A server that reaches its walltime: the job ends, the hub removes the
server, the next page says why, and no job is left (a fault of issue 6,
like those of test_faults.py).

Most of it is waiting for SLURM (60 s of walltime, its time-limit check and
KillWait, then one of the hub's polls), so it runs as a scenario beside the
window of other modules (conftest.SCENARIO_WINDOW), as USER, a bench account
no module of the window uses. Its test waits for it and reports its outcome.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import (CONTROLLER, GATEWAY, as_user, background_scenario, container_host, record_recovery,
                      run_scenario, spawn_client, user_jobs, wait_no_jobs, wait_server_gone)

USER = "burst29"
ONE_MINUTE = json.dumps({"profile": "custom", "cluster_queue": "testcluster/debug", "walltime_min": "1"})
PRESET = json.dumps({"profile": "debug-1c"})


@background_scenario
def walltime_ends_the_server() -> None:
    gateway = container_host(GATEWAY)
    client = as_user(spawn_client(container_host(CONTROLLER)), USER)
    assert wait_no_jobs(gateway, USER) == [], f"{USER} has a job from an earlier run"
    try:
        started = client("start", ONE_MINUTE)
        assert started.get("ready") is True, started
        (job_id, _, _, _), = user_jobs(gateway, USER)
        took, status = wait_server_gone(lambda: client("status"), 240)
        record_recovery("walltime reached: server removed, after it was ready", took)
        assert took < 240, status
        assert f"batch job {job_id}" in status["notice"] and "reached its time limit" in status["notice"], status
        assert wait_no_jobs(gateway, USER) == [], f"{USER}'s job outlived its walltime"
        restarted = client("start", PRESET)
        assert restarted.get("ready") is True, restarted
        assert client("status").get("notice") == ""
        assert client("stop").get("stopped") is True
    finally:
        if user_jobs(gateway, USER):
            client("stop")
    assert wait_no_jobs(gateway, USER) == []


def test_walltime_ends_the_server_and_the_next_page_says_why() -> None:
    run_scenario(Path(__file__).name)
