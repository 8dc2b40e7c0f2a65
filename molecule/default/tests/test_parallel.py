"""Parallel work from the notebook (role notebook_env, notebook_env_parallel_*).

alice's notebook on a compute node builds `SLURMCluster(security=True)` from
the site configuration (<prefix>/etc/dask/hpcgw.yaml), scales it to two jobs
and computes with their workers: the compute node is a submit host, the two
workers are alice's own SLURM jobs on the cluster, they reach the scheduler
in her kernel over TLS with the cluster's throw-away certificate (written to
her home, 0600), the dashboard is at the link the configuration gives
(through the gateway), and closing the cluster cancels both jobs.

The site requires encryption (distributed.comm.require-encryption): a
cluster started without TLS, `SLURMCluster()`, is refused with Dask's
reason, and bob, from his own job on the other node, can neither reach
alice's scheduler (plain TCP, or TLS with a certificate of his own) nor her
dashboard, so no code of his runs as alice.

ipyparallel does the same with its site configuration: `ipp.Cluster(n=2)`
starts its two engines as one SLURM job of alice's, which is gone after the
cluster stops; its connection files, which hold the key that signs every
message, are readable only by her.
"""

from __future__ import annotations

import json
import shlex
import uuid
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import COMPUTE, PREFIX, user_jobs, wait_no_jobs, wait_until

PRESET = json.dumps({"profile": "debug-1c"})
ENV = "/opt/hpcgw/notebook"  # the demo's notebook_env_prefix
DASHBOARD_PORT = 8787  # the site's scheduler-options dashboard_address

# What the notebook docs tell users to type (roles/notebook_env/README.md),
# after what they typed before the site required TLS (kept if it starts).
START = """
import json, os, shlex, socket
from dask_jobqueue import SLURMCluster
from dask.distributed import Client
try:
    cluster = SLURMCluster()
    bare = []
except Exception as error:
    bare, seen = [], error
    while seen is not None:
        bare.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    cluster = SLURMCluster(security=True)
cluster.scale(jobs=2)
client = Client(cluster)
client.wait_for_workers(2, timeout=45)
words = shlex.split(next(l for l in cluster.job_script().splitlines() if "dask_worker" in l))
tls = {w: os.path.expanduser(words[i + 1]) for i, w in enumerate(words) if w.startswith("--tls-")}
print(json.dumps({"server_job": os.environ["SLURM_JOB_ID"], "link": cluster.dashboard_link,
                  "address": cluster.scheduler_address, "host": socket.gethostname(), "bare": bare,
                  "tls": {w: oct(os.stat(p).st_mode & 0o777) for w, p in tls.items()}}))
"""

COMPUTE_ON_WORKERS = """
import json, os, socket
def where(dask_worker):
    http = sorted({s.getsockname()[0] for s in dask_worker.http_server._sockets.values()})
    return socket.gethostname(), os.environ.get("SLURM_JOB_ID", ""), http
placed = client.run(where)
total = client.submit(sum, client.map(lambda x: x * x, range(100))).result()
print(json.dumps({"workers": sorted(placed.values()), "sum": total}))
"""

CLOSE = """
client.close()
cluster.close()
print("CLOSED")
"""

# bob's job: a distributed Client to alice's scheduler, first plain TCP
# (bob's own process ignores the site's require-encryption), then TLS with
# a throw-away certificate of his; each would run `touch` as alice.
BOB = """
import json, os, socket, sys
os.environ["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "False"
from distributed import Client
from distributed.security import Security
address, port, marker = sys.argv[1:4]
host = address.split("://")[-1].rsplit(":", 1)[0]
def touch(path=marker):
    open(path, "w").close()
    return os.getuid()
out = {}
for scheme, security in (("tcp", None), ("tls", Security.temporary())):
    try:
        with Client(scheme + "://" + address.split("://")[-1], security=security, timeout=5) as c:
            out[scheme] = c.submit(touch, pure=False).result(timeout=20)
    except Exception as error:
        out[scheme] = "refused: " + type(error).__name__
try:
    socket.create_connection((host, int(port)), timeout=3).close()
    out["dashboard"] = "open"
except OSError as error:
    out["dashboard"] = "closed: " + str(error)
print(json.dumps(out))
"""

# ipyparallel: the controller in the kernel, two engines as one SLURM job.
IPP = """
import glob, json, os
import ipyparallel as ipp
def where():
    import os, socket
    return socket.gethostname(), os.environ.get("SLURM_JOB_ID", "")
cluster = ipp.Cluster(n=2)
with cluster as rc:
    rc.wait_for_engines(2, timeout=45)
    placed = rc[:].apply_sync(where)
    total = sum(rc[:].map_sync(lambda x: x * x, range(100)))
    security = os.path.join(cluster.profile_dir, "security")
    files = glob.glob(os.path.join(security, f"ipcontroller-{cluster.cluster_id}-*.json"))
    modes = {os.path.basename(f): oct(os.stat(f).st_mode & 0o777) for f in files}
    keyed = all(json.load(open(f)).get("key") for f in files)
    modes["security/"] = oct(os.stat(security).st_mode & 0o777)
print(json.dumps({"engines": sorted(map(list, placed)), "sum": total, "modes": modes, "keyed": keyed}))
"""

