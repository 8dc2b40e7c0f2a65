#!/usr/bin/python3
"""Backup and restore of the hub's state (role jupyterhub), run as root.

  hpcgw-hub-backup backup --dest DIR --keep N DATABASE [--file NAME=PATH ...]
  hpcgw-hub-backup verify ARCHIVE
  hpcgw-hub-backup restore ARCHIVE DATABASE [--file NAME=PATH ...] [--only-missing NAME ...]

DATABASE is either --db PATH (SQLite) or --pg-database NAME with
--pg-host (a host or the socket directory), --pg-port, --pg-user, and
optionally --pg-run-as ACCOUNT (pg_dump/pg_restore run as that account: the
hub's, peer authentication on the local socket), --pg-password-file FILE and
--pg-sslmode MODE (an external server).

backup: the SQLite database is copied online with SQLite's backup API (the
hub keeps running; the copy is one consistent snapshot and must pass
``PRAGMA integrity_check``); a PostgreSQL database is dumped online with
``pg_dump --format=custom`` (one consistent snapshot, no owners or grants,
so it restores into the hub's role), which ``pg_restore --list`` must read.
The named files are read as they are, and all of it goes into DEST/hub-backup-<UTC time>.tar.gz (root 0600, the directory
0700) with a MANIFEST.json holding each member's SHA-256. Only the newest N
archives are kept.

verify: the archive opens, holds exactly the manifest's members as regular
files with the manifest's checksums, and its database passes the integrity
check (a PostgreSQL dump: pg_restore lists it and it holds the hub's users
table). Exit status 1 and the reason on stderr otherwise.

restore: after verify, each member is written to the path the command line
gives for its name (never a path from the archive), atomically, root 0600
(the caller sets owners and modes); the database's stale journal files are
removed first. A PostgreSQL dump is restored with pg_restore --clean
--if-exists in one transaction into the existing database (its tables are
replaced); an archive of the other backend is refused. Members named with
--only-missing are written only when their path does not exist (secrets
other programs already hold), and may be absent from the archive. The hub
must be stopped. Prints one JSON line: what was restored and what was kept.

Standard library only (Debian's python3).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pwd
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

FORMAT = 1
MANIFEST = "MANIFEST.json"
DB_MEMBER = "jupyterhub.sqlite"
PG_MEMBER = "jupyterhub.pgdump"
DB_MEMBERS = (DB_MEMBER, PG_MEMBER)
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# pg_restore --list names the hub's users table so in a dump of a JupyterHub database.
PG_USERS_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE public users ", re.M)
PG_TIMEOUT = 3600
ARCHIVE_NAME = re.compile(r"^hub-backup-\d{8}T\d{6}Z(-\d+)?\.tar\.gz$")
MEMBER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
# Larger members than this are refused (a database of a very large site stays far below).
MAX_MEMBER_BYTES = 2 * 1024 ** 3


class BackupError(Exception):
    """Why a backup, verify or restore was refused (one line for the admin)."""


@dataclass(frozen=True)
class Postgres:
    """How pg_dump and pg_restore reach the hub's PostgreSQL database."""

    database: str
    host: str
    port: int
    user: str
    run_as: Optional[str] = None
    password_file: Optional[Path] = None
    sslmode: Optional[str] = None

    def environment(self) -> dict[str, str]:
        """libpq's settings for the tools (the password, if any, never on a command line)."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "PGHOST": self.host,
               "PGPORT": str(self.port), "PGUSER": self.user, "PGDATABASE": self.database,
               "PGCONNECT_TIMEOUT": "30", "PGAPPNAME": "hpcgw-hub-backup"}
        if self.password_file is not None:
            try:
                env["PGPASSWORD"] = self.password_file.read_text(encoding="utf-8").rstrip("\n")
            except OSError as err:
                raise BackupError(f"cannot read the database password file {self.password_file}: {err.strerror}") from err
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode
        return env

    def run(self, tool: str, args: list[str], data: Optional[bytes] = None) -> bytes:
        """Run pg_dump or pg_restore as run_as against the database: its stdout, or BackupError."""
        program = shutil.which(tool, path=os.environ.get("PATH"))
        if program is None:
            raise BackupError(f"{tool} is missing: install Debian's postgresql-client (site.yml does with jupyterhub_db_backend: postgresql)")
        # As the account: its uid, its primary group, none of root's groups.
        account: dict[str, Any] = {}
        if self.run_as:
            try:
                entry = pwd.getpwnam(self.run_as)
            except KeyError as err:
                raise BackupError(f"--pg-run-as {self.run_as}: no such account") from err
            account = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        try:
            done = subprocess.run([program, *args], input=data, capture_output=True, env=self.environment(),
                                  cwd="/", timeout=PG_TIMEOUT, check=False, **account)
        except (OSError, subprocess.SubprocessError) as err:
            raise BackupError(f"{tool} could not run: {err}") from err
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip().splitlines()
            raise BackupError(f"{tool} of database {self.database} on {self.host}:{self.port} as {self.user} failed "
                              f"(status {done.returncode}): {' / '.join(said[-3:]) or 'no message'}")
        return done.stdout


Database = Union[Path, Postgres]


@dataclass(frozen=True)
class Checked:
    """A verified archive: its manifest and its members' bytes."""

    manifest: dict[str, object]
    members: dict[str, bytes]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_files(items: list[str]) -> dict[str, Path]:
    """NAME=PATH arguments -> {name: path}; names are plain file names."""
    files: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not MEMBER_NAME.match(name) or name in (MANIFEST, *DB_MEMBERS) or not path.startswith("/"):
            raise BackupError(f"--file {item!r}: expected NAME=/absolute/path with a plain NAME")
        if name in files:
            raise BackupError(f"--file {name} given twice")
        files[name] = Path(path)
    return files


