#
# Ansible managed
#
# Loaded by jupyterhub_config.py (role jupyterhub): clusters and queues from
# the inventory (role spawn_profiles), every choice checked server-side.
# pylint: disable=undefined-variable
import hpcgw_spawner  # noqa: F401  (replaces batchspawner's callback handler)

c = get_config()  # noqa: F821
c.JupyterHub.spawner_class = "hpcgw_spawner.GatewaySpawner"
c.GatewaySpawner.catalog_file = "/etc/jupyterhub/clusters.json"
c.GatewaySpawner.local_title = "Dedicated Jupyter node (gateway)"
c.GatewaySpawner.local_class = "hpcgw_local.LocalScopeSpawner"
c.GatewaySpawner.local_config = {"ip": "127.0.0.1"}
c.GatewaySpawner.gateway_tag = "hpcgw-gw"
# Every cluster's own prefix comes from the catalog; this one is the
# fallback of any batchspawner class: sudo without -E (the sudo rules keep
# only JUPYTERHUB_* variables). {username} on this shell command line: the
# authenticator admits only names of letters, digits and _ . @ - and the
# gateway's batch classes shell-quote every substituted value as well.
c.BatchSpawnerBase.exec_prefix = "sudo -n -u {username}"

# Every start's outcome, one JSON line each (append-only): the usage report's
# record of spawns (hpcgw-usage-report, role spawn_profiles).
import hpcgw_spawnlog  # noqa: E402

hpcgw_spawnlog.configure("/var/lib/jupyterhub/hpcgw-spawns.jsonl")

# The home and spawn pages say why the user's last server ended by itself
# (walltime reached, node failure, cancelled outside the gateway) or was
# stopped by the idle culler (role jupyterhub's hpcgw_hub_api tells).
import hpcgw_hub_api  # noqa: E402
import hpcgw_startup  # noqa: E402

c.JupyterHub.template_vars.update({
    "announcement_home": hpcgw_startup.end_notice_html,
    "announcement_spawn": hpcgw_startup.end_notice_html,
})
if hpcgw_startup.remember_end not in hpcgw_hub_api.cull_listeners:
    hpcgw_hub_api.cull_listeners.append(hpcgw_startup.remember_end)

# One scheduler status query per cluster per interval for all its servers
# (status_query: shared): run as the hub account, without sudo; the
# servers of the other clusters ask as their user. Commands issued, per
# cluster and kind, are counted in the JSON file below (rewritten every 10 s).
import hpcgw_status  # noqa: E402

# Each server's job is asked about every poll interval (JupyterHub adds up
# to 10 % jitter); a shared answer stays fresh for 5/6 of it, so a poll
# never reads the answer its own previous poll already read.
c.Spawner.poll_interval = 15
hpcgw_status.configure(
    shared_clusters=["testcluster"],
    squeue="/usr/bin/squeue",
    counts_file="/var/lib/jupyterhub/hpcgw-scheduler-commands.json",
    idle_window=12.5,
)

# Gateway metrics in the hub's /hub/metrics (role jupyterhub's hpcgw_metrics):
# every scheduler command's duration and errors, and each queue's spawn
# series at 0 before its first spawn (so rates and alerts see it).
import hpcgw_metrics  # noqa: E402

if hpcgw_metrics.METRICS.observe_scheduler_command not in hpcgw_status.OBSERVERS:
    hpcgw_status.OBSERVERS.append(hpcgw_metrics.METRICS.observe_scheduler_command)
hpcgw_metrics.METRICS.declare([["gridengine", "jupyter"], ["local", "local"], ["testcluster", "batch"], ["testcluster", "debug"], ["vialogin", "debug"]])

# The spawn page: this role's page templates (spawn.html, ...) in front of
# JupyterHub's own, which they extend ("templates/spawn.html").
c.JupyterHub.template_paths.insert(0, "/etc/jupyterhub/templates")

# What is free beside each queue of the clusters the hub queries as itself
# (status_query: shared): one sinfo and one squeue per cluster per interval
# for every page view, as the hub account without sudo.
import hpcgw_sched  # noqa: E402

hpcgw_sched.configure(
    ["testcluster"],
    "/usr/bin",
    interval=30,
)

# The user's own accounts per cluster, for the form's account select and the
# check of every choice: the inventory's data, or SLURM's associations
# (account_source: sacctmgr) asked by the hub account itself, without sudo
# or a shell, cached per user for the TTL below.
import hpcgw_accounts  # noqa: E402

hpcgw_accounts.configure(
    "/usr/bin/sacctmgr",
    60,
    counter=hpcgw_status.COUNTER,
)

# The scheduler's start estimate of the chosen size (sbatch --test-only as
# the user, through the sudo rule for sbatch): SLURM clusters with submit local.
import hpcgw_form_api  # noqa: E402

hpcgw_form_api.configure(
    ["testcluster"],
    "/usr/bin/sbatch",
)

# The orphan reaper: cancels this gateway's jobs that no server owns. Its
# role reads the users' servers and their state (the job ids), nothing else.
c.JupyterHub.services.append({
    "name": "hpcgw-reaper",
    "command": [
        "/opt/jupyterhub/bin/python", "-m", "hpcgw_reaper",
        "--catalog", "/etc/jupyterhub/clusters.json",
        "--tag", "hpcgw-gw",
        "--interval", "10",
        "--grace", "20",
    ],
})
c.JupyterHub.load_roles.append({
    "name": "hpcgw-reaper",
    "scopes": ["list:users", "read:users:name", "read:servers", "admin:server_state"],
    "services": ["hpcgw-reaper"],
})
