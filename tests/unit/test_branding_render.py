"""Branding and backups as Ansible renders them (one playbook run): hostile
text from the inventory is escaped on the demo's login page and stays one
Python string in the hub's configuration; the backup unit copies exactly
the hub's state and writes only its own directory."""

from __future__ import annotations

import ast

import pytest

from gateway_render import Case, inventory_vars, render

HOSTILE = "Evil <script>alert(1)</script> \"quoted\" \\ 'single'"
LOGIN = "roles/gateway_apache/templates/hpcgw-test-only-login.html.j2"
CONFIG = "roles/jupyterhub/templates/jupyterhub_config.py.j2"
BACKUP_UNIT = "roles/jupyterhub/templates/hpcgw-hub-backup.service.j2"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    demo = inventory_vars("inventories/demo", "gateway")
    hostile = {**demo, "jupyterhub_branding_title": HOSTILE, "jupyterhub_branding_login_text": HOSTILE,
               "jupyterhub_branding_help_url": "/docs/?a=1&b=2"}
    return render([Case("login.hostile.html", LOGIN, hostile), Case("login.demo.html", LOGIN, demo),
                   Case("config.hostile.py", CONFIG, hostile), Case("backup.demo.service", BACKUP_UNIT, demo)],
                  tmp_path_factory.mktemp("branding"))


def test_the_login_page_escapes_the_inventorys_text(rendered: dict[str, str]) -> None:
    page = rendered["login.hostile.html"]
    assert "<script>alert(1)" not in page
    assert '<p id="hpcgw-site-title">Evil &lt;script&gt;alert(1)&lt;/script&gt; &#34;quoted&#34;' in page
    assert '<p id="hpcgw-page-text">Evil &lt;script&gt;' in page
    assert '<a id="hpcgw-help" href="/docs/?a=1&amp;b=2">' in page


def test_the_demo_login_page_shows_title_logo_text_and_help(rendered: dict[str, str]) -> None:
    page = rendered["login.demo.html"]
    assert "<title>Sign in - Demo HPC Centre</title>" in page
    assert '<img id="hpcgw-login-logo" src="/hpcgw-login/logo.svg" alt="Demo HPC Centre logo">' in page
    assert "Sign in with your demo account" in page
    assert 'href="https://hpc-gateway.example.org/docs/">Help and documentation</a>' in page


def test_the_hubs_configuration_keeps_hostile_text_one_string(rendered: dict[str, str]) -> None:
    tree = ast.parse(rendered["config.hostile.py"])
    values = [node for node in ast.walk(tree) if isinstance(node, ast.Dict)
              and any(isinstance(k, ast.Constant) and k.value == "hpcgw_branding" for k in node.keys)]
    assert len(values) == 1
    branding = ast.literal_eval(values[0].values[[k.value for k in values[0].keys].index("hpcgw_branding")])
    assert branding["title"] == HOSTILE and branding["texts"]["login"] == HOSTILE


def test_the_backup_unit_reads_the_state_and_writes_only_its_directory(rendered: dict[str, str]) -> None:
    unit = rendered["backup.demo.service"]
    command = " ".join(unit.split("ExecStart=", 1)[1].split("\nUMask")[0].replace("\\\n", " ").split())
    assert command == (
        "/usr/bin/python3 /usr/local/sbin/hpcgw-hub-backup backup --dest /var/backups/jupyterhub --keep 14 "
        "--db /var/lib/jupyterhub/jupyterhub.sqlite --file cookie_secret=/etc/jupyterhub/secrets/cookie_secret "
        "--file gateway_secret=/etc/jupyterhub/secrets/gateway_secret "
        "--file jupyterhub_config.py=/etc/jupyterhub/jupyterhub_config.py "
        "--file metrics_token=/etc/jupyterhub/secrets/metrics_token "
        "--file proxy.env=/etc/jupyterhub/secrets/proxy.env")
    assert "ProtectSystem=strict" in unit and "ReadWritePaths=/var/backups/jupyterhub\n" in unit
    assert "UMask=0077" in unit
