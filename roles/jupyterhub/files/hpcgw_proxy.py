"""The hub's proxy client (configurable-http-proxy) that also counts the
users' routes for ``hpcgw_metrics`` (``hpcgw_proxy_user_routes``).

The hub reads every route of the proxy at its activity/route check
(``jupyterhub_route_check_interval``) and re-adds the missing ones; the
count is taken from that read, before the repair, so a proxy that keeps
losing routes shows as fewer routes than ``jupyterhub_running_servers``.
The counting itself is :func:`hpcgw_metrics.user_routes` (unit-tested).
"""

from __future__ import annotations

from typing import Any

from jupyterhub.proxy import ConfigurableHTTPProxy

from hpcgw_metrics import METRICS


class GatewayProxy(ConfigurableHTTPProxy):  # type: ignore[misc]
    """ConfigurableHTTPProxy; its configuration stays c.ConfigurableHTTPProxy."""

    async def get_all_routes(self) -> dict[str, Any]:
        routes: dict[str, Any] = await super().get_all_routes()
        METRICS.observe_routes(routes)
        return routes
