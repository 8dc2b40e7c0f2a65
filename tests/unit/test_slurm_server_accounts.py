"""Role slurm_server's accounts and associations (slurm_server_accounts): the
preflight's check, and the plan of sacctmgr additions computed from what
the accounting database holds (a second run plans nothing; nothing the
inventory does not name is removed). sacctmgr's output as on the demo's
slurmdbd (slurm-wlm 22.05, --noheader --parsable2)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_run import load_vars

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "roles" / "slurm_server" / "filter_plugins"))

from slurm_server_accounts import slurm_server_accounts_errors, slurm_server_accounts_plan  # noqa: E402

DEMO = load_vars("inventories/demo/group_vars/slurm_controller/slurm.yml")["slurm_server_accounts"]
# A fresh database: only root (show assoc where cluster=testcluster format=account,user).
FRESH = "root|\nroot|root\n"
FRESH_USERS = "root|root\n"
# After the first run.
DONE = FRESH + "astro|\nastro|alice\nchem|\nchem|alice\nbio|\nbio|bob\n"
DONE_USERS = FRESH_USERS + "alice|astro\nbob|bio\n"


def test_the_demo_is_valid_and_alice_has_two_accounts_bob_one_other() -> None:
    assert slurm_server_accounts_errors(DEMO) == []
    members: dict[str, list[str]] = {}
    for item in DEMO:
        for user in item["users"]:
            members.setdefault(user, []).append(item["name"])
    assert sorted(members["alice"]) == ["astro", "chem"] and len(members["bob"]) == 1
    assert not set(members["bob"]) & set(members["alice"])


def test_a_fresh_database_gets_every_account_and_association_default_first() -> None:
    plan = slurm_server_accounts_plan(DEMO, FRESH, FRESH_USERS)
    assert [a["name"] for a in plan["accounts"]] == ["astro", "chem", "bio"]
    assert plan["associations"] == [
        {"user": "alice", "account": "astro", "default": "astro"},
        {"user": "alice", "account": "chem", "default": ""},
        {"user": "bob", "account": "bio", "default": "bio"},
    ]
    assert plan["defaults"] == []


def test_a_second_run_plans_nothing() -> None:
    assert slurm_server_accounts_plan(DEMO, DONE, DONE_USERS) == {"accounts": [], "associations": [], "defaults": []}


def test_an_explicit_default_wins_over_the_first_account() -> None:
    accounts = [{"name": "a1", "users": ["u"]}, {"name": "a2", "users": ["u"], "default": ["u"]}]
    plan = slurm_server_accounts_plan(accounts, FRESH, FRESH_USERS)
    assert plan["associations"][0] == {"user": "u", "account": "a2", "default": "a2"}
    # an existing user whose DefaultAccount differs: modified, nothing re-added
    plan = slurm_server_accounts_plan(accounts, FRESH + "a1|\na1|u\na2|\na2|u\n", FRESH_USERS + "u|a1\n")
    assert plan == {"accounts": [], "associations": [], "defaults": [{"user": "u", "account": "a2"}]}


def test_what_the_inventory_does_not_name_is_left_alone() -> None:
    held = DONE + "other|\nother|alice\n"
    assert slurm_server_accounts_plan(DEMO, held, DONE_USERS) == {"accounts": [], "associations": [], "defaults": []}


def test_an_existing_user_gets_a_new_association_without_a_default_change() -> None:
    plan = slurm_server_accounts_plan(DEMO, FRESH + "astro|\nastro|alice\n", FRESH_USERS + "alice|astro\n")
    assert [a["name"] for a in plan["accounts"]] == ["chem", "bio"]
    assert {"user": "alice", "account": "chem", "default": ""} in plan["associations"]


def test_odd_sacctmgr_lines_are_ignored() -> None:
    noisy = "sacctmgr: warning\n" + DONE + "a|b|c\n\n"
    assert slurm_server_accounts_plan(DEMO, noisy, DONE_USERS)["associations"] == []


@pytest.mark.parametrize(("accounts", "message"), [
    ({"name": "a"}, "slurm_server_accounts must be a list"),
    (["astro"], "slurm_server_accounts[0] must be a dict"),
    ([{"name": "Astro"}], "slurm_server_accounts[0].name must be a SLURM account name in lower case"),
    ([{"name": "root"}], "not root"),
    ([{"name": "a b"}], "slurm_server_accounts[0].name"),
    ([{"name": "--wrap=id"}], "slurm_server_accounts[0].name"),
    ([{"name": "a"}, {"name": "a"}], "slurm_server_accounts[1].name: duplicate account 'a'"),
    ([{"name": "a", "users": ["alice bob"]}], "slurm_server_accounts[0].users must be a list of user names"),
    ([{"name": "a", "users": ["Alice"]}], "slurm_server_accounts[0].users"),
    ([{"name": "a", "users": "alice"}], "slurm_server_accounts[0].users"),
    ([{"name": "a", "users": ["u"], "default": ["v"]}], "slurm_server_accounts[0].default: 'v' is not in this"),
    ([{"name": "a", "users": ["u"], "default": ["u"]}, {"name": "b", "users": ["u"], "default": ["u"]}],
     "slurm_server_accounts[1].default: 'u' already has default account 'a'"),
    ([{"name": "a", "description": "x'; drop"}], "slurm_server_accounts[0].description"),
    ([{"name": "a", "parent": "root"}], "slurm_server_accounts[0]: unknown key(s) parent"),
])
def test_bad_input_is_named(accounts: Any, message: str) -> None:
    errors = slurm_server_accounts_errors(accounts)
    assert any(message in error for error in errors), errors
