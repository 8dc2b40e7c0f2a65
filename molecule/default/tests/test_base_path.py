"""The hub under a base path (/jupyter): what is at "/" and outside the
prefix, and which headers really reach the backends past Apache and the
proxy (a header echo probe routed into the proxy for the test)."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from conftest import GATEWAY, ORIGIN, PASSWORDS, PREFIX, header_echo_probe, spellings, wait_until

PROBE_PORT = 18999
USER_PROBE = f"{PREFIX}/user/hpcgw-probe"
PROBE = header_echo_probe(PROBE_PORT)


def _proxy_api(gateway: Any, method: str, route: str, target: str = "") -> None:
    data = f"-d '{json.dumps({'target': target})}'" if target else ""
    with gateway.sudo():
        # the token is read from the env file inside the shell, never put on a command line
        gateway.check_output(
            "set -a; . /etc/jupyterhub/secrets/proxy.env; "
            f"curl -sf -X {method} -H \"Authorization: token $CONFIGPROXY_AUTH_TOKEN\" {data} "
            f"http://127.0.0.1:8001/api/routes{route}")


@pytest.fixture(scope="module")
def probe(gateway: Any) -> Iterator[None]:
    with gateway.sudo():
        gateway.check_output(f"cat > /tmp/hpcgw-probe.py <<'EOF'\n{PROBE}\nEOF")
        gateway.check_output("systemd-run --unit=hpcgw-probe python3 /tmp/hpcgw-probe.py")
    try:
        assert wait_until(lambda: gateway.run(f"curl -sf -o /dev/null http://127.0.0.1:{PROBE_PORT}/").rc == 0,
                          15, interval=0.5), "the probe did not start"
        _proxy_api(gateway, "POST", USER_PROBE, f"http://127.0.0.1:{PROBE_PORT}")
        yield
    finally:
        _proxy_api(gateway, "DELETE", USER_PROBE)
        with gateway.sudo():
            gateway.run("systemctl stop hpcgw-probe; rm -f /tmp/hpcgw-probe.py")


def _seen(outside: Any, user: str, path: str, *headers: str) -> dict[str, Any]:
    """What the probe received for a request through Apache as `user`."""
    args = " ".join(f"-H '{h}'" for h in headers)
    out = outside.check_output(f"curl -sk -u {user}:{PASSWORDS[user]} {args} {ORIGIN}{path}")
    return json.loads(out)


def _values(seen: dict[str, Any], name: str) -> list[str]:
    wanted = name.lower().replace("_", "-")
    return [v for k, v in seen["headers"] if k.lower().replace("_", "-") == wanted]


def test_root_redirects_to_the_hub(outside: Any) -> None:
    for path in ("/", PREFIX):
        out = outside.check_output(f"curl -sk -D - -o /dev/null {ORIGIN}{path}")
        assert out.split()[1] == "302", out
        assert f"location: https://{GATEWAY}{PREFIX}/\r" in out.lower(), out


@pytest.mark.parametrize("path", ["/hub/login", "/hub/api/user", "/user/alice/", "/index.html", "/jupyterx/"])
def test_outside_the_prefix_is_404(outside: Any, path: str) -> None:
    out = outside.check_output(f"curl -sk -D - -u alice:{PASSWORDS['alice']} -H 'X-Remote-User: bob' "
                            f"-H 'X-Gateway-Secret: guess' {ORIGIN}{path}")
    assert out.split()[1] == "404", out
    assert "jupyterhub" not in out.lower() and "set-cookie" not in out.lower(), out


def test_prefix_requires_sso(outside: Any) -> None:
    out = outside.check_output(f"curl -sk -o /dev/null -w '%{{http_code}}' {ORIGIN}{PREFIX}/hub/login")
    assert out == "401"


def test_probe_sees_only_apaches_identity(outside: Any, probe: None) -> None:
    forged = ([f"{h}: bob" for h in spellings("X-Remote-User")]
              + [f"{h}: gw-admins" for h in spellings("X-Remote-User-Groups")]
              + [f"{h}: guess" for h in spellings("X-Gateway-Secret")])
    seen = _seen(outside, "alice", f"{USER_PROBE}/x", *forged)
    assert seen["path"] == f"{USER_PROBE}/x", seen
    assert _values(seen, "X-Remote-User") == ["alice"], seen
    assert _values(seen, "X-Remote-User-Groups") == [], seen  # alice has no groups
    assert _values(seen, "X-Gateway-Secret") == [], seen      # never to a user's server
    assert _values(seen, "Authorization") == [], seen


def test_probe_sees_the_users_groups_only(outside: Any, probe: None) -> None:
    forged = [f"{h}: gw-admins" for h in spellings("X-Remote-User-Groups")]
    seen = _seen(outside, "erin", f"{USER_PROBE}/x", *forged)
    assert _values(seen, "X-Remote-User") == ["erin"], seen
    assert _values(seen, "X-Remote-User-Groups") == ["physics;hpc-users"], seen
    seen = _seen(outside, "frank", f"{USER_PROBE}/x")
    assert _values(seen, "X-Remote-User-Groups") == ["gw-admins"], seen


def test_secret_not_sent_to_user_servers(outside: Any, probe: None) -> None:
    # a single-user server path that looks like the hub's login
    seen = _seen(outside, "alice", f"{USER_PROBE}/hub/login")
    assert _values(seen, "X-Gateway-Secret") == [], seen


def test_secret_sent_to_base_hub_login(gateway: Any, outside: Any, probe: None) -> None:
    # positive control: the hub's login route pointed at the probe for a moment
    route = f"{PREFIX}/hub/login"
    _proxy_api(gateway, "POST", route, f"http://127.0.0.1:{PROBE_PORT}")
    try:
        seen = _seen(outside, "alice", f"{route}?next=x", "X-Gateway-Secret: guess", "X_Gateway_Secret: guess")
    finally:
        _proxy_api(gateway, "DELETE", route)
    assert _values(seen, "X-Gateway-Secret") == ["<secret>"], seen
    assert _values(seen, "X-Remote-User") == ["alice"], seen


SSO_COOKIES = ["mod_auth_openidc_session=oidc-secret", "mod_auth_openidc_session_chunks=2",
               "mod_auth_openidc_session_0=oidc-part", "mellon-cookie=mellon-secret",
               "_shibsession_64656661756c74=shib-secret", "_shibstate_1=shib-state"]


@pytest.mark.parametrize("position", ["first", "middle", "last", "alone"])
def test_sso_session_cookies_never_reach_a_users_server(outside: Any, probe: None, position: str) -> None:
    """carol opens a link to a server whose owner logs every header: the SSO
    modules' session cookies (every mode's, wherever they stand in the
    header) stay in Apache; the hub's and the server's own cookies pass."""
    own = ["jupyterhub-user-hpcgw-probe=own", "_xsrf=x1"]
    if position == "alone":
        cookies = SSO_COOKIES
    else:
        at = {"first": 0, "middle": 1, "last": 2}[position]
        cookies = own[:at] + SSO_COOKIES + own[at:]
    seen = _seen(outside, "carol", f"{USER_PROBE}/x", "Cookie: " + "; ".join(cookies))
    sent = "; ".join(_values(seen, "Cookie"))
    for secret in ("oidc-secret", "oidc-part", "mellon-secret", "shib-secret", "shib-state", "_chunks"):
        assert secret not in sent, seen
    if position == "alone":
        assert _values(seen, "Cookie") == [], seen
    else:
        assert sorted(sent.split("; ")) == sorted(own), seen