def integrity(db_path: Path) -> str:
    """SQLite's integrity check of a database file ("ok" when sound)."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        return str(err)
    return "; ".join(str(row[0]) for row in rows)


def snapshot_db(db: Path, dest: Path) -> None:
    """Online copy of the live database with SQLite's backup API (a
    consistent snapshot while the hub writes), checked before it is used."""
    if not db.is_file():
        raise BackupError(f"database {db} does not exist")
    try:
        source = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(str(dest))
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
    except sqlite3.Error as err:
        raise BackupError(f"cannot copy the database {db}: {err}") from err
    verdict = integrity(dest)
    if verdict != "ok":
        raise BackupError(f"the copy of {db} fails SQLite's integrity check: {verdict}")


def dump_pg(pg: Postgres) -> bytes:
    """Online dump of the hub's PostgreSQL database (pg_dump's one snapshot), checked before it is used."""
    data = pg.run("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", "--dbname", pg.database])
    problem = pg_dump_problem(data)
    if problem:
        raise BackupError(f"the dump of database {pg.database} is not usable: {problem}")
    return data


def pg_dump_problem(data: bytes) -> str:
    """Why a custom-format dump is not a readable dump of a hub's database ("" when it is)."""
    program = shutil.which("pg_restore", path=os.environ.get("PATH"))
    if program is None:
        return "pg_restore is missing to check it: install Debian's postgresql-client"
    with tempfile.TemporaryDirectory(prefix="hpcgw-hub-pgdump-") as scratch:
        copy = Path(scratch) / PG_MEMBER
        copy.write_bytes(data)
        try:
            listed = subprocess.run([program, "--list", str(copy)], capture_output=True, text=True,
                                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
                                    timeout=PG_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError) as err:
            return f"pg_restore could not run: {err}"
    if listed.returncode != 0:
        return "pg_restore cannot read it: " + (" / ".join(listed.stderr.strip().splitlines()[-2:]) or "no message")
    if not PG_USERS_TABLE.search(listed.stdout):
        return "it holds no table public.users (not a JupyterHub database)"
    return ""


