"""Forged identity headers never log anyone in."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from conftest import BASE, GATEWAY, PASSWORDS, PREFIX

SPELLINGS = ["X-Remote-User", "x-remote-user", "X_Remote_User", "x_remote_user", "X-Remote_User", "X_REMOTE-USER"]


@pytest.mark.parametrize("header", SPELLINGS)
def test_through_apache_without_sso(outside: Any, header: str) -> None:
    out = outside.run(f"curl -sk -o /dev/null -w '%{{http_code}}' -H '{header}: bob' "
                   f"-H 'X-Gateway-Secret: guess' {BASE}/hub/login")
    assert out.stdout == "401"


@pytest.mark.parametrize("header", SPELLINGS)
def test_through_apache_with_other_credentials(gwclient: Callable[..., dict[str, Any]], header: str) -> None:
    # alice (allowed, not admin) claims to be bob (admin) and smuggles groups/secret
    result = gwclient("whoami", BASE, "alice", PASSWORDS["alice"], f"{header}=bob",
                    "X-Remote-User-Groups=gw-admins", "X_Remote_User_Groups=hpc-users",
                    "X-Gateway-Secret=guess", "X_Gateway_Secret=guess")
    assert result.get("name") == "alice" and result.get("admin") is False, result
    assert result.get("groups") == [], result


@pytest.mark.parametrize("header", SPELLINGS)
def test_straight_to_hub_port_from_node(outside: Any, header: str) -> None:
    out = outside.run(f"curl -s -D - -o /dev/null -H '{header}: bob' -H 'X-Gateway-Secret: guess' "
                   f"-H 'X-Remote-User-Groups: gw-admins' http://{GATEWAY}:8081{PREFIX}/hub/login")
    assert out.rc == 0, out.stderr
    status = out.stdout.split()[1]
    assert status == "403", out.stdout
    assert "jupyterhub-session-id" not in out.stdout.lower(), out.stdout
    assert "jupyterhub-hub-login" not in out.stdout.lower(), out.stdout


# The hub's login straight at its port (it listens on the gateway's cluster
# address), from the gateway itself, past Apache: only the shared secret makes
# the identity header count there.
HUB_LOGIN = f"http://{GATEWAY}:8081{PREFIX}/hub/login"


def _login_with_the_secret(gateway: Any, *users: str) -> str:
    """Response headers of a login at the hub port with the right shared
    secret and one X-Remote-User line per user. The secret is read by the
    shell inside the container and reaches curl on stdin (-H @-): it is on no
    command line and in no output."""
    lines = " ".join(f"-H 'X-Remote-User: {user}'" for user in users)
    with gateway.sudo():
        out = gateway.run("printf 'X-Gateway-Secret: %s\\n' \"$(cat /etc/jupyterhub/secrets/gateway_secret)\" | "
                          f"curl -s -D - -o /dev/null -H @- {lines} {HUB_LOGIN}")
    assert out.rc == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("users", [("alice", "carol"), ("alice", "alice")], ids=["alice-carol", "alice-twice"])
def test_two_identity_lines_with_the_secret_are_refused(gateway: Any, hub_log: Callable[..., str],
                                                        users: tuple[str, str]) -> None:
    # each header line counts (tornado joins repeated lines into "alice,carol"
    # for a plain lookup): two lines are ambiguous, even with the same name
    out = _login_with_the_secret(gateway, *users)
    assert out.split()[1] == "403", out
    assert "jupyterhub-hub-login" not in out.lower(), out
    address = gateway.check_output(f"getent ahostsv4 {GATEWAY}").split()[0]
    reason = f"from {address}: missing or ambiguous identity header"
    refusals = [line for line in hub_log(reason).splitlines() if "Header login refused" in line]
    assert any(line.endswith(reason) for line in refusals), refusals


def test_one_identity_line_with_the_secret_logs_in(gateway: Any) -> None:
    # positive control of the above: the same request with a single line
    out = _login_with_the_secret(gateway, "alice")
    assert out.split()[1] == "302", out
    assert "set-cookie: jupyterhub-hub-login=" in out.lower(), out


def test_hub_port_reachable_from_node(outside: Any) -> None:
    # compute nodes must reach the hub (health endpoint answers)
    out = outside.run(f"curl -s -o /dev/null -w '%{{http_code}}' http://{GATEWAY}:8081{PREFIX}/hub/health")
    assert out.stdout == "200"


def test_proxy_api_requires_token(gateway: Any, outside: Any) -> None:
    out = gateway.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8001/api/routes")
    assert out.stdout == "403"
    out = outside.run(f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://{GATEWAY}:8001/api/routes")
    assert out.stdout == "000"  # not reachable from outside at all


def test_only_apache_and_hub_listen_outside_loopback(gateway: Any) -> None:
    hub_uid = gateway.user("jupyterhub").uid
    outside = []
    for line in gateway.check_output("ss -Htlnpe").splitlines():
        addr = line.split()[3].rsplit(":", 1)[0].strip("[]")
        if not (addr.startswith("127.") or addr == "::1"):
            outside.append(line)
    ports = {line.split()[3].rsplit(":", 1)[1]: line for line in outside}
    assert set(ports) <= {"80", "443", "8081"}, outside
    for port in ("80", "443"):
        assert "apache2" in ports[port], outside
    # the hub's own port (compute nodes call back there), owned by the hub account
    assert f"uid:{hub_uid} " in ports["8081"] + " ", outside
