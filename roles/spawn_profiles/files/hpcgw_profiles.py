"""Clusters, queues and presets as data; user choices checked against them.

Pure Python (no JupyterHub import) so that the rules are unit-tested on
their own; ``hpcgw_spawner`` wires them into wrapspawner's ProfilesSpawner.

Every value that can reach a batch script passes through here: names must
be known, numbers must be plain integers within the chosen queue's limits,
and unknown or repeated keys are refused. The same rules serve the spawn
form and the REST API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

SCHEDULERS = ("slurm", "torque", "pbs", "sge", "lsf", "condor")
SUBMIT_MODES = ("local", "ssh")
STATUS_QUERIES = ("shared", "user")
# Where a user's accounts on a cluster come from: the inventory's data
# (accounts for everyone, account_grants per user or group) or SLURM's
# associations (sacctmgr, asked by the hub account; hpcgw_accounts).
ACCOUNT_SOURCES = ("data", "sacctmgr")
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")
ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]{1,200}\Z")
# A SLURM ClusterName (sacctmgr_cluster) and a user or group name in account_grants.
SLURM_CLUSTER_RE = re.compile(r"^[a-z0-9_-]{1,40}\Z")
MEMBER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}\Z")
HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?\Z")
INT_RE = re.compile(r"^[0-9]{1,7}\Z")
# A walltime as the form shows it, h:mm (minutes 00-59); plain minutes stay accepted.
HMM_RE = re.compile(r"^([0-9]{1,4}):([0-5][0-9])\Z")
RESOURCES = ("cores", "memory_gb", "walltime_min", "gpus")
LOCAL_KEY = "local"
CUSTOM_KEY = "custom"
FORM_KEYS = frozenset({"profile", "cluster", "queue", "account", *RESOURCES})
FORM_FIELDS = frozenset({"profile", "cluster_queue", "account", *RESOURCES})
CLUSTER_KEYS = frozenset({"name", "title", "scheduler", "submit", "login_host", "accounts", "queues",
                          "script_lines", "notebook_prefix", "batch_script", "spawner", "status_query",
                          "port_range", "account_source", "account_grants", "account_required",
                          "sacctmgr_cluster", "parallel_environment"})
# A cluster's port_range: "LOW-HIGH", unprivileged ports only.
PORT_RANGE_RE = re.compile(r"^([0-9]{1,5})-([0-9]{1,5})\Z")
MIN_PORT = 1024
MAX_PORT = 65535
# The node-side launcher that picks a port inside the range (role notebook_env's
# <prefix>/bin/hpcgw-singleuser); without a range batchspawner's own picks any port.
RANGE_LAUNCHER = "hpcgw-singleuser"
# The job's environment of the nodes (role notebook_env writes it into the
# prefix: Lmod's login setup, ...), sourced before the script_lines when present.
JOB_ENV = "etc/hpcgw-job-env.sh"
GRANT_KEYS = frozenset({"name", "users", "groups"})
QUEUE_KEYS = frozenset({"name", "title", "script_lines", "parallel_environment", *RESOURCES})
# A Grid Engine parallel environment (qconf -spl): the batch script asks for
# `-pe <name> <cores>` when a job wants more than one core.
PE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}\Z")
# Schedulers whose batch template reads a parallel environment.
PE_SCHEDULERS = ("sge",)
PRESET_KEYS = frozenset({"key", "title", "cluster", "queue", "account", *RESOURCES})


class ConfigError(ValueError):
    """The admin's data is wrong; the message names the variable."""


