"""Several servers per user (named servers, issue 15 item 5), through Apache.

alice starts two named servers with different profiles (the debug preset and
a custom request on the batch queue): two SLURM jobs at once, each named
after its server, each running code on a compute node. A third is refused by
the demo's limit (jupyterhub_named_server_limit_per_user: 2) with the hub's
message. The reaper keeps both live jobs while it cancels a true orphan of
hers; stopping one server leaves the other and its job; stopping all of her
servers leaves no job of hers. The local profile stays one server per user.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import COMPUTE, seconds_until, user_jobs, wait_job_gone, wait_no_jobs, wait_until

USER = "alice"
SERVERS = {
    "debug": {"profile": "debug-1c"},
    "batch": {"profile": "custom", "cluster_queue": "testcluster/batch", "cores": "1", "walltime_min": "20"},
}
PARTITIONS = {"debug": "debug", "batch": "batch"}
LIMIT = 2  # jupyterhub_named_server_limit_per_user of the demo (group_vars/gateway/named_servers.yml)
TAG = "hpcgw-gw"  # spawn_profiles_gateway_tag of the demo's gateway
# Reaper: interval 10 s + grace 20 s in the demo inventory, plus a sweep's margin.
REAPER_SECONDS = 45
SPAWN_LOG = "/var/lib/jupyterhub/hpcgw-spawns.jsonl"
AUDIT = "hpcgw-audit"


def _jobs(gateway: Host) -> dict[str, list[str]]:
    """alice's jobs by job name: [job id, state, node list, partition]."""
    out = gateway.check_output(f"squeue -h -u {USER} -o '%j %i %T %N %P'")
    return {fields[0]: fields[1:] for fields in (line.split() for line in out.splitlines()) if fields}


def _remove_named(client: Callable[..., dict[str, Any]], names: tuple[str, ...]) -> None:
    """Stop and forget these named servers of alice (the limit counts stopped ones too)."""
    client("call", USER, json.dumps([["DELETE", f"/hub/api/users/{USER}/servers/{name}", {"remove": True}]
                                     for name in names]))


@pytest.fixture()
def clean(client: Callable[..., dict[str, Any]], gateway: Host) -> Iterator[None]:
    """No job and no named server of alice before; none left after."""
    _remove_named(client, (*SERVERS, "third", "local-a", "local-b"))
    assert wait_no_jobs(gateway, USER) == [], "alice still has a job from an earlier test"
    yield
    client("stop-all", USER)
    _remove_named(client, (*SERVERS, "third", "local-a", "local-b"))
    assert wait_no_jobs(gateway, USER) == [], "alice has a job left"


def _audit_spawns(gateway: Host, since: float) -> list[dict[str, Any]]:
    out = gateway.check_output(f"journalctl -t {AUDIT} -o cat --no-pager --since @{int(since)}")
    return [r for r in (json.loads(line) for line in out.splitlines() if line.startswith("{"))
            if r.get("event") == "spawn" and r.get("user") == USER]


