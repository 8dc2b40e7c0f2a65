"""The gateway's generated configuration, rendered by real Ansible from the
roles' templates, matches the reviewed golden files in golden/gateway/:

* Apache's gateway vhost for every SSO mode of gateway_apache_sso (its
  argument spec's choices), at the root and under /jupyter, and the
  catch-all vhost;
* for the demo inventory (the whole access policy, under /jupyter) and the
  example site inventory: jupyterhub_config.py, every sudoers template of
  the roles (roles/*/templates/sudoers*.j2), the proxy's unit (role chp)
  and role spawn_profiles' command prefixes per submit mode.

Each fact has one owner (issue 14) and the files agree because they are
rendered from the owner's variable: the tests below change an owner's
variable and check that every file naming it follows, and that each
cluster's command prefix is allowed by the sudo rules.

After an intended change (or a merge that moves variables or templates):

    HPCGW_UPDATE_GOLDEN=1 pytest -q tests/unit/test_golden_renders.py

then review `git diff tests/unit/golden/`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from passlib.hash import sha512_crypt
import yaml

from ansible_run import ROOT
from gateway_render import FACTS, SECRET, Case, fixture_secret, inventory_vars, render
from golden_files import GOLDEN, assert_golden, assert_no_stale

GOLDEN_DIR = GOLDEN / "gateway"
APACHE = "roles/gateway_apache/templates"
JUPYTERHUB_CONFIG = "roles/jupyterhub/templates/jupyterhub_config.py.j2"
CHP_UNIT = "roles/chp/templates/configurable-http-proxy.service.j2"
# Role spawn_profiles' command prefix per submit mode (its vars/main.yml), as
# the role's catalog task hands it to every cluster.
EXEC_PREFIX = "tests/unit/playbooks/templates/spawn_profiles_exec_prefix.json.j2"
# Role jupyterhub's configuration of the scope launcher (its vars/main.yml,
# written by a copy task), the slice of the local servers, the mediator.
LOCAL_SCOPE = "tests/unit/playbooks/templates/jupyterhub_local_scope.json.j2"
LOCAL_SLICE = "roles/jupyterhub/templates/hpcgw-local.slice.j2"
LOCAL_MEDIATOR = "roles/jupyterhub/templates/hpcgw-local-mediator.j2"
SUDOERS = sorted(ROOT.glob("roles/*/templates/sudoers*.j2"))
INVENTORIES = {"demo": "inventories/demo", "example": "inventories/example"}
BASE_PATHS = {"root": "/", "jupyter": "/jupyter/"}
# A site's settings for each SSO mode (fixture values, nothing secret).
SSO_VARS: dict[str, dict[str, object]] = {
    "basic": {"gateway_apache_basic_users": [
        {"name": "alice", "password": "x"},
        {"name": "erin", "password": "x", "groups": ["physics", "hpc-users"]},
        {"name": "frank", "password": "x", "groups": ["gw-admins"]},
    ]},
    "shibboleth": {"gateway_apache_groups_env": "isMemberOf"},
    "mellon": {},
    "openidc": {
        "gateway_apache_oidc_provider_metadata_url": "https://idp.example.invalid/.well-known/openid-configuration",
        "gateway_apache_oidc_client_id": "fixture-client",
        "gateway_apache_oidc_client_secret": "fixture-client-secret",
        "gateway_apache_oidc_crypto_passphrase": "fixture-passphrase-0123456789",
        "gateway_apache_groups_env": "OIDC_CLAIM_groups",
    },
}
VHOST_VARS = {
    "gateway_apache_server_name": "gw.example.org",
    "gateway_apache_server_aliases": ["gateway.example.org"],
    "__gateway_apache_secret": fixture_secret(),
    "__gateway_apache_session_key": fixture_secret(),
}


TEST_INSTANCE = yaml.safe_load((ROOT / "inventories/demo/instances/test.yml").read_text())
SUBDOMAINS = yaml.safe_load((ROOT / "inventories/demo/options/subdomains.yml").read_text())


def sso_modes() -> list[str]:
    spec = yaml.safe_load((ROOT / "roles/gateway_apache/meta/argument_specs.yml").read_text())
    return list(spec["argument_specs"]["main"]["options"]["gateway_apache_sso"]["choices"])


def vhost_name(mode: str, base: str) -> str:
    return f"010-hpcgw-gateway.{mode}.{base}.conf"


def sudoers_name(template: Any, inventory: str) -> str:
    return f"{template.parts[-3]}.{template.name.removesuffix('.j2')}.{inventory}"


def gateway_files(prefix: str, data: dict[str, Any]) -> list[Case]:
    """The files several roles' facts meet in, for one inventory."""
    out = [
        Case(f"jupyterhub_config.{prefix}.py", JUPYTERHUB_CONFIG, data),
        Case(f"configurable-http-proxy.{prefix}.service", CHP_UNIT, data),
        Case(f"spawn_profiles.exec_prefix.{prefix}.json", EXEC_PREFIX, data, role="spawn_profiles"),
        Case(f"jupyterhub.local_scope.{prefix}.json", LOCAL_SCOPE, data, role="jupyterhub"),
        Case(f"hpcgw-local.{prefix}.slice", LOCAL_SLICE, data),
        Case(f"hpcgw-local-mediator.{prefix}", LOCAL_MEDIATOR, data),
    ]
    out += [Case(sudoers_name(template, prefix), template.relative_to(ROOT).as_posix(), data) for template in SUDOERS]
    return out