def archive_bytes(members: dict[str, bytes], created: str, host: str) -> bytes:
    """A gzipped tar of the members and their manifest (fixed times and owners)."""
    manifest = {"format": FORMAT, "created": created, "host": host,
                "members": {name: {"sha256": sha256(data), "size": len(data)} for name, data in sorted(members.items())}}
    buffer = io.BytesIO()
    mtime = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in [(MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())] + sorted(
                members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, mtime
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_private(path: Path, data: bytes) -> None:
    """Write atomically: a 0600 temporary file beside the target, then rename."""
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def archive_path(dest: Path, now: time.struct_time) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", now)
    path, n = dest / f"hub-backup-{stamp}.tar.gz", 1
    while path.exists():
        path, n = dest / f"hub-backup-{stamp}-{n}.tar.gz", n + 1
    return path


def prune(dest: Path, keep: int) -> list[str]:
    """Remove all but the newest `keep` archives (by the time in their name)."""
    archives = sorted((p for p in dest.iterdir() if ARCHIVE_NAME.match(p.name) and p.is_file()),
                      key=lambda p: (p.name[:27], len(p.name), p.name))
    gone = archives[:-keep] if keep > 0 else []
    for path in gone:
        path.unlink()
    return [p.name for p in gone]


def backup(dest: Path, keep: int, db: Database, files: dict[str, Path],
           now: Optional[time.struct_time] = None) -> dict[str, object]:
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(dest, 0o700)
    members: dict[str, bytes] = {}
    if isinstance(db, Postgres):
        members[PG_MEMBER] = dump_pg(db)
    else:
        with tempfile.TemporaryDirectory(dir=str(dest), prefix=".hub-backup-") as scratch:
            copy = Path(scratch) / DB_MEMBER
            snapshot_db(db, copy)
            members[DB_MEMBER] = copy.read_bytes()
    for name, path in files.items():
        try:
            members[name] = path.read_bytes()
        except OSError as err:
            raise BackupError(f"cannot read {path} ({name}): {err.strerror}") from err
    stamp = now or time.gmtime()
    target = archive_path(dest, stamp)
    write_private(target, archive_bytes(members, time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp), socket.gethostname()))
    return {"archive": str(target), "members": sorted(members), "pruned": prune(dest, keep)}


def verify(archive: Path) -> Checked:
    """The archive's members, once every check passed (BackupError otherwise)."""
    if not archive.is_file():
        raise BackupError(f"{archive} does not exist or is not a file")
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(str(archive), mode="r:gz") as tar:
            for info in tar:
                if not info.isfile() or not (MEMBER_NAME.match(info.name) or info.name == MANIFEST):
                    raise BackupError(f"{archive}: unexpected member {info.name!r} (not a plain file of a hub backup)")
                if info.name in members:
                    raise BackupError(f"{archive}: member {info.name} appears twice")
                if info.size > MAX_MEMBER_BYTES:
                    raise BackupError(f"{archive}: member {info.name} is too large ({info.size} bytes)")
                handle = tar.extractfile(info)
                members[info.name] = handle.read() if handle else b""
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise BackupError(f"{archive} is not a readable backup archive (truncated or corrupt?): {err}") from err
    try:
        manifest = json.loads(members.pop(MANIFEST).decode())
        listed = manifest["members"]
        assert manifest.get("format") == FORMAT and isinstance(listed, dict)
    except (KeyError, ValueError, AssertionError, AttributeError, TypeError) as err:
        raise BackupError(f"{archive} has no valid {MANIFEST}: not a hub backup of this format") from err
    if set(listed) != set(members) or len(set(DB_MEMBERS) & set(members)) != 1:
        raise BackupError(f"{archive}: members {sorted(members)} differ from the manifest's {sorted(listed)}"
                          f" or hold not exactly one database ({' or '.join(DB_MEMBERS)})")
    for name, data in members.items():
        entry = listed[name]
        if not isinstance(entry, dict) or entry.get("sha256") != sha256(data):
            raise BackupError(f"{archive}: {name} does not match its checksum (corrupt)")
    if PG_MEMBER in members:
        problem = pg_dump_problem(members[PG_MEMBER])
        if problem:
            raise BackupError(f"{archive}: the PostgreSQL dump is not usable: {problem}")
        return Checked(manifest=manifest, members=members)
    with tempfile.TemporaryDirectory(prefix="hpcgw-hub-verify-") as scratch:
        copy = Path(scratch) / DB_MEMBER
        copy.write_bytes(members[DB_MEMBER])
        verdict = integrity(copy)
    if verdict != "ok":
        raise BackupError(f"{archive}: the database fails SQLite's integrity check: {verdict}")
    return Checked(manifest=manifest, members=members)


