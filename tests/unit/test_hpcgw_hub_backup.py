"""The hub's backup and restore tool: an online SQLite copy while a writer
holds the database, root-only archives with a checksummed manifest,
retention, and a restore that refuses missing, truncated, tampered or
crafted archives before it writes anything."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import tarfile
import time
from pathlib import Path

import pytest

import hpcgw_hub_backup as hb


def _hub_db(path: Path, users: list[str]) -> None:
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, cookie_id TEXT)")
    conn.executemany("INSERT INTO users VALUES (?, ?)", [(u, f"cookie-{u}") for u in users])
    conn.commit()
    conn.close()


def _users(path: Path) -> list[str]:
    conn = sqlite3.connect(str(path))
    try:
        return [row[0] for row in conn.execute("SELECT name FROM users ORDER BY name")]
    finally:
        conn.close()


@pytest.fixture()
def hub(tmp_path: Path) -> dict[str, Path]:
    state = tmp_path / "state"
    secrets = tmp_path / "secrets"
    state.mkdir()
    secrets.mkdir()
    paths = {"db": state / "jupyterhub.sqlite", "cookie_secret": secrets / "cookie_secret",
             "proxy.env": secrets / "proxy.env", "dest": tmp_path / "backups"}
    _hub_db(paths["db"], ["alice", "bob"])
    paths["cookie_secret"].write_text("ab" * 32 + "\n")
    paths["proxy.env"].write_text("CONFIGPROXY_AUTH_TOKEN=tok\n")
    return paths


def _backup(hub: dict[str, Path], keep: int = 3, when: float = 1_800_000_000) -> dict[str, object]:
    return hb.backup(hub["dest"], keep, hub["db"], {"cookie_secret": hub["cookie_secret"], "proxy.env": hub["proxy.env"]},
                     now=time.gmtime(when))


def test_backup_copies_the_live_database_while_a_writer_holds_it_open(hub: dict[str, Path]) -> None:
    writer = sqlite3.connect(str(hub["db"]))
    writer.execute("INSERT INTO users VALUES ('carol', 'c')")  # uncommitted: not in the snapshot
    try:
        result = _backup(hub)
    finally:
        writer.rollback()
        writer.close()
    archive = Path(str(result["archive"]))
    assert archive.name == "hub-backup-20270115T080000Z.tar.gz"
    assert result["members"] == ["cookie_secret", "jupyterhub.sqlite", "proxy.env"]
    checked = hb.verify(archive)
    copy = hub["dest"] / "copy.sqlite"
    copy.write_bytes(checked.members["jupyterhub.sqlite"])
    assert _users(copy) == ["alice", "bob"]
    assert checked.members["cookie_secret"] == hub["cookie_secret"].read_bytes()


def test_archives_and_their_directory_are_owner_only(hub: dict[str, Path]) -> None:
    archive = Path(str(_backup(hub)["archive"]))
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(hub["dest"].stat().st_mode) == 0o700
    assert [p.name for p in hub["dest"].iterdir()] == [archive.name]  # no scratch file left


def test_retention_keeps_the_newest_archives(hub: dict[str, Path]) -> None:
    names = [Path(str(_backup(hub, keep=2, when=1_800_000_000 + 3600 * i)["archive"])).name for i in range(4)]
    left = sorted(p.name for p in hub["dest"].iterdir())
    assert left == names[2:]
    (hub["dest"] / "notes.txt").write_text("kept")  # not an archive: never pruned
    _backup(hub, keep=1, when=1_800_000_000 + 3600 * 9)
    assert sorted(p.name for p in hub["dest"].iterdir()) == ["hub-backup-20270115T170000Z.tar.gz", "notes.txt"]


def test_two_backups_in_one_second_both_survive(hub: dict[str, Path]) -> None:
    first, second = _backup(hub)["archive"], _backup(hub)["archive"]
    assert first != second and Path(str(second)).name == "hub-backup-20270115T080000Z-1.tar.gz"


def test_backup_refuses_a_missing_database_or_file(hub: dict[str, Path]) -> None:
    hub["proxy.env"].unlink()
    with pytest.raises(hb.BackupError, match="cannot read .*proxy.env"):
        _backup(hub)
    hub["db"].unlink()
    with pytest.raises(hb.BackupError, match="does not exist"):
        _backup(hub)


def test_restore_writes_the_state_back_and_removes_a_stale_journal(hub: dict[str, Path]) -> None:
    archive = Path(str(_backup(hub)["archive"]))
    hub["db"].unlink()
    hub["cookie_secret"].unlink()
    Path(str(hub["db"]) + "-journal").write_bytes(b"stale hot journal")
    _hub_db(hub["db"], ["mallory"])  # a fresh hub's database in its place
    result = hb.restore(archive, hub["db"], {"cookie_secret": hub["cookie_secret"], "proxy.env": hub["proxy.env"]},
                        only_missing={"proxy.env"})
    assert result["restored"] == ["jupyterhub.sqlite", "cookie_secret"] and result["kept"] == ["proxy.env"]
    assert _users(hub["db"]) == ["alice", "bob"]
    assert hub["cookie_secret"].read_text() == "ab" * 32 + "\n"
    assert not Path(str(hub["db"]) + "-journal").exists()
    assert stat.S_IMODE(hub["cookie_secret"].stat().st_mode) == 0o600


def test_only_missing_files_are_restored_when_missing(hub: dict[str, Path]) -> None:
    archive = Path(str(_backup(hub)["archive"]))
    hub["proxy.env"].unlink()
    result = hb.restore(archive, hub["db"], {"proxy.env": hub["proxy.env"]}, only_missing={"proxy.env"})
    assert result["restored"] == ["jupyterhub.sqlite", "proxy.env"]
    assert hub["proxy.env"].read_text() == "CONFIGPROXY_AUTH_TOKEN=tok\n"


def _tar(members: dict[str, bytes], manifest: object = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        items = dict(members)
        if manifest is not None:
            items = {hb.MANIFEST: json.dumps(manifest).encode(), **items}
        for name, data in items.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _manifest(members: dict[str, bytes]) -> dict[str, object]:
    return {"format": 1, "members": {n: {"sha256": hb.sha256(d), "size": len(d)} for n, d in members.items()}}


def test_verify_refuses_a_missing_a_truncated_and_a_tampered_archive(hub: dict[str, Path], tmp_path: Path) -> None:
    archive = Path(str(_backup(hub)["archive"]))
    with pytest.raises(hb.BackupError, match="does not exist"):
        hb.verify(tmp_path / "nope.tar.gz")
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(hb.BackupError, match="truncated or corrupt"):
        hb.verify(truncated)
    members = dict(hb.verify(archive).members)
    manifest = _manifest(members)
    members["cookie_secret"] = b"attacker's secret\n"
    tampered = tmp_path / "tampered.tar.gz"
    tampered.write_bytes(_tar(members, manifest))
    with pytest.raises(hb.BackupError, match="cookie_secret does not match its checksum"):
        hb.verify(tampered)


def test_verify_refuses_a_database_that_fails_the_integrity_check(tmp_path: Path) -> None:
    members = {"jupyterhub.sqlite": b"SQLite format 3\x00" + b"\x00" * 200}
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_tar(members, _manifest(members)))
    with pytest.raises(hb.BackupError, match="integrity check"):
        hb.verify(bad)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/shadow", "sub/dir"])
def test_verify_refuses_members_with_paths(tmp_path: Path, name: str) -> None:
    members = {name: b"root::0:0::/root:/bin/sh\n"}
    crafted = tmp_path / "crafted.tar.gz"
    crafted.write_bytes(_tar(members, _manifest(members)))
    with pytest.raises(hb.BackupError, match="unexpected member"):
        hb.verify(crafted)


def test_verify_refuses_links_and_an_archive_without_manifest(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("cookie_secret")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(info)
    link = tmp_path / "link.tar.gz"
    link.write_bytes(buffer.getvalue())
    with pytest.raises(hb.BackupError, match="unexpected member"):
        hb.verify(link)
    bare = tmp_path / "bare.tar.gz"
    bare.write_bytes(_tar({"jupyterhub.sqlite": b"x"}))
    with pytest.raises(hb.BackupError, match="no valid MANIFEST.json"):
        hb.verify(bare)


def test_restore_refuses_before_writing_anything(hub: dict[str, Path], tmp_path: Path) -> None:
    archive = Path(str(_backup(hub)["archive"]))
    before = hub["db"].read_bytes()
    with pytest.raises(hb.BackupError, match="holds no gateway_secret"):
        hb.restore(archive, hub["db"], {"gateway_secret": tmp_path / "gateway_secret"}, set())
    assert hub["db"].read_bytes() == before


@pytest.mark.parametrize("item", ["noequals", "a/b=/x", "MANIFEST.json=/x", "name=relative/path"])
def test_file_arguments_are_plain_names_and_absolute_paths(item: str) -> None:
    with pytest.raises(hb.BackupError, match="expected NAME="):
        hb.parse_files([item])


def test_main_reports_a_refusal_on_stderr_with_status_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = os.umask(0o022)
    os.umask(before)
    assert hb.main(["verify", str(tmp_path / "missing.tar.gz")]) == 1
    assert "hpcgw-hub-backup verify:" in capsys.readouterr().err
    assert os.umask(before) == before  # the caller's umask is left as it was


def test_main_backs_up_and_restores(hub: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert hb.main(["backup", "--dest", str(hub["dest"]), "--keep", "2", "--db", str(hub["db"]),
                    f"--file=cookie_secret={hub['cookie_secret']}"]) == 0
    archive = json.loads(capsys.readouterr().out)["archive"]
    hub["cookie_secret"].unlink()
    assert hb.main(["restore", archive, "--db", str(hub["db"]), f"--file=cookie_secret={hub['cookie_secret']}"]) == 0
    assert json.loads(capsys.readouterr().out)["restored"] == ["jupyterhub.sqlite", "cookie_secret"]
    assert hub["cookie_secret"].read_text() == "ab" * 32 + "\n"


# --- PostgreSQL (jupyterhub_db_backend: postgresql): pg_dump/pg_restore ------
# Stand-ins for Debian's tools on PATH: pg_dump prints a dump and records its
# arguments and libpq environment; pg_restore --list lists a dump's tables
# (the users table only in a hub's dump), and a restore records what it read.

FAKE_PG_DUMP = """#!/usr/bin/python3
import json, os, sys
log = os.path.join(os.path.dirname(sys.argv[0]), "calls.jsonl")
with open(log, "a") as out:
    out.write(json.dumps({"tool": "pg_dump", "argv": sys.argv[1:],
                          "env": {k: v for k, v in os.environ.items() if k.startswith("PG")}}) + "\\n")
