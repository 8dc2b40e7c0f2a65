"""The demo's URL as `make demo` prints it: the gateway's published port on
the host's loopback, through Apache (basic auth) and the proxy to the hub."""

from __future__ import annotations

import base64
import os
import ssl
import urllib.error
import urllib.request

PORT = int(os.environ.get("HPCGW_DEMO_PORT", "8443"))


def _get(url: str, user: str | None = None, password: str = "") -> int:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed demo certificate
    headers = {}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=context,
                                    timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_demo_url_reaches_the_hub_as_a_demo_user() -> None:
    assert _get(f"https://localhost:{PORT}/jupyter/hub/health", "alice", "alice-test-pw") == 200


def test_demo_url_needs_the_login() -> None:
    assert _get(f"https://localhost:{PORT}/jupyter/hub/health") == 401
    assert _get(f"https://localhost:{PORT}/jupyter/hub/health", "alice", "wrong") == 401


def test_only_the_names_of_the_gateway_are_served() -> None:
    assert _get(f"https://127.0.0.1:{PORT}/jupyter/hub/health", "alice", "alice-test-pw") == 403  # catch-all vhost
