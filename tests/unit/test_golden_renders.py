"""The gateway's generated configuration, rendered by real Ansible from the
roles' templates, matches the reviewed golden files in golden/gateway/:

* Apache's gateway vhost for every SSO mode of gateway_apache_sso (its
  argument spec's choices), at the root and under /jupyter, and the
  catch-all vhost;
* jupyterhub_config.py for the demo inventory (the whole access policy,
  under /jupyter) and for the example site inventory;
* every sudoers template of the roles (roles/*/templates/sudoers*.j2) for
  the demo inventory.

After an intended change (or a merge that moves variables or templates):

    HPCGW_UPDATE_GOLDEN=1 pytest -q tests/unit/test_golden_renders.py

then review `git diff tests/unit/golden/`.
"""

from __future__ import annotations

import re

import pytest
import yaml

from ansible_run import ROOT
from gateway_render import FACTS, SECRET, Case, fixture_secret, inventory_vars, render
from golden_files import GOLDEN, assert_golden, assert_no_stale

GOLDEN_DIR = GOLDEN / "gateway"
APACHE = "roles/gateway_apache/templates"
JUPYTERHUB_CONFIG = "roles/jupyterhub/templates/jupyterhub_config.py.j2"
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
}


def sso_modes() -> list[str]:
    spec = yaml.safe_load((ROOT / "roles/gateway_apache/meta/argument_specs.yml").read_text())
    return list(spec["argument_specs"]["main"]["options"]["gateway_apache_sso"]["choices"])


def vhost_name(mode: str, base: str) -> str:
    return f"010-hpcgw-gateway.{mode}.{base}.conf"


def cases() -> list[Case]:
    demo = inventory_vars("inventories/demo", "gateway")
    site = inventory_vars("inventories/example", "gateway")
    out = [
        Case(vhost_name(mode, base), f"{APACHE}/010-hpcgw-gateway.conf.j2",
             {**VHOST_VARS, **SSO_VARS.get(mode, {}), "gateway_apache_sso": mode, "jupyterhub_base_url": url})
        for mode in sso_modes() for base, url in BASE_PATHS.items()
    ]
    out.append(Case("000-hpcgw-catchall.conf", f"{APACHE}/000-hpcgw-catchall.conf.j2", VHOST_VARS))
    out.append(Case("jupyterhub_config.demo.py", JUPYTERHUB_CONFIG, demo))
    out.append(Case("jupyterhub_config.example.py", JUPYTERHUB_CONFIG, site))
    for template in sorted(ROOT.glob("roles/*/templates/sudoers*.j2")):
        role = template.parts[-3]
        out.append(Case(f"{role}.{template.name.removesuffix('.j2')}.demo", template.relative_to(ROOT).as_posix(), demo))
    return out


CASES = cases()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return render(CASES, tmp_path_factory.mktemp("render"))


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_render_matches_golden(rendered: dict[str, str], name: str) -> None:
    assert_golden(GOLDEN_DIR / name, rendered[name])


def test_no_stale_golden_files() -> None:
    assert_no_stale(GOLDEN_DIR, {case.name for case in CASES})


def test_every_sso_mode_is_rendered() -> None:
    assert set(sso_modes()) == set(SSO_VARS), "a new SSO mode needs its fixture settings in SSO_VARS"


@pytest.mark.parametrize("name", [c.name for c in CASES if c.name.startswith("jupyterhub_config.")])
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
def test_sudo_rules_refuse_the_system_accounts(rendered: dict[str, str], name: str) -> None:
    # The role task's own vars (the getent result) reached the template.
    system = [user for user, entry in FACTS["getent_passwd"].items() if int(entry[1]) < 1000]
    runas = next(line for line in rendered[name].splitlines() if line.startswith("Runas_Alias"))
    assert system and all(f"!{user}" in runas.replace(",", " ").split() for user in system), runas
