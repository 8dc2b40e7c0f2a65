"""The hub's database as Ansible renders it (one playbook run): an external
PostgreSQL server's password reaches the hub's URL only at start, from its
file (never written into jupyterhub_config.py), and its backup unit dumps
with pg_dump over the network with the password file; the demo's test
instance uses the local server over its socket, without network."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ansible_run import ROOT
from gateway_render import Case, inventory_vars, render

CONFIG = "roles/jupyterhub/templates/jupyterhub_config.py.j2"
BACKUP_UNIT = "roles/jupyterhub/templates/hpcgw-hub-backup.service.j2"
PASSWORD = "p@ss:w/rd%"
EXTERNAL = {"jupyterhub_db_backend": "postgresql", "jupyterhub_db_host": "db.example.org", "jupyterhub_db_port": 6432,
            "jupyterhub_db_user": "hub", "jupyterhub_db_password": PASSWORD, "jupyterhub_db_sslmode": "verify-full",
            "jupyterhub_db_password_file": "/etc/jupyterhub/secrets/db_password"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    demo = inventory_vars("inventories/demo", "gateway")
    external = {**demo, **EXTERNAL}
    test = {**demo, **yaml.safe_load((ROOT / "inventories/demo/instances/test.yml").read_text())}
    return render([Case("config.external.py", CONFIG, external), Case("backup.external.service", BACKUP_UNIT, external),
                   Case("backup.instance-test.service", BACKUP_UNIT, test)], tmp_path_factory.mktemp("db"))


def _exec_command(unit: str) -> str:
    return " ".join(unit.split("ExecStart=", 1)[1].split("\nUMask")[0].replace("\\\n", " ").split())


def test_the_external_servers_password_is_read_at_start_into_the_url(rendered: dict[str, str], tmp_path: Path) -> None:
    config = rendered["config.external.py"]
    ast.parse(config)
    assert PASSWORD not in config and "p%40ss" not in config
    # The database lines, run against a password file of the test's own.
    section = config.split("# --- state and secrets", 1)[1].split("\n", 1)[1].split("c.JupyterHub.cookie_secret_file", 1)[0]
    password_file = tmp_path / "db_password"
    password_file.write_text(PASSWORD + "\n")
    c = SimpleNamespace(JupyterHub=SimpleNamespace())
    exec(section.replace("/etc/jupyterhub/secrets/db_password", str(password_file)), {"c": c})  # noqa: S102
    assert c.JupyterHub.db_url == "postgresql+psycopg2://hub:p%40ss%3Aw%2Frd%25@db.example.org:6432/jupyterhub?sslmode=verify-full"


def test_the_backup_units_dump_postgresql_as_the_hubs_account(rendered: dict[str, str]) -> None:
    external = rendered["backup.external.service"]
    assert re.search(r"--keep 14 --pg-database jupyterhub --pg-user hub --pg-run-as jupyterhub --pg-host db.example.org "
                     r"--pg-port 6432 --pg-password-file /etc/jupyterhub/secrets/db_password --pg-sslmode verify-full "
                     r"--file cookie_secret=", _exec_command(external)), external
    assert "PrivateNetwork" not in external  # the server is on another host
    local = rendered["backup.instance-test.service"]
    assert re.search(r"--keep 14 --pg-database jupyterhub_test --pg-user jupyterhub-test --pg-run-as jupyterhub-test "
                     r"--pg-host /run/postgresql --pg-port 5432 --file cookie_secret=", _exec_command(local)), local
    assert "\nPrivateNetwork=yes\n" in local and "password" not in local
