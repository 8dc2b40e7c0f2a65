"""Web apps from the job through the gateway (jupyter-server-proxy, role notebook_env).

alice starts an HTTP server inside her job on the compute node, as a user
starts a Dask dashboard; it is reachable at /jupyter/user/alice/proxy/<port>/
through Apache with the hub's login: alice gets its content, another
signed-in user (carol; bob, the hub's admin, too) and a client without a
login never do, and alice's server forwards to nothing but the node's
loopback (it is no open proxy into the cluster's network).
"""

from __future__ import annotations

import json
import secrets
import shlex
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import BASE, COMPUTE

PRESET = json.dumps({"profile": "debug-1c"})
VERSION = "4.6.0"  # notebook_env_server_proxy_version's default

# Run in alice's kernel: a file with the token, served by python's own HTTP
# server on the node's loopback, in its own session (it outlives the kernel,
# not the job: the scheduler ends every process of the job).
APP = """
import os, socket, subprocess, sys, tempfile, time
root = tempfile.mkdtemp(prefix="hpcgw-proxy-test-")
with open(os.path.join(root, "index.html"), "w") as handle:
    handle.write("{token}")
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", root],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        break
    except OSError:
        time.sleep(0.1)
print("PORT", port)
"""


@pytest.mark.parametrize("compute", COMPUTE)
def test_the_proxy_is_installed_on_the_nodes(node: Callable[[str], Host], compute: str) -> None:
    host = node(compute)
    show = host.check_output("/opt/hpcgw/notebook/bin/pip show jupyter-server-proxy")
    assert f"Version: {VERSION}" in show, show
    # The server extension is enabled in the prefix (the wheel's own file).
    enabled = host.file("/opt/hpcgw/notebook/etc/jupyter/jupyter_server_config.d/jupyter-server-proxy.json")
    assert json.loads(enabled.content_string)["ServerApp"]["jpserver_extensions"]["jupyter_server_proxy"] is True


def test_a_web_app_in_the_job_reaches_its_owner_only(
    client: Callable[..., dict[str, Any]], controller: Host, quiet: None
) -> None:
    token = "hpcgw-app-" + secrets.token_hex(12)
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    try:
        ran = client("run", "alice", APP.format(token=token))
        assert ran.get("reply") == "ok", ran
        port = int(ran["stdout"].split()[-1])
        path = f"/user/alice/proxy/{port}/"

        # The owner: the app's content, through Apache, the proxy and her server.
        owner = client("fetch", "alice", path)
        assert owner["fetch_status"] == 200, owner
        assert token in owner["body"], owner

        # Another signed-in user, and the hub's admin: refused by the hub, never the content.
        for other in ("carol", "bob"):
            seen = client("fetch", other, path)
            assert seen.get("name") == other, seen
            assert seen["fetch_status"] in (401, 403), seen
            assert token not in seen["body"], seen

        # No login at all: Apache's login, never the content (redirects followed).
        anonymous = controller.run(
            "curl -sk -L --max-redirs 10 -o /tmp/hpcgw-proxy-anon -w '%{http_code}' "
            + shlex.quote(f"{BASE}{path}") + "; echo; cat /tmp/hpcgw-proxy-anon; rm -f /tmp/hpcgw-proxy-anon")
        code, _, body = anonymous.stdout.partition("\n")
        assert code.strip() in ("401", "403"), anonymous.stdout
        assert token not in body, anonymous.stdout

        # alice's server forwards to the node's loopback only: not to the
        # hub's internal port, nor to another node.
        for target in ("hpcgw-gw:8081/jupyter/hub/health", f"{COMPUTE[1]}:{port}/"):
            hop = client("fetch", "alice", f"/user/alice/proxy/{target}")
            assert hop["fetch_status"] == 403, hop
            assert token not in hop["body"], hop
    finally:
        assert client("stop", "alice").get("stopped") is True
