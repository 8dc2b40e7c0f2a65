"""The proxy is its own service: routes survive a hub stop/restart."""

from __future__ import annotations

import json
from typing import Any

from conftest import GATEWAY, PREFIX, wait_until

# The hub's own route: its base URL (CHP keys routes without the trailing slash).
HUB_ROUTE = PREFIX or "/"
HUB_HEALTH = f"http://{GATEWAY}:8081{PREFIX}/hub/health"  # the hub listens on the cluster address


def _routes(gateway: Any) -> dict[str, Any]:
    with gateway.sudo():
        out = gateway.check_output(
            "set -a; . /etc/jupyterhub/secrets/proxy.env; "
            "curl -s -H \"Authorization: token $CONFIGPROXY_AUTH_TOKEN\" http://127.0.0.1:8001/api/routes")
    return json.loads(out)


def test_routes_survive_hub_restart(gateway: Any) -> None:
    before_pid = gateway.check_output("systemctl show -p MainPID --value configurable-http-proxy")
    assert HUB_ROUTE in _routes(gateway)
    with gateway.sudo():
        gateway.check_output("systemctl stop jupyterhub")
        try:
            assert HUB_ROUTE in _routes(gateway)  # the proxy keeps routing while the hub is down
        finally:
            gateway.check_output("systemctl start jupyterhub")
    assert wait_until(lambda: gateway.run(f"curl -sf -o /dev/null {HUB_HEALTH}").rc == 0, 60), \
        "hub did not come back"
    assert gateway.check_output("systemctl show -p MainPID --value configurable-http-proxy") == before_pid