def cases() -> list[Case]:
    out = [
        Case(vhost_name(mode, base), f"{APACHE}/010-hpcgw-gateway.conf.j2",
             {**VHOST_VARS, **SSO_VARS.get(mode, {}), "gateway_apache_sso": mode, "jupyterhub_base_url": url})
        for mode in sso_modes() for base, url in BASE_PATHS.items()
    ]
    out.append(Case("000-hpcgw-catchall.conf", f"{APACHE}/000-hpcgw-catchall.conf.j2", VHOST_VARS))
    out.append(Case("hpcgw-test-only.htpasswd.demo", f"{APACHE}/hpcgw-test-only.htpasswd.j2",
                    inventory_vars(INVENTORIES["demo"], "gateway")))
    for name, directory in INVENTORIES.items():
        out += gateway_files(name, inventory_vars(directory, "gateway"))
    # The demo's test instance (issue 16): its names, ports and routes.
    test = {**inventory_vars(INVENTORIES["demo"], "gateway"), **TEST_INSTANCE}
    out += gateway_files("instance-test", test)
    out.append(Case("jupyterhub.instance-test.service", "roles/jupyterhub/templates/jupyterhub.service.j2", test))
    out.append(Case("hpcgw-instance-routes.test.conf", f"{APACHE}/010-hpcgw-gateway.conf.j2", {**test, **VHOST_VARS}))
    # Per-user subdomains (jupyterhub_subdomain_host): the demo with its option
    # file (hub, proxy, Apache in the demo's basic mode) and every other SSO mode.
    subdomains = {**inventory_vars(INVENTORIES["demo"], "gateway"), **SUBDOMAINS}
    out.append(Case("jupyterhub_config.subdomains.py", JUPYTERHUB_CONFIG, subdomains))
    out.append(Case("configurable-http-proxy.subdomains.service", CHP_UNIT, subdomains))
    for mode in sso_modes():
        data = {**VHOST_VARS, **SSO_VARS.get(mode, {}), "gateway_apache_sso": mode, "jupyterhub_base_url": "/jupyter/",
                "jupyterhub_subdomain_host": "https://gw.example.org"}
        if mode == "basic":
            data = {**subdomains, **VHOST_VARS, "gateway_apache_server_name": SUBDOMAINS["gateway_apache_server_name"]}
        out.append(Case(f"010-hpcgw-gateway.subdomains.{mode}.conf", f"{APACHE}/010-hpcgw-gateway.conf.j2", data))
    return out


# An owner's variable changed on the demo inventory (not golden files: the
# tests below check that every file naming the fact follows the owner).
FOLLOW: dict[str, dict[str, Any]] = {
    "ports": {"chp_port": 9000, "chp_api_port": 9001},
    "owners": {"jupyterhub_hub_port": 8181, "jupyterhub_proxy_env_file": "/etc/jupyterhub/secrets/p.env",
               "ssh_submit_client_config": "/etc/ssh/other_config", "spawn_profiles_slurm_bin_dir": "/opt/slurm/bin"},
    "no-clusters": {"spawn_profiles_clusters": [], "spawn_profiles_presets": []},
}


def follow_cases() -> list[Case]:
    demo = inventory_vars(INVENTORIES["demo"], "gateway")
    out = []
    for change, values in FOLLOW.items():
        data = {**demo, **values}
        out += gateway_files(f"follow-{change}", data)
        out.append(Case(f"010-hpcgw-gateway.follow-{change}.conf", f"{APACHE}/010-hpcgw-gateway.conf.j2",
                        {**data, **VHOST_VARS}))
    return out