def test_two_named_servers_are_two_jobs_each_stopped_alone(
    client: Callable[..., dict[str, Any]], gateway: Host, hub_log: Callable[..., str], clean: None
) -> None:
    began = time.time()
    # The spawn form of a named server (/hub/spawn/alice/debug) is the gateway's form with its data.
    page = client("page", USER, "--server", "debug")
    assert page["page_status"] == 200 and page["data"], {k: page.get(k) for k in ("page_status", "page_url")}

    for name, form in SERVERS.items():
        started = client("start", USER, json.dumps(form), "--server", name)
        assert started.get("ready") is True, (name, started)
    servers = client("servers", USER)["servers"]
    assert sorted(servers) == sorted(SERVERS) and all(s.get("ready") for s in servers.values()), servers

    # Two jobs at once, each named after its server, on its queue, running on a compute node.
    jobs = _jobs(gateway)
    assert sorted(jobs) == sorted(f"jupyterhub-{USER}-{name}" for name in SERVERS), jobs
    ids = {name: jobs[f"jupyterhub-{USER}-{name}"][0] for name in SERVERS}
    assert len(set(ids.values())) == 2, ids
    for name in SERVERS:
        job_id, state, job_node, partition = jobs[f"jupyterhub-{USER}-{name}"]
        assert (state, partition) == ("RUNNING", PARTITIONS[name]) and job_node in COMPUTE, (name, jobs)
        ran = client("run", USER, "import os, socket\nprint(socket.gethostname(), os.environ['SLURM_JOB_ID'], "
                     "os.environ['SLURM_JOB_NAME'], os.environ.get('HPCGW_QUEUE_MARKER', '-'))", "--server", name)
        assert "101" in ran.get("ws_status", ""), (name, ran)
        marker = "batch" if name == "batch" else "-"
        assert ran.get("stdout", "").split() == [job_node, job_id, f"jupyterhub-{USER}-{name}", marker], (name, ran)

    # A third named server is refused by the limit, on its spawn page and through the REST API; no job.
    third = client("page", USER, "--server", "third")
    assert third["page_status"] == 400, third
    assert f"already has the maximum of {LIMIT} named servers" in third.get("error", ""), third
    api = client("call", USER, json.dumps([["POST", f"/hub/api/users/{USER}/servers/third", {"profile": "debug-1c"}]]))
    refused = api["calls"][0]
    assert refused["status"] == 400, refused
    assert f"already has the maximum of {LIMIT} named servers" in json.dumps(refused["body"]), refused
    assert sorted(_jobs(gateway)) == sorted(f"jupyterhub-{USER}-{name}" for name in SERVERS)
    # Nor may she start (or name) a server in bob's name.
    crossing = client("call", USER, json.dumps([["POST", "/hub/api/users/bob/servers/mine", {"profile": "debug-1c"}]]))
    assert crossing["calls"][0]["status"] in (403, 404), crossing
    assert user_jobs(gateway, "bob") == []

    # Audit and spawn record say which server each job is.
    audited = wait_until(lambda: {r.get("server"): r.get("job_id") for r in _audit_spawns(gateway, began)
                                  if r.get("job_id")}, 15)
    assert {name: audited.get(name) for name in SERVERS} == ids, audited
    record = [json.loads(line) for line in gateway.check_output(f"cat {SPAWN_LOG}").splitlines() if line.strip()]
    assert {line["job_id"]: line.get("server") for line in record if line["job_id"] in ids.values()} == {
        job_id: name for name, job_id in ids.items()}, record[-4:]

    # The reaper cancels a true orphan of alice's (the gateway's mark, no server holds it) and keeps
    # both live named servers' jobs, submitted before it and so past the grace at the same sweep.
    orphan = gateway.check_output(
        f"runuser -u {USER} -- sbatch --parsable --job-name=jupyterhub-{USER}-ghost --comment=hpcgw:{TAG} "
        f"--partition=debug --time=10 --chdir=/home/{USER} --output=/dev/null --wrap 'sleep 600'").strip()
    # Queued is enough: the reaper's rule does not look at the state, and in
    # the window the debug nodes may be full (the job then pends for Resources).
    assert wait_until(lambda: gateway.check_output(f"squeue -h -j {orphan} -o %T").strip() in {"PENDING", "RUNNING"},
                      15), gateway.run(f"squeue -j {orphan} -o '%i %T %r'").stdout
    took, gone = seconds_until(lambda: wait_job_gone(gateway, orphan, 0), REAPER_SECONDS)
    assert gone and took < REAPER_SECONDS, (orphan, _jobs(gateway))
    log = hub_log(f"Cancelled orphan job {orphan} of {USER}")
    assert f"Cancelled orphan job {orphan} of {USER}" in log
    assert not any(f"Cancelled orphan job {job_id} " in log for job_id in ids.values()), log
    assert {name: _jobs(gateway).get(f"jupyterhub-{USER}-{name}", [""])[0] for name in SERVERS} == ids

    # Stopping one server leaves the other, its job and its kernel's node.
    stopped = client("stop", USER, "--server", "debug")
    assert stopped.get("stopped") is True, stopped
    assert wait_job_gone(gateway, ids["debug"]), _jobs(gateway)
    assert sorted(client("servers", USER)["servers"]) == ["batch"]
    left = _jobs(gateway)
    assert list(left) == [f"jupyterhub-{USER}-batch"] and left[f"jupyterhub-{USER}-batch"][:2] == [
        ids["batch"], "RUNNING"], left
    ran = client("run", USER, "print(6 * 7)", "--server", "batch")
    assert ran.get("stdout", "").split() == ["42"], ran

    # Stopping all of alice's servers leaves no job of hers.
    again = client("start", USER, json.dumps(SERVERS["debug"]), "--server", "debug")  # two running again
    assert again.get("ready") is True, again
    assert len(_jobs(gateway)) == 2, _jobs(gateway)
    everything = client("stop-all", USER)
    assert everything.get("stopped") is True, everything
    assert wait_no_jobs(gateway, USER) == []
    assert gateway.check_output(f"squeue -h -u {USER}").strip() == ""


def test_the_local_profile_stays_one_server_per_user(
    client: Callable[..., dict[str, Any]], gateway: Host, clean: None
) -> None:
    """The local profile's scope and limits are the user's: a second local
    server of hers is refused while one runs (a batch server is not)."""
    first = client("start", USER, json.dumps({"profile": "local"}), "--server", "local-a")
    assert first.get("ready") is True, first
    second = client("start", USER, json.dumps({"profile": "local"}), "--server", "local-b")
    assert 'the gateway\'s local profile runs one server per user, and your server "local-a" is one' in second.get(
        "refused", ""), second
    assert second.get("server") == {}, second
    assert sorted(client("servers", USER)["servers"]) == ["local-a"]
    ran = client("run", USER, "print(6 * 7)", "--server", "local-a")
    assert ran.get("stdout", "").split() == ["42"], ran
