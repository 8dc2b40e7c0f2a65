#!/usr/bin/python3 -I
"""Start or end one user's local Jupyter server scope (root, through sudo).

The hub account runs, through one pinned sudo rule, exactly

    sudo -n /usr/local/sbin/hpcgw-local-scope start <user>
    sudo -n /usr/local/sbin/hpcgw-local-scope stop <user>

``start`` puts the local profile's mediator (``hpcgw-local-mediator``, which
starts ``jupyterhub-singleuser``) into a systemd scope of its own,
``hpcgw-local-<user>.scope`` in ``hpcgw-local.slice``, with the user's memory,
CPU and task limits, and runs it as the user (``setpriv``: the user's uid,
primary gid and own supplementary groups, nothing of root's). The mediator
reads the hub's JSON request on the stdin this process hands on. ``stop``
stops that scope: systemd ends every process left in it.

The user is checked like the sudo rules' Runas list: a plain account name,
known to the host, member of the users' group, uid at least the minimum,
not refused (root, the hub account, blocked and excluded accounts). Anything
else is refused with a message and exit status 77 before systemd is asked.
Limits, group and refusals come from a root-owned JSON file the role writes
(``CONFIG_FILE``); nothing comes from the caller but the verb and the name,
and the environment is rebuilt from scratch (the interpreter runs isolated:
``-I`` ignores PYTHON* variables and the user's site directory).
"""

from __future__ import annotations

import dataclasses
import grp
import json
import os
import pwd
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

# The configuration is named after the launcher as installed: the production
# instance's /usr/local/sbin/hpcgw-local-scope reads /etc/hpcgw-local-scope.json,
# a test instance's hpcgw-local-scope-<instance> its own (role jupyterhub).
CONFIG_FILE = Path("/etc") / f"{Path(__file__).name}.json"
SYSTEMD_RUN = "/usr/bin/systemd-run"
SYSTEMCTL = "/usr/bin/systemctl"
SETPRIV = "/usr/bin/setpriv"
# The production instance's slice; a test instance's configuration names its
# own (hpcgw-local_<instance>.slice: "_", since "-" in a slice's name nests it
# in the slice before the dash). Each scope is "<slice without .slice>-<user>.scope".
SLICE = "hpcgw-local.slice"
SLICE_NAME = re.compile(r"hpcgw-local(_[a-z][a-z0-9]{0,11})?\.slice")

EXIT_USAGE = 64      # EX_USAGE
EXIT_REFUSED = 77    # EX_NOPERM
EXIT_CONFIG = 78     # EX_CONFIG

# A plain account name: no option, path or unit-name syntax (no leading '-'
# or '.', no '/', '@', spaces or control characters).
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
LIMIT_KEYS = ("memory_max", "cpu_quota", "tasks_max")
MEMORY = re.compile(r"[1-9][0-9]*[KMGT]?|([1-9][0-9]?|100)%")
CPU = re.compile(r"[1-9][0-9]*%")


