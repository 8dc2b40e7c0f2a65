"""Grid Engine, the second real scheduler (role gridengine), end to end
through Apache: alice's preset on the demo's "Grid Engine (demo)" cluster is
submitted over SSH through the qmaster (hpcgw-ctl), runs on an exec node as
alice, a kernel runs code there through Apache, and her stop deletes the
job: no job is left behind. A two-core request gets its slots from the
parallel environment the cluster's data names."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Callable

from testinfra.host import Host

from conftest import COMPUTE, user_jobs, wait_until

PRESET = {"profile": "sge-1c"}
TWO_CORES = {"profile": "custom", "cluster_queue": "gridengine/jupyter", "cores": "2"}
JOB_GONE_SECONDS = 60


def sge_jobs(controller: Host, user: str) -> list[dict[str, str]]:
    """The user's Grid Engine jobs, as the qmaster's qstat lists them."""
    root = ET.fromstring(controller.check_output(f"qstat -xml -u {user}"))
    return [{"id": job.findtext("JB_job_number", ""), "owner": job.findtext("JB_owner", ""),
             "name": job.findtext("JB_name", ""), "state": job.get("state", ""),
             "queue": job.findtext("queue_name", "") or "", "slots": job.findtext("slots", "")}
            for job in root.iter("job_list")]


def _no_server_left(host: Host, user: str) -> bool:
    return host.run(f"pgrep -u {user} -f jupyterhub-singleuser").rc == 1


def _spawn_run_stop(client: Callable[..., dict[str, Any]], controller: Host, node: Callable[[str], Host],
                    options: dict[str, str]) -> tuple[dict[str, str], str]:
    """Start alice's server with `options`, run code in it, stop it; returns
    her job as qstat listed it, and qstat -j's details of it while it ran."""
    assert sge_jobs(controller, "alice") == [] and user_jobs(controller, "alice") == []
    started = client("start", "alice", json.dumps(options))
    assert started.get("ready") is True, started
    (job,) = sge_jobs(controller, "alice")
    queue, _, host = job["queue"].partition("@")
    assert (job["owner"], job["name"], job["state"], queue) == ("alice", "jupyterhub-alice", "running", "jupyter"), job
    assert host in COMPUTE, job
    assert user_jobs(controller, "alice") == []  # Grid Engine's job, not SLURM's
    details = controller.check_output(f"qstat -j {job['id']}")

    ran = client("run", "alice", "import os, pwd, socket\n"
                 "print(socket.gethostname(), pwd.getpwuid(os.getuid()).pw_name, os.environ['JOB_ID'],"
                 " os.environ['HPCGW_JOB_MARKER'], os.environ.get('NSLOTS'))")
    assert "101" in ran.get("ws_status", ""), ran
    assert ran.get("stdout", "").split() == [host, "alice", job["id"], "gridengine", job["slots"]], ran

    stopped = client("stop", "alice")
    assert stopped.get("stopped") is True, stopped
    assert wait_until(lambda: not sge_jobs(controller, "alice"), JOB_GONE_SECONDS), sge_jobs(controller, "alice")
    assert wait_until(lambda: _no_server_left(node(host), "alice"), JOB_GONE_SECONDS)
    return job, details


def test_preset_runs_as_alice_on_an_exec_node_and_stop_deletes_the_job(
    client: Callable[..., dict[str, Any]], controller: Host, node: Callable[[str], Host]
) -> None:
    job, details = _spawn_run_stop(client, controller, node, PRESET)
    assert job["slots"] == "1"
    assert "parallel environment" not in details, details  # one core: no -pe


def test_two_cores_come_from_the_parallel_environment_of_the_data(
    client: Callable[..., dict[str, Any]], controller: Host, node: Callable[[str], Host]
) -> None:
    job, details = _spawn_run_stop(client, controller, node, TWO_CORES)
    assert job["slots"] == "2"
    # -pe smp 2: the parallel environment of the cluster's data (parallel_environment: smp).
    assert re.search(r"parallel environment:\s+smp range:\s+2\b", details), details
