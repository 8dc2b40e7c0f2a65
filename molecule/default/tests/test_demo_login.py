"""The demo's login behaves like SSO: a login page once, then a session kept
on the gateway (the cookie is its key); the hub's logout ends that session
too, so a copy of the cookie is refused after it (issues 11 and 13).

From the host, on the demo's published port (loopback only), as a browser
would: no Basic credentials anywhere in this module.
"""

from __future__ import annotations

import base64
import http.cookiejar
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest

PORT = int(os.environ.get("HPCGW_DEMO_PORT", "8443"))
ORIGIN = f"https://localhost:{PORT}"
HUB = ORIGIN + "/jupyter/hub"
COOKIE = "hpcgw_demo_session"
CONTEXT = ssl.create_default_context()
CONTEXT.check_hostname = False
CONTEXT.verify_mode = ssl.CERT_NONE  # self-signed demo certificate


@dataclass
class Answer:
    status: int
    location: str
    body: str
    headers: dict[str, str]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Tab:
    """One browser tab: a cookie jar; redirects followed only when asked."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        cookies = urllib.request.HTTPCookieProcessor(self.jar)
        https = urllib.request.HTTPSHandler(context=CONTEXT)
        self.step = urllib.request.build_opener(https, cookies, NoRedirect())
        self.follow = urllib.request.build_opener(https, cookies)

    def open(self, url: str, data: dict[str, str] | None = None, follow: bool = False,
             headers: dict[str, str] | None = None) -> Answer:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body, headers=headers or {})
        try:
            with (self.follow if follow else self.step).open(request, timeout=30) as response:
                return Answer(response.status, response.headers.get("Location", ""),
                              response.read().decode(errors="replace"), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.headers.get("Location", ""), exc.read().decode(errors="replace"),
                          dict(exc.headers))

    def cookie(self, name: str) -> str:
        return next((c.value for c in self.jar if c.name == name and c.value), "")

    def login(self, user: str, password: str) -> Answer:
        return self.open(ORIGIN + "/hpcgw-login/submit", {"httpd_username": user, "httpd_password": password})


def is_login_page(answer: Answer) -> bool:
    return answer.status == 401 and 'name="httpd_password"' in answer.body


def test_without_a_session_the_hub_answers_the_login_page_not_a_basic_prompt() -> None:
    answer = Tab().open(HUB + "/home")
    assert is_login_page(answer), (answer.status, answer.body[:300])
    assert "WWW-Authenticate" not in answer.headers  # no browser Basic pop-up


def test_a_wrong_password_gives_no_session() -> None:
    tab = Tab()
    answer = tab.login("alice", "wrong-password")
    assert answer.status == 302 and answer.location.endswith("/hpcgw-login/?failed")
    assert is_login_page(tab.open(HUB + "/home"))  # whatever cookie it left logs nobody in


def test_one_login_then_the_session_cookie_alone_carries_the_user() -> None:
    tab = Tab()
    answer = tab.login("alice", "alice-test-pw")
    assert answer.status == 302 and answer.location.endswith("/jupyter/hub/"), answer
    set_cookie = answer.headers.get("Set-Cookie", "")
    assert set_cookie.startswith(COOKIE + "=")
    for flag in ("HttpOnly", "Secure", "SameSite=Lax"):
        assert flag in set_cookie
    home = tab.open(HUB + "/home", follow=True)
    assert home.status == 200 and "alice" in home.body



@pytest.mark.parametrize("target", ["https://attacker.invalid/", "//attacker.invalid/", "/\\attacker.invalid"])
def test_the_login_form_cannot_send_the_user_elsewhere(target: str) -> None:
    """mod_auth_form honours a return field in the posted form (httpd_location
    by default): a lure page posting the attacker's own demo login would
    land the victim on any site. Only the fixed target is used."""
    answer = Tab().open(ORIGIN + "/hpcgw-login/submit",
                        {"httpd_username": "alice", "httpd_password": "alice-test-pw", "httpd_location": target})
    assert answer.status == 302 and answer.location == "/jupyter/hub/", answer.location


@pytest.mark.parametrize("forged", ["user=alice", "aGVsbG8=", "{tampered}", "x'OR'1'='1", "%25"])
def test_a_forged_or_tampered_session_cookie_is_the_login_page(forged: str) -> None:
    tab = Tab()
    assert tab.login("alice", "alice-test-pw").status == 302
    real = tab.cookie(COOKIE)
    value = real[:-6] + ("AAAAAA" if not real.endswith("AAAAAA") else "BBBBBB") if forged == "{tampered}" else forged
    answer = Tab().open(HUB + "/home", headers={"Cookie": f"{COOKIE}={value}"})
    assert is_login_page(answer), (forged, answer.status)


def test_the_hub_logout_ends_the_sso_session_and_the_next_page_asks_for_a_login() -> None:
    tab = Tab()
    assert tab.login("bob", "bob-test-pw").status == 302
    assert tab.open(HUB + "/home", follow=True).status == 200
    assert tab.cookie("jupyterhub-session-id") or tab.cookie("jupyterhub-hub-login")
    step = tab.open(HUB + "/logout")
    assert step.status == 302 and step.location == "/hpcgw-logout", step
    assert tab.cookie("jupyterhub-hub-login") == ""  # the hub's own cookie is gone first
    before = tab.cookie(COOKIE)
    step = tab.open(ORIGIN + step.location)
    assert step.status in (302, 307) and step.location.endswith("/jupyter/hub/"), step
    assert tab.cookie(COOKIE) != before  # a new key: the old session is deleted on the gateway
    assert is_login_page(tab.open(HUB + "/home"))
    # A copy of the cookie taken before the logout (a stolen one) is refused
    # after it: the session no longer exists on the gateway.
    assert is_login_page(Tab().open(HUB + "/home", headers={"Cookie": f"{COOKIE}={before}"}))
    # Logging in again works at once.
    assert tab.login("bob", "bob-test-pw").status == 302
    assert tab.open(HUB + "/home", follow=True).status == 200



def test_a_basic_client_is_served_without_a_session() -> None:
    """Scripts sending Basic credentials get no session (no cookie to steal, no row)."""
    token = base64.b64encode(b"alice:alice-test-pw").decode()
    answer = Tab().open(HUB + "/health", headers={"Authorization": f"Basic {token}"})
    assert answer.status == 200, answer
    assert COOKIE not in answer.headers.get("Set-Cookie", ""), answer.headers
