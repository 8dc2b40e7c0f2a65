#!/usr/bin/python3
"""Tell the hub that configurable-http-proxy has (re)started.

Run by the proxy's systemd unit (ExecStartPost, role chp): it waits until the
proxy's API answers, then asks the hub to re-add every route at once
(``/hub/api/hpcgw/proxy-started``, role jupyterhub), so users' servers answer
again seconds after a proxy crash instead of at the hub's next activity check.
The proxy's token (CONFIGPROXY_AUTH_TOKEN, from the unit's environment file)
authenticates both calls. A hub that is down is not an error: it adds the
routes itself when it starts.

Usage: hpcgw-proxy-started PROXY_API_URL HUB_HOOK_URL [SECONDS]
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from typing import Callable, Mapping, Sequence

Opener = Callable[[urllib.request.Request, float], int]


def _open(request: urllib.request.Request, timeout: float) -> int:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback URLs of the unit)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def notify(api_url: str, hook_url: str, token: str, seconds: float = 15.0,
           opener: Opener = _open, sleep: Callable[[float], None] = time.sleep) -> str:
    """Wait for the proxy's API, then call the hub's hook; what happened, in words."""
    auth = {"Authorization": f"token {token}"}
    deadline = time.monotonic() + seconds
    while opener(urllib.request.Request(f"{api_url.rstrip('/')}/api/routes", headers=auth), 2.0) != 200:
        if time.monotonic() >= deadline:
            return f"the proxy's API did not answer within {seconds:.0f} s"
        sleep(0.1)
    status = opener(urllib.request.Request(hook_url, data=b"", method="POST", headers=auth), 10.0)
    if status == 200:
        return "the hub re-added the routes"
    return f"the hub did not take the notice (HTTP {status or 'unreachable'}); it re-adds routes when it starts"


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    if len(argv) < 3:
        print("usage: hpcgw-proxy-started PROXY_API_URL HUB_HOOK_URL [SECONDS]", file=sys.stderr)
        return 2
    token = environ.get("CONFIGPROXY_AUTH_TOKEN", "")
    if not token:
        print("hpcgw-proxy-started: CONFIGPROXY_AUTH_TOKEN is not set", file=sys.stderr)
        return 0
    seconds = float(argv[3]) if len(argv) > 3 else 15.0
    print(f"hpcgw-proxy-started: {notify(argv[1], argv[2], token, seconds)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
