"""Faults lose nothing: no orphan job, no lost server, recovery in seconds.

Each case breaks something an operator sees break (the proxy killed, Apache
restarted, the hub restarted or killed at each stage of a spawn and under a
ready server, a job that no server owns, a compute node failing,
the scheduler or munge out for several polls; walltime is test_walltime.py),
records its recovery time
(the verifier's summary prints them all, artifacts/molecule/recovery.json
keeps them), and ends with the hub and the queue agreeing: every job of the
users belongs to a server the hub knows.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import COMPUTE, record_recovery, seconds_until, user_jobs, wait_server_gone, wait_until

PRESET = json.dumps({"profile": "debug-1c"})
TAG = "hpcgw-gw"  # spawn_profiles_gateway_tag of the demo's gateway
PROXY_RECOVERY_SECONDS = 5
# Reaper: interval 10 s + grace 20 s in the demo inventory, plus a sweep's margin.
REAPER_SECONDS = 45
HUB_HEALTH = "http://hpcgw-gw:8081/jupyter/hub/health"  # the hub listens on the cluster network only
# The single-user launcher on the compute nodes (one volume shared by both).
LAUNCHER = "/opt/hpcgw/notebook/bin/batchspawner-singleuser"
# Written by the job (as alice, on the shared /home) when a spawn reached the
# stage a test wants to break it at; the job then waits there.
MARKER = "/home/alice/.hpcgw-fault-stage"
USER_CONFIG = "/home/alice/.jupyter/jupyter_server_config.py"
# Three of the hub's polls (the demo's spawn_profiles_poll_interval, 15 s)
# and the shared status query's failures in between: a failed poll is kept
# the same way each time, so three prove the path the 5 min would
# (and keep the suite short).
POLL_SECONDS = 15
OUTAGE_SECONDS = 3 * POLL_SECONDS + 5

# Runs on the gateway: kill -9 the proxy, then time until alice's route is back.
PROXY_KILL = r"""
import json, subprocess, time, urllib.request
token = dict(line.strip().split("=", 1) for line in open("/etc/jupyterhub/secrets/proxy.env") if "=" in line)
request = urllib.request.Request("http://127.0.0.1:8001/api/routes",
                                 headers={"Authorization": "token " + token["CONFIGPROXY_AUTH_TOKEN"]})
def routes():
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return json.load(response)
    except OSError:
        return {}
assert "/jupyter/user/alice" in routes(), "no route before the kill"
subprocess.run(["systemctl", "kill", "-s", "KILL", "configurable-http-proxy"], check=True)
killed = time.monotonic()
time.sleep(0.2)
while time.monotonic() - killed < 90:
    if "/jupyter/user/alice" in routes():
        break
    time.sleep(0.1)
print(json.dumps({"seconds": round(time.monotonic() - killed, 2), "routes": sorted(routes())}))
"""


HELD_JOBS = r"""
import json, sqlite3
db = sqlite3.connect("file:/var/lib/jupyterhub/jupyterhub.sqlite?mode=ro", uri=True)
held = []
for (state,) in db.execute("select state from spawners"):
    state = json.loads(state or "{}") if isinstance(state, str) else (state or {})
    held.append(str((state.get("child_state") or state).get("job_id") or ""))