if os.environ.get("PGDATABASE") == "broken":
    sys.stderr.write('pg_dump: error: connection to server failed: FATAL:  role "x" does not exist\\n')
    sys.exit(1)
sys.stdout.buffer.write(b"PGDMP users " + os.environ["PGDATABASE"].encode())
"""
FAKE_PG_RESTORE = """#!/usr/bin/python3
import json, os, sys
log = os.path.join(os.path.dirname(sys.argv[0]), "calls.jsonl")
if "--list" in sys.argv:
    data = open(sys.argv[-1], "rb").read()
    if not data.startswith(b"PGDMP"):
        sys.stderr.write("pg_restore: error: input file does not appear to be a valid archive\\n")
        sys.exit(1)
    print("215; 1259 16387 TABLE public " + ("users" if b" users " in data else "other") + " hub")
    sys.exit(0)
with open(log, "a") as out:
    out.write(json.dumps({"tool": "pg_restore", "argv": sys.argv[1:], "stdin": sys.stdin.buffer.read().decode(),
                          "env": {k: v for k, v in os.environ.items() if k.startswith("PG")}}) + "\\n")
"""


@pytest.fixture()
def pg_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with the stand-in tools, first on PATH; their calls go to calls.jsonl there."""
    bindir = tmp_path / "pgbin"
    bindir.mkdir()
    for name, text in (("pg_dump", FAKE_PG_DUMP), ("pg_restore", FAKE_PG_RESTORE)):
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return bindir


