"""Through Apache: a user picks a queue, gets a SLURM job on a compute node,
runs code there over the websocket, and stopping the server cancels the job.
Abusive form and API values are refused and submit nothing."""

from __future__ import annotations

import json
import shlex
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import COMPUTE, PASSWORDS, completed_jobs, user_jobs, wait_no_jobs


@pytest.fixture(autouse=True)
def quiet_queue(gateway: Host) -> None:
    """Each test starts with no job of its users: the job counts below are then exact."""
    for user in PASSWORDS:
        assert wait_no_jobs(gateway, user) == [], f"{user} still has a job from an earlier test"


def _server_token(compute: Host, user: str) -> str:
    """The API token in the environment of the user's single-user server."""
    token = compute.check_output(
        f"for p in $(pgrep -u {user} -f jupyterhub-singleuser); do "
        f"tr '\\0' '\\n' < /proc/$p/environ | sed -n 's/^JUPYTERHUB_API_TOKEN=//p'; done | head -1").strip()
    assert len(token) >= 16
    return token


def test_preset_spawns_a_job_and_code_runs_on_the_compute_node(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host, node: Callable[[str], Host]
) -> None:
    started = client("start", "alice", json.dumps({"profile": "debug-1c"}))
    assert started.get("ready") is True, started
    jobs = user_jobs(gateway, "alice")
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
    token = _server_token(node(job_node), "alice")
    assert token not in script

    stopped = client("stop", "alice")
    assert stopped.get("stopped") is True, stopped
    assert wait_no_jobs(gateway, "alice") == []


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
    before = len(completed_jobs(controller, "bob"))
    result = client("start", "bob", json.dumps(form))
    assert reason in result.get("refused", ""), result
    assert result.get("server") == {}, result
    assert user_jobs(gateway, "bob") == []
    assert len(completed_jobs(controller, "bob")) == before
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
    before = len(completed_jobs(controller, "bob"))
    result = client("api", "bob", json.dumps(options))
    assert result.get("api_status", 0) >= 400, result
    assert result.get("server") == {}, result
    assert user_jobs(gateway, "bob") == []
    assert len(completed_jobs(controller, "bob")) == before


def test_form_lists_every_cluster_queue_and_preset_in_order(client: Callable[..., dict[str, Any]]) -> None:
    values = [value for value, _ in client("form", "alice")["choices"]]
    wanted = ["debug-1c", "login-debug", "testcluster/debug", "testcluster/batch", "vialogin/debug"]
    assert [v for v in values if v in wanted] == wanted, values


def test_second_queue_added_by_vars_runs_a_sized_job(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host
) -> None:
    started = client("start", "alice", json.dumps(
        {"profile": "custom", "cluster_queue": "testcluster/batch", "cores": "2", "walltime_min": "45"}))
    assert started.get("ready") is True, started
    (job_id, state, _, partition), = user_jobs(gateway, "alice")
    assert (state, partition) == ("RUNNING", "batch")
    job = controller.check_output(f"scontrol show job {job_id}")
    assert "NumCPUs=2" in job and "TimeLimit=00:45:00" in job, job
    ran = client("run", "alice", "import os\nprint(os.environ['HPCGW_QUEUE_MARKER'], os.cpu_count() > 0)")
    assert ran.get("stdout", "").split() == ["batch", "True"], ran
    assert client("stop", "alice").get("stopped") is True
    assert wait_no_jobs(gateway, "alice") == []


def test_ssh_cluster_submits_through_the_login_node(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host, node: Callable[[str], Host]
) -> None:
    started = client("start", "alice", json.dumps({"profile": "login-debug"}))
    assert started.get("ready") is True, started
    (job_id, state, job_node, _), = user_jobs(gateway, "alice")
    assert state == "RUNNING" and job_node in COMPUTE
    job = controller.check_output(f"scontrol show job {job_id}")
    # sbatch ran on the login node (the controller), not on the gateway.
    assert "AllocNode:Sid=hpcgw-ctl:" in job, job
    ran = client("run", "alice", "import os, socket\nprint(socket.gethostname(), os.environ['HPCGW_JOB_MARKER'])")
    assert ran.get("stdout", "").split() == [job_node, "via-login-node"], ran
    script = controller.check_output(f"scontrol write batch_script {job_id} -")
    assert "#SBATCH --no-requeue" in script
    assert _server_token(node(job_node), "alice") not in script
    # The hub logged the quoted remote commands; scancel also went over SSH.
    assert client("stop", "alice").get("stopped") is True
    assert wait_no_jobs(gateway, "alice") == []
    auth = controller.check_output("journalctl -u ssh --no-pager -o cat | grep -c 'Accepted hostbased for alice' || true")
    assert int(auth.strip() or 0) >= 3, auth  # submit, query(s), cancel


def test_forged_callback_bodies_are_refused(
    client: Callable[..., dict[str, Any]], gateway: Host, node: Callable[[str], Host]
) -> None:
    """batchspawner's callback takes only {"port": int}; a job's token cannot set anything else."""
    started = client("start", "alice", json.dumps({"profile": "debug-1c"}))
    assert started.get("ready") is True, started
    (_, _, job_node, _), = user_jobs(gateway, "alice")
    compute = node(job_node)
    token = _server_token(compute, "alice")

    def post(body: str) -> str:
        return compute.check_output(
            "curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "
            f"-H 'Authorization: token {token}' --data-binary {shlex.quote(body)} "
            "http://hpcgw-gw:8081/jupyter/hub/api/batchspawner")

    for body in ('{"port": 1234, "ip": "10.9.9.9"}', '{"port": "1234"}', '{"port": 70000}',
                 '{"port": true}', '{"ip": "10.9.9.9"}', '[1234]', '{"port": 1234, "server": {"url": "x"}}'):
        assert post(body) == "400", body
    assert compute.check_output(
        "curl -s -o /dev/null -w '%{http_code}' -X POST -d '{\"port\": 1234}' "
        "http://hpcgw-gw:8081/jupyter/hub/api/batchspawner") == "403"  # no token
    # The server still answers where it really listens: nothing was changed.
    ran = client("run", "alice", "import socket\nprint(socket.gethostname())")
    assert ran.get("stdout", "").split() == [job_node], ran
    assert client("stop", "alice").get("stopped") is True
    assert wait_no_jobs(gateway, "alice") == []