print(json.dumps(held))
"""


def _orphans(gateway: Host, users: tuple[str, ...] = ("alice", "bob")) -> list[list[str]]:
    """Jobs of the users that no server of the hub holds (squeue vs the hub's database)."""
    held = set(json.loads(gateway.check_output("python3 - <<'EOF'\n" + HELD_JOBS + "\nEOF")))
    return [job for user in users for job in user_jobs(gateway, user) if job[0] not in held]


def _wait_hub(gateway: Host, seconds: int = 60) -> float:
    return seconds_until(lambda: gateway.run(
        f"python3 -c \"import urllib.request; urllib.request.urlopen('{HUB_HEALTH}', timeout=2)\"").rc == 0,
        seconds)[0]


def _wait_gone(gateway: Host, job_id: str, seconds: int) -> float:
    """Seconds until the job left squeue (inf if it did not)."""
    return seconds_until(lambda: job_id not in {
        job[0] for user in ("alice", "bob") for job in user_jobs(gateway, user)}, seconds)[0]


def _lose_hub(gateway: Host, how: str) -> float:
    """Restart or kill -9 the hub; returns the moment of the fault."""
    gateway.check_output("systemctl restart jupyterhub" if how == "restart" else "systemctl kill -s KILL jupyterhub")
    return time.monotonic()


def _lose_hub_and_expect_the_job_cancelled(client: Callable[..., dict[str, Any]], gateway: Host, job_id: str,
                                           how: str, fault: str) -> None:
    """The hub is lost while job `job_id` still starts: the new hub cancels it,
    keeps no server for it, says so in its log, and no orphan is left."""
    began = _lose_hub(gateway, how)
    assert _wait_hub(gateway, 90) < 90
    gone = _wait_gone(gateway, job_id, 60)
    record_recovery(fault, time.monotonic() - began)
    assert gone < 60
    assert client("status", "alice").get("server") == {}, "the hub kept a server for a cancelled job"
    log = gateway.check_output("journalctl -u jupyterhub --no-pager -o cat --since '-3min'")
    assert f"Job {job_id} was still starting when the hub restarted: cancelling it" in log
    assert _orphans(gateway) == []


@pytest.fixture()
def drained(controller: Host) -> Iterator[None]:
    """Both compute nodes drained: spawns stay PENDING until the test resumes them."""
    nodes = ",".join(COMPUTE)
    controller.check_output(f"scontrol update nodename={nodes} state=drain reason=hpcgw-fault-test")
    try:
        yield
    finally:
        controller.check_output(f"scontrol update nodename={nodes} state=resume")


def _pending_spawn(client: Callable[..., dict[str, Any]], gateway: Host) -> str:
    result = client("api", "alice", PRESET)
    assert result["api_status"] == 202, result
    (job,) = user_jobs(gateway, "alice")
    assert job[1] == "PENDING", job
    return job[0]


def test_proxy_kill9_routes_back_in_seconds(client: Callable[..., dict[str, Any]], gateway: Host,
                                           quiet: None) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    try:
        out = json.loads(gateway.check_output("python3 - <<'EOF'\n" + PROXY_KILL + "\nEOF").splitlines()[-1])
        record_recovery("proxy kill -9: user's route back", out["seconds"])
        assert "/jupyter/user/alice" in out["routes"], out
        assert out["seconds"] <= PROXY_RECOVERY_SECONDS, out
        ran = client("run", "alice", "print(6 * 7)")
        assert ran.get("stdout", "").split() == ["42"], ran
        assert _orphans(gateway) == []
    finally:
        assert client("stop", "alice").get("stopped") is True


def test_apache_restart_keeps_the_kernel_and_its_state(client: Callable[..., dict[str, Any]], gateway: Host,
                                                      quiet: None) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    try:
        kernel = client("kernel", "alice").get("kernel_id")
        assert kernel, "no kernel"
        first = client("run-in", "alice", kernel, "x = 6 * 7\nprint('set')")
        assert first.get("stdout", "").split() == ["set"], first
        restarted = time.monotonic()
        gateway.check_output("systemctl restart apache2")
        again: dict[str, Any] = {}

        def answers() -> bool:
            again.clear()
            again.update(client("run-in", "alice", kernel, "print(x)"))
            return again.get("reply") == "ok"

        wait_until(answers, 30, interval=0.5)
        record_recovery("Apache restart: the open kernel answers, state kept", time.monotonic() - restarted)
        assert again.get("stdout", "").split() == ["42"], again
    finally:
        assert client("stop", "alice").get("stopped") is True


def test_the_reaper_cancels_a_job_no_server_owns_but_not_a_pending_spawn(
    client: Callable[..., dict[str, Any]], gateway: Host, quiet: None, drained: None
) -> None:
    spawn_job = _pending_spawn(client, gateway)
    fake = gateway.check_output(
        f"runuser -u bob -- sbatch --parsable --job-name=jupyterhub-bob --comment=hpcgw:{TAG} "
        "--partition=debug --time=10 --wrap 'sleep 600'").strip()
    own = gateway.check_output(
        "runuser -u bob -- sbatch --parsable --job-name=jupyterhub-bob --partition=debug --time=10 "
        "--wrap 'sleep 600'").strip()  # bob's own job: no gateway mark
    try:
        took = _wait_gone(gateway, fake, REAPER_SECONDS)
        record_recovery("orphan job (no server owns it): cancelled by the reaper", took)
        assert took < REAPER_SECONDS
        remaining = {job[0] for user in ("alice", "bob") for job in user_jobs(gateway, user)}
        assert spawn_job in remaining and own in remaining, remaining
        log = gateway.check_output("journalctl -u jupyterhub --no-pager -o cat --since '-3min'")
        assert f"Cancelled orphan job {fake} of bob" in log
    finally:
        gateway.run(f"runuser -u bob -- scancel {own}")
        assert client("stop", "alice").get("stopped") is True


@pytest.mark.parametrize("how", ["restart", "kill -9"])
def test_a_hub_lost_during_a_pending_spawn_leaves_no_orphan(
    client: Callable[..., dict[str, Any]], gateway: Host, quiet: None, drained: None, how: str
) -> None:
    job_id = _pending_spawn(client, gateway)
    _lose_hub_and_expect_the_job_cancelled(client, gateway, job_id, how,
                                           f"hub {how} while the spawn is pending: job cancelled")


@pytest.fixture()
def stage_hook(node: Callable[[str], Host], gateway: Host) -> Iterator[Callable[[str], None]]:
    """stage_hook(stage): make alice's next spawn write MARKER and wait there:
    "before the callback" (the launcher waits before it tells the hub its
    port) or "after the callback" (her own server configuration waits while
    the server starts). Everything is put back afterwards."""
    compute = node(COMPUTE[0])  # /opt/hpcgw and /home are shared by the nodes

    def hook(stage: str) -> None:
        if stage == "before the callback":
            compute.check_output(f"mv {LAUNCHER} {LAUNCHER}.real && printf '%s\\n' '#!/bin/sh' "
                                 f"'touch {MARKER}' 'sleep 60' 'exec {LAUNCHER}.real \"$@\"' > {LAUNCHER} "
                                 f"&& chmod 0755 {LAUNCHER}")
        else:
            gateway.check_output("runuser -u alice -- sh -c " + shlex.quote(
                f"mkdir -p /home/alice/.jupyter && printf '%s\\n' 'import pathlib, time' "
                f"'pathlib.Path(\"{MARKER}\").touch()' 'time.sleep(60)' > {USER_CONFIG}"))

    try:
        yield hook
    finally:
        compute.run(f"test -e {LAUNCHER}.real && mv -f {LAUNCHER}.real {LAUNCHER}")
        gateway.run(f"rm -f {MARKER} {USER_CONFIG}")


@pytest.mark.parametrize("how", ["restart", "kill -9"])
@pytest.mark.parametrize("stage", ["before the callback", "after the callback"])
def test_a_hub_lost_while_the_job_starts_leaves_no_orphan(
    client: Callable[..., dict[str, Any]], gateway: Host, quiet: None, stage_hook: Callable[[str], None],
    stage: str, how: str
) -> None:
    stage_hook(stage)
    result = client("api", "alice", PRESET)
    assert result["api_status"] == 202, result
    assert wait_until(lambda: gateway.file(MARKER).exists, 60, interval=0.5), f"the job never got {stage}"
    (job_id, state, _, _), = user_jobs(gateway, "alice")
    assert state == "RUNNING", state
    assert client("status", "alice")["server"].get("ready") is not True
    _lose_hub_and_expect_the_job_cancelled(client, gateway, job_id, how,
                                           f"hub {how} while the job runs, {stage}: job cancelled")


@pytest.mark.parametrize("how", ["restart", "kill -9"])
def test_a_hub_lost_under_a_ready_server_keeps_it(
    client: Callable[..., dict[str, Any]], gateway: Host, quiet: None, how: str
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    (job_id, _, job_node, _), = user_jobs(gateway, "alice")
    try:
        began = _lose_hub(gateway, how)
        assert _wait_hub(gateway, 90) < 90
        ran: dict[str, Any] = {}

        def answers() -> bool:
            ran.clear()
            ran.update(client("run", "alice", "import socket\nprint(socket.gethostname())"))
            return ran.get("stdout", "").split() == [job_node]

        assert wait_until(answers, 60, interval=1), ran
        record_recovery(f"hub {how} under a ready server: the server answers through the hub",
                        time.monotonic() - began)
        assert client("status", "alice")["server"].get("ready") is True
        assert [job[0] for job in user_jobs(gateway, "alice")] == [job_id]
        assert _orphans(gateway) == []
    finally:
        assert client("stop", "alice").get("stopped") is True


def test_a_node_failure_ends_the_server_and_the_next_page_says_why(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host, node: Callable[[str], Host],
    quiet: None
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    (job_id, _, job_node, _), = user_jobs(gateway, "alice")
    compute = node(job_node)
    try:
        compute.check_output("systemctl stop slurmd")
        controller.check_output(f"scontrol update nodename={job_node} state=down reason=hpcgw-fault-test")
        took, status = wait_server_gone(lambda: client("status", "alice"), 120)
        record_recovery("compute node down under a ready server: server removed", took)
        assert took < 120, status
        assert f"batch job {job_id}" in status["notice"], status
        assert "ended because its compute node failed" in status["notice"], status
        assert _orphans(gateway) == []
    finally:
        compute.check_output("systemctl start slurmd")
        # slurmctld may already have returned the registered node to service
        # (ReturnToService), which makes a resume "Invalid node state".
        controller.run(f"scontrol update nodename={job_node} state=resume")
        assert wait_until(lambda: controller.check_output(f"sinfo -h -n {job_node} -o %t").strip()
                          in {"idle", "mix", "alloc"}, 90, interval=2), \
            controller.check_output(f"sinfo -h -n {job_node} -o '%t %E'")
    # Back on its feet, the node kills what was left of the job: nothing of
    # alice keeps running there.
    # (KillWait, then slurmd's clean-up of the steps it finds; 90 s was short on a busy host)
    assert wait_until(lambda: compute.run("pgrep -u alice").rc == 1, 150), \
        compute.check_output("ps -u alice -o pid,args || true")
    restarted = client("start", "alice", PRESET)
    assert restarted.get("ready") is True, restarted
    assert client("status", "alice").get("notice") == ""
    assert client("stop", "alice").get("stopped") is True


OUTAGES = {
    # slurmctld stopped: every squeue says it cannot reach the controller.
    "slurmctld stopped": ("hpcgw-ctl", "slurmctld", OUTAGE_SECONDS),
    # munge stopped on the gateway: squeue fails with an authentication error,
    # not "unable to contact" (batchspawner#315 reads such errors as "gone").
    "munge stopped on the gateway": ("hpcgw-gw", "munge", 2 * POLL_SECONDS + 10),
}


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_a_scheduler_outage_neither_kills_nor_forgets_the_server(
    client: Callable[..., dict[str, Any]], gateway: Host, node: Callable[[str], Host], quiet: None,
    outage: str
) -> None:
    host_name, service, seconds = OUTAGES[outage]
    host = node(host_name)
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    (job_id, _, job_node, _), = user_jobs(gateway, "alice")
    since = gateway.check_output("date '+%Y-%m-%d %H:%M:%S'")
    try:
        host.check_output(f"systemctl stop {service}")
        time.sleep(seconds)  # several of the hub's polls with squeue failing
        assert gateway.run("squeue -h -o %i").rc != 0, "the scheduler still answered"
        status = client("status", "alice")
        assert status["server"].get("ready") is True, status
        ran = client("run", "alice", "import socket\nprint(socket.gethostname())")
        assert ran.get("stdout", "").split() == [job_node], ran
    finally:
        host.check_output(f"systemctl start {service}")
    took, _ = seconds_until(lambda: gateway.run("squeue -h -o %i").rc == 0, 60)
    record_recovery(f"{outage} for {seconds} s: scheduler answers again (server kept throughout)", took)
    assert took < 60, "the scheduler did not come back"
    assert [job[0] for job in user_jobs(gateway, "alice")] == [job_id]
    log = gateway.check_output(f"journalctl -u jupyterhub --no-pager -o cat --since '{since}'")
    assert f"Status of job {job_id} unknown for now (kept)" in log
    assert _orphans(gateway) == []
    assert client("stop", "alice").get("stopped") is True
