"""ProfilesSpawner whose choices are held to the site's cluster data.

Upstream wrapspawner.ProfilesSpawner falls back to its default spawner for a
profile key it does not know, and batchspawner's callback sets any attribute
a job's token posts. Here:

* the spawn form and REST ``user_options`` go through
  :mod:`hpcgw_profiles` - unknown keys, profiles, clusters, queues, accounts
  and out-of-range or non-integer resources are refused before anything
  starts;
* the child spawner class is chosen by the cluster's scheduler (the
  guarded classes of :mod:`hpcgw_batch`: job ids checked, commands
  shell-quoted), and its traits come only from the admin's data and the
  checked choice - it never sees the raw ``user_options``;
* a batch job's state (its id) is saved as soon as it is submitted, so a
  hub restarted during the spawn finds the job (and cancels it) instead of
  leaving an orphan.

The jobs' callback (``/hub/api/batchspawner``) is role jupyterhub's
(``hpcgw_hub_api``), in place whatever the spawner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tornado import web
from traitlets import Dict, Unicode
from traitlets.utils.importstring import import_item
from wrapspawner import ProfilesSpawner

from hpcgw_form import form_html
from hpcgw_profiles import Catalog, ChoiceError, child_config, describe

SCHEDULER_CLASSES = {
    "slurm": "hpcgw_batch.GatewaySlurmSpawner",
    "torque": "hpcgw_batch.GatewayTorqueSpawner",
    "pbs": "hpcgw_batch.GatewayPBSSpawner",
    "sge": "hpcgw_batch.GatewayGridengineSpawner",
    "lsf": "hpcgw_batch.GatewayLsfSpawner",
    "condor": "hpcgw_batch.GatewayCondorSpawner",
}


class GatewaySpawner(ProfilesSpawner):
    """Profiles from the cluster catalog, each choice checked server-side."""

    catalog_file = Unicode("/etc/jupyterhub/clusters.json", config=True,
                           help="JSON rendered by the spawn_profiles role.")
    local_title = Unicode("", config=True, help="Title of the local profile; empty disables it.")
    local_class = Unicode("sudospawner.SudoSpawner", config=True,
                          help="Spawner class of the local profile.")
    local_config = Dict(config=True, help="Traits of the local profile's spawner.")
    gateway_tag = Unicode("", config=True,
                          help="This gateway's mark on its batch jobs (comment hpcgw:<tag>), read by the reaper.")
    hpcgw_cluster = Unicode("")
    hpcgw_scheduler = Unicode("")

    _catalog: Catalog | None = None
    _raw: dict[str, Any] | None = None

    def _load(self) -> tuple[Catalog, dict[str, Any]]:
        if self._catalog is None or self._raw is None:
            raw = json.loads(Path(self.catalog_file).read_text(encoding="utf-8"))
            GatewaySpawner._raw = raw
            GatewaySpawner._catalog = Catalog.from_data(raw)
        assert self._catalog is not None and self._raw is not None
        return self._catalog, self._raw

    def _options_form_default(self) -> str:
        catalog, _ = self._load()
        return form_html(catalog, self.local_title or None)

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:
        catalog, _ = self._load()
        try:
            options = catalog.options_from_form(formdata)
        except ChoiceError as exc:
            raise ValueError(f"Request refused: {exc}") from exc
        if options.get("profile") == "local" and not self.local_title:
            raise ValueError("Request refused: the local profile is disabled")
        return options

    def _select(self) -> None:
        """Set child class and config from the checked user_options."""
        catalog, raw = self._load()
        try:
            choice = catalog.choice_from_options(self.user_options or {})
        except ChoiceError as exc:
            raise web.HTTPError(400, f"Request refused: {exc}") from exc
        if choice is None:
            if not self.local_title:
                raise web.HTTPError(400, "Request refused: the local profile is disabled")
            self.child_profile = "local"
            self.hpcgw_cluster = ""
            self.hpcgw_scheduler = "local"
            self.child_class = import_item(self.local_class)
            self.child_config = dict(self.local_config)
            return
        cluster = catalog.cluster(choice.cluster)
        cluster_raw = next(c for c in raw["clusters"] if c["name"] == cluster.name)
        self.child_profile = str(self.user_options.get("profile", "custom"))
        self.hpcgw_cluster = cluster.name
        self.hpcgw_scheduler = cluster.scheduler
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

    def start(self) -> Any:
        # A new start always re-checks the options (REST API included).
        self.child_spawner = None
        self.child_state = {}
        self._starting = True
        try:
            self.construct_child()
        finally:
            self._starting = False
        if hasattr(self.child_spawner, "hpcgw_persist"):
            self.child_spawner.hpcgw_persist = self._persist_state
        return self.child_spawner.start()

    def _persist_state(self) -> None:
        """Save the state (the child's job id) now, not only once start returns:
        a hub restarted meanwhile then finds the job instead of forgetting it."""
        if self.orm_spawner is not None:
            self.orm_spawner.state = self.get_state()
            self.db.commit()

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