def restore(archive: Path, db: Database, files: dict[str, Path], only_missing: set[str]) -> dict[str, object]:
    checked = verify(archive)
    missing = sorted(set(files) - set(checked.members) - only_missing)
    if missing:
        raise BackupError(f"{archive} holds no {', '.join(missing)}: restore refused, nothing changed")
    wanted = PG_MEMBER if isinstance(db, Postgres) else DB_MEMBER
    if wanted not in checked.members:
        have, want = ("PostgreSQL", "SQLite") if wanted == DB_MEMBER else ("SQLite", "PostgreSQL")
        raise BackupError(f"{archive} is the backup of a hub on {have}, this hub uses {want} (jupyterhub_db_backend):"
                          " restore refused, nothing changed")
    restored, kept = [], []
    if isinstance(db, Postgres):
        # One transaction: a failure leaves the database as it was.
        db.run("pg_restore", ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                              "--exit-on-error", "--dbname", db.database], data=checked.members[PG_MEMBER])
    else:
        for suffix in ("-journal", "-wal", "-shm"):
            stale = Path(str(db) + suffix)
            if stale.exists():
                stale.unlink()
        write_private(db, checked.members[DB_MEMBER])
    restored.append(wanted)
    for name, path in sorted(files.items()):
        if name in only_missing and (path.exists() or name not in checked.members):
            kept.append(name)
            continue
        write_private(path, checked.members[name])
        restored.append(name)
    return {"archive": str(archive), "created": checked.manifest.get("created"), "restored": restored, "kept": kept}


def add_database(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", type=Path)
    where.add_argument("--pg-database")
    parser.add_argument("--pg-host", default="/run/postgresql")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user")
    parser.add_argument("--pg-run-as")
    parser.add_argument("--pg-password-file", type=Path)
    parser.add_argument("--pg-sslmode", choices=SSLMODES)


def database(args: argparse.Namespace) -> Database:
    """--db PATH, or the PostgreSQL database the --pg-* arguments name."""
    if args.db is not None:
        return Path(args.db)
    if not args.pg_user:
        raise BackupError("--pg-database needs --pg-user (the role that owns the database)")
    return Postgres(database=args.pg_database, host=args.pg_host, port=args.pg_port, user=args.pg_user,
                    run_as=args.pg_run_as, password_file=args.pg_password_file, sslmode=args.pg_sslmode)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hpcgw-hub-backup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("backup")
    make.add_argument("--dest", required=True, type=Path)
    make.add_argument("--keep", required=True, type=int)
    add_database(make)
    make.add_argument("--file", action="append", default=[])
    check = sub.add_parser("verify")
    check.add_argument("archive", type=Path)
    back = sub.add_parser("restore")
    back.add_argument("archive", type=Path)
    add_database(back)
    back.add_argument("--file", action="append", default=[])
    back.add_argument("--only-missing", action="append", default=[])
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    umask = os.umask(0o077)
    try:
        if args.command == "backup":
            result: dict[str, object] = backup(args.dest, args.keep, database(args), parse_files(args.file))
        elif args.command == "verify":
            checked = verify(args.archive)
            result = {"archive": str(args.archive), "created": checked.manifest.get("created"),
                      "members": sorted(checked.members)}
        else:
            result = restore(args.archive, database(args), parse_files(args.file), set(args.only_missing))
    except BackupError as err:
        print(f"hpcgw-hub-backup {args.command}: {err}", file=sys.stderr)
        return 1
    finally:
        os.umask(umask)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
