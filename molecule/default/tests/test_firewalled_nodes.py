"""Firewalled compute nodes: a cluster's port_range (role spawn_profiles).

The demo's SSH cluster (vialogin) has port_range "9000-9019", as at a site
whose firewall opens only those ports of the nodes to the gateway: the
server listens inside it and the hub connects there; a job's own token
cannot make the hub take a port outside it; and with every port of the
range taken on both nodes, the spawn fails within seconds with a message
saying so, and no job is left.
"""

from __future__ import annotations

import json
import re
import shlex
import urllib.parse
from typing import Any, Callable

from testinfra.host import Host

from conftest import COMPUTE, user_jobs, wait_no_jobs, wait_until

PRESET = json.dumps({"profile": "login-debug"})  # cluster vialogin
LOW, HIGH = 9000, 9019  # inventories/demo/group_vars/gateway/spawn_profiles.yml
FAIL_WITHIN_SECONDS = 45  # sbatch over SSH, the job's start, one report (http_timeout is 120 s)
HOLDER_UNIT = "hpcgw-test-port-holder"
READY = "/run/hpcgw-test-port-holder.ready"
# Listens on every port of the range it can get (and says how many), as
# other users' servers and apps would; at most 5 minutes.
HOLDER = f"""
import socket, time
held = []
for port in range({LOW}, {HIGH + 1}):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("0.0.0.0", port))
        sock.listen(1)
        held.append(sock)
    except OSError:
        sock.close()
with open("{READY}", "w") as handle:
    handle.write(str(len(held)))
time.sleep(300)
"""


def _server_env(compute: Host, user: str, name: str) -> str:
    """A variable of the environment of the user's single-user server process."""
    return compute.check_output(
        f"for p in $(pgrep -u {user} -f jupyterhub-singleuser); do "
        f"tr '\\0' '\\n' < /proc/$p/environ | sed -n 's/^{name}=//p'; done | head -1").strip()


def test_the_server_listens_inside_the_range(
    client: Callable[..., dict[str, Any]], gateway: Host, node: Callable[[str], Host],
    hub_log: Callable[..., str], quiet: None
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    try:
        (job_id, _, job_node, _), = user_jobs(gateway, "alice")
        compute = node(job_node)
        port = urllib.parse.urlsplit(_server_env(compute, "alice", "JUPYTERHUB_SERVICE_URL")).port
        assert port is not None and LOW <= port <= HIGH, port
        assert compute.check_output(f"ss -Hltn 'sport = :{port}'").strip(), f"nothing listens on {port}"
        # The hub connects there (its own log of the started server).
        answered = re.search(rf"Notebook server job {job_id} answers at \S+:(\d+)", hub_log(f"job {job_id} answers at"))
        assert answered and int(answered.group(1)) == port, answered

        # The job's own token cannot move the hub to a port outside the range.
        token = _server_env(compute, "alice", "JUPYTERHUB_API_TOKEN")
        assert len(token) >= 16
        for bad in (LOW - 1, HIGH + 1, 22):
            code = compute.check_output(
                "curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "
                f"-H 'Authorization: token {token}' --data-binary {shlex.quote(json.dumps({'port': bad}))} "
                "http://hpcgw-gw:8081/jupyter/hub/api/batchspawner")
            assert code == "400", (bad, code)
        ran = client("run", "alice", "print(6 * 7)")
        assert ran.get("stdout", "").split() == ["42"], ran
    finally:
        assert client("stop", "alice").get("stopped") is True


def test_a_full_range_fails_the_spawn_with_a_clear_message(
    client: Callable[..., dict[str, Any]], gateway: Host, node: Callable[[str], Host], quiet: None
) -> None:
    hosts = [node(name) for name in COMPUTE]
    try:
        for host in hosts:
            host.check_output(f"rm -f {READY} && cat > /run/{HOLDER_UNIT}.py <<'EOF'\n{HOLDER}\nEOF")
            host.check_output(f"systemd-run --unit {HOLDER_UNIT} --collect -p RuntimeMaxSec=300 "
                              f"/usr/bin/python3 /run/{HOLDER_UNIT}.py")
        for host in hosts:
            assert wait_until(lambda host=host: host.file(READY).exists, 20), "the port holder did not start"
            # Every port of the range listens (the holder's, or anything else's).
            listening = host.check_output(f"ss -Hltn '( sport >= :{LOW} and sport <= :{HIGH} )' | wc -l")
            assert int(listening) >= HIGH - LOW + 1, listening

        result = client("outcome", "alice", PRESET)

        assert result["api_status"] in (202, 502), result
        assert result["seconds"] < FAIL_WITHIN_SECONDS, result
        assert not result["server"], result
        if result["api_status"] >= 400:
            message = str((result.get("api_body") or {}).get("message", ""))
        else:
            events = result.get("progress") or []
            assert events and events[-1].get("failed") is True, result
            message = str(events[-1].get("message", ""))
        assert "no free port for the Jupyter server on hpcgw-c" in message, message
        assert f"range {LOW}-{HIGH}" in message, message
        assert "exit status 75" in message, message
        assert wait_no_jobs(gateway, "alice") == []
    finally:
        for host in hosts:
            host.run(f"systemctl stop {HOLDER_UNIT}; rm -f {READY} /run/{HOLDER_UNIT}.py")
    # The range free again: the next spawn works.
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    assert client("stop", "alice").get("stopped") is True