def _calls(bindir: Path) -> list[dict[str, object]]:
    log = bindir / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _pg(tmp_path: Path, database: str = "jupyterhub_test") -> hb.Postgres:
    password = tmp_path / "db_password"
    password.write_text("s3cret\n")
    return hb.Postgres(database=database, host="db.example.org", port=5433, user="jupyterhub-test",
                       password_file=password, sslmode="verify-full")


def test_postgresql_is_dumped_with_pg_dump_and_the_password_stays_off_the_command_line(
        hub: dict[str, Path], pg_tools: Path, tmp_path: Path) -> None:
    result = hb.backup(hub["dest"], 3, _pg(tmp_path), {"cookie_secret": hub["cookie_secret"]}, now=time.gmtime(1_800_000_000))
    assert result["members"] == ["cookie_secret", "jupyterhub.pgdump"]
    checked = hb.verify(Path(str(result["archive"])))
    assert checked.members["jupyterhub.pgdump"] == b"PGDMP users jupyterhub_test"
    (call,) = _calls(pg_tools)
    assert call["argv"] == ["--format=custom", "--no-owner", "--no-privileges", "--dbname", "jupyterhub_test"]
    assert call["env"] == {"PGHOST": "db.example.org", "PGPORT": "5433", "PGUSER": "jupyterhub-test",
                           "PGDATABASE": "jupyterhub_test", "PGPASSWORD": "s3cret", "PGSSLMODE": "verify-full",
                           "PGCONNECT_TIMEOUT": "30", "PGAPPNAME": "hpcgw-hub-backup"}