class Refused(Exception):
    """The request is refused; the message says why."""

    def __init__(self, message: str, status: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Settings:
    """The root-owned configuration (role jupyterhub renders it)."""

    group: str
    min_uid: int
    refused: frozenset[str]
    mediator: str
    limits: Mapping[str, str]
    users: Mapping[str, Mapping[str, str]]
    stop_timeout: int
    slice_name: str = SLICE


@dataclasses.dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str
    shell: str


def check_limits(limits: Any, where: str, partial: bool = False) -> dict[str, str]:
    """The limits as systemd property values; Refused (config) if any is not valid."""
    if not isinstance(limits, dict) or set(limits) - set(LIMIT_KEYS) or (not partial and set(limits) != set(LIMIT_KEYS)):
        raise Refused(f"{where}: limits must have exactly the keys {', '.join(LIMIT_KEYS)}", EXIT_CONFIG)
    out: dict[str, str] = {}
    for key, value in limits.items():
        text = str(value)
        ok = {"memory_max": MEMORY, "cpu_quota": CPU}.get(key, re.compile(r"[1-9][0-9]*"))
        if isinstance(value, bool) or not ok.fullmatch(text):
            raise Refused(f"{where}: {key} {text!r} is not a valid value", EXIT_CONFIG)
        out[key] = text
    return out


def parse_settings(data: Any) -> Settings:
    """Settings from the configuration's JSON; Refused (config) when anything is off."""
    try:
        users = data["users"]
        if not isinstance(users, dict) or any(not NAME.fullmatch(str(u)) for u in users):
            raise Refused("users: keys must be account names", EXIT_CONFIG)
        slice_name = str(data.get("slice", SLICE))
        if not SLICE_NAME.fullmatch(slice_name):
            raise Refused(f"slice: {slice_name!r} is not hpcgw-local.slice or hpcgw-local_<instance>.slice", EXIT_CONFIG)
        return Settings(
            slice_name=slice_name,
            group=str(data["group"]),
            min_uid=int(data["min_uid"]),
            refused=frozenset(str(r) for r in data["refused"]),
            mediator=str(data["mediator"]),
            limits=check_limits(data["limits"], "limits"),
            users={u: check_limits(v, f"users.{u}", partial=True) for u, v in users.items()},
            stop_timeout=int(data["stop_timeout"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused(f"configuration incomplete or malformed: {exc!r}", EXIT_CONFIG) from exc


def load_settings(path: Path = CONFIG_FILE) -> Settings:
    """Read the configuration; only a root-owned file nobody else may write counts."""
    try:
        info = path.stat()
        if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or not stat.S_ISREG(info.st_mode):
            raise Refused(f"{path} must be a regular file owned by root and writable by root only", EXIT_CONFIG)
        return parse_settings(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror}", EXIT_CONFIG) from exc
    except json.JSONDecodeError as exc:
        raise Refused(f"{path} is not JSON: {exc}", EXIT_CONFIG) from exc


def check_user(name: str, settings: Settings,
               getpwnam: Callable[[str], Any] = pwd.getpwnam,
               getgrnam: Callable[[str], Any] = grp.getgrnam,
               getgrouplist: Callable[[str, int], list[int]] = os.getgrouplist) -> Account:
    """The account the hub may start a local server for, or Refused."""
    if not NAME.fullmatch(name):
        raise Refused(f"{name!r} is not a plain account name")
    try:
        entry = getpwnam(name)
    except KeyError as exc:
        raise Refused(f"no account {name!r} on this host") from exc
    if entry.pw_name != name:  # a case-insensitive name service answered for another spelling
        raise Refused(f"{name!r} is not the account's own name ({entry.pw_name!r})")
    if name in settings.refused or f"#{entry.pw_uid}" in settings.refused or entry.pw_uid == 0:
        raise Refused(f"{name} is refused (root, the hub account, a blocked or excluded account)")
    if entry.pw_uid < settings.min_uid:
        raise Refused(f"{name} is a system account (uid {entry.pw_uid} < {settings.min_uid})")
    try:
        group_gid = getgrnam(settings.group).gr_gid
    except KeyError as exc:
        raise Refused(f"group {settings.group!r} does not exist", EXIT_CONFIG) from exc
    if group_gid not in getgrouplist(name, entry.pw_gid):
        raise Refused(f"{name} is not a member of {settings.group}")
    return Account(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir, shell=entry.pw_shell)


def unit_name(account: Account, settings: Settings) -> str:
    return f"{settings.slice_name.removesuffix('.slice')}-{account.name}.scope"


def limits_for(account: Account, settings: Settings) -> dict[str, str]:
    """The defaults, with the user's own overrides."""
    return {**settings.limits, **settings.users.get(account.name, {})}


def start_argv(account: Account, settings: Settings) -> list[str]:
    """systemd-run: the scope with the user's limits, the mediator as the user inside it."""
    limits = limits_for(account, settings)
    return [
        SYSTEMD_RUN, "--scope", "--quiet", "--collect",
        f"--unit={unit_name(account, settings)}", f"--slice={settings.slice_name}",
        f"--description=Local Jupyter server of {account.name} (hpc-gateway)",
        "-p", f"MemoryMax={limits['memory_max']}",
        "-p", f"CPUQuota={limits['cpu_quota']}",
        "-p", f"TasksMax={limits['tasks_max']}",
        "-p", f"TimeoutStopSec={settings.stop_timeout}s",
        "--",
        # setpriv, not systemd-run --uid: that one keeps the caller's
        # supplementary groups (root's) in the user's processes.
        SETPRIV, f"--reuid={account.uid}", f"--regid={account.gid}", "--init-groups",
        "--inh-caps=-all", "--",
        settings.mediator,
    ]


def child_env(account: Account) -> dict[str, str]:
    """The whole environment of systemd-run and the mediator: nothing of the caller's."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": account.home,
        "USER": account.name,
        "LOGNAME": account.name,
        "SHELL": account.shell or "/bin/sh",
        "LANG": "C.UTF-8",
    }


def stop_scope(account: Account, settings: Settings,
               run: Callable[..., Any] = subprocess.run) -> int:
    """Stop the user's scope (every process left in it ends); 0 also when there was none."""
    unit = unit_name(account, settings)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    active = run([SYSTEMCTL, "is-active", "--quiet", unit], env=env, check=False,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if active.returncode == 0:
        stopped = run([SYSTEMCTL, "stop", unit], env=env, check=False, timeout=settings.stop_timeout + 30)
        if stopped.returncode != 0:
            return 1
    run([SYSTEMCTL, "reset-failed", unit], env=env, check=False,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return 0


def main(argv: Sequence[str], config: Path = CONFIG_FILE,
         execve: Callable[[str, list[str], dict[str, str]], Any] = os.execve,
         run: Callable[..., Any] = subprocess.run) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: hpcgw-local-scope start|stop <user>", file=sys.stderr)
        return EXIT_USAGE
    verb, name = argv
    try:
        settings = load_settings(config)
        account = check_user(name, settings)
    except Refused as exc:
        print(f"hpcgw-local-scope: refused: {exc}", file=sys.stderr)
        return exc.status
    if verb == "stop":
        return stop_scope(account, settings, run)
    # One local server per user: a scope still there belongs to a server
    # the hub no longer runs (leftover processes); it ends first.
    if stop_scope(account, settings, run) != 0:
        print(f"hpcgw-local-scope: {unit_name(account, settings)} did not stop", file=sys.stderr)
        return 1
    execve(SYSTEMD_RUN, start_argv(account, settings), child_env(account))
    return 1  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
