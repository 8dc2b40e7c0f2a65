"""TLS versions, redirect, HSTS, TRACE, catch-all, minimal Server header."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from conftest import BASE, GATEWAY, PASSWORDS, PREFIX


@pytest.mark.parametrize(("version", "accepted"), [("1.0", False), ("1.1", False), ("1.2", True), ("1.3", True)])
def test_tls_versions(gwclient: Callable[..., dict[str, Any]], version: str, accepted: bool) -> None:
    result = gwclient("tls", GATEWAY, version)
    assert result["handshake"] is accepted, result


def test_http_redirects_to_https(outside: Any) -> None:
    out = outside.check_output(f"curl -s -D - -o /dev/null http://{GATEWAY}{PREFIX}/hub/login")
    assert out.split()[1] == "301"
    assert f"location: https://{GATEWAY}{PREFIX}/hub/login" in out.lower()


def test_hsts_and_server_header(outside: Any) -> None:
    out = outside.check_output(f"curl -sk -D - -o /dev/null -u alice:{PASSWORDS['alice']} {BASE}/hub/health")
    assert "strict-transport-security: max-age=63072000" in out.lower()
    # no backend banner or version leaks through the proxy
    servers = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.lower().startswith("server:")]
    assert servers in ([], ["Apache"]), out
    assert "x-jupyterhub-version" not in out.lower()


def test_trace_refused(outside: Any) -> None:
    out = outside.check_output(f"curl -sk -o /dev/null -w '%{{http_code}}' -X TRACE -u alice:{PASSWORDS['alice']} {BASE}/")
    assert out == "405"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_unknown_host_gets_catch_all(outside: Any, scheme: str) -> None:
    out = outside.check_output(f"curl -sk -D - -H 'Host: evil.example' -u alice:{PASSWORDS['alice']} {scheme}://{GATEWAY}{PREFIX}/hub/login")
    assert out.split()[1] == "403", out
    assert "jupyterhub" not in out.lower()
