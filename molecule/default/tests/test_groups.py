"""Groups header end to end: Apache sends the basic users' groups (TEST
ONLY) for the authenticated user only; the hub admits allowed groups, makes
admin groups admin, and a gwclient-sent groups header grants nothing."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from conftest import BASE, PASSWORDS, spellings

GROUPS_HEADER = "X-Remote-User-Groups"


def test_allowed_group_member_logs_in(gwclient: Callable[..., dict[str, Any]]) -> None:
    # erin is in no allowed list; her group hpc-users lets her in
    result = gwclient("whoami", BASE, "erin", PASSWORDS["erin"])
    assert result.get("login_status") == 200, result
    assert result.get("name") == "erin" and result.get("admin") is False, result
    # manage_groups: the hub's groups are exactly what Apache sent
    assert sorted(result.get("groups") or []) == ["hpc-users", "physics"], result


def test_user_in_neither_is_refused(gwclient: Callable[..., dict[str, Any]]) -> None:
    # dave: not in allowed_users, his only group (physics) is not allowed
    result = gwclient("whoami", BASE, "dave", PASSWORDS["dave"])
    assert result.get("login_status") == 403, result
    assert "name" not in result, result


def test_admin_group_member_is_admin(gwclient: Callable[..., dict[str, Any]]) -> None:
    # frank: only in gw-admins -> allowed and an admin (an operator: the hub's
    # operator group, not JupyterHub's admin flag), checked on the REST API
    # and on the admin page, as frank
    result = gwclient("page", BASE, "frank", PASSWORDS["frank"], "/hub/admin")
    assert result.get("name") == "frank" and result.get("admin") is False, result
    assert sorted(result.get("groups", [])) == ["gw-admins", "hpcgw-operators"], result
    assert result.get("page_status") == 200, result


def test_allowed_group_member_gets_no_admin_page(gwclient: Callable[..., dict[str, Any]]) -> None:
    result = gwclient("page", BASE, "erin", PASSWORDS["erin"], "/hub/admin")
    assert result.get("name") == "erin" and result.get("admin") is False, result
    assert result.get("page_status") == 403, result


@pytest.mark.parametrize("header", spellings(GROUPS_HEADER, cases=False))
def test_forged_groups_do_not_let_in(gwclient: Callable[..., dict[str, Any]], header: str) -> None:
    result = gwclient("whoami", BASE, "dave", PASSWORDS["dave"], f"{header}=hpc-users;gw-admins")
    assert result.get("login_status") == 403, result
    assert "name" not in result, result


@pytest.mark.parametrize("header", spellings(GROUPS_HEADER, cases=False))
def test_forged_groups_do_not_make_admin(gwclient: Callable[..., dict[str, Any]], header: str) -> None:
    result = gwclient("page", BASE, "erin", PASSWORDS["erin"], "/hub/admin", f"{header}=gw-admins")
    assert result.get("name") == "erin" and result.get("admin") is False, result
    assert sorted(result.get("groups") or []) == ["hpc-users", "physics"], result
    assert result.get("page_status") == 403, result


def test_all_spellings_at_once_change_nothing(gwclient: Callable[..., dict[str, Any]]) -> None:
    forged = [f"{h}=gw-admins" for h in spellings(GROUPS_HEADER, cases=False)]
    result = gwclient("whoami", BASE, "dave", PASSWORDS["dave"], *forged)
    assert result.get("login_status") == 403, result
    result = gwclient("whoami", BASE, "erin", PASSWORDS["erin"], *forged)
    assert result.get("admin") is False and "gw-admins" not in (result.get("groups") or []), result