class ChoiceError(ValueError):
    """A user's choice is refused; the message says why.

    ``field`` names the spawn form's field it concerns (``profile``,
    ``cluster_queue``, ``account``, a resource), "" when none: the form
    shows the message beside that field.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Range:
    minimum: int
    default: int
    maximum: int

    def check(self, value: int, what: str) -> int:
        if not self.minimum <= value <= self.maximum:
            raise ChoiceError(f"{what} must be between {self.minimum} and {self.maximum}, got {value}", what)
        return value


@dataclass(frozen=True)
class Queue:
    name: str
    title: str
    limits: Mapping[str, Range]
    script_lines: tuple[str, ...]
    # Grid Engine: the parallel environment of a job with more than one core
    # (the queue's own, else its cluster's; "" for other schedulers).
    parallel_environment: str = ""


@dataclass(frozen=True)
class Grant:
    """An account of a cluster for some users and the members of some groups (account_grants)."""

    name: str
    users: frozenset[str]
    groups: frozenset[str]


@dataclass(frozen=True)
class Cluster:
    name: str
    title: str
    scheduler: str
    submit: str
    login_host: str
    accounts: tuple[str, ...]
    queues: tuple[Queue, ...]
    script_lines: tuple[str, ...]
    notebook_prefix: str
    status_query: str = "user"
    # The ports the single-user server may listen on, (low, high); None: any.
    port_range: tuple[int, int] | None = None
    account_source: str = "data"
    account_grants: tuple[Grant, ...] = ()
    account_required: bool = True
    sacctmgr_cluster: str = ""

    @property
    def uses_accounts(self) -> bool:
        """Whether jobs on this cluster run under an account the user must have."""
        return bool(self.accounts or self.account_grants or self.account_source == "sacctmgr")

    @property
    def static_accounts(self) -> frozenset[str]:
        """Every account the inventory names (data source): a choice outside it is refused for anyone."""
        return frozenset(self.accounts) | {g.name for g in self.account_grants}

    @property
    def same_for_everyone(self) -> bool:
        """Every user has the same accounts (only ``accounts``): the first is everyone's default."""
        return self.account_source == "data" and not self.account_grants

    def queue(self, name: str) -> Queue:
        for queue in self.queues:
            if queue.name == name:
                return queue
        raise ChoiceError(f"unknown queue {name!r} on cluster {self.name!r}", "cluster_queue")


@dataclass(frozen=True)
class Choice:
    """A validated request: everything a batch script will see."""

    cluster: str
    queue: str
    cores: int
    memory_gb: int
    walltime_min: int
    gpus: int
    account: str


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    choice: Choice


def _config_error(path: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}")


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise _config_error(path, f"must match {NAME_RE.pattern} (got {value!r})")
    return value


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _config_error(path, f"must be a non-negative integer (got {value!r})")
    return value


def _lines(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and "\n" not in v for v in value):
        raise _config_error(path, "must be a list of single-line strings")
    return tuple(value)


def _range(data: Any, path: str, minimum: int) -> Range:
    if not isinstance(data, Mapping) or set(data) - {"default", "max"} or "max" not in data:
        raise _config_error(path, "must be a dict with max and optional default")
    maximum = _int(data["max"], f"{path}.max")
    default = _int(data.get("default", minimum), f"{path}.default")
    if maximum < minimum:
        raise _config_error(f"{path}.max", f"must be at least {minimum} (got {maximum})")
    if not minimum <= default <= maximum:
        raise _config_error(f"{path}.default", f"{default} is outside {minimum}..{maximum}; lower it or raise max")
    return Range(minimum, default, maximum)


