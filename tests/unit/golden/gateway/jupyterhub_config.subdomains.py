#
# Ansible managed
#
# JupyterHub configuration of the hpc-gateway bundle (role jupyterhub).
# Site additions belong in jupyterhub_extra_config, appended at the end.
# pylint: disable=undefined-variable
# The gateway's API routes, before the hub builds its handlers: the jobs'
# callback (port or failure report only; batchspawner's own handler, which
# sets any attribute a job's token posts, is replaced whatever the spawner)
# and the proxy's restart notice.
import hpcgw_hub_api  # noqa: F401

c = get_config()  # noqa: F821

# --- network: the proxy is external (own systemd unit), hub behind it -----
c.JupyterHub.base_url = "/jupyter/"
c.JupyterHub.bind_url = "http://127.0.0.1:8000/jupyter/"
c.JupyterHub.hub_bind_url = "http://172.30.0.10:8081"
c.JupyterHub.hub_connect_url = "http://hpcgw-gw:8081"
# Per-user subdomains (jupyterhub_subdomain_host): the hub at this origin,
# each user's servers at https://<user>.<its host> (JupyterHub's "idna"
# names: a name that is no DNS label gets an encoded one), routed by host in
# the proxy (role chp: --host-routing). public_url follows it (with the base
# URL). The hub's login cookie is a __Host- cookie (Secure, Path=/, never a
# Domain): a user's server, which can set cookies for the parent domain, can
# neither overwrite nor shadow it.
c.JupyterHub.subdomain_host = "https://hpcgw-gw.test"
c.JupyterHub.cookie_host_prefix_enabled = True
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
# auth_token comes from CONFIGPROXY_AUTH_TOKEN (systemd EnvironmentFile).
# A hub restart must never kill users' servers or batch jobs.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.cleanup_proxy = False
# Re-adds routes the proxy lost (proxy restarted on its own) at this interval.
c.JupyterHub.last_activity_interval = 30

# --- state and secrets ------------------------------------------------------
c.JupyterHub.db_url = "sqlite:////var/lib/jupyterhub/jupyterhub.sqlite"
# A new JupyterHub whose database schema is newer upgrades the database when
# it starts (SQLite: JupyterHub first copies the file beside it, with the
# time in its name; PostgreSQL: back it up before); without it the hub
# refuses to start after such an upgrade. README, "Upgrading".
c.JupyterHub.upgrade_db = True
c.JupyterHub.cookie_secret_file = "/etc/jupyterhub/secrets/cookie_secret"
c.JupyterHub.pid_file = "/var/lib/jupyterhub/jupyterhub.pid"
c.JupyterHub.log_level = "INFO"

# --- metrics: /hub/metrics needs the read:metrics scope, never anonymous ---
c.JupyterHub.authenticate_prometheus = True
# The proxy client also counts the users' routes (hpcgw_proxy_user_routes).
c.JupyterHub.proxy_class = "hpcgw_proxy.GatewayProxy"
# Prometheus's token: a service without a command whose role reads metrics
# and nothing else (no users, no servers). The token file is root's.
with open("/etc/jupyterhub/secrets/metrics_token", encoding="utf-8") as _token_file:
    _metrics_token = _token_file.read().strip()
c.JupyterHub.services.append({
    "name": "hpcgw-metrics",
    "api_token": _metrics_token,
})
c.JupyterHub.load_roles.append({
    "name": "hpcgw-metrics",
    "scopes": ["read:metrics"],
    "services": ["hpcgw-metrics"],
})

