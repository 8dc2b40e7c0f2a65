"""Admins are operators (jupyterhub_admin_rights: operator, issue 9): they
see and steer every server but cannot enter one or act in a user's name.

JupyterHub's own admin role holds access:servers and tokens: an admin (or
whoever stole an admin's session) could open alice's JupyterLab, or make a
token as alice, and run code as alice on the cluster. The demo's admins (bob
by name, frank through the gw-admins group) get the operator role instead.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import GATEWAY, PREFIX, wait_no_jobs

PRESET = json.dumps({"profile": "debug-1c"})
OPERATOR_GROUP = "hpcgw-operators"
OPERATORS = ("bob", "frank")


@pytest.mark.parametrize("user", OPERATORS)
def test_an_admin_is_an_operator_not_a_hub_admin(client: Callable[..., dict[str, Any]], user: str) -> None:
    me = client("call", user, json.dumps([["GET", "/hub/api/user", None]]))
    assert me.get("name") == user and me.get("admin") is False, me
    assert OPERATOR_GROUP in me.get("groups", []), me
    body = me["calls"][0]["body"]
    assert "admin" not in body.get("roles", []), body
    # The request's own scopes (its session's): the admin page, but no way
    # into anybody else's server or name.
    scopes = set(body.get("scopes", []))
    assert "admin-ui" in scopes and "admin:servers" in scopes, scopes
    assert not {"access:servers", "tokens", "admin:users", "admin:auth_state", "shares"} & scopes, scopes
    assert not [s for s in scopes if s.startswith(("access:servers!user=", "tokens!user=")) and not s.endswith("=" + user)], scopes


def test_a_non_admin_is_no_operator(client: Callable[..., dict[str, Any]]) -> None:
    me = client("call", "carol", json.dumps([["GET", "/hub/admin", None]]))
    assert me.get("admin") is False and OPERATOR_GROUP not in me.get("groups", []), me


def test_an_operator_steers_alices_server_but_never_enters_it(
        client: Callable[..., dict[str, Any]], gateway: Host, quiet: None) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    try:
        # Her JupyterLab, her server's API, a web app behind her server: the
        # hub refuses the operator at its OAuth step (no consent page to click).
        for path in ("/user/alice/lab", "/user/alice/api/contents", "/user/alice/proxy/8888/"):
            seen = client("fetch", "bob", path)
            assert seen["fetch_status"] == 403, (path, seen["fetch_status"], seen["fetch_path"])
            assert "Authorize access" not in seen["body"], path
        out = client("call", "bob", json.dumps([
            ["POST", "/hub/api/users/alice/tokens", {"note": "as alice"}],   # act in her name
            ["PATCH", "/hub/api/users/alice", {"admin": True}],               # make an admin
            ["PATCH", "/hub/api/users/bob", {"admin": True}],                 # make himself one
            ["POST", "/hub/api/users", {"usernames": ["eve"]}],               # create users
            ["POST", "/hub/api/users/alice/shares/alice/", {"user": "bob"}],  # share her server with him
            ["GET", "/hub/api/proxy", None],                                  # the proxy's routing table
            ["GET", "/hub/api/users/alice", None],                            # read: allowed
            ["GET", "/hub/admin", None],                                      # the admin page: allowed
        ]))
        codes = {(c["method"], c["path"]): c["status"] for c in out["calls"]}
        assert codes.pop(("GET", "/hub/api/users/alice")) == 200, out["calls"]
        assert codes.pop(("GET", "/hub/admin")) == 200, out["calls"]
        assert all(code in (403, 404) for code in codes.values()), codes
        # Steering is allowed: the operator stops her server; her job ends.
        stopped = client("call", "bob", json.dumps([["DELETE", "/hub/api/users/alice/server", None]]))
        assert stopped["calls"][0]["status"] in (202, 204), stopped["calls"]
        assert wait_no_jobs(gateway, "alice") == []
    finally:
        client("stop", "alice")


def test_the_operator_group_cannot_be_claimed_in_the_groups_header(gateway: Host) -> None:
    """Straight at the hub with the shared secret (past Apache, which removes
    the header): erin claims the operator group and gets nothing from it."""
    login = f"http://{GATEWAY}:8081{PREFIX}/hub/login"
    me = f"http://{GATEWAY}:8081{PREFIX}/hub/api/user"
    with gateway.sudo():
        out = gateway.run(
            "jar=$(mktemp); printf 'X-Gateway-Secret: %s\\n' \"$(cat /etc/jupyterhub/secrets/gateway_secret)\" | "
            f"curl -s -o /dev/null -c $jar -H @- -H 'X-Remote-User: erin' "
            f"-H 'X-Remote-User-Groups: {OPERATOR_GROUP};hpc-users' {login} && curl -s -b $jar {me}; rm -f $jar")
    assert out.rc == 0, out.stderr
    model = json.loads(out.stdout)
    assert model["name"] == "erin" and model["admin"] is False, model
    assert OPERATOR_GROUP not in model["groups"] and "hpcgw-operator" not in model.get("roles", []), model