CASES = cases()
FOLLOW_CASES = follow_cases()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every golden case and every owner's change, in one playbook run."""
    return render(CASES + FOLLOW_CASES, tmp_path_factory.mktemp("render"))


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_render_matches_golden(rendered: dict[str, str], name: str) -> None:
    assert_golden(GOLDEN_DIR / name, rendered[name])


def test_no_stale_golden_files() -> None:
    assert_no_stale(GOLDEN_DIR, {case.name for case in CASES})


def test_every_sso_mode_is_rendered() -> None:
    assert set(sso_modes()) == set(SSO_VARS), "a new SSO mode needs its fixture settings in SSO_VARS"


@pytest.mark.parametrize("name", [c.name for c in CASES + FOLLOW_CASES if c.name.startswith("jupyterhub_config.")])
def test_jupyterhub_config_compiles(rendered: dict[str, str], name: str) -> None:
    code = compile(rendered[name], name, "exec")
    assert {"get_config", "load_subconfig"} <= set(code.co_names)


def _identity_spellings(header: str) -> set[str]:
    """X-Remote-User -> every dash/underscore spelling."""
    parts = header.split("-")
    spellings = {parts[0]}
    for part in parts[1:]:
        spellings = {s + sep + part for s in spellings for sep in "-_"}
    return spellings


@pytest.mark.parametrize("mode", sso_modes())
@pytest.mark.parametrize("base", sorted(BASE_PATHS))
def test_vhost_drops_client_identity_headers_before_setting_them(rendered: dict[str, str], mode: str,
                                                                 base: str) -> None:
    lines = [line.strip() for line in rendered[vhost_name(mode, base)].splitlines()]
    prefix = "/jupyter" if base == "jupyter" else ""
    for header in ("X-Remote-User", "X-Remote-User-Groups", "X-Gateway-Secret"):
        unsets = [i for i, line in enumerate(lines)
                  if re.fullmatch(r"RequestHeader unset (\S+) early", line)
                  and line.split()[2] in _identity_spellings(header)]
        assert {lines[i].split()[2] for i in unsets} == _identity_spellings(header), header
        sets = [i for i, line in enumerate(lines) if line.startswith(f"RequestHeader set {header} ")]
        # Groups are set only where a source is configured (not in mellon here).
        assert sets or header == "X-Remote-User-Groups", f"{header} is never set"
        assert not sets or max(unsets) < min(sets), f"{header}: set before every spelling is unset"
    # The shared secret only inside the hub's login Location, only with a user.
    (secret_line,) = [i for i, line in enumerate(lines) if SECRET in line]
    assert lines[secret_line - 1] == f'<Location "{prefix}/hub/login">'
    assert lines[secret_line].endswith('"expr=-n %{REMOTE_USER}"')
    assert f"ProxyPass {prefix}/ http://127.0.0.1:8000{prefix}/ upgrade=websocket timeout=3600" in lines


@pytest.mark.parametrize("name", [c.name for c in CASES if ".sudoers" in c.name])
def test_sudo_rules_refuse_the_system_accounts_of_the_users_group(rendered: dict[str, str], name: str) -> None:
    # The role task's own vars (the getent results) reached the template: the
    # system accounts in the group (by its list: svcacct; by their primary
    # group: svcbatch) are refused by name; the others are outside the group
    # and not named (a package adding one changes nothing here) unless blocked.
    runas = next(line for line in rendered[name].splitlines() if line.startswith("Runas_Alias"))
    words = runas.replace(",", " ").split()
    group = next(w for w in words if w.startswith("%"))[1:]
    _, gid, members = FACTS["getent_group"].get(group, ["", "-1", ""])
    in_group = {user for user, entry in FACTS["getent_passwd"].items()
                if int(entry[1]) < 1000 and (user in members.split(",") or entry[2] == gid)}
    assert in_group == ({"svcacct", "svcbatch"} if group == "hpcgw-users" else set()), (group, in_group)
    assert all(f"!{user}" in words for user in in_group), runas
    assert not {"!munge", "!slurm", "!_shibd", "!chp"} & set(words), runas
    assert "!#0" in words and "!jupyterhub" in words, runas  # uid 0 and the hub itself, always


# --- one owner per fact (issue 14) ------------------------------------------