def _unique(names: Iterable[str], path: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _config_error(path, f"duplicate name {name!r}; names must be unique")
        seen.add(name)


def _known_keys(data: Any, allowed: frozenset[str], path: str) -> None:
    if not isinstance(data, Mapping):
        raise _config_error(path, "must be a dict")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _config_error(path, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _parallel_environment(data: Mapping[str, Any], path: str, scheduler: Any) -> str:
    """A cluster's or queue's parallel_environment: "" when not set; a name
    only where the scheduler's batch template reads one (Grid Engine)."""
    value = data.get("parallel_environment")
    if value is None or value == "":
        return ""
    if scheduler not in PE_SCHEDULERS:
        raise _config_error(f"{path}.parallel_environment", f"applies to scheduler: {', '.join(PE_SCHEDULERS)} "
                            f"only (this cluster's is {scheduler!r}); remove it")
    if not isinstance(value, str) or not PE_RE.match(value):
        raise _config_error(f"{path}.parallel_environment", f"must be a Grid Engine parallel environment's name "
                            f"(qconf -spl), matching {PE_RE.pattern} (got {value!r})")
    return value


def _queue(data: Any, path: str, scheduler: Any = "", cluster_pe: str = "") -> Queue:
    _known_keys(data, QUEUE_KEYS, path)
    name = _name(data.get("name"), f"{path}.name")
    limits = {
        "cores": _range(data.get("cores", {"max": 1}), f"{path}.cores", 1),
        "memory_gb": _range(data.get("memory_gb", {"max": 1}), f"{path}.memory_gb", 1),
        "walltime_min": _range(data.get("walltime_min", {"max": 60}), f"{path}.walltime_min", 1),
        "gpus": _range(data.get("gpus", {"max": 0}), f"{path}.gpus", 0),
    }
    pe = _parallel_environment(data, path, scheduler) or cluster_pe
    if scheduler in PE_SCHEDULERS and limits["cores"].maximum > 1 and not pe:
        raise _config_error(f"{path}.parallel_environment", f"queue {name!r} offers up to {limits['cores'].maximum} "
                            "cores, and a Grid Engine job gets more than one slot only through a parallel "
                            "environment: set parallel_environment on the queue or its cluster (e.g. smp, one "
                            "with allocation_rule $pe_slots), or lower cores.max to 1")
    return Queue(name, str(data.get("title") or name), limits,
                 _lines(data.get("script_lines"), f"{path}.script_lines"), pe)


def default_status_query(scheduler: Any, submit: Any) -> str:
    """shared for a SLURM cluster the gateway submits to itself, else user."""
    return "shared" if scheduler == "slurm" and submit == "local" else "user"


def status_query(data: Mapping[str, Any]) -> str:
    """A cluster's status_query: as given, else its default (not validated here)."""
    given = data.get("status_query")
    return str(given) if given else default_status_query(data.get("scheduler"), data.get("submit", "local"))


def parse_port_range(value: Any, path: str) -> tuple[int, int] | None:
    """A cluster's port_range "LOW-HIGH" -> (low, high); None when not set.

    Refused: anything but two numbers joined by "-", a reversed range, and
    ports below 1024 (privileged: a user's server cannot listen there) or
    above 65535.
    """
    if value is None or value == "":
        return None
    match = PORT_RANGE_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise _config_error(path, f'must be "LOW-HIGH", e.g. "9000-9099" (got {value!r})')
    low, high = int(match.group(1)), int(match.group(2))
    if low > high:
        raise _config_error(path, f"{value!r} is reversed: the low end comes first ({high}-{low})")
    if low < MIN_PORT:
        raise _config_error(path, f"{value!r} starts below {MIN_PORT}: ports under {MIN_PORT} are privileged, "
                                  "a user's server cannot listen there")
    if high > MAX_PORT:
        raise _config_error(path, f"{value!r} ends above {MAX_PORT}, the highest port")
    return low, high


def _cluster(data: Any, path: str, default_prefix: str) -> Cluster:
    _known_keys(data, CLUSTER_KEYS, path)
    name = _name(data.get("name"), f"{path}.name")
    scheduler = data.get("scheduler")
    if scheduler not in SCHEDULERS:
        raise _config_error(f"{path}.scheduler", f"must be one of {', '.join(SCHEDULERS)} (got {scheduler!r})")
    submit = data.get("submit", "local")
    if submit not in SUBMIT_MODES:
        raise _config_error(f"{path}.submit", f"must be one of {', '.join(SUBMIT_MODES)} (got {submit!r})")
    login_host = str(data.get("login_host") or "")
    if submit == "ssh" and not HOST_RE.match(login_host):
        raise _config_error(f"{path}.login_host", "must name the login host when submit is ssh")
    accounts = tuple(data.get("accounts") or ())
    for i, account in enumerate(accounts):
        if not isinstance(account, str) or not ACCOUNT_RE.match(account):
            raise _config_error(f"{path}.accounts[{i}]", f"must match {ACCOUNT_RE.pattern} (got {account!r})")
    _unique(accounts, f"{path}.accounts")
    source, grants, required, sacctmgr_cluster = _account_settings(data, path, name, scheduler, submit, accounts)
    raw_queues = data.get("queues")
    if not isinstance(raw_queues, list) or not raw_queues:
        raise _config_error(f"{path}.queues", "must be a non-empty list")
    cluster_pe = _parallel_environment(data, path, scheduler)
    queues = tuple(_queue(q, f"{path}.queues[{i}]", scheduler, cluster_pe) for i, q in enumerate(raw_queues))
    _unique((q.name for q in queues), f"{path}.queues")
    prefix = str(data.get("notebook_prefix") or default_prefix)
    if not PATH_RE.match(prefix) or ".." in prefix:
        raise _config_error(f"{path}.notebook_prefix", f"must be an absolute path (got {prefix!r})")
    query = data.get("status_query") or default_status_query(scheduler, submit)
    if query not in STATUS_QUERIES:
        raise _config_error(f"{path}.status_query", f"must be one of {', '.join(STATUS_QUERIES)} (got {query!r})")
    if query == "shared" and (scheduler != "slurm" or submit != "local"):
        raise _config_error(f"{path}.status_query", "shared needs scheduler: slurm and submit: local (the hub "
                            "queries as itself, without sudo or ssh); use user")
    port_range = parse_port_range(data.get("port_range"), f"{path}.port_range")
    return Cluster(name, str(data.get("title") or name), scheduler, submit, login_host,
                   accounts, queues, _lines(data.get("script_lines"), f"{path}.script_lines"), prefix, query,
                   port_range, source, grants, required, sacctmgr_cluster)


def _members(value: Any, path: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and MEMBER_RE.match(v) for v in value):
        raise _config_error(path, f"must be a list of user or group names matching {MEMBER_RE.pattern} (got {value!r})")
    return frozenset(value)


def _account_settings(data: Mapping[str, Any], path: str, name: str, scheduler: Any, submit: Any,
                      accounts: tuple[str, ...]) -> tuple[str, tuple[Grant, ...], bool, str]:
    """A cluster's account_source, account_grants, account_required and sacctmgr_cluster, checked."""
    source = data.get("account_source", "data")
    if source not in ACCOUNT_SOURCES:
        raise _config_error(f"{path}.account_source", f"must be one of {', '.join(ACCOUNT_SOURCES)} (got {source!r})")
    raw_grants = data.get("account_grants") or []
    if not isinstance(raw_grants, list):
        raise _config_error(f"{path}.account_grants", "must be a list of {name, users, groups}")
    grants: list[Grant] = []
    for i, raw in enumerate(raw_grants):
        gpath = f"{path}.account_grants[{i}]"
        _known_keys(raw, GRANT_KEYS, gpath)
        account = raw.get("name")
        if not isinstance(account, str) or not ACCOUNT_RE.match(account):
            raise _config_error(f"{gpath}.name", f"must match {ACCOUNT_RE.pattern} (got {account!r})")
        users, groups = _members(raw.get("users"), f"{gpath}.users"), _members(raw.get("groups"), f"{gpath}.groups")
        if not users and not groups:
            raise _config_error(gpath, "names no users and no groups; grant the account to someone or remove it")
        grants.append(Grant(account, users, groups))
    _unique((g.name for g in grants), f"{path}.account_grants")
    required = data.get("account_required", True)
    if not isinstance(required, bool):
        raise _config_error(f"{path}.account_required", f"must be true or false (got {required!r})")
    sacctmgr_cluster = data.get("sacctmgr_cluster")
    if source == "sacctmgr":
        if scheduler != "slurm" or submit != "local":
            raise _config_error(f"{path}.account_source", "sacctmgr needs scheduler: slurm and submit: local (the hub "
                                "asks slurmdbd as itself, with the gateway's SLURM client); list the accounts as data "
                                "(accounts, account_grants) for this cluster")
        if accounts or grants:
            raise _config_error(f"{path}.account_source", "sacctmgr takes every user's accounts from SLURM; remove "
                                "accounts and account_grants from this cluster (or use account_source: data)")
        sacctmgr_cluster = name if sacctmgr_cluster is None else sacctmgr_cluster
        if not isinstance(sacctmgr_cluster, str) or not SLURM_CLUSTER_RE.match(sacctmgr_cluster):
            raise _config_error(f"{path}.sacctmgr_cluster", f"must be SLURM's ClusterName, matching "
                                f"{SLURM_CLUSTER_RE.pattern} (got {sacctmgr_cluster!r})")
    elif sacctmgr_cluster is not None:
        raise _config_error(f"{path}.sacctmgr_cluster", "applies to account_source: sacctmgr only")
    return str(source), tuple(grants), required, str(sacctmgr_cluster or "")


class Catalog:
    """The site's clusters and presets, loaded once from the rendered JSON."""

    def __init__(self, clusters: Iterable[Cluster], presets: Iterable[Preset] = (),
                 custom_enabled: bool = True) -> None:
        self.clusters = tuple(clusters)
        self.presets = tuple(presets)
        self.custom_enabled = custom_enabled

    @classmethod
    def from_data(cls, data: Mapping[str, Any], var: str = "spawn_profiles") -> Catalog:
        raw_clusters = data.get("clusters") or []
        if not isinstance(raw_clusters, list):
            raise _config_error(f"{var}_clusters", "must be a list")
        prefix = str(data.get("notebook_prefix") or "/opt/hpcgw-notebook")
        clusters = [_cluster(c, f"{var}_clusters[{i}]", prefix) for i, c in enumerate(raw_clusters)]
        _unique((c.name for c in clusters), f"{var}_clusters")
        catalog = cls(clusters)
        presets: list[Preset] = []
        for i, raw in enumerate(data.get("presets") or []):
            path = f"{var}_presets[{i}]"
            _known_keys(raw, PRESET_KEYS, path)
            key = _name(raw.get("key"), f"{path}.key")
            if key in (LOCAL_KEY, CUSTOM_KEY):
                raise _config_error(f"{path}.key", f"{key!r} is reserved")
            values = {k: raw[k] for k in ("cluster", "queue", "account", *RESOURCES) if k in raw}
            try:
                choice = catalog.choice_from_values({k: str(v) for k, v in values.items()})
            except ChoiceError as exc:
                raise _config_error(path, f"{exc} (fix the preset or the queue it names)") from exc
            presets.append(Preset(key, str(raw.get("title") or key), choice))
        _unique((p.key for p in presets), f"{var}_presets")
        custom = data.get("custom_enabled", True)
        if not isinstance(custom, bool):
            raise _config_error(f"{var}_custom_enabled", f"must be true or false (got {custom!r})")
        return cls(clusters, presets, custom)

    def cluster(self, name: str) -> Cluster:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise ChoiceError(f"unknown cluster {name!r}", "cluster_queue")

    def choice_from_values(self, values: Mapping[str, str]) -> Choice:
        """Validate string values (form fields, preset data) into a Choice."""
        unknown = set(values) - FORM_KEYS
        if unknown:
            raise ChoiceError(f"unknown field(s): {', '.join(sorted(unknown))}", "profile")
        cluster = self.cluster(values.get("cluster", ""))
        queue = cluster.queue(values.get("queue", ""))
        numbers: dict[str, int] = {}
        for key in RESOURCES:
            limit = queue.limits[key]
            raw = values.get(key, "")
            if raw == "":
                numbers[key] = limit.default
                continue
            if key == "walltime_min":
                numbers[key] = limit.check(parse_walltime(raw), key)
                continue
            if not INT_RE.match(raw):
                raise ChoiceError(f"{key} must be a whole number, got {raw!r}", key)
            numbers[key] = limit.check(int(raw), key)
        # Whether the account is the user's own is settled per user
        # (hpcgw_accounts.settle); here: it is one the cluster can have at all.
        account = values.get("account", "")
        if account and (not cluster.uses_accounts or not ACCOUNT_RE.match(account)
                        or (cluster.account_source == "data" and account not in cluster.static_accounts)):
            raise ChoiceError(f"unknown account {account[:64]!r} on cluster {cluster.name!r}", "account")
        if not account and cluster.accounts and cluster.same_for_everyone:
            account = cluster.accounts[0]
        return Choice(cluster.name, queue.name, numbers["cores"], numbers["memory_gb"],
                      numbers["walltime_min"], numbers["gpus"], account)

    def options_from_form(self, form: Mapping[str, list[str]]) -> dict[str, str]:
        """A spawn form's fields -> user_options (validated, then re-checked at start).

        The custom fields are read only when the custom profile is picked; a
        preset or the local profile yields just its key.
        """
        values: dict[str, str] = {}
        for key, items in form.items():
            if key not in FORM_FIELDS:
                raise ChoiceError(f"unknown field {key!r}", "profile")
            if len(items) != 1 or not isinstance(items[0], str):
                raise ChoiceError(f"field {key!r} must be given once", key)
            values[key] = items[0].strip()
        profile = values.get("profile", "")
        if profile != CUSTOM_KEY:
            options = {"profile": profile}
        else:
            cluster, _, queue = values.get("cluster_queue", "").partition("/")
            options = {"profile": CUSTOM_KEY, "cluster": cluster, "queue": queue}
            options.update({k: values[k] for k in ("account", *RESOURCES) if values.get(k)})
        choice = self.choice_from_options(options)
        if choice is not None and "walltime_min" in options:
            options["walltime_min"] = str(choice.walltime_min)  # h:mm from the form, kept as minutes
        return options

    def choice_from_options(self, options: Mapping[str, Any]) -> Choice | None:
        """user_options (form or REST API) -> Choice; None for the local profile."""
        values: dict[str, str] = {}
        for key, value in options.items():
            if key not in FORM_KEYS:
                raise ChoiceError(f"unknown option {key!r}", "profile")
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ChoiceError(f"option {key!r} must be a string or an integer", _form_field(key))
            values[key] = str(value)
        profile = values.pop("profile", CUSTOM_KEY if "cluster" in values else "")
        if profile == LOCAL_KEY:
            if values:
                raise ChoiceError("the local profile takes no other options", "profile")
            return None
        if profile == CUSTOM_KEY:
            if not self.custom_enabled:
                raise ChoiceError("custom requests are disabled; pick a preset", "profile")
            return self.choice_from_values(values)
        for preset in self.presets:
            if preset.key == profile:
                if values:
                    raise ChoiceError(f"preset {profile!r} takes no other options", "profile")
                return preset.choice
        raise ChoiceError(f"unknown profile {profile!r}", "profile")


def _form_field(key: str) -> str:
    """The spawn form's field of a user_options key."""
    return "cluster_queue" if key in ("cluster", "queue") else key


def parse_walltime(raw: str) -> int:
    """Minutes of a walltime given as h:mm (the form) or as plain minutes (the REST API)."""
    hmm = HMM_RE.match(raw)
    if hmm:
        return int(hmm.group(1)) * 60 + int(hmm.group(2))
    if INT_RE.match(raw):
        return int(raw)
    raise ChoiceError(f"walltime_min must be h:mm or whole minutes, got {raw!r}", "walltime_min")


def format_walltime(minutes: int) -> str:
    """h:mm of a number of minutes (the form's spelling)."""
    hours, rest = divmod(minutes, 60)
    return f"{hours}:{rest:02d}"


def batchspawner_traits(catalog: Catalog, choice: Choice) -> dict[str, str]:
    """The batchspawner req_* traits of a validated choice."""
    cluster = catalog.cluster(choice.cluster)
    queue = cluster.queue(choice.queue)
    hook = f"{cluster.notebook_prefix}/{JOB_ENV}"
    prologue = "\n".join((f"export PATH={cluster.notebook_prefix}/bin:$PATH",
                          f"if [ -r {hook} ]; then . {hook}; fi")
                         + cluster.script_lines + queue.script_lines)
    hours, minutes = divmod(choice.walltime_min, 60)
    traits = {
        "req_partition": choice.queue,
        "req_queue": choice.queue,
        "req_nprocs": str(choice.cores),
        "req_memory": f"{choice.memory_gb}G",
        "req_runtime": f"{hours:02d}:{minutes:02d}:00",
        "req_ngpus": str(choice.gpus),
        "req_account": choice.account,
        "req_prologue": prologue,
    }
    if cluster.scheduler in PE_SCHEDULERS:
        # {parallel_environment} of the batch template (sge.sh.j2: -pe <it> <cores> above one core).
        traits["req_parallel_environment"] = queue.parallel_environment
    return traits


def child_config(catalog: Catalog, choice: Choice, spawner: Mapping[str, Any]) -> dict[str, Any]:
    """Traits of the batch spawner started for a validated choice.

    ``spawner`` is the cluster's entry of the rendered catalog (batch script,
    exec prefix). The child also gets the submit mode (``hpcgw_submit``), the
    cluster's title for its messages (``hpcgw_cluster_title``), its name
    (``hpcgw_cluster_name``: its shared status poller), for a cluster with a
    ``port_range`` the launcher that picks a port inside it
    (``batchspawner_singleuser_cmd``) and the range the hub's callback
    accepts (``hpcgw_port_min``, ``hpcgw_port_max``), and empty
    ``user_options``: wrapspawner links every trait the wrapper and the
    child share unless it is set here, and batchspawner 1.3.0 merges
    ``user_options`` into the batch script's variables, so the raw request
    (``{"account": ""}`` next to a valid choice) would overwrite the checked
    values.
    """
    config: dict[str, Any] = dict(spawner)
    config.update(batchspawner_traits(catalog, choice))
    cluster = catalog.cluster(choice.cluster)
    config["hpcgw_submit"] = cluster.submit
    config["hpcgw_cluster_title"] = cluster.title
    config["hpcgw_cluster_name"] = cluster.name
    if cluster.port_range is not None:
        low, high = cluster.port_range
        config["batchspawner_singleuser_cmd"] = f"{RANGE_LAUNCHER} --port-range {low}-{high}"
        config["hpcgw_port_min"], config["hpcgw_port_max"] = low, high
    config["user_options"] = {}
    return config


def describe(catalog: Catalog, choice: Choice) -> str:
    cluster = catalog.cluster(choice.cluster)
    queue = cluster.queue(choice.queue)
    gpus = f", {choice.gpus} GPU" if choice.gpus else ""
    return (f"{cluster.title} / {queue.title}: {choice.cores} core(s), "
            f"{choice.memory_gb} GB, {choice.walltime_min} min{gpus}")

