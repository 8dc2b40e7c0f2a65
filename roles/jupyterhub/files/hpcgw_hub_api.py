"""The hub's own API routes of the hpc-gateway bundle.

Imported by jupyterhub_config.py before the hub builds its handlers, whatever
the spawner (role jupyterhub), so batchspawner's upstream callback - which
sets any attribute a job's token posts - is never live:

* ``/hub/api/batchspawner``: a job reports its port, or its failure
  (:mod:`hpcgw_callback_core`); nothing else.
* ``/hub/api/hpcgw/proxy-started``: configurable-http-proxy's unit calls it
  when the proxy (re)starts, with the proxy's token; the hub re-adds every
  route at once instead of at its next activity check (60 s).
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

import batchspawner.api  # noqa: F401  (registers the upstream handler replaced below)
from jupyterhub.apihandlers import APIHandler, default_handlers
from tornado import web

from hpcgw_callback_core import CallbackRefused, JobReport, parse_callback

CALLBACK_ROUTE = r"/api/batchspawner"
PROXY_STARTED_ROUTE = r"/api/hpcgw/proxy-started"


class PortOnlyCallbackHandler(APIHandler):  # type: ignore[misc]
    """What a job may tell the hub about its server, and nothing else."""

    @web.authenticated
    def post(self) -> None:
        user = self.current_user
        token = self.get_auth_token()
        spawner = next((s for s in user.spawners.values() if s.api_token == token), None)
        if spawner is None:
            raise web.HTTPError(403, "token belongs to no server of this user")
        try:
            report = parse_callback(self.get_json_body())
        except CallbackRefused as exc:
            raise web.HTTPError(400, str(exc)) from exc
        if isinstance(report, JobReport):
            # The starting batch spawner (a wrapper's child) fails at once with it.
            child = getattr(spawner, "child_spawner", None) or spawner
            if hasattr(child, "hpcgw_job_report"):
                child.hpcgw_job_report = report
            self.log.warning("Job of %s ended with exit status %d; its output ends with: %r",
                             spawner._log_name, report.exit_status, report.log_tail[-500:])
            message = "exit status recorded"
        else:
            spawner.port = report.port
            message = "port recorded"
        self.set_status(201)
        self.finish(json.dumps({"message": message}))


class ProxyStartedHandler(web.RequestHandler):
    """The proxy's unit says the proxy (re)started: re-add every route now.

    Authenticated with the proxy's own token (CONFIGPROXY_AUTH_TOKEN, which
    both units read from the same root-only file), compared in constant time.
    """

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated, never cookie-authenticated: no XSRF check."""

    async def post(self) -> None:
        proxy = self.settings["proxy"]
        expected = f"token {proxy.auth_token}" if proxy.auth_token else ""
        given = self.request.headers.get("Authorization", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise web.HTTPError(403)
        began = time.perf_counter()
        await proxy.check_routes(self.settings.get("users", {}), self.settings.get("services", {}))
        took = time.perf_counter() - began
        proxy.log.info("Proxy (re)started: routes checked in %.3f s", took)
        self.finish({"message": "routes checked", "seconds": round(took, 3)})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"status": status_code})


def register() -> None:
    """Put the gateway's handlers in place of upstream's (idempotent)."""
    ours = {CALLBACK_ROUTE: PortOnlyCallbackHandler, PROXY_STARTED_ROUTE: ProxyStartedHandler}
    default_handlers[:] = [h for h in default_handlers if h[0] not in ours]
    default_handlers.extend(ours.items())


register()
