"""The idle culler (issue 12): an idle server is culled, its batch job is gone
and its user's next page says why; a server whose kernel works is kept; the
culler's token can do no more than its role.

The demo's culler (hpcgw-idle-culler, a hub-managed service) waits an hour.
The test runs a second culler process of the same service, with its token
(read from the managed culler's environment, never on a command line) and a
50 s timeout: the real command, the real role and the hub's real stop path.
50 s, not less: activity reaches the hub through the proxy every 30 s (the
demo's jupyterhub_route_check_interval), so a timeout that is not above it
and one culler interval would cull busy servers too (the preflight refuses
it for the real culler).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import user_jobs, wait_job_gone, wait_until

PRESET = json.dumps({"profile": "debug-1c"})
SERVICE = "hpcgw-idle-culler"
VENV_PYTHON = "/opt/jupyterhub/bin/python"
TEST_TIMEOUT = 50
TEST_INTERVAL = 10
UNIT = "hpcgw-test-culler"
ENV_FILE = f"/run/{UNIT}.env"
# The role's scopes as the hub expands them (list:users and read:servers imply read:users:name).
ROLE_SCOPES = {"list:users", "read:users:activity", "read:servers", "delete:servers", "read:users:name"}

# Runs on the gateway as root: the managed culler's token and API URL, to a root-only env file.
COPY_TOKEN = r"""
import json, os, subprocess
pids = subprocess.run(["pgrep", "-u", "jupyterhub", "-f", "jupyterhub_idle_culler"],
                      capture_output=True, text=True).stdout.split()
env = {}
for pid in pids:
    with open(f"/proc/{pid}/environ", "rb") as handle:
        items = dict(kv.split("=", 1) for kv in handle.read().decode().split("\0") if "=" in kv)
    if items.get("JUPYTERHUB_SERVICE_NAME") == "%(service)s":
        env = items
        break
os.umask(0o077)
with open("%(env_file)s", "w") as handle:
    for key in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL"):
        handle.write(f"{key}={env.get(key, '')}\n")
