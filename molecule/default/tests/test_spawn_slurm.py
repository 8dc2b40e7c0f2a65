"""Through Apache: a user picks a queue, gets a SLURM job on a compute node,
runs code there over the websocket, and stopping the server cancels the job.
Abusive form and API values are refused and submit nothing."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import COMPUTE

BASE = "https://hpcgw-gw"
PASSWORDS = {"alice": "alice-test-pw", "bob": "bob-test-pw"}


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def client(controller: Host) -> Callable[..., dict[str, Any]]:
    def call(command: str, user: str, *args: str) -> dict[str, Any]:
        cmd = controller.run(
            "python3 /usr/local/bin/spawnclient.py "
            + " ".join(_quote(a) for a in (command, BASE, user, PASSWORDS[user], *args))
        )
        assert cmd.rc == 0, cmd.stderr
        return json.loads(cmd.stdout.strip().splitlines()[-1])

    return call


def _jobs(gateway: Host, user: str) -> list[list[str]]:
    out = gateway.check_output(f"squeue -h -u {user} -o '%i %T %N %P'")
    return [line.split() for line in out.splitlines() if line.strip()]


def _completed_jobs(controller: Host, user: str) -> int:
    log = controller.file("/var/log/slurm/jobcomp.log")
    if not log.exists:
        return 0
    return sum(1 for line in log.content_string.splitlines() if f"UserId={user}(" in line)


def test_preset_spawns_a_job_and_code_runs_on_the_compute_node(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host, node: Callable[[str], Host]
) -> None:
    started = client("start", "alice", json.dumps({"profile": "debug-1c"}))
    assert started.get("ready") is True, started
    jobs = _jobs(gateway, "alice")
    assert len(jobs) == 1, jobs
    job_id, state, job_node, partition = jobs[0]
    assert (state, partition) == ("RUNNING", "debug")
    assert job_node in COMPUTE

    ran = client("run", "alice", "import os, socket\n"
                 "print(socket.gethostname(), os.environ['SLURM_JOB_ID'], os.environ['HPCGW_JOB_MARKER'])")
    assert "101" in ran.get("ws_status", ""), ran
    assert ran.get("stdout", "").split() == [job_node, job_id, "testcluster"], ran

    # The batch script holds no API token; the job's environment does.
    script = controller.check_output(f"scontrol write batch_script {job_id} -")
    assert "#SBATCH --no-requeue" in script
    token = node(job_node).check_output(
        f"for p in $(pgrep -u alice -f jupyterhub-singleuser); do "
        f"tr '\\0' '\\n' < /proc/$p/environ | sed -n 's/^JUPYTERHUB_API_TOKEN=//p'; done | head -1"
    ).strip()
    assert len(token) >= 16
    assert token not in script

    stopped = client("stop", "alice")
    assert stopped.get("stopped") is True, stopped
    for _ in range(30):
        if not _jobs(gateway, "alice"):
            break
        time.sleep(1)
    assert _jobs(gateway, "alice") == []


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"profile": "custom", "cluster_queue": "testcluster/debug", "cores": "3"}, "cores must be between 1 and 2"),
        ({"profile": "custom", "cluster_queue": "testcluster/debug", "memory_gb": "64"}, "memory_gb must be between"),
        ({"profile": "custom", "cluster_queue": "testcluster/debug", "walltime_min": "31"}, "walltime_min must be between"),
        ({"profile": "custom", "cluster_queue": "testcluster/debug", "cores": "two"}, "whole number"),
        ({"profile": "custom", "cluster_queue": "testcluster/debug", "cores": "1\n#SBATCH --uid=0"}, "whole number"),
        ({"profile": "custom", "cluster_queue": "testcluster/debug\n#SBATCH -p batch"}, "unknown queue"),
        ({"profile": "nope"}, "unknown profile"),
        ({"profile": "debug-1c", "req_partition": "batch"}, "unknown field"),
    ],
)
def test_abusive_forms_are_refused(client: Callable[..., dict[str, Any]], gateway: Host, controller: Host,
                                   form: dict[str, str], reason: str) -> None:
    before = _completed_jobs(controller, "bob")
    result = client("start", "bob", json.dumps(form))
    assert reason in result.get("refused", ""), result
    assert result.get("server") == {}, result
    assert _jobs(gateway, "bob") == []
    assert _completed_jobs(controller, "bob") == before
    assert gateway.run("pgrep -u bob").rc == 1  # nothing started on the gateway


@pytest.mark.parametrize(
    "options",
    [
        {"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": 64},
        {"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": "1; rm -rf ~"},
        {"profile": "custom", "cluster": "testcluster", "queue": "debug", "req_options": "--uid=0"},
        {"profile": "nope"},
        {"profile": "debug-1c", "gpus": 1},
    ],
)
def test_abusive_api_options_are_refused(client: Callable[..., dict[str, Any]], gateway: Host,
                                         controller: Host, options: dict[str, Any]) -> None:
    before = _completed_jobs(controller, "bob")
    result = client("api", "bob", json.dumps(options))
    assert result.get("api_status", 0) >= 400, result
    assert result.get("server") == {}, result
    assert _jobs(gateway, "bob") == []
    assert _completed_jobs(controller, "bob") == before