SQUARES = sum(x * x for x in range(100))
REFUSAL = "encryption required by Dask configuration"


def _last_json(ran: dict[str, Any]) -> dict[str, Any]:
    """The last JSON object the code printed: ipyparallel's own messages
    ("Controller stopped: ...") may come after it on the same stream, even
    on the same line (it prints from another thread, without a newline)."""
    assert ran.get("reply") == "ok", ran
    lines = [line for line in ran.get("stdout", "").splitlines() if line.startswith("{")]
    assert lines, ran
    value, _ = json.JSONDecoder().raw_decode(lines[-1])
    return value


@pytest.fixture(scope="module")
def alice_cluster(client: Callable[..., dict[str, Any]], controller: Host) -> Iterator[dict[str, Any]]:
    """alice's server with a Dask cluster of two worker jobs in her kernel,
    started as the docs say (kernel id under "kid"); alice and bob have no
    job before, and none after."""
    for user in ("alice", "bob"):
        assert wait_no_jobs(controller, user) == [], f"{user} still has a job from an earlier test"
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    try:
        kernel = client("kernel", "alice")
        assert kernel.get("kernel_id"), kernel
        yield {"kid": kernel["kernel_id"], **_last_json(client("run-in", "alice", kernel["kernel_id"], START))}
    finally:
        assert client("stop", "alice").get("stopped") is True
        for user in ("alice", "bob"):
            assert wait_no_jobs(controller, user) == [], f"{user} has a job left"


def test_another_users_job_cannot_use_alices_dask_cluster(
    alice_cluster: dict[str, Any], controller: Host, node: Callable[[str], Host]
) -> None:
    other = next(name for name in COMPUTE if name != alice_cluster["host"])
    marker = f"/tmp/hpcgw-dask-{uuid.uuid4().hex[:8]}"
    try:
        ran = controller.run(
            f"cd /tmp && runuser -u bob -- srun -p debug -t 1 -N 1 -w {other} {ENV}/bin/python -c "
            + " ".join(shlex.quote(a) for a in (BOB, alice_cluster["address"], str(DASHBOARD_PORT), marker)))
        assert ran.rc == 0, ran.stderr
        tried = json.loads([line for line in ran.stdout.splitlines() if line.startswith("{")][-1])
        # Nothing of bob's ran as alice: both connections refused, no file made.
        assert str(tried["tcp"]).startswith("refused") and str(tried["tls"]).startswith("refused"), tried
        assert not [name for name in COMPUTE if node(name).file(marker).exists], tried
        # Her dashboard is on her node's loopback only (the gateway's proxy, behind her login).
        assert tried["dashboard"].startswith("closed"), tried
        # A cluster without TLS does not start, and the error says why.
        assert any(REFUSAL in line for line in alice_cluster["bare"]), alice_cluster["bare"]
        assert alice_cluster["address"].startswith("tls://"), alice_cluster
    finally:
        for name in COMPUTE:
            node(name).run(f"rm -f {marker}")


def test_a_notebook_computes_on_two_worker_jobs_and_they_end_with_it(
    client: Callable[..., dict[str, Any]], controller: Host, alice_cluster: dict[str, Any]
) -> None:
    kid, server_job = alice_cluster["kid"], alice_cluster["server_job"]
    assert alice_cluster["link"].startswith(f"{PREFIX}/user/alice/proxy/"), alice_cluster
    # The workers' certificate, key and CA: in her home, hers alone.
    assert sorted(alice_cluster["tls"]) == ["--tls-ca-file", "--tls-cert", "--tls-key"], alice_cluster
    assert set(alice_cluster["tls"].values()) == {"0o600"}, alice_cluster

    # While the cluster runs: alice has her server's job and two worker jobs.
    jobs = user_jobs(controller, "alice")
    ids = sorted(job[0] for job in jobs)
    assert len(jobs) == 3 and server_job in ids, jobs
    workers = sorted(set(ids) - {server_job})

    done = _last_json(client("run-in", "alice", kid, COMPUTE_ON_WORKERS))
    assert done["sum"] == SQUARES, done
    # Two workers, one in each worker job (not the server's), on the cluster's nodes,
    # their HTTP servers (metrics) on their node's loopback.
    assert sorted(job for _, job, _ in done["workers"]) == workers, (done, jobs)
    assert {host for host, _, _ in done["workers"]} <= set(COMPUTE), done
    assert [http for _, _, http in done["workers"]] == [["127.0.0.1"]] * 2, done

    # The dashboard at the configured link, through Apache and her server.
    board = client("fetch", "alice", alice_cluster["link"].removeprefix(PREFIX))
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
    # Its signing key: in two connection files, 0600, in a 0700 directory.
    assert engines["keyed"] is True and len(engines["modes"]) == 3, engines
    assert set(engines["modes"].values()) == {"0o600", "0o700"} and engines["modes"]["security/"] == "0o700", engines
    assert wait_until(lambda: [job[0] for job in user_jobs(controller, "alice")] == [server_job], 60), \
        user_jobs(controller, "alice")
