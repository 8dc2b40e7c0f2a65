"""The proxy unit's restart notice: wait for the proxy's API, then the hub's hook."""

from __future__ import annotations

import urllib.request

import hpcgw_proxy_started as notice


class Calls:
    """A stand-in network: the API answers after `api_ready` tries; the hook answers `hook`."""

    def __init__(self, api_ready: int, hook: int) -> None:
        self.api_ready, self.hook = api_ready, hook
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> int:
        self.seen.append((request.get_method(), request.full_url, request.get_header("Authorization") or ""))
        if request.full_url.endswith("/api/routes"):
            return 200 if len(self.seen) > self.api_ready else 0
        return self.hook


def test_the_hook_is_called_once_the_proxy_answers() -> None:
    calls = Calls(api_ready=2, hook=200)
    said = notice.notify("http://127.0.0.1:8001", "http://127.0.0.1:8081/hub/api/hpcgw/proxy-started", "t0k",
                         opener=calls, sleep=lambda _: None)
    assert said == "the hub re-added the routes"
    assert [c[0] for c in calls.seen] == ["GET", "GET", "GET", "POST"]
    assert calls.seen[-1] == ("POST", "http://127.0.0.1:8081/hub/api/hpcgw/proxy-started", "token t0k")


def test_a_hub_that_is_down_is_reported_not_fatal() -> None:
    said = notice.notify("http://api", "http://hub/hook", "t", opener=Calls(0, 0), sleep=lambda _: None)
    assert "unreachable" in said and "re-adds routes when it starts" in said


def test_a_proxy_that_never_answers_stops_the_wait() -> None:
    said = notice.notify("http://api", "http://hub/hook", "t", seconds=0.0, opener=Calls(10**6, 200),
                         sleep=lambda _: None)
    assert said == "the proxy's API did not answer within 0 s"


def test_without_a_token_nothing_is_sent() -> None:
    assert notice.main(["x", "http://api", "http://hub/hook"], {}) == 0
    assert notice.main(["x"], {"CONFIGPROXY_AUTH_TOKEN": "t"}) == 2
