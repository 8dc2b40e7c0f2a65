"""Parallel work from the notebook (role notebook_env, notebook_env_parallel_*).

alice's notebook on a compute node builds `SLURMCluster()` from the site
configuration alone (<prefix>/etc/dask/hpcgw.yaml), scales it to two jobs
and computes with their workers: the compute node is a submit host, the two
workers are alice's own SLURM jobs on the cluster, they reach the scheduler
in her kernel, the dashboard is at the link the configuration gives (through
the gateway), and closing the cluster cancels both jobs. ipyparallel does
the same with its site configuration: `ipp.Cluster(n=2)` starts its two
engines as one SLURM job of alice's, which is gone after the cluster stops.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from testinfra.host import Host

from conftest import COMPUTE, PREFIX, user_jobs, wait_until

PRESET = json.dumps({"profile": "debug-1c"})

# What a user types: no argument but the number of jobs.
START = """
import json, os
from dask_jobqueue import SLURMCluster
from dask.distributed import Client
cluster = SLURMCluster()
cluster.scale(jobs=2)
client = Client(cluster)
client.wait_for_workers(2, timeout=45)
print(json.dumps({"server_job": os.environ["SLURM_JOB_ID"], "link": cluster.dashboard_link}))
"""

COMPUTE_ON_WORKERS = """
import json, os, socket
def where():
    return socket.gethostname(), os.environ.get("SLURM_JOB_ID", "")
placed = client.run(where)
total = client.submit(sum, client.map(lambda x: x * x, range(100))).result()
print(json.dumps({"workers": sorted(placed.values()), "sum": total}))
"""

CLOSE = """
client.close()
cluster.close()
print("CLOSED")
"""

# ipyparallel: the controller in the kernel, two engines as one SLURM job.
IPP = """
import json
import ipyparallel as ipp
def where():
    import os, socket
    return socket.gethostname(), os.environ.get("SLURM_JOB_ID", "")
with ipp.Cluster(n=2) as rc:
    rc.wait_for_engines(2, timeout=45)
    placed = rc[:].apply_sync(where)
    total = sum(rc[:].map_sync(lambda x: x * x, range(100)))
print(json.dumps({"engines": sorted(map(list, placed)), "sum": total}))
"""

SQUARES = sum(x * x for x in range(100))


def _last_json(ran: dict[str, Any]) -> dict[str, Any]:
    """The last JSON line the code printed: ipyparallel's own messages
    ("Controller stopped: ...") may come after it on the same stream."""
    assert ran.get("reply") == "ok", ran
    lines = [line for line in ran.get("stdout", "").splitlines() if line.startswith("{")]
    assert lines, ran
    return json.loads(lines[-1])


def test_a_notebook_computes_on_two_worker_jobs_and_they_end_with_it(
    client: Callable[..., dict[str, Any]], controller: Host, quiet: None
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    try:
        kernel = client("kernel", "alice")
        assert kernel.get("kernel_id"), kernel
        kid = kernel["kernel_id"]

        begun = _last_json(client("run-in", "alice", kid, START))
        server_job = begun["server_job"]
        assert begun["link"].startswith(f"{PREFIX}/user/alice/proxy/"), begun

        # While the cluster runs: alice has her server's job and two worker jobs.
        jobs = user_jobs(controller, "alice")
        ids = sorted(job[0] for job in jobs)
        assert len(jobs) == 3 and server_job in ids, jobs
        workers = sorted(set(ids) - {server_job})

        done = _last_json(client("run-in", "alice", kid, COMPUTE_ON_WORKERS))
        assert done["sum"] == SQUARES, done
        # Two workers, one in each worker job (not the server's), on the cluster's nodes.
        assert sorted(job for _, job in done["workers"]) == workers, (done, jobs)
        assert {host for host, _ in done["workers"]} <= set(COMPUTE), done

        # The dashboard at the configured link, through Apache and her server.
        board = client("fetch", "alice", begun["link"].removeprefix(PREFIX))
        assert board["fetch_status"] == 200, board

        closed = client("run-in", "alice", kid, CLOSE)
        assert closed.get("reply") == "ok" and "CLOSED" in closed["stdout"], closed
        left = wait_until(lambda: [j for j in user_jobs(controller, "alice") if j[0] != server_job] == [], 60)
        assert left, user_jobs(controller, "alice")
        assert [job[0] for job in user_jobs(controller, "alice")] == [server_job]

        # ipyparallel: its engines' job is alice's, not the server's, and ends with the cluster.
        engines = _last_json(client("run", "alice", IPP))
        assert engines["sum"] == SQUARES, engines
        engine_jobs = {job for _, job in engines["engines"]}
        assert len(engines["engines"]) == 2 and len(engine_jobs) == 1 and server_job not in engine_jobs, engines
        assert wait_until(lambda: [job[0] for job in user_jobs(controller, "alice")] == [server_job], 60), \
            user_jobs(controller, "alice")
    finally:
        assert client("stop", "alice").get("stopped") is True