print(json.dumps({"found": bool(env.get("JUPYTERHUB_API_TOKEN")), "url": env.get("JUPYTERHUB_API_URL", "")}))
""" % {"service": SERVICE, "env_file": ENV_FILE}

# Runs on the gateway: what the culler's token may do (each request's status code).
PROBE = r"""
import json, urllib.request, urllib.error
env = dict(line.rstrip("\n").split("=", 1) for line in open("%(env_file)s") if "=" in line)
api, token = env["JUPYTERHUB_API_URL"], env["JUPYTERHUB_API_TOKEN"]
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api + path, data=data, method=method,
                                     headers={"Authorization": "token " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None
status, me = call("GET", "/user")
out = {"me": me, "me_status": status, "codes": {}}
for name, method, path, body in [
    ("list users", "GET", "/users", None),
    ("start a server", "POST", "/users/alice/server", {"profile": "debug-1c"}),
    ("read tokens", "GET", "/users/alice/tokens", None),
    ("create a token", "POST", "/users/alice/tokens", {"note": "culler"}),
    ("make an admin", "PATCH", "/users/alice", {"admin": True}),
    ("create a user", "POST", "/users/hpcgw-nobody", None),
    ("delete a user", "DELETE", "/users/hpcgw-nobody", None),
    ("list services", "GET", "/services", None),
    ("read the proxy", "GET", "/proxy", None),
]:
    out["codes"][name] = call(method, path, body)[0]
status, users = call("GET", "/users?state=ready")
out["server_keys"] = sorted({key for user in users or [] for server in (user.get("servers") or {}).values()
                             for key in server})
print(json.dumps(out))
""" % {"env_file": ENV_FILE}


@pytest.fixture()
def culler_env(gateway: Host) -> Iterator[str]:
    """The managed culler's token and URL in a root-only env file; removed afterwards."""
    try:
        copied = json.loads(gateway.check_output("python3 - <<'EOF'\n" + COPY_TOKEN + "\nEOF").splitlines()[-1])
        assert copied["found"], f"no process of the {SERVICE} service: is jupyterhub_idle_culler_enabled on?"
        yield ENV_FILE
    finally:
        gateway.run(f"rm -f {ENV_FILE}")


def test_the_culler_runs_as_a_service_with_its_settings(gateway: Host) -> None:
    command = gateway.check_output("pgrep -u jupyterhub -a -f jupyterhub_idle_culler")
    assert f"{VENV_PYTHON} -m jupyterhub_idle_culler" in command, command
    assert "--timeout=3600" in command and "--cull-every=300" in command and "--max-age=0" in command, command
    assert "--cull-users" not in command


def test_the_culler_token_can_do_no_more_than_its_role(gateway: Host, culler_env: str) -> None:
    out = json.loads(gateway.check_output("python3 - <<'EOF'\n" + PROBE + "\nEOF").splitlines()[-1])
    assert out["me_status"] == 200, out
    assert (out["me"]["kind"], out["me"]["name"], out["me"]["admin"]) == ("service", SERVICE, False), out
    assert set(out["me"]["scopes"]) == ROLE_SCOPES, out["me"]["scopes"]
    codes = out["codes"]
    assert codes.pop("list users") == 200, codes
    assert codes and all(code == 403 for code in codes.values()), codes
    # Server models without their state (the job ids are admin:server_state).
    assert "state" not in out["server_keys"], out["server_keys"]


def _start_test_culler(gateway: Host) -> None:
    gateway.run(f"systemctl stop {UNIT}; systemctl reset-failed {UNIT}")  # a run that was interrupted
    gateway.check_output(
        f"systemd-run --unit {UNIT} --uid jupyterhub --gid jupyterhub -p EnvironmentFile={ENV_FILE} "
        f"{VENV_PYTHON} -m jupyterhub_idle_culler --timeout={TEST_TIMEOUT} --cull-every={TEST_INTERVAL}")


def test_an_idle_server_is_culled_with_its_job_and_a_working_one_is_kept(
    client: Callable[..., dict[str, Any]], gateway: Host, culler_env: str, quiet: None
) -> None:
    began = gateway.check_output("date +%s.%N").strip()
    idle = client("start", "alice", PRESET)
    assert idle.get("ready") is True, idle
    busy = client("start", "bob", PRESET)
    assert busy.get("ready") is True, busy
    (idle_job, _, _, _), = user_jobs(gateway, "alice")
    (busy_job, _, _, _), = user_jobs(gateway, "bob")
    try:
        kernel = client("kernel", "bob").get("kernel_id")
        assert kernel, "no kernel on bob's server"
        _start_test_culler(gateway)
        started = time.monotonic()
        worked: list[dict[str, Any]] = []

        def alice_culled() -> bool:
            # bob's kernel works (code over the websocket through Apache and the proxy) all along.
            worked.append(client("run-in", "bob", kernel, "print(sum(range(10**6)))"))
            return client("status", "alice").get("server") == {}

        assert wait_until(alice_culled, TEST_TIMEOUT + 120, interval=TEST_INTERVAL / 2), \
            gateway.check_output(f"journalctl -u {UNIT} --no-pager -o cat | tail -20")
        took = time.monotonic() - started
        failed = [{k: run.get(k) for k in ("ws_status", "stdout", "reply", "oauth_status", "error")}
                  for run in worked if run.get("stdout", "").split() != ["499999500000"]]
        assert not failed, (len(worked), failed)
        # The idle server's batch job is cancelled: nothing is left in the queue.
        assert wait_job_gone(gateway, idle_job), f"job {idle_job} of the culled server is still queued"
        assert user_jobs(gateway, "alice") == []
        # Its user's next pages say why.
        status = client("status", "alice")
        for notice in (status["notice"], status["spawn_notice"]):
            assert f"batch job {idle_job}" in notice, status
            assert "idle by the idle culler" in notice and "stopped after" in notice, status
        # The working server is kept, its job and its kernel's state too.
        assert client("status", "bob")["server"].get("ready") is True
        assert [job[0] for job in user_jobs(gateway, "bob")] == [busy_job]
        again = client("run-in", "bob", kernel, "print('still here')")
        assert again.get("stdout", "").strip() == "still here", again
        culler_log = gateway.check_output(f"journalctl -u {UNIT} --no-pager -o cat")
        assert "Culling server alice" in culler_log and "Culling server bob" not in culler_log, culler_log
        hub_log = gateway.check_output(f"journalctl -u jupyterhub --no-pager -o cat --since @{began}")
        assert "Idle culler stops alice" in hub_log, hub_log[-3000:]
        print(f"idle server culled {took:.0f} s after the test culler started (timeout {TEST_TIMEOUT} s)")
    finally:
        gateway.run(f"systemctl stop {UNIT}")
        gateway.run(f"systemctl reset-failed {UNIT}")
        for user in ("alice", "bob"):
            if client("status", user).get("server"):
                assert client("stop", user).get("stopped") is True
    # A new start clears the notice.
    assert client("start", "alice", PRESET).get("ready") is True
    assert client("status", "alice").get("notice") == ""
    assert client("stop", "alice").get("stopped") is True