# --- authentication: headers from the Apache front end ----------------------
c.JupyterHub.authenticator_class = "hpcgw_authenticator.GatewayRemoteUserAuthenticator"
c.GatewayRemoteUserAuthenticator.header_name = "X-Remote-User"
c.GatewayRemoteUserAuthenticator.groups_header = "X-Remote-User-Groups"
c.GatewayRemoteUserAuthenticator.groups_separator = ";"
c.GatewayRemoteUserAuthenticator.secret_header = "X-Gateway-Secret"
c.GatewayRemoteUserAuthenticator.secret_file = "/etc/jupyterhub/secrets/gateway_secret"
c.GatewayRemoteUserAuthenticator.strip_realm = True
c.GatewayRemoteUserAuthenticator.allowed_realms = set(["EXAMPLE.ORG"])
c.GatewayRemoteUserAuthenticator.lowercase = True
c.GatewayRemoteUserAuthenticator.min_uid = 1000
c.GatewayRemoteUserAuthenticator.allowed_groups = set(["hpc-users"])
c.GatewayRemoteUserAuthenticator.admin_groups = set(["gw-admins"])
# /hub/logout ends the SSO session too (its module's logout URL).
c.GatewayRemoteUserAuthenticator.logout_redirect_url = "/hpcgw-logout"
c.Authenticator.username_pattern = "^[a-z_][a-z0-9_.-]{0,31}\\Z"
c.Authenticator.allow_all = False
# Explicit: JupyterHub defaults it to True whenever allowed_users is set,
# which would make a login granted once through a group permanent.
c.Authenticator.allow_existing_users = False
# Hub group memberships follow the groups header at every login.
c.Authenticator.manage_groups = True
c.Authenticator.allowed_users = set(["alice", "bob", "carol", "mallory", "svcacct"])
# Admins are operators (jupyterhub_admin_rights: operator): the admin page,
# every user's and server's state, start and stop of any server; never
# another user's server nor a token in their name (JupyterHub's admin role
# has both: an admin could run code as any user). The authenticator puts
# them in the operator group at every login (and everyone else out of it).
c.Authenticator.admin_users = set()
c.GatewayRemoteUserAuthenticator.operator_users = set(["bob"])
c.GatewayRemoteUserAuthenticator.operator_group = "hpcgw-operators"
c.JupyterHub.load_roles.append({
    "name": "hpcgw-operator",
    "description": "Gateway operators: see and steer every server, never enter one",
    "scopes": ["admin-ui", "list:users", "read:users", "admin:servers", "list:groups", "read:groups", "list:services", "read:services", "read:hub", "read:roles", "read:metrics"],
    "groups": ["hpcgw-operators"],
})
c.Authenticator.blocked_users = set(["root", "daemon", "bin", "sys", "nobody", "www-data", "jupyterhub", "mallory"])

# --- spawner: the local one (sudospawner's protocol, the server runs on the
# gateway as the user in a systemd scope of its own with the user's limits;
# the hub stays unprivileged). Role spawn_profiles replaces it with the
# profile form of the clusters and queues (snippet below).
c.JupyterHub.spawner_class = "hpcgw_local.LocalScopeSpawner"
c.SudoSpawner.ip = "127.0.0.1"
# Several servers per user (jupyterhub_named_servers_enabled), each its own
# batch job; at most this many named ones per user (0: no limit).
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 2
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 120
# Spawns: the root launcher puts the user-side mediator into the user's scope
# (sudo, start|stop <user>); signals: the mediator as the user.
c.LocalScopeSpawner.scope_launcher = "/usr/local/sbin/hpcgw-local-scope"
c.SudoSpawner.sudospawner_path = "/opt/jupyterhub/bin/hpcgw-local-mediator"
# batchspawner's command prefix and its sudo rules are role spawn_profiles'
# (per scheduler and submit mode, with the clusters' data).

# --- audit log: one JSON line per login, spawn, stop, cull and refusal, to
# syslog (/dev/log, the journal) tagged with the identifier (hpcgw_audit).
import hpcgw_audit  # noqa: E402

hpcgw_audit.configure(enabled=True, identifier="hpcgw-audit")

# --- idle culler (jupyterhub-idle-culler), a hub-managed service. Its role
# lists users and reads their servers' activity, and stops servers; it
# cannot start servers, read server state or tokens, or delete users. Its
# stops are culls: an audit line, and the user's next page says why.
c.JupyterHub.services.append({
    "name": "hpcgw-idle-culler",
    "command": [
        "/opt/jupyterhub/bin/python", "-m", "jupyterhub_idle_culler",
        "--timeout=3600",
        "--cull-every=300",
        "--max-age=0",
    ],
})
c.JupyterHub.load_roles.append({
    "name": "hpcgw-idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["hpcgw-idle-culler"],
})
hpcgw_hub_api.configure_culler("hpcgw-idle-culler", 3600, 0)

# --- branding: the site's title, logo, help link and page texts (printed
# with the hub's autoescape) through the branded page.html; the announcement
# banner is read from its file at each page view (changed without a restart).
import hpcgw_branding  # noqa: E402

c.JupyterHub.template_paths = ["/etc/jupyterhub/branding/templates"]
c.JupyterHub.template_vars.update({
    "hpcgw_branding": {"help_text": "Help and documentation", "help_url": "https://hpc-gateway.example.org/docs/", "texts": {"home": "Your server runs as a batch job on a compute node; stop it when you are done so the cores go back to the queue.", "login": "Sign in with your demo account to run Jupyter on the demo cluster's compute nodes.", "spawn": "Pick a preset, or a cluster, queue and size within the queue's limits."}, "title": "Demo HPC Centre"},
    "hpcgw_announcement": hpcgw_branding.AnnouncementFile("/etc/jupyterhub/announcement.txt"),
})
c.JupyterHub.logo_file = "/etc/jupyterhub/branding/logo.svg"

# --- snippets of other roles (e.g. spawn_profiles), in name order ----------
import glob as _glob

for _snippet in sorted(_glob.glob("/etc/jupyterhub/jupyterhub_config.d/*.py")):
    load_subconfig(_snippet)  # noqa: F821
