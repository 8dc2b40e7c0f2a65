"""The gateway's own Prometheus metrics, next to the hub's in ``/hub/metrics``.

JupyterHub serves every collector of prometheus_client's default registry at
``<base>/hub/metrics`` (``read:metrics`` scope). The hub knows users, servers
and requests; it does not know clusters, queues or the scheduler. This
module adds, on the default registry (no JupyterHub import: unit-tested in
``tests/unit``):

``hpcgw_spawns_total{cluster, queue, outcome}``
    spawns of the gateway's spawner; ``outcome`` is ``started`` (the start
    began: the choice was valid), ``ready`` (the spawner handed the server's
    address to the hub: for a batch job, once its server answers),
    ``failed`` (the start raised: the scheduler refused, the job ended
    early, ...) or ``cancelled`` (the user stopped the pending spawn). The
    local profile counts as cluster ``local``, queue ``local``.
``hpcgw_spawn_duration_seconds{cluster, queue}``
    histogram, start to ready (1 s .. 30 min buckets: batch queues wait).
``hpcgw_jobs_pending{cluster}``
    batch jobs of spawns that wait in the scheduler's queue now.
``hpcgw_scheduler_query_duration_seconds{cluster, kind}`` and
``hpcgw_scheduler_query_errors_total{cluster, kind}``
    every scheduler command the hub runs (``kind`` as
    ``hpcgw_status.CommandCounter``: ``status-shared``, ``status-user``,
    ``submit``, ``cancel``); an error is a command that failed without a
    verdict (controller unreachable, timeout, unusable answer), not a job
    the scheduler says is gone.
``hpcgw_proxy_user_routes`` and ``hpcgw_proxy_routes_checked_timestamp_seconds``
    the users' routes in the proxy at the hub's last route check, and when
    that was (``hpcgw_proxy.GatewayProxy``); compare with JupyterHub's
    ``jupyterhub_running_servers``.

Label values come from the admin's catalog (bounded), never from a request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

T = TypeVar("T")

OUTCOMES = ("started", "ready", "failed", "cancelled")
LOCAL = "local"
# Spawn to ready: a local server in seconds, a batch job up to the queue's wait.
SPAWN_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0,
                 1800.0)
# One scheduler command: squeue answers in milliseconds, sbatch over SSH in seconds.
QUERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SCHEDULER_KINDS = ("status-shared", "status-user", "submit", "cancel")
_MAX_LABEL = 64


def label(value: Any) -> str:
    """A label value: the text, "-" when empty, printable, at most 64 characters."""
    text = "".join(c if c.isprintable() else "?" for c in str(value or ""))[:_MAX_LABEL]
    return text or "-"


class GatewayMetrics:
    """The gateway's collectors on one registry (the default one in the hub)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.spawns = Counter(
            "hpcgw_spawns", "Spawns of the gateway's spawner by cluster, queue and outcome "
            "(started, ready, failed, cancelled).", ["cluster", "queue", "outcome"], registry=registry)
        self.spawn_duration = Histogram(
            "hpcgw_spawn_duration_seconds", "Seconds from a spawn's start until its server is ready.",
            ["cluster", "queue"], buckets=SPAWN_BUCKETS, registry=registry)
        self.jobs_pending = Gauge(
            "hpcgw_jobs_pending", "Batch jobs of starting servers waiting in the scheduler's queue.",
            ["cluster"], registry=registry)
        self.query_duration = Histogram(
            "hpcgw_scheduler_query_duration_seconds", "Seconds a scheduler command of the hub took.",
            ["cluster", "kind"], buckets=QUERY_BUCKETS, registry=registry)
        self.query_errors = Counter(
            "hpcgw_scheduler_query_errors", "Scheduler commands of the hub that failed without a verdict.",
            ["cluster", "kind"], registry=registry)
        self.proxy_user_routes = Gauge(
            "hpcgw_proxy_user_routes", "Routes to users' servers in the proxy at the hub's last route check.",
            registry=registry)
        self.proxy_routes_checked = Gauge(
            "hpcgw_proxy_routes_checked_timestamp_seconds", "Unix time of the hub's last successful read of "
            "the proxy's routes.", registry=registry)
        self._pending: dict[str, set[str]] = {}

    # --- spawns ---------------------------------------------------------
    def declare(self, queues: Iterable[tuple[str, str]]) -> None:
        """Create every (cluster, queue) series at 0, so rates and alerts see
        a queue before its first spawn."""
        for cluster, queue in queues:
            for outcome in OUTCOMES:
                self.spawns.labels(label(cluster), label(queue), outcome)
            self.spawn_duration.labels(label(cluster), label(queue))
            self.jobs_pending.labels(label(cluster))
            for kind in SCHEDULER_KINDS:
                self.query_errors.labels(label(cluster), kind)

    async def observe_spawn(self, cluster: str, queue: str, start: Awaitable[T],
                            clock: Callable[[], float] = time.monotonic) -> T:
        """Await ``start`` (a spawner's start), counting its outcome and duration."""
        cluster, queue = label(cluster), label(queue)
        self.spawns.labels(cluster, queue, "started").inc()
        began = clock()
        try:
            result = await start
        except asyncio.CancelledError:
            self.spawns.labels(cluster, queue, "cancelled").inc()
            raise
        except BaseException:
            self.spawns.labels(cluster, queue, "failed").inc()
            raise
        self.spawns.labels(cluster, queue, "ready").inc()
        self.spawn_duration.labels(cluster, queue).observe(max(0.0, clock() - began))
        return result

    # --- jobs waiting in the queue ---------------------------------------
    def job_pending(self, cluster: str, job_id: str, pending: bool) -> None:
        """Mark (or unmark) a starting server's job as waiting in the queue;
        marking twice counts once."""
        cluster = label(cluster)
        jobs = self._pending.setdefault(cluster, set())
        if pending and job_id:
            jobs.add(job_id)
        else:
            jobs.discard(job_id)
        self.jobs_pending.labels(cluster).set(len(jobs))

    # --- scheduler commands ----------------------------------------------
    def observe_scheduler_command(self, cluster: str, kind: str, seconds: float, ok: bool) -> None:
        """One scheduler command (an ``hpcgw_status.observe`` observer)."""
        cluster, kind = label(cluster), label(kind)
        self.query_duration.labels(cluster, kind).observe(max(0.0, seconds))
        if not ok:
            self.query_errors.labels(cluster, kind).inc()

    # --- proxy routes ----------------------------------------------------
    def observe_routes(self, routes: Mapping[str, Any], now: Optional[float] = None) -> None:
        """The proxy's routes as the hub read them (``Proxy.get_all_routes``)."""
        self.proxy_user_routes.set(user_routes(routes))
        self.proxy_routes_checked.set(time.time() if now is None else now)


def user_routes(routes: Mapping[str, Any]) -> int:
    """How many routes lead to users' servers (their data names a user;
    the hub's own route and services' routes do not)."""
    count = 0
    for route in routes.values():
        data = route.get("data") if isinstance(route, Mapping) else None
        if isinstance(data, Mapping) and data.get("user"):
            count += 1
    return count


METRICS = GatewayMetrics()