def _batch_commands(sudoers: str) -> list[str]:
    """The command specifications of HPCGW_BATCH, one per entry."""
    match = re.search(r"^Cmnd_Alias HPCGW_BATCH = (.*?)(?<!\\)\n", sudoers, re.M | re.S)
    if not match:
        return []
    return [c.strip() for c in match.group(1).replace("\\\n", "").split(", ")]


def test_demo_sudo_rules_allow_exactly_the_local_profile_and_the_clusters(rendered: dict[str, str]) -> None:
    """The local profile's scope launcher (root, a verb and a name) and mediator
    (as the users, no arguments), the local SLURM cluster's commands
    (arguments pinned) and, over SSH through the root-owned client
    configuration, the SSH cluster's commands on its login host; nothing else."""
    sudoers = rendered["jupyterhub.sudoers.demo"]
    assert "Cmnd_Alias HPCGW_LOCAL = /opt/jupyterhub/bin/hpcgw-local-mediator \"\"\n" in sudoers
    assert ("Cmnd_Alias HPCGW_LOCAL_SCOPE = /usr/local/sbin/hpcgw-local-scope ^(start|stop) [A-Za-z0-9_][A-Za-z0-9_.-]*$\n"
            in sudoers)
    assert "\njupyterhub ALL=(root) NOPASSWD: HPCGW_LOCAL_SCOPE\n" in sudoers
    assert [line for line in sudoers.splitlines() if "(root)" in line or "ALL=(ALL" in line] == [
        "jupyterhub ALL=(root) NOPASSWD: HPCGW_LOCAL_SCOPE"]
    assert sorted(_batch_commands(sudoers)) == sorted([
        "/usr/bin/sbatch",
        "/usr/bin/squeue",
        "/usr/bin/scontrol ^show job [0-9]+$",
        "/usr/bin/scancel ^[0-9]+$",
        "/usr/bin/ssh ^-F /etc/ssh/hpcgw_submit_config hpcgw-ctl "
        "(sbatch --parsable|squeue -h -j [0-9]+ -t all -o '%T[|]%B[|]%S[|]%r'|scancel [0-9]+)$",
        "/usr/bin/ssh ^-F /etc/ssh/hpcgw_submit_config hpcgw-ctl (qsub|qstat -xml|qdel [0-9]+)$",  # Grid Engine
    ])
    assert 'Defaults!HPCGW_BATCH env_keep += "JUPYTERHUB_* JPY_API_TOKEN"' in sudoers
    assert sudoers.rstrip().endswith("jupyterhub ALL=(HPCGW_USERS) NOPASSWD: HPCGW_LOCAL, HPCGW_BATCH")
    runas = next(line for line in sudoers.splitlines() if line.startswith("Runas_Alias"))
    assert runas.startswith("Runas_Alias HPCGW_USERS = %hpcgw-users, !#0, !jupyterhub, !root, "), runas


# The first command of each scheduler's pinned SSH rule (role spawn_profiles' vars/main.yml).
SSH_SUBMIT = {"slurm": "sbatch --parsable", "torque": "qsub", "pbs": "qsub", "sge": "qsub", "lsf": "bsub"}


@pytest.mark.parametrize("inventory", sorted(INVENTORIES) + [f"follow-{change}" for change in FOLLOW])
def test_the_sudo_rules_allow_what_the_prefixes_run(rendered: dict[str, str], inventory: str) -> None:
    """Every cluster's command prefix (role spawn_profiles) starts a command
    its sudo rule allows, and the rules allow no scheduler command no
    cluster runs."""
    data = next(c.inventory for c in CASES + FOLLOW_CASES if c.name == f"jupyterhub_config.{inventory}.py")
    prefixes = json.loads(rendered[f"spawn_profiles.exec_prefix.{inventory}.json"])
    commands = _batch_commands(rendered[f"jupyterhub.sudoers.{inventory}"])
    bin_dir = data.get("spawn_profiles_slurm_bin_dir", "/usr/bin")
    expected = set()
    for cluster in data["spawn_profiles_clusters"]:
        prefix = prefixes[cluster.get("submit", "local")].replace("{login_host}", cluster.get("login_host", ""))
        assert prefix.startswith("sudo -n -u {username}"), cluster["name"]
        command = prefix.removeprefix("sudo -n -u {username}").strip()
        if command:  # ssh -F <config> <host>: pinned in the rule, dots escaped
            ssh, option, config, host = command.split(" ")
            assert option == "-F"
            # (one rule per scheduler on a login host: the demo's SLURM and Grid Engine share hpcgw-ctl)
            (rule,) = [c for c in commands
                       if c.startswith(f"{ssh} ^-F {config.replace('.', '[.]')} {host.replace('.', '[.]')} "
                                       f"({SSH_SUBMIT[cluster['scheduler']]}|")]
            expected.add(rule)
        else:
            slurm = {f"{bin_dir}/{c}" for c in ("sbatch", "squeue", "scontrol", "scancel")}
            local = {c for c in commands if c.split(" ")[0] in slurm}
            assert {c.split(" ")[0] for c in local} == slurm, cluster["name"]
            expected |= local
    assert set(commands) == expected