def test_a_failing_pg_dump_writes_no_archive_and_says_why(hub: dict[str, Path], pg_tools: Path, tmp_path: Path) -> None:
    with pytest.raises(hb.BackupError, match='pg_dump of database broken on db.example.org:5433 as jupyterhub-test '
                                             'failed \\(status 1\\): .*role "x" does not exist'):
        hb.backup(hub["dest"], 3, _pg(tmp_path, "broken"), {})
    assert list(hub["dest"].glob("hub-backup-*")) == []


def test_verify_refuses_a_dump_that_is_not_a_hubs_database(pg_tools: Path, tmp_path: Path) -> None:
    for dump, expected in ((b"PGDMP other", "holds no table public.users"), (b"garbage", "pg_restore cannot read it")):
        archive = tmp_path / "hub-backup-20270101T000000Z.tar.gz"
        archive.write_bytes(hb.archive_bytes({"jupyterhub.pgdump": dump}, "2027-01-01T00:00:00Z", "gw"))
        with pytest.raises(hb.BackupError, match=expected):
            hb.verify(archive)


def test_verify_refuses_an_archive_with_two_databases(tmp_path: Path) -> None:
    archive = tmp_path / "hub-backup-20270101T000000Z.tar.gz"
    archive.write_bytes(hb.archive_bytes({"jupyterhub.pgdump": b"PGDMP users", "jupyterhub.sqlite": b""}, "t", "gw"))
    with pytest.raises(hb.BackupError, match="hold not exactly one database"):
        hb.verify(archive)


def test_postgresql_is_restored_with_pg_restore_in_one_transaction(
        hub: dict[str, Path], pg_tools: Path, tmp_path: Path) -> None:
    pg = _pg(tmp_path)
    archive = Path(str(hb.backup(hub["dest"], 3, pg, {"cookie_secret": hub["cookie_secret"]})["archive"]))
    hub["cookie_secret"].unlink()
    result = hb.restore(archive, pg, {"cookie_secret": hub["cookie_secret"]}, set())
    assert result["restored"] == ["jupyterhub.pgdump", "cookie_secret"]
    assert hub["cookie_secret"].read_text() == "ab" * 32 + "\n"
    restored = [c for c in _calls(pg_tools) if c["tool"] == "pg_restore"]
    assert len(restored) == 1
    assert restored[0]["stdin"] == "PGDMP users jupyterhub_test"
    assert restored[0]["argv"] == ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                                   "--exit-on-error", "--dbname", "jupyterhub_test"]
    assert restored[0]["env"]["PGPASSWORD"] == "s3cret"


def test_an_archive_of_the_other_backend_is_refused(hub: dict[str, Path], pg_tools: Path, tmp_path: Path) -> None:
    sqlite_archive = Path(str(_backup(hub)["archive"]))
    with pytest.raises(hb.BackupError, match="backup of a hub on SQLite, this hub uses PostgreSQL"):
        hb.restore(sqlite_archive, _pg(tmp_path), {}, set())
    pg_archive = Path(str(hb.backup(hub["dest"], 3, _pg(tmp_path), {}, now=time.gmtime(1_900_000_000))["archive"]))
    before = hub["db"].read_bytes()
    with pytest.raises(hb.BackupError, match="backup of a hub on PostgreSQL, this hub uses SQLite"):
        hb.restore(pg_archive, hub["db"], {}, set())
    assert hub["db"].read_bytes() == before
    assert [c["tool"] for c in _calls(pg_tools)] == ["pg_dump"]  # nothing was restored


def test_main_takes_the_postgresql_arguments(hub: dict[str, Path], pg_tools: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert hb.main(["backup", "--dest", str(hub["dest"]), "--keep", "2", "--pg-database", "jupyterhub",
                    "--pg-user", "jupyterhub", "--pg-host", "/run/postgresql", "--pg-port", "5432"]) == 0
    assert json.loads(capsys.readouterr().out)["members"] == ["jupyterhub.pgdump"]
    (call,) = _calls(pg_tools)
    assert call["env"]["PGHOST"] == "/run/postgresql" and "PGPASSWORD" not in call["env"]
    assert hb.main(["backup", "--dest", str(hub["dest"]), "--keep", "2", "--pg-database", "jupyterhub"]) == 1
    assert "--pg-database needs --pg-user" in capsys.readouterr().err
