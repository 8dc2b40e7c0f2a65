"""allowed_users, blocked_users, admin users and normalization, via Apache."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from conftest import BASE, PASSWORDS


def test_allowed_user_logs_in(client: Callable[..., dict[str, Any]]) -> None:
    result = client("whoami", BASE, "carol", PASSWORDS["carol"])
    assert result.get("name") == "carol" and result.get("admin") is False, result


def test_admin_user_and_normalization(client: Callable[..., dict[str, Any]]) -> None:
    # "Bob@EXAMPLE.ORG" -> realm stripped, lowercased -> bob, an admin
    result = client("whoami", BASE, "Bob@EXAMPLE.ORG", PASSWORDS["Bob@EXAMPLE.ORG"])
    assert result.get("name") == "bob" and result.get("admin") is True, result


@pytest.mark.parametrize("user", ["dave", "mallory", "root", "daemon", "svcacct"])
def test_refused(client: Callable[..., dict[str, Any]], user: str) -> None:
    # dave: not allowed; mallory: allowed but blocked; root/daemon: blocked
    # system accounts; svcacct: allowed but a system uid (< 1000)
    result = client("whoami", BASE, user, PASSWORDS[user])
    assert result.get("login_status") == 403, result
    assert "name" not in result, result
