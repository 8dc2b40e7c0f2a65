"""The spawn form's start estimate: ``POST /hub/api/users/<name>/hpcgw-estimate``.

The body is the spawn form's fields as a JSON object. They go through the
same server-side checks as a spawn (:meth:`hpcgw_profiles.Catalog.options_from_form`):
anything the form could not submit, or an account that is not the user's
own on that cluster, is refused with 400 and the field it concerns, before
any command runs. For a valid choice on a cluster the hub
submits to itself (SLURM, ``submit: local``) the hub runs, as the logged-in
user through its existing sudo rule for ``sbatch``,
``sbatch --test-only`` with the choice's resources only
(:func:`hpcgw_sched.estimate_argv`), and answers the scheduler's start
estimate (or its refusal). Only for the user themself (an admin's token
cannot ask as another user), XSRF-checked for a browser's cookie (the
hub's APIHandler), limited per user (a token bucket; 429 with Retry-After)
and to a few at once, and answered from a cache for the same choice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jupyterhub.apihandlers import APIHandler, default_handlers
from jupyterhub.scopes import needs_scope

import hpcgw_sched
from hpcgw_form import form_from_json
from hpcgw_profiles import ChoiceError
from hpcgw_spawner import ESTIMATE

ROUTE = r"/api/users/([^/]+)/hpcgw-estimate"
LIMITER = hpcgw_sched.RateLimiter(burst=5, every=3.0)
RUNNING = asyncio.Semaphore(4)
CACHE_SECONDS = 20.0
CACHE: dict[tuple[str, Any], tuple[float, dict[str, Any]]] = {}


class EstimateHandler(APIHandler):  # type: ignore[misc]
    """The scheduler's start estimate for a checked choice, asked as the user."""

    def _refuse(self, status: int, message: str, field: str = "") -> None:
        self.set_status(status)
        self.finish({"status": status, "message": message, "field": field})

    @needs_scope("servers")
    async def post(self, user_name: str) -> None:
        user = self.current_user
        if getattr(user, "kind", "") != "user" or user.name != user_name:
            self._refuse(403, "a start estimate runs as the logged-in user only")
            return
        spawner = user.spawner
        if not hasattr(spawner, "_load"):
            self._refuse(404, "no cluster catalog")
            return
        catalog, _ = spawner._load()
        try:
            options = catalog.options_from_form(form_from_json(self.get_json_body()))
            choice = catalog.choice_from_options(options)
            if choice is not None:
                choice = await spawner.hpcgw_settle(choice)  # only the user's own account
        except ChoiceError as exc:
            self._refuse(400, f"Request refused: {exc}", exc.field)
            return
        if choice is None:
            self._refuse(400, "the local profile has no start estimate", "profile")
            return
        if choice.cluster not in ESTIMATE.clusters:
            self._refuse(400, f"no start estimate on cluster {choice.cluster!r}", "cluster_queue")
            return
        key = (user.name, choice)
        now = time.monotonic()
        cached = CACHE.get(key)
        if cached and now - cached[0] < CACHE_SECONDS:
            self.finish(cached[1])
            return
        wait = LIMITER.take(user.name)
        if wait:
            self.set_header("Retry-After", str(max(1, int(wait + 0.999))))
            self._refuse(429, "too many start estimates; try again in a few seconds")
            return
        argv = hpcgw_sched.estimate_argv(["sudo", "-n"], ESTIMATE.sbatch, user.name, choice)
        async with RUNNING:
            try:
                code, out, err = await hpcgw_sched.run_exec(argv, timeout=20.0)
            except (OSError, asyncio.TimeoutError) as exc:
                code, out, err = 1, "", f"sbatch --test-only failed: {type(exc).__name__}"
        answer = hpcgw_sched.parse_estimate(code, out, err).as_dict()
        self.log.info("Start estimate for %s on %s/%s (%d core(s), %d GB, %d min, %d GPU(s)): %s",
                      user.name, choice.cluster, choice.queue, choice.cores, choice.memory_gb,
                      choice.walltime_min, choice.gpus, answer["start"] or answer["message"])
        for old in [k for k, (at, _) in CACHE.items() if now - at >= CACHE_SECONDS]:
            del CACHE[old]
        CACHE[key] = (now, answer)
        self.finish(answer)


def register() -> None:
    """Add the estimate route to the hub's API (idempotent)."""
    default_handlers[:] = [h for h in default_handlers if h[0] != ROUTE]
    default_handlers.append((ROUTE, EstimateHandler))


def configure(clusters: list[str], sbatch: str) -> None:
    """Clusters with a start estimate (SLURM the gateway submits to; empty: none) and sbatch's path."""
    ESTIMATE.clusters = frozenset(clusters)
    ESTIMATE.sbatch = sbatch


register()