def test_the_hub_the_proxy_and_apache_follow_the_proxys_ports(rendered: dict[str, str]) -> None:
    config = rendered["jupyterhub_config.follow-ports.py"]
    unit = rendered["configurable-http-proxy.follow-ports.service"]
    vhost = rendered["010-hpcgw-gateway.follow-ports.conf"]
    assert 'c.JupyterHub.bind_url = "http://127.0.0.1:9000/jupyter/"' in config
    assert 'c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:9001"' in config
    assert "--port 9000" in unit and "--api-port 9001" in unit
    assert "ProxyPass /jupyter/ http://127.0.0.1:9000/jupyter/ upgrade=websocket timeout=3600" in vhost
    assert "8000" not in config and "8001" not in config


def test_the_proxy_the_rules_and_the_prefixes_follow_their_owners(rendered: dict[str, str]) -> None:
    hub = f"http://{FACTS['default_ipv4']['address']}:8181"
    unit = rendered["configurable-http-proxy.follow-owners.service"]
    assert f"--default-target {hub} " in unit
    assert f"--error-target {hub}/jupyter/hub/error " in unit
    assert "EnvironmentFile=/etc/jupyterhub/secrets/p.env" in unit
    sudoers = rendered["jupyterhub.sudoers.follow-owners"]
    assert "/usr/bin/ssh ^-F /etc/ssh/other_config hpcgw-ctl (" in sudoers
    assert "/opt/slurm/bin/sbatch" in sudoers and "/usr/bin/sbatch" not in sudoers
    assert json.loads(rendered["spawn_profiles.exec_prefix.follow-owners.json"]) == {
        "local": "sudo -n -u {username}",
        "ssh": "sudo -n -u {username} /usr/bin/ssh -F /etc/ssh/other_config {login_host}",
    }


def test_without_clusters_only_the_local_profile_is_allowed(rendered: dict[str, str]) -> None:
    sudoers = rendered["jupyterhub.sudoers.follow-no-clusters"]
    assert "HPCGW_BATCH" not in sudoers
    assert sudoers.rstrip().endswith("jupyterhub ALL=(HPCGW_USERS) NOPASSWD: HPCGW_LOCAL")


def test_without_clusters_the_gateways_callback_handler_still_replaces_batchspawners(
        rendered: dict[str, str]) -> None:
    # batchspawner is installed in the hub's venv whatever the spawner, and its
    # module registers /hub/api/batchspawner (a job's token may set any
    # server field there): the hub config loads the gateway's handler, which
    # takes that route over, also on a gateway without clusters.
    config = rendered["jupyterhub_config.follow-no-clusters.py"]
    assert "\nimport hpcgw_hub_api  # noqa: F401\n" in config


def test_the_basic_users_file_holds_exactly_the_inventorys_users_with_cheap_hashes(
        rendered: dict[str, str]) -> None:
    # Apache checks the password on every request of the basic (TEST ONLY)
    # mode: SHA-512 crypt at its minimum rounds, not bcrypt (200 ms a request).
    users = {u["name"]: u["password"] for u in
             inventory_vars(INVENTORIES["demo"], "gateway")["gateway_apache_basic_users"]}
    lines = [line for line in rendered["hpcgw-test-only.htpasswd.demo"].splitlines()
             if line and not line.startswith("#")]
    entries = dict(line.split(":", 1) for line in lines)
    assert sorted(entries) == sorted(users) and len(lines) == len(users)
    for name, hashed in entries.items():
        assert hashed.startswith("$6$rounds=1000$"), hashed
        assert sha512_crypt.verify(users[name], hashed), name
        assert not sha512_crypt.verify(users[name] + "x", hashed), name


