"""SLURM accounts and user associations as inventory data (slurm_server_accounts):
the preflight's check and the plan of sacctmgr commands that brings the
accounting database to it.

Only additions: an account or association the inventory does not name is
left alone (another admin's, or the site's own tooling's). Every name is one
argv element of sacctmgr (no shell); the checks keep to what SLURM stores
unchanged (lower case), so a second run finds everything and plans nothing.
"""

from __future__ import annotations

import re
from typing import Any, Callable

ACCOUNT_RE = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,63}\Z")
USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\Z")
DESCRIPTION_RE = re.compile(r"^[A-Za-z0-9 _.,:()/-]{0,100}\Z")
KEYS = frozenset({"name", "description", "users", "default"})
VAR = "slurm_server_accounts"


def slurm_server_accounts_errors(accounts: Any) -> list[str]:
    """Every mistake in slurm_server_accounts, each naming its item ([] when fine)."""
    if not isinstance(accounts, list):
        return [f"{VAR} must be a list of {{name, description, users, default}}"]
    errors: list[str] = []
    seen: set[str] = set()
    default_of: dict[str, str] = {}
    for i, item in enumerate(accounts):
        path = f"{VAR}[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{path} must be a dict with name, description, users, default")
            continue
        unknown = sorted(set(item) - KEYS)
        if unknown:
            errors.append(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(KEYS))}")
        name = item.get("name")
        if not isinstance(name, str) or not ACCOUNT_RE.match(name) or name == "root":
            errors.append(f"{path}.name must be a SLURM account name in lower case ({ACCOUNT_RE.pattern}, "
                          f"not root; got {name!r})")
        elif name in seen:
            errors.append(f"{path}.name: duplicate account {name!r}")
        else:
            seen.add(name)
        description = item.get("description", "")
        if not isinstance(description, str) or not DESCRIPTION_RE.match(description):
            errors.append(f"{path}.description must be up to 100 letters, digits, spaces and _ . , : ( ) / - "
                          f"(got {description!r})")
        users = item.get("users", [])
        if not isinstance(users, list) or not all(isinstance(u, str) and USER_RE.match(u) for u in users):
            errors.append(f"{path}.users must be a list of user names in lower case ({USER_RE.pattern}; got {users!r})")
            users = []
        default = item.get("default", [])
        if not isinstance(default, list) or not all(isinstance(u, str) for u in default):
            errors.append(f"{path}.default must be a list of user names (got {default!r})")
            continue
        for user in default:
            if user not in users:
                errors.append(f"{path}.default: {user!r} is not in this account's users")
            elif user in default_of:
                errors.append(f"{path}.default: {user!r} already has default account {default_of[user]!r}")
            else:
                default_of[user] = str(name)
    return errors


def _defaults(accounts: list[dict[str, Any]]) -> dict[str, str]:
    """Each user's default account: the one whose default names them, else their first."""
    wanted: dict[str, str] = {}
    for item in accounts:
        for user in item.get("users", []):
            wanted.setdefault(user, item["name"])
    for item in accounts:
        for user in item.get("default", []):
            wanted[user] = item["name"]
    return wanted


def _rows(output: str, width: int) -> list[list[str]]:
    return [fields for fields in (line.strip().split("|") for line in output.splitlines() if line.strip())
            if len(fields) == width]


def slurm_server_accounts_plan(accounts: list[dict[str, Any]], assoc_output: str, users_output: str) -> dict[str, Any]:
    """What to add, from ``sacctmgr -nP show assoc where cluster=<c> format=account,user``
    and ``sacctmgr -nP show user format=user,defaultaccount``:

    ``accounts``: [{name, description}] missing; ``associations``: [{user,
    account, default}] missing, each user's default account first
    (``default``: the DefaultAccount of a user new to SLURM, set with their
    first association, else ""); ``defaults``: [{user, account}] of existing
    users whose DefaultAccount differs.
    """
    present_accounts = {account for account, user in _rows(assoc_output, 2) if not user}
    present_assocs = {(user, account) for account, user in _rows(assoc_output, 2) if user}
    current_default = {user: default for user, default in _rows(users_output, 2)}
    wanted_default = _defaults(accounts)
    plan_accounts = [{"name": item["name"], "description": item.get("description") or item["name"]}
                     for item in accounts if item["name"] not in present_accounts]
    pairs = [(user, item["name"]) for item in accounts for user in item.get("users", [])]
    pairs.sort(key=lambda pair: (pair[0], pair[1] != wanted_default[pair[0]]))  # stable: inventory order otherwise
    associations = [{"user": user, "account": account,
                     "default": account if user not in current_default and account == wanted_default[user] else ""}
                    for user, account in pairs if (user, account) not in present_assocs]
    defaults = [{"user": user, "account": account} for user, account in sorted(wanted_default.items())
                if user in current_default and current_default[user] != account]
    return {"accounts": plan_accounts, "associations": associations, "defaults": defaults}


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"slurm_server_accounts_errors": slurm_server_accounts_errors,
                "slurm_server_accounts_plan": slurm_server_accounts_plan}
