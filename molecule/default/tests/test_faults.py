"""Faults lose nothing: no orphan job, no lost server, recovery in seconds.

Each case breaks something an operator sees break (the proxy killed, Apache
restarted, the hub restarted or killed while a spawn is pending, a job that
no server owns), prints its recovery time, and ends with the hub and the
queue agreeing: every job of the users belongs to a server the hub knows.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import COMPUTE, seconds_until, user_jobs, wait_no_jobs, wait_until

PRESET = json.dumps({"profile": "debug-1c"})
TAG = "hpcgw-gw"  # spawn_profiles_gateway_tag of the demo's gateway
PROXY_RECOVERY_SECONDS = 5
# Reaper: interval 10 s + grace 20 s in the demo inventory, plus a sweep's margin.
REAPER_SECONDS = 45
HUB_HEALTH = "http://hpcgw-gw:8081/jupyter/hub/health"  # the hub listens on the cluster network only

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


@pytest.fixture()
def drained(controller: Host) -> Iterator[None]:
    """Both compute nodes drained: spawns stay PENDING until the test resumes them."""
    nodes = ",".join(COMPUTE)
    controller.check_output(f"scontrol update nodename={nodes} state=drain reason=hpcgw-fault-test")
    try:
        yield
    finally:
        controller.check_output(f"scontrol update nodename={nodes} state=resume")


@pytest.fixture()
def quiet(gateway: Host) -> Iterator[None]:
    for user in ("alice", "bob"):
        assert wait_no_jobs(gateway, user) == [], f"{user} still has a job from an earlier test"
    yield
    for user in ("alice", "bob"):
        assert wait_no_jobs(gateway, user) == [], f"{user} has a job left"


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
        print(f"proxy kill -9: routes back in {out['seconds']} s")
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
        print(f"apache restart: the kernel answered again after {time.monotonic() - restarted:.1f} s")
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
        print(f"reaper: orphan job {fake} cancelled after {took:.1f} s")
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
    if how == "restart":
        gateway.check_output("systemctl restart jupyterhub")
    else:
        gateway.check_output("systemctl kill -s KILL jupyterhub")
    began = time.monotonic()
    assert _wait_hub(gateway, 90) < 90
    gone = _wait_gone(gateway, job_id, 60)
    print(f"hub {how} while pending: job {job_id} cancelled {time.monotonic() - began:.1f} s after the fault")
    assert gone < 60
    assert client("status", "alice").get("server") == {}, "the hub kept a server for a cancelled job"
    log = gateway.check_output("journalctl -u jupyterhub --no-pager -o cat --since '-3min'")
    assert f"Job {job_id} was still starting when the hub restarted: cancelling it" in log
    assert _orphans(gateway) == []


def _wait_no_server(client: Callable[..., dict[str, Any]], user: str, seconds: int) -> tuple[float, dict[str, Any]]:
    last: dict[str, Any] = {}

    def gone() -> bool:
        last.clear()
        last.update(client("status", user))
        return last.get("server") == {}

    took, _ = seconds_until(gone, seconds, interval=2)
    return took, last


def test_walltime_ends_the_server_and_the_next_page_says_why(
    client: Callable[..., dict[str, Any]], gateway: Host, quiet: None
) -> None:
    started = client("start", "alice", json.dumps(
        {"profile": "custom", "cluster_queue": "testcluster/debug", "walltime_min": "1"}))
    assert started.get("ready") is True, started
    (job_id, _, _, _), = user_jobs(gateway, "alice")
    # 60 s of walltime, SLURM's time-limit check and KillWait, then one hub poll (30 s).
    took, status = _wait_no_server(client, "alice", 240)
    print(f"walltime: server of job {job_id} removed {took:.0f} s after it was ready")
    assert took < 240, status
    assert f"batch job {job_id}" in status["notice"] and "reached its time limit" in status["notice"], status
    assert _orphans(gateway) == []
    restarted = client("start", "alice", PRESET)
    assert restarted.get("ready") is True, restarted
    assert client("status", "alice").get("notice") == ""
    assert client("stop", "alice").get("stopped") is True


def test_a_scheduler_outage_neither_kills_nor_forgets_the_server(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host, quiet: None
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    (job_id, _, job_node, _), = user_jobs(gateway, "alice")
    try:
        controller.check_output("systemctl stop slurmctld")
        time.sleep(70)  # more than two of the hub's polls (30 s) with squeue failing
        status = client("status", "alice")
        assert status["server"].get("ready") is True, status
        ran = client("run", "alice", "import socket\nprint(socket.gethostname())")
        assert ran.get("stdout", "").split() == [job_node], ran
    finally:
        controller.check_output("systemctl start slurmctld")
    assert wait_until(lambda: gateway.run("squeue -h -o %i").rc == 0, 60), "slurmctld did not come back"
    assert [job[0] for job in user_jobs(gateway, "alice")] == [job_id]
    log = gateway.check_output("journalctl -u jupyterhub --no-pager -o cat --since '-3min'")
    assert f"Status of job {job_id} unknown for now (kept)" in log
    assert _orphans(gateway) == []
    assert client("stop", "alice").get("stopped") is True
