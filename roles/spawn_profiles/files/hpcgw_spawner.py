"""ProfilesSpawner whose choices are held to the site's cluster data.

Upstream wrapspawner.ProfilesSpawner falls back to its default spawner for a
profile key it does not know, and batchspawner's callback sets any attribute
a job's token posts. Here:

* the spawn form and REST ``user_options`` go through
  :mod:`hpcgw_profiles` - unknown keys, profiles, clusters, queues, accounts
  and out-of-range or non-integer resources are refused before anything
  starts;
* the account of a choice must be one of the user's own on that cluster
  (:mod:`hpcgw_accounts`: the inventory's data or SLURM's associations,
  cached per user): looked up before every start (``run_pre_spawn_hook``)
  and settled in ``_select``; a form is checked before it is accepted; an
  account that is not the user's, or unknown because the scheduler did not
  answer, is refused;
* the child spawner class is chosen by the cluster's scheduler (the
  guarded classes of :mod:`hpcgw_batch`: job ids checked, commands
  shell-quoted), and its traits come only from the admin's data and the
  checked choice - it never sees the raw ``user_options``;
* the spawn page (the hub's page template spawn.html of this role) gets its
  data from :func:`hpcgw_form.page_data` (built in ``get_options_form``:
  limits per queue, free nodes, the last choice, a refused field);
* a batch job's state (its id) is saved as soon as it is submitted, so a
  hub restarted during the spawn finds the job (and cancels it) instead of
  leaving an orphan;
* the audit log (role jupyterhub's ``hpcgw_audit``) gets one line per
  refused choice, per spawn (with the job id once the job is submitted) and
  per failed spawn.

The jobs' callback (``/hub/api/batchspawner``) is role jupyterhub's
(``hpcgw_hub_api``), in place whatever the spawner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any

from tornado import web
from traitlets import Dict, Unicode
from traitlets.utils.importstring import import_item
from wrapspawner import ProfilesSpawner

import hpcgw_accounts
import hpcgw_audit
import hpcgw_sched
from hpcgw_form import page_data
from hpcgw_local import one_local_server_message, other_local_server
import hpcgw_spawnlog
from hpcgw_metrics import LOCAL, METRICS
from hpcgw_profiles import Catalog, Choice, ChoiceError, child_config, describe
from hpcgw_startup import forget_end


async def _awaited(started: Any) -> Any:
    """A child's start result, awaited when it is awaitable (sudospawner's is a coroutine)."""
    return (await started) if inspect.isawaitable(started) else started


SCHEDULER_CLASSES = {
    "slurm": "hpcgw_batch.GatewaySlurmSpawner",
    "torque": "hpcgw_batch.GatewayTorqueSpawner",
    "pbs": "hpcgw_batch.GatewayPBSSpawner",
    "sge": "hpcgw_batch.GatewayGridengineSpawner",
    "lsf": "hpcgw_batch.GatewayLsfSpawner",
    "condor": "hpcgw_batch.GatewayCondorSpawner",
}


class EstimateSettings:
    """The start-estimate API's settings (the hub's config snippet sets them)."""

    clusters: frozenset[str] = frozenset()  # clusters whose start estimate the hub may ask for
    sbatch: str = "/usr/bin/sbatch"


ESTIMATE = EstimateSettings()


class GatewaySpawner(ProfilesSpawner):
    """Profiles from the cluster catalog, each choice checked server-side."""

    catalog_file = Unicode("/etc/jupyterhub/clusters.json", config=True,
                           help="JSON rendered by the spawn_profiles role.")
    local_title = Unicode("", config=True, help="Title of the local profile; empty disables it.")
    local_class = Unicode("hpcgw_local.LocalScopeSpawner", config=True,
                          help="Spawner class of the local profile.")
    local_config = Dict(config=True, help="Traits of the local profile's spawner.")
    gateway_tag = Unicode("", config=True,
                          help="This gateway's mark on its batch jobs (comment hpcgw:<tag>), read by the reaper.")
    hpcgw_cluster = Unicode("")
    hpcgw_scheduler = Unicode("")
    hpcgw_queue = Unicode("", help="The started choice's queue (metrics labels).")

    _catalog: Catalog | None = None
    _raw: dict[str, Any] | None = None
    # The spawn page's data (hpcgw_form.page_data), built by get_options_form
    # for the page template spawn.html; a refused form's error and values.
    hpcgw_page: dict[str, Any] | None = None
    _form_refusal: tuple[ChoiceError, dict[str, str]] | None = None
    # The user's accounts per cluster, looked up for the next start
    # (run_pre_spawn_hook) and used once by _select.
    _hpcgw_accounts: dict[str, hpcgw_accounts.UserAccounts] | None = None

    def _load(self) -> tuple[Catalog, dict[str, Any]]:
        if self._catalog is None or self._raw is None:
            raw = json.loads(Path(self.catalog_file).read_text(encoding="utf-8"))
            GatewaySpawner._raw = raw
            GatewaySpawner._catalog = Catalog.from_data(raw)
        assert self._catalog is not None and self._raw is not None
        return self._catalog, self._raw

    def _options_form_default(self) -> str:
        # Not empty, so that the hub shows its spawn page; the form itself is
        # the page template spawn.html of role spawn_profiles.
        return ("<p>The spawn form is the hub page template spawn.html of role spawn_profiles, "
                "which is not in the hub's template path.</p>")

    def _groups(self) -> list[str]:
        return [str(g.name) for g in (getattr(self.user, "groups", None) or [])]

    async def hpcgw_user_accounts(self, clusters: list[str], page: bool = False) -> dict[str, hpcgw_accounts.UserAccounts]:
        """The user's own accounts on these clusters (cached per user; ``page``: a page view waits briefly)."""
        catalog, _ = self._load()
        wanted = [catalog.cluster(name) for name in dict.fromkeys(clusters)]
        wanted = [cluster for cluster in wanted if cluster.uses_accounts]
        answers = await asyncio.gather(*(hpcgw_accounts.ACCOUNTS.for_user(cluster, self.user.name, self._groups(), page=page)
                                         for cluster in wanted))
        return {cluster.name: answer for cluster, answer in zip(wanted, answers)}

    async def hpcgw_settle(self, choice: Choice) -> Choice:
        """The choice with the user's own account (ChoiceError when it is not theirs)."""
        catalog, _ = self._load()
        accounts = await self.hpcgw_user_accounts([choice.cluster])
        return hpcgw_accounts.settle(catalog, choice, accounts.get(choice.cluster))

    async def get_options_form(self) -> str:
        """Build the page's data (free nodes: shared, cached; the user's accounts), then the hub renders spawn.html."""
        catalog, _ = self._load()
        free: dict[str, dict[str, hpcgw_sched.Free]] = {}
        for cluster in catalog.clusters:
            free[cluster.name], _age = await hpcgw_sched.availability(cluster.name)
        accounts = await self.hpcgw_user_accounts([c.name for c in catalog.clusters], page=True)
        refusal, self._form_refusal = self._form_refusal, None
        base = getattr(getattr(self, "hub", None), "base_url", "/hub/")
        estimate_url = f"{base}api/users/{self.user.escaped_name}/hpcgw-estimate" if ESTIMATE.clusters else ""
        self.hpcgw_page = page_data(
            catalog, self.local_title or None,
            last_options=None if refusal else (self.orm_spawner.user_options if self.orm_spawner else None),
            submitted=refusal[1] if refusal else None, error=refusal[0] if refusal else None,
            free=free, estimate_clusters=ESTIMATE.clusters, estimate_url=estimate_url, accounts=accounts)
        # JupyterHub 6.1.1 renders the spawn page with user.spawner - the
        # user's default server's spawner, also on a named server's page
        # (/hub/spawn/<user>/<server>) - and after a failed start asks a
        # fresh spawner for the form (get_spawner(replace_failed=True) does
        # not store it): the spawners it may render with get the data too.
        for shown in (self.user.spawners[self.name], self._rendering_spawner()):
            if shown is not self:
                shown.hpcgw_page = self.hpcgw_page
        return await super().get_options_form()

    def _rendering_spawner(self) -> Any:
        """The spawner whose data the hub's spawn page shows and whose form it
        asks for after a refused POST (user.spawner, whichever server)."""
        return self.user.spawner

    async def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:  # type: ignore[override]
        # JupyterHub awaits it (run_options_from_form, options_from_query).
        catalog, _ = self._load()
        try:
            options = catalog.options_from_form(formdata)
            choice = catalog.choice_from_options(options)
            if choice is not None:
                await self.hpcgw_settle(choice)  # the account is the user's own (start checks it again)
        except ChoiceError as exc:
            self._refused("spawn form", str(exc))
            # The page shown again puts the message beside its field: the hub
            # asks user.spawner for that form, whichever server was refused.
            self._rendering_spawner()._form_refusal = (
                exc, {k: v[0] for k, v in formdata.items()
                      if isinstance(v, list) and len(v) == 1 and isinstance(v[0], str)})
            raise ValueError(f"Request refused: {exc}") from exc
        if options.get("profile") == "local" and not self.local_title:
            self._refused("spawn form", "the local profile is disabled")
            raise ValueError("Request refused: the local profile is disabled")
        return options

    def _refused(self, what: str, reason: str) -> None:
        hpcgw_audit.emit("refusal", what=what, user=self.user.name, server=self.name or None, reason=reason)

    async def run_pre_spawn_hook(self) -> Any:
        """Before every start (form and REST API): the user's accounts on the
        chosen cluster, for _select (start itself cannot wait for sacctmgr)."""
        self._hpcgw_accounts = {}
        catalog, _ = self._load()
        try:
            choice = catalog.choice_from_options(self.user_options or {})
        except ChoiceError:
            choice = None  # _select refuses it
        if choice is not None:
            self._hpcgw_accounts = await self.hpcgw_user_accounts([choice.cluster])
        return await _awaited(super().run_pre_spawn_hook())

    def _select(self) -> None:
        """Set child class and config from the checked user_options."""
        catalog, raw = self._load()
        accounts, self._hpcgw_accounts = self._hpcgw_accounts or {}, None
        try:
            choice = catalog.choice_from_options(self.user_options or {})
            if choice is not None:
                # Not looked up (no pre-spawn hook ran): refused, never granted.
                choice = hpcgw_accounts.settle(catalog, choice, accounts.get(choice.cluster))
        except ChoiceError as exc:
            self._refused("spawn options", str(exc))
            raise web.HTTPError(400, f"Request refused: {exc}") from exc
        self._hpcgw_choice = choice
        if choice is None:
            if not self.local_title:
                self._refused("spawn options", "the local profile is disabled")
                raise web.HTTPError(400, "Request refused: the local profile is disabled")
            local_class = import_item(self.local_class)
            other = other_local_server(self.user.spawners.values(), self.name, local_class)
            if other is not None:
                self._refused("spawn options", "a second local server")
                raise web.HTTPError(400, one_local_server_message(other))
            self.child_profile = "local"
            self.hpcgw_cluster = ""
            self.hpcgw_scheduler = "local"
            self.hpcgw_queue = LOCAL
            self.child_class = local_class
            self.child_config = dict(self.local_config)
            return
        cluster = catalog.cluster(choice.cluster)
        cluster_raw = next(c for c in raw["clusters"] if c["name"] == cluster.name)
        self.child_profile = str(self.user_options.get("profile", "custom"))
        self.hpcgw_cluster = cluster.name
        self.hpcgw_scheduler = cluster.scheduler
        self.hpcgw_queue = choice.queue
        self.child_class = import_item(SCHEDULER_CLASSES[cluster.scheduler])
        self.child_config = child_config(catalog, choice, cluster_raw.get("spawner", {}))
        self.child_config["req_gateway_tag"] = self.gateway_tag
        self.log.info("Spawn for %s: %s", self.user.name, describe(catalog, choice))

    def construct_child(self) -> Any:
        # Only a start chooses a class from user_options, checked here. When
        # JupyterHub loads a user's (empty or saved) state, WrapSpawner builds
        # a child too: an idle placeholder, or the saved server's class set by
        # load_child_class. ProfilesSpawner.construct_child is skipped: its
        # select_profile falls back to a default for unknown keys.
        if self.child_spawner is None and self._starting:
            self._select()
        return super(ProfilesSpawner, self).construct_child()

    _starting = False
    _hpcgw_choice: Choice | None = None
    _hpcgw_spawn_audited = False

    def start(self) -> Any:
        # A new start always re-checks the options (REST API included).
        self.child_spawner = None
        self.child_state = {}
        self._hpcgw_choice = None
        self._hpcgw_spawn_audited = False
        forget_end(self.user.name, self.name)  # the notice of this server's last end (local servers too)
        self._starting = True
        try:
            self.construct_child()
        finally:
            self._starting = False
        if hasattr(self.child_spawner, "hpcgw_persist"):
            # A batch job: the spawn's audit line once the job id is known.
            self.child_spawner.hpcgw_persist = self._persist_state
        else:
            self._audit_spawn()
        # Counted per cluster and queue (hpcgw_spawns_total, the spawn's
        # duration), audited, and kept in the spawn record (usage report).
        return METRICS.observe_spawn(self.hpcgw_cluster or LOCAL, self.hpcgw_queue,
                                     hpcgw_spawnlog.logged(self, self._audited_start(self.child_spawner.start())))

    async def _audited_start(self, started: Any) -> Any:
        try:
            return await _awaited(started)
        except Exception as exc:
            message = str(getattr(exc, "jupyterhub_message", "") or exc).strip().splitlines()
            hpcgw_audit.emit("spawn_failed", **self.hpcgw_audit_fields(),
                             reason=message[0] if message else type(exc).__name__)
            raise

    def _audit_spawn(self) -> None:
        if not self._hpcgw_spawn_audited:
            self._hpcgw_spawn_audited = True
            hpcgw_audit.emit("spawn", **self.hpcgw_audit_fields())

    def hpcgw_audit_fields(self) -> dict[str, Any]:
        """What the audit log says about this server: user, profile, cluster,
        queue, resources and job id (as far as known; restored servers carry
        their cluster and job id only)."""
        fields: dict[str, Any] = {"user": self.user.name, "server": self.name or None,
                                  "profile": self.child_profile or None,
                                  "cluster": self.hpcgw_cluster or None}
        if self._hpcgw_choice is not None:
            fields.update({k: v for k, v in dataclasses.asdict(self._hpcgw_choice).items() if v not in ("", None)})
        job_id = getattr(self.child_spawner, "job_id", "") if self.child_spawner is not None else ""
        fields["job_id"] = str(job_id or "") or None
        return fields

    def _persist_state(self) -> None:
        """Save the state (the child's job id) now, not only once start returns:
        a hub restarted meanwhile then finds the job instead of forgetting it."""
        if self.orm_spawner is not None:
            self.orm_spawner.state = self.get_state()
            self.db.commit()
        self._audit_spawn()

    def hpcgw_page_data(self) -> dict[str, Any]:
        """The job's data for the progress page (spawn_pending.html renders it
        as JSON; later changes come with the progress events); {} for a
        server that is no batch job."""
        from datetime import datetime

        from hpcgw_progress import event

        view = getattr(self.child_spawner, "hpcgw_job_view", None)
        return dict(event(view(), datetime.now())["hpcgw"]) if callable(view) else {}

    def load_child_class(self, state: dict[str, Any]) -> None:
        # Restoring a running server after a hub restart: the class follows
        # the scheduler saved with it, not today's catalog. A state saved
        # before hpcgw_batch (commands pre-quoted for ssh, no hpcgw_submit)
        # gives the same command lines; its job id is checked before use.
        self.child_profile = state.get("profile", "")
        self.hpcgw_cluster = state.get("hpcgw_cluster", "")
        self.hpcgw_scheduler = state.get("hpcgw_scheduler", "")
        if self.hpcgw_scheduler in SCHEDULER_CLASSES:
            self.child_class = import_item(SCHEDULER_CLASSES[self.hpcgw_scheduler])
        elif self.hpcgw_scheduler == "local":
            self.child_class = import_item(self.local_class)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["hpcgw_cluster"] = self.hpcgw_cluster
        state["hpcgw_scheduler"] = self.hpcgw_scheduler
        return state

    def clear_state(self) -> None:
        super().clear_state()
        self.hpcgw_cluster = ""
        self.hpcgw_scheduler = ""
