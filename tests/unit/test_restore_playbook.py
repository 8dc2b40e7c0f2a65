"""playbooks/restore.yml refuses before it touches the hub: without the
archive's name, and with a corrupt archive (the check runs the real
hpcgw-hub-backup; the play stops before the task that stops the hub)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import hpcgw_hub_backup as hb
from ansible_run import ROOT, run_playbook

RESTORE = ROOT / "playbooks" / "restore.yml"
TOOL = ROOT / "roles" / "jupyterhub" / "files" / "hpcgw_hub_backup.py"


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_without_an_archive_the_restore_is_refused(tmp_path: Path) -> None:
    result = run_playbook(RESTORE, tmp_path, {"gateway": {}})
    assert result.returncode != 0
    out = _flat(result.stdout)
    assert "Name the archive to restore, as an absolute path" in out and "Nothing was changed." in out, result.stdout
    assert "Stop the hub" not in out


def test_a_corrupt_archive_is_refused_before_the_hub_stops(tmp_path: Path) -> None:
    archive = tmp_path / "hub-backup-20270101T000000Z.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    result = run_playbook(RESTORE, tmp_path, {"gateway": {}},
                          extra_vars={"jupyterhub_restore_archive": str(archive),
                                      "__jupyterhub_backup_command": str(TOOL)})
    assert result.returncode != 0
    out = _flat(result.stdout)
    assert "Restore refused, nothing was changed (the hub still runs)" in out, result.stdout
    assert "is not a readable backup archive (truncated or corrupt?)" in out, result.stdout
    assert "TASK [jupyterhub : Stop the hub" not in out


def test_an_archive_of_the_other_database_backend_is_refused_before_the_hub_stops(tmp_path: Path) -> None:
    """A whole archive of a hub on SQLite, restored on a hub configured for PostgreSQL."""
    db = tmp_path / "jupyterhub.sqlite"
    conn = sqlite3.connect(str(db))
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    archive = tmp_path / "hub-backup-20270101T000000Z.tar.gz"
    archive.write_bytes(hb.archive_bytes({"jupyterhub.sqlite": db.read_bytes()}, "2027-01-01T00:00:00Z", "gw"))
    result = run_playbook(RESTORE, tmp_path, {"gateway": {"jupyterhub_db_backend": "postgresql"}},
                          extra_vars={"jupyterhub_restore_archive": str(archive),
                                      "__jupyterhub_backup_command": str(TOOL)})
    assert result.returncode != 0
    out = _flat(result.stdout)
    assert ("holds jupyterhub.sqlite, the backup of a hub on SQLite, but jupyterhub_db_backend is postgresql "
            "(needs jupyterhub.pgdump)") in out, result.stdout
    assert "TASK [jupyterhub : Stop the hub" not in out