def test_the_scope_launcher_accepts_its_rendered_configuration(rendered: dict[str, str]) -> None:
    """The launcher's own parser takes what the role writes; the demo's
    limits, bob's override and the accounts it refuses are in it."""
    import hpcgw_local_scope  # pylint: disable=import-outside-toplevel

    for inventory in INVENTORIES:
        settings = hpcgw_local_scope.parse_settings(json.loads(rendered[f"jupyterhub.local_scope.{inventory}.json"]))
        assert {"#0", "jupyterhub", "root", "nobody"} <= settings.refused
        assert settings.min_uid == 1000 and settings.mediator == "/opt/jupyterhub/bin/hpcgw-local-mediator"
    demo = hpcgw_local_scope.parse_settings(json.loads(rendered["jupyterhub.local_scope.demo.json"]))
    assert (demo.group, demo.limits, demo.users) == (
        "hpcgw-users", {"memory_max": "1G", "cpu_quota": "100%", "tasks_max": "256"}, {"bob": {"tasks_max": "300"}})
    assert "mallory" in demo.refused
    assert "\nMemoryMax=3G\n" in rendered["hpcgw-local.demo.slice"]
    assert "\nMemoryMax=75%\n" in rendered["hpcgw-local.example.slice"]
    assert "CPUQuota" not in rendered["hpcgw-local.demo.slice"]


# --- per-user subdomains (jupyterhub_subdomain_host, role jupyterhub's) -----

def test_the_proxy_and_apache_follow_the_hubs_subdomain_host(rendered: dict[str, str]) -> None:
    """One setting: the hub gets subdomain_host with __Host- cookies, the
    proxy routes by host, Apache serves *.<domain> with a redirect of
    everything but the users' servers and the SSO's paths on users' hosts,
    and without the setting none of it is there."""
    config = rendered["jupyterhub_config.subdomains.py"]
    assert 'c.JupyterHub.subdomain_host = "https://hpcgw-gw.test"\n' in config
    assert "c.JupyterHub.cookie_host_prefix_enabled = True\n" in config
    assert "--host-routing" in rendered["configurable-http-proxy.subdomains.service"]
    for name in ("jupyterhub_config.demo.py", "configurable-http-proxy.demo.service"):
        assert "subdomain_host" not in rendered[name] and "host-routing" not in rendered[name]
        assert "cookie_host_prefix" not in rendered[name]
    for mode in sso_modes():
        lines = [line.strip() for line in rendered[f"010-hpcgw-gateway.subdomains.{mode}.conf"].splitlines()]
        domain = "hpcgw-gw.test" if mode == "basic" else "gw.example.org"
        escaped = domain.replace(".", "\\.").replace("-", "\\-")
        # Both vhosts (80 and 443) carry the wildcard.
        assert lines.count(f"ServerAlias *.{domain}") == 2, mode
        rewrite = lines.index("RewriteEngine On")
        assert lines[rewrite + 1] == f"RewriteCond %{{HTTP_HOST}} \\.{escaped}(:[0-9]+)?$ [NC]", mode
        assert lines[rewrite + 2] == "RewriteCond %{REQUEST_URI} !^/jupyter/user/", mode
        rule = next(i for i in range(rewrite, len(lines)) if lines[i].startswith("RewriteRule"))
        assert lines[rule] == f"RewriteRule ^ https://{domain}%{{REQUEST_URI}} [R=302,L]", mode
        # Before the proxying: every request of a user's host passes the rule first.
        assert rule < lines.index("ProxyRequests Off")
        (secret,) = [line for line in lines if SECRET in line]
        assert secret.endswith(f'"expr=-n %{{REMOTE_USER}} && !(%{{HTTP_HOST}} =~ /\\.{escaped}(:[0-9]+)?$/i)"'), mode
    openidc = rendered["010-hpcgw-gateway.subdomains.openidc.conf"]
    assert "OIDCRedirectURI /oidc-redirect\n" in openidc
    assert "RewriteCond %{REQUEST_URI} !^/oidc\\-redirect(/|$)\n" in openidc
    basic = rendered["010-hpcgw-gateway.subdomains.basic.conf"]
    assert "SessionDBDCookieName __Host-hpcgw_demo_session path=/;HttpOnly;Secure;SameSite=Lax" in basic
    for path in ("login", "logout"):
        assert f"RewriteCond %{{REQUEST_URI}} !^/hpcgw\\-{path}(/|$)\n" in basic
    for mode in sso_modes():
        for base in BASE_PATHS:
            assert "RewriteEngine" not in rendered[vhost_name(mode, base)]
            assert "ServerAlias *." not in rendered[vhost_name(mode, base)]
