"""The hub's own API routes of the hpc-gateway bundle.

Imported by jupyterhub_config.py before the hub builds its handlers, whatever
the spawner (role jupyterhub), so batchspawner's upstream callback - which
sets any attribute a job's token posts - is never live:

* ``/hub/api/batchspawner``: a job reports its port, or its failure
  (:mod:`hpcgw_callback_core`); nothing else.
* ``/hub/api/hpcgw/proxy-started``: configurable-http-proxy's unit calls it
  when the proxy (re)starts, with the proxy's token; the hub re-adds every
  route at once instead of at its next activity check (60 s).
* ``/hub/api/users/<name>/server(s/<name>)``: JupyterHub's own handler; a
  stop (DELETE) also writes an audit line saying who stopped it, and when the
  idle culler's service stopped it, a ``cull`` line and the notice of the
  user's next page (``cull_listeners``; role spawn_profiles shows it).
"""

from __future__ import annotations

import hmac
import json
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional

import batchspawner.api  # noqa: F401  (registers the upstream handler replaced below)
from jupyterhub import orm
from jupyterhub.apihandlers import APIHandler, default_handlers
from jupyterhub.apihandlers.users import UserServerAPIHandler
from jupyterhub.scopes import needs_scope
from tornado import web

import hpcgw_audit
from hpcgw_callback_core import CallbackRefused, JobReport, check_port_range, parse_callback

CALLBACK_ROUTE = r"/api/batchspawner"
PROXY_STARTED_ROUTE = r"/api/hpcgw/proxy-started"
SERVER_ROUTES = (r"/api/users/([^/]+)/server", r"/api/users/([^/]+)/servers/([^/]*)")

# The idle culler's service name and settings (configure_culler; empty: no culler).
CULLER: dict[str, Any] = {"service": "", "timeout": 0, "max_age": 0}
# Called with (user name, notice, server name) when the culler stops a
# server; role spawn_profiles appends hpcgw_startup.remember_end (the user's
# next page).
cull_listeners: list[Callable[[str, str, str], None]] = []


def configure_culler(service: str, timeout: int, max_age: int) -> None:
    """Name the culler's service: its stops are culls (audit line, user's notice)."""
    CULLER.update(service=service, timeout=int(timeout), max_age=int(max_age))


class PortOnlyCallbackHandler(APIHandler):  # type: ignore[misc]
    """What a job may tell the hub about its server, and nothing else."""

    @web.authenticated
    def post(self) -> None:
        user = self.current_user
        token = self.get_auth_token()
        spawner = next((s for s in user.spawners.values() if s.api_token == token), None)
        if spawner is None:
            raise web.HTTPError(403, "token belongs to no server of this user")
        # The starting batch spawner (a wrapper's child): its port range, its report.
        child = getattr(spawner, "child_spawner", None) or spawner
        try:
            report = parse_callback(self.get_json_body())
            if not isinstance(report, JobReport):
                report = check_port_range(report, int(getattr(child, "hpcgw_port_min", 0) or 0),
                                          int(getattr(child, "hpcgw_port_max", 0) or 0))
        except CallbackRefused as exc:
            raise web.HTTPError(400, str(exc)) from exc
        if isinstance(report, JobReport):
            # It fails at once with it.
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


def _seconds_since(when: Optional[datetime]) -> float:
    """Seconds since an ORM timestamp (naive UTC in JupyterHub's database)."""
    if when is None:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - when).total_seconds())


def server_fields(spawner: Any) -> dict[str, Any]:
    """The audit fields of a server: the spawner's own (cluster, queue, job id...) when it has them."""
    fields: dict[str, Any] = {"user": spawner.user.name, "server": spawner.name or None}
    own = getattr(spawner, "hpcgw_audit_fields", None)
    if callable(own):
        fields.update(own())
    return fields


def _job_words(spawner: Any) -> str:
    child = getattr(spawner, "child_spawner", None) or spawner
    job_id = str(getattr(child, "job_id", "") or "")
    where = child.hpcgw_where() if callable(getattr(child, "hpcgw_where", None)) else ""
    if not job_id:
        return ""
    return f"batch job {job_id} on {where}" if where else f"batch job {job_id}"


class AuditedServerHandler(UserServerAPIHandler):  # type: ignore[misc]
    """JupyterHub's server API; a stop says who asked, a cull also tells the user why."""

    @needs_scope("delete:servers")  # type: ignore[misc]
    async def delete(self, user_name: str, server_name: str = "") -> None:
        user = self.find_user(user_name)
        spawner = user.spawners.get(server_name) if user is not None else None
        if spawner is not None and spawner.active and spawner.pending != "stop":
            self._audit_stop(spawner)
        await super().delete(user_name, server_name)

    def _audit_stop(self, spawner: Any) -> None:
        current = self.current_user
        is_service = isinstance(current, orm.Service)
        by = f"service:{current.name}" if is_service else getattr(current, "name", "")
        fields = server_fields(spawner)
        if is_service and CULLER["service"] and current.name == CULLER["service"]:
            idle = _seconds_since(spawner.orm_spawner.last_activity)
            age = _seconds_since(spawner.orm_spawner.started)
            notice = hpcgw_audit.cull_notice(idle, age, CULLER["timeout"], CULLER["max_age"], _job_words(spawner),
                                             server=spawner.name)
            hpcgw_audit.emit("cull", **fields, idle_seconds=int(idle), age_seconds=int(age),
                             timeout=CULLER["timeout"], max_age=CULLER["max_age"])
            self.log.info("Idle culler stops %s: %s", spawner._log_name, notice)
            for listener in cull_listeners:
                listener(spawner.user.name, notice, spawner.name)
        hpcgw_audit.emit("stop", **fields, by=by)


def register() -> None:
    """Put the gateway's handlers in place of upstream's (idempotent)."""
    ours: dict[str, type] = {CALLBACK_ROUTE: PortOnlyCallbackHandler, PROXY_STARTED_ROUTE: ProxyStartedHandler}
    ours.update({route: AuditedServerHandler for route in SERVER_ROUTES})
    default_handlers[:] = [h for h in default_handlers if h[0] not in ours]
    default_handlers.extend(ours.items())


register()
