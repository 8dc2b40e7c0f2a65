"""The spawn page's data: what the form offers, per queue its limits, help
texts, free nodes and whether a start estimate is available, the user's last
choice and a refused field's message.

Pure Python (no JupyterHub import), unit-tested in ``tests/unit``. The hub's
page template ``spawn.html`` (role spawn_profiles, in the hub's template
path) renders the fields from this data and puts all of it into the page as
JSON (``<script type="application/json" id="hpcgw-form-data">``), which the
page's small script reads to set each field when the cluster or queue
changes. The server-side checks (:mod:`hpcgw_profiles`) stay the authority.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from hpcgw_accounts import UserAccounts, from_data, notice
from hpcgw_profiles import CUSTOM_KEY, LOCAL_KEY, RESOURCES, Catalog, ChoiceError, Choice, Queue, format_walltime
from hpcgw_sched import Free

CUSTOM_LABEL = "Custom: choose cluster, queue and size"
# Field name -> (element id, label with its unit, unit in help texts).
FIELDS: dict[str, tuple[str, str, str]] = {
    "profile": ("hpcgw-profile", "Profile", ""),
    "cluster_queue": ("hpcgw-cq", "Cluster / queue", ""),
    "account": ("hpcgw-account", "Account", ""),
    "cores": ("hpcgw-cores", "Cores", "cores"),
    "memory_gb": ("hpcgw-memory_gb", "Memory (GB)", "GB"),
    "walltime_min": ("hpcgw-walltime_min", "Walltime (h:mm)", "h:mm"),
    "gpus": ("hpcgw-gpus", "GPUs", "GPUs"),
}


def field_id(name: str) -> str:
    return FIELDS.get(name, FIELDS["profile"])[0]


def _show(key: str, value: int) -> str:
    return format_walltime(value) if key == "walltime_min" else str(value)


def help_text(key: str, queue: Queue) -> str:
    """'1 to 4 cores, default 1' (walltime in h:mm)."""
    limit = queue.limits[key]
    return (f"{_show(key, limit.minimum)} to {_show(key, limit.maximum)} {FIELDS[key][2]}, "
            f"default {_show(key, limit.default)}")


def free_text(free: Optional[Free]) -> str:
    if free is None:
        return ""
    return (f"{free.idle_nodes} of {free.total_nodes} nodes idle, {free.idle_cores} of {free.total_cores} "
            f"cores idle, {free.pending_jobs} job{'s' if free.pending_jobs != 1 else ''} pending")


def summary(choice: Choice) -> str:
    gpus = f", {choice.gpus} GPU{'s' if choice.gpus != 1 else ''}" if choice.gpus else ""
    return (f"{choice.cores} core{'s' if choice.cores != 1 else ''}, {choice.memory_gb} GB, "
            f"walltime {format_walltime(choice.walltime_min)}{gpus}")


def selection(catalog: Catalog, options: Mapping[str, Any], local: bool) -> dict[str, str]:
    """The form's values for saved user_options (the user's last choice); {}
    when they no longer fit the catalog (a preset or queue removed)."""
    try:
        choice = catalog.choice_from_options(options)
    except ChoiceError:
        return {}
    profile = str(options.get("profile") or (CUSTOM_KEY if "cluster" in options else ""))
    if choice is None:
        return {"profile": LOCAL_KEY} if local else {}
    selected = {"profile": profile}
    if profile == CUSTOM_KEY:
        selected.update(cluster_queue=f"{choice.cluster}/{choice.queue}", account=choice.account,
                        cores=str(choice.cores), memory_gb=str(choice.memory_gb),
                        walltime_min=format_walltime(choice.walltime_min), gpus=str(choice.gpus))
    return selected


def page_data(catalog: Catalog, local_title: Optional[str], *, last_options: Optional[Mapping[str, Any]] = None,
              submitted: Optional[Mapping[str, str]] = None, error: Optional[ChoiceError] = None,
              free: Optional[Mapping[str, Mapping[str, Free]]] = None, estimate_clusters: frozenset[str] = frozenset(),
              estimate_url: str = "", accounts: Optional[Mapping[str, UserAccounts]] = None) -> dict[str, Any]:
    """Everything the page shows, as JSON-able data (see the module).

    ``submitted``: the refused form's values (shown again, with ``error``
    beside its field); else ``last_options`` (the spawner's saved
    user_options) pre-select the user's last choice. ``free``: per cluster,
    per partition; ``estimate_clusters``: clusters whose start estimate the
    hub can ask for (SLURM submitted from the gateway). ``accounts``: per
    cluster, the user's own accounts (:mod:`hpcgw_accounts`; the default
    first); a cluster missing there offers the inventory's accounts for
    everyone (``accounts``), or none when they come from SLURM.
    """
    free = free or {}
    accounts = accounts or {}
    profiles: list[dict[str, Any]] = []
    for preset in catalog.presets:
        choice = preset.choice
        profiles.append({"value": preset.key, "label": preset.title, "cluster_queue": f"{choice.cluster}/{choice.queue}",
                         "summary": summary(choice), "estimate": choice.cluster in estimate_clusters})
    if local_title:
        profiles.append({"value": LOCAL_KEY, "label": local_title, "cluster_queue": "", "summary": "",
                         "estimate": False})
    custom = bool(catalog.clusters) and catalog.custom_enabled
    if custom:
        profiles.append({"value": CUSTOM_KEY, "label": CUSTOM_LABEL, "cluster_queue": "", "summary": "",
                         "estimate": False})
    queues: list[dict[str, Any]] = []
    for cluster in catalog.clusters:
        mine = accounts.get(cluster.name)
        if mine is None:
            mine = (from_data(cluster, "", ()) if cluster.account_source == "data"
                    else UserAccounts(error="they were not looked up"))
        for queue in cluster.queues:
            queue_free = free.get(cluster.name, {}).get(queue.name)
            queues.append({
                "value": f"{cluster.name}/{queue.name}",
                "label": f"{cluster.title} / {queue.title}",
                "accounts": list(mine.accounts),
                "account_notice": notice(cluster, mine),
                "estimate": cluster.name in estimate_clusters,
                "gpus": queue.limits["gpus"].maximum > 0,
                "limits": {key: {"min": lim.minimum, "max": lim.maximum, "default": lim.default, "step": 1,
                                 "value": _show(key, lim.default), "help": help_text(key, queue)}
                           for key, lim in queue.limits.items()},
                "free": queue_free.as_dict() if queue_free else None,
                "free_text": free_text(queue_free),
            })
    values = set(p["value"] for p in profiles)
    cq_values = [q["value"] for q in queues]
    if submitted is not None:
        selected = {k: str(v) for k, v in submitted.items() if k in FIELDS}
    else:
        selected = selection(catalog, last_options or {}, bool(local_title))
    if selected.get("profile") not in values:
        selected["profile"] = profiles[0]["value"] if profiles else ""
    if selected.get("cluster_queue") not in cq_values:
        preset = next((p for p in profiles if p["value"] == selected["profile"] and p["cluster_queue"]), None)
        selected["cluster_queue"] = preset["cluster_queue"] if preset else (cq_values[0] if cq_values else "")
    chosen = next((q for q in queues if q["value"] == selected["cluster_queue"]), None)
    if chosen is not None:
        for key in RESOURCES:
            selected.setdefault(key, chosen["limits"][key]["value"])
        if chosen["accounts"] and selected.get("account") not in chosen["accounts"]:
            selected["account"] = chosen["accounts"][0]
    problem = None
    if error is not None:
        name = error.field if error.field in FIELDS else "profile"
        if selected["profile"] != CUSTOM_KEY:
            name = "profile"  # a preset's (or the local profile's) choice: the custom fields are hidden
        elif chosen is not None and ((name == "account" and not chosen["accounts"])
                                     or (name == "gpus" and not chosen["gpus"])):
            name = "cluster_queue"  # that field is hidden for this queue: say it beside the queue
        problem = {"field": name, "id": field_id(name), "message": str(error)}
    return {"profiles": profiles, "queues": queues, "custom": custom, "selected": selected, "error": problem,
            "fields": {name: {"id": fid, "label": label} for name, (fid, label, _) in FIELDS.items()},
            "estimate_url": estimate_url}


def form_from_json(body: Any) -> dict[str, list[str]]:
    """The estimate API's body (the form's fields as a JSON object of strings)
    -> form data for :meth:`Catalog.options_from_form` (which checks it)."""
    if not isinstance(body, dict) or len(body) > len(FIELDS):
        raise ChoiceError("the body must be a JSON object of the form's fields", "profile")
    form: dict[str, list[str]] = {}
    for key, value in body.items():
        if not isinstance(key, str) or key not in FIELDS:
            raise ChoiceError(f"unknown field {str(key)[:40]!r}", "profile")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ChoiceError(f"field {key!r} must be a string", key)
        form[key] = [str(value)]
    return form
