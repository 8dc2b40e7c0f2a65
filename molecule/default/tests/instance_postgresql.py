"""Issue 13 item 3: the hub's database in PostgreSQL, on the demo's test instance.

inventories/demo/instances/test.yml sets jupyterhub_db_backend: postgresql
(Debian's server on the gateway, database jupyterhub_test owned by the role
jupyterhub-test, peer authentication). test_instance.py converges that
instance and spawns its user on it; it calls these checks at two points:

check_state_in_postgresql: while the user's server runs on the test instance,
the hub's database is PostgreSQL (no SQLite file; her row and her
running server in psql); the backup unit dumps it online (the hub keeps its
PID, the archive holds jupyterhub.pgdump); the schema is then wiped under
the stopped hub and playbooks/restore.yml restores the dump: her running
server is known again and the same job runs her code through the restarted
hub.

check_database_dropped: after playbooks/remove_instance.yml, the
instance's database and role are gone from the server.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Callable

from testinfra.host import Host

DB = "jupyterhub_test"
ROLE = "jupyterhub-test"
HUB = "jupyterhub-test.service"
BACKUP_DIR = "/var/backups/jupyterhub-test"
CONFIG = "/etc/jupyterhub-test/jupyterhub_config.py"
SQLITE = "/var/lib/jupyterhub-test/jupyterhub.sqlite"


def _running(user: str) -> str:
    """The user's default server: her user row and the spawner row holding a running server."""
    return ("SELECT u.name || ':' || (s.server_id IS NOT NULL) FROM users u JOIN spawners s ON s.user_id = u.id"
            f" WHERE u.name = '{user}' AND s.name = ''")


def psql(gateway: Host, sql: str, database: str = DB) -> str:
    """One query as the server's superuser (peer authentication), unaligned output."""
    return gateway.check_output("runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d %s -c %s", database, sql).strip()


def _hub_pid(gateway: Host) -> str:
    return gateway.check_output(f"systemctl show -p MainPID --value {HUB}").strip()


def check_state_in_postgresql(gateway: Host, playbook: Callable[..., subprocess.CompletedProcess[str]],
                              run_code: Callable[[], dict[str, Any]], user: str) -> None:
    config = gateway.file(CONFIG).content_string
    assert f'c.JupyterHub.db_url = "postgresql+psycopg2://{ROLE}@/{DB}?host=/run/postgresql&port=5432"' in config
    assert not gateway.file(SQLITE).exists
    assert psql(gateway, _running(user)) == f"{user}:true"
    assert psql(gateway, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{DB}'", "postgres") == ROLE

    # Online backup: a pg_dump, the hub untouched.
    pid = _hub_pid(gateway)
    gateway.check_output("systemctl start hpcgw-hub-backup-test.service")
    archive = gateway.check_output(f"ls -1 {BACKUP_DIR}/hub-backup-*.tar.gz | tail -n 1").strip()
    assert _hub_pid(gateway) == pid, "the backup stopped or restarted the test hub"
    members = gateway.check_output(f"tar -tzf {archive}").split()
    assert "jupyterhub.pgdump" in members and "jupyterhub.sqlite" not in members, members

    # The hub's tables lost (under the stopped hub), then the dump restored.
    gateway.check_output(f"systemctl stop {HUB}")
    psql(gateway, f'DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION "{ROLE}"')
    assert psql(gateway, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"
    restored = playbook("playbooks/restore.yml", "-e", json.dumps({"jupyterhub_restore_archive": archive}))
    assert restored.returncode == 0, restored.stdout[-4000:] + restored.stderr[-2000:]
    assert "jupyterhub.pgdump, cookie_secret" in " ".join((restored.stdout + restored.stderr).split()), restored.stdout[-3000:]
    assert gateway.service(HUB).is_running and _hub_pid(gateway) != pid
    # The restarted hub knows her running server again; the same job runs her code.
    assert psql(gateway, _running(user)) == f"{user}:true"
    ran = run_code()
    assert "42" in str(ran), ran


def check_database_dropped(gateway: Host) -> None:
    assert psql(gateway, f"SELECT count(*) FROM pg_database WHERE datname = '{DB}'", "postgres") == "0"
    assert psql(gateway, f"SELECT count(*) FROM pg_roles WHERE rolname = '{ROLE}'", "postgres") == "0"
