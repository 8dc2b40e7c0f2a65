"""allowed_users, blocked_users, admin users and normalization, via Apache."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from conftest import BASE, PASSWORDS


def test_allowed_user_logs_in(gwclient: Callable[..., dict[str, Any]]) -> None:
    result = gwclient("whoami", BASE, "carol", PASSWORDS["carol"])
    assert result.get("name") == "carol" and result.get("admin") is False, result


def test_admin_user_and_normalization(gwclient: Callable[..., dict[str, Any]]) -> None:
    # "Bob@EXAMPLE.ORG" -> realm stripped, lowercased -> bob, an admin: an
    # operator (jupyterhub_admin_rights: operator), not JupyterHub's admin
    result = gwclient("whoami", BASE, "Bob@EXAMPLE.ORG", PASSWORDS["Bob@EXAMPLE.ORG"])
    assert result.get("name") == "bob" and result.get("admin") is False, result
    assert "hpcgw-operators" in result.get("groups", []), result


@pytest.mark.parametrize("user", ["dave", "mallory", "root", "daemon", "svcacct"])
def test_refused(gwclient: Callable[..., dict[str, Any]], user: str) -> None:
    # dave: not allowed; mallory: allowed but blocked; root/daemon: blocked
    # system accounts; svcacct: allowed but a system uid (< 1000)
    result = gwclient("whoami", BASE, user, PASSWORDS[user])
    assert result.get("login_status") == 403, result
    assert "name" not in result, result


def test_other_realm_is_refused(gwclient: Callable[..., dict[str, Any]], hub_log: Callable[..., str]) -> None:
    # alice@OTHER.ORG: a valid SSO login whose realm is not in
    # jupyterhub_auth_allowed_realms (EXAMPLE.ORG). With the realm stripped
    # she would be the local alice, who is allowed: the realm refuses her.
    result = gwclient("whoami", BASE, "alice@OTHER.ORG", PASSWORDS["alice@OTHER.ORG"])
    assert result.get("login_status") == 403, result
    assert "name" not in result, result
    reason = ": realm 'OTHER.ORG' is not in the allowed realms"
    refusals = [line for line in hub_log(reason).splitlines() if "Header login refused" in line]
    assert any(line.endswith(reason) for line in refusals), refusals
