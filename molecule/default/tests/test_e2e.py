"""The whole path: Apache (basic SSO) -> proxy -> hub -> local spawn -> kernel."""

from __future__ import annotations

from typing import Any, Callable

from conftest import BASE, PASSWORDS


def test_login_spawn_kernel_websocket_stop(gwclient: Callable[..., dict[str, Any]]) -> None:
    result = gwclient("e2e", BASE, "alice", PASSWORDS["alice"])
    assert result.get("name") == "alice", result
    assert result.get("hub_cookies_secure") is True, result
    assert result.get("ready") is True, result
    assert result.get("kernel_status") == 201, result
    assert "101" in result.get("ws_status", ""), result
    assert result.get("reply") == "ok", result
    # the code ran in a kernel owned by alice, not the hub's account
    assert result.get("stdout", "").split() == ["42", "alice"], result
    assert result.get("stopped") is True, result
