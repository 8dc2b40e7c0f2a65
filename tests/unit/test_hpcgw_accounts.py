"""A user's own accounts per cluster (issue 17, item 1): the inventory's data
(grants per user and group), SLURM's associations from sacctmgr (parsing
hostile output, argv only, never a name sacctmgr could misread), the cache
(one query per user per TTL, one in flight, a failure never grants), and the
server-side settling of a choice's account."""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Sequence

import pytest

import hpcgw_accounts as accounts
from fakes import Clock
from hpcgw_accounts import AccountLookup, UserAccounts, from_data, notice, parse_sacctmgr, sacctmgr_argv, settle
from hpcgw_profiles import Catalog, ChoiceError, ConfigError
from hpcgw_status import CommandCounter

QUEUES = [{"name": "debug", "cores": {"max": 2}}]
DATA: dict[str, Any] = {"clusters": [
    {"name": "tc", "title": "Test cluster", "scheduler": "slurm", "account_source": "sacctmgr", "queues": QUEUES},
    {"name": "open", "scheduler": "slurm", "account_source": "sacctmgr", "account_required": False, "queues": QUEUES},
    {"name": "grants", "scheduler": "slurm", "submit": "ssh", "login_host": "login1", "accounts": ["shared"],
     "account_grants": [{"name": "astro", "users": ["alice"]}, {"name": "phys", "groups": ["physics"]},
                        {"name": "chem", "users": ["alice", "carol"]}],
     "queues": QUEUES},
    {"name": "static", "scheduler": "slurm", "accounts": ["p1", "p2"], "queues": QUEUES},
    {"name": "plain", "scheduler": "slurm", "queues": QUEUES},
], "presets": [{"key": "tc-chem", "cluster": "tc", "queue": "debug", "account": "chem"},
               {"key": "tc-default", "cluster": "tc", "queue": "debug"}]}
# sacctmgr -nP show user where name=alice cluster=testcluster withassoc
# format=User,DefaultAccount,Cluster,Account (slurm-wlm 22.05): one row per association.
ALICE = "alice|astro|tc|chem\nalice|astro|tc|astro\nalice|astro|tc|astro\n"


@pytest.fixture()
def catalog() -> Catalog:
    return Catalog.from_data(DATA)


class FakeSacctmgr:
    """sacctmgr as the hub account runs it; records every argv."""

    def __init__(self, out: str = ALICE, code: int = 0, err: str = "") -> None:
        self.out, self.code, self.err = out, code, err
        self.calls: list[list[str]] = []
        self.gate: Optional[asyncio.Event] = None

    async def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)  # argv, never a shell line
        self.calls.append(list(argv))
        if self.gate is not None:
            await self.gate.wait()
        return self.code, self.out, self.err


def test_argv_is_one_element_per_value() -> None:
    assert sacctmgr_argv("/usr/bin/sacctmgr", "alice", "testcluster") == [
        "/usr/bin/sacctmgr", "--noheader", "--parsable2", "show", "user", "where", "name=alice",
        "cluster=testcluster", "withassoc", "format=User,DefaultAccount,Cluster,Account"]


@pytest.mark.parametrize("user", [
    "alice,bob",  # sacctmgr would list both users' associations
    "alice bob", "alice;id", "$(id)", "`id`", "alice'", 'alice"', "alice\nbob", "a=b", "-alice", "", "a" * 65,
    "alice cluster=other", "ali\\ce", "alice|x",
])
def test_odd_user_names_never_reach_sacctmgr(user: str) -> None:
    with pytest.raises(ValueError):
        sacctmgr_argv("/usr/bin/sacctmgr", user, "tc")
    fake = FakeSacctmgr()
    lookup = AccountLookup(fake, clock=Clock())
    cluster = Catalog.from_data(DATA).cluster("tc")
    answer = asyncio.run(lookup.for_user(cluster, user))
    assert fake.calls == [] and answer.accounts == () and answer.error


def test_parse_puts_the_default_first_then_sorted() -> None:
    assert parse_sacctmgr(ALICE, "alice", "tc") == UserAccounts(("astro", "chem"))
    # a default account with no association on this cluster is not offered
    assert parse_sacctmgr("bob|other|tc|bio\nbob|other|tc|abc\n", "bob", "tc").accounts == ("abc", "bio")


@pytest.mark.parametrize("output", [
    "bob|bio|tc|bio\n",  # another user's row
    "alice|astro|othercluster|astro\n",  # another cluster's
    "alice|astro|tc\n", "alice|astro|tc|astro|x\n",  # a row of another shape
    "alice|astro|tc|astro --wrap=id\n", "alice|astro|tc|-A\n", "alice|astro|tc|$(id)\n", "alice|x|tc|\n",
    "alice|astro|tc|a\x1b[31m\n", "sacctmgr: error: Problem talking to the database\n", "",
])
def test_hostile_output_grants_nothing(output: str) -> None:
    assert parse_sacctmgr(output, "alice", "tc").accounts == ()


def test_a_huge_answer_is_cut() -> None:
    out = "".join(f"alice|a0|tc|a{i}\n" for i in range(1000))
    assert len(parse_sacctmgr(out, "alice", "tc").accounts) == accounts.MAX_ACCOUNTS


def test_user_names_compare_as_slurm_stores_them() -> None:
    assert parse_sacctmgr("alice|astro|tc|astro\n", "Alice", "tc").accounts == ("astro",)


def test_data_grants_per_user_and_group_then_everyones(catalog: Catalog) -> None:
    cluster = catalog.cluster("grants")
    assert from_data(cluster, "alice", ()).accounts == ("astro", "chem", "shared")
    assert from_data(cluster, "erin", ["physics", "hpc-users"]).accounts == ("phys", "shared")
    assert from_data(cluster, "carol", ["physics"]).accounts == ("phys", "chem", "shared")
    assert from_data(cluster, "dave", []).accounts == ("shared",)
    assert from_data(catalog.cluster("plain"), "alice", []).accounts == ()


def test_one_query_per_user_per_ttl_and_one_in_flight(catalog: Catalog) -> None:
    clock, counter = Clock(), CommandCounter()
    fake = FakeSacctmgr()
    lookup = AccountLookup(fake, clock=clock, ttl=60, counter=counter)
    cluster = catalog.cluster("tc")

    async def scenario() -> list[UserAccounts]:
        fake.gate = asyncio.Event()
        waiting = [asyncio.ensure_future(lookup.for_user(cluster, "alice")) for _ in range(20)]
        await asyncio.sleep(0)
        fake.gate.set()
        answers = await asyncio.gather(*waiting)
        clock.now += 59
        answers.append(await lookup.for_user(cluster, "alice", page=True))
        return answers

    answers = asyncio.run(scenario())
    assert len(fake.calls) == 1 and all(a.accounts == ("astro", "chem") for a in answers)
    assert counter.counts == {"tc": {"accounts": 1}}
    clock.now += 2  # past the TTL: asked again
    asyncio.run(lookup.for_user(cluster, "alice"))
    assert len(fake.calls) == 2
    assert fake.calls[0][6:8] == ["name=alice", "cluster=tc"]


def test_sacctmgr_cluster_names_the_slurm_cluster() -> None:
    data = {"clusters": [{"name": "mesabi", "scheduler": "slurm", "account_source": "sacctmgr",
                          "sacctmgr_cluster": "mesabi-slurm", "queues": QUEUES}]}
    fake = FakeSacctmgr("alice|p|mesabi-slurm|p\n")
    answer = asyncio.run(AccountLookup(fake, clock=Clock()).for_user(Catalog.from_data(data).cluster("mesabi"), "alice"))
    assert "cluster=mesabi-slurm" in fake.calls[0] and answer.accounts == ("p",)


def test_a_failed_query_says_why_grants_nothing_and_is_retried_soon(catalog: Catalog) -> None:
    clock = Clock()
    fake = FakeSacctmgr("alice|astro|tc|astro\n", code=1,
                        err="sacctmgr: error: Problem talking to the database: Connection refused\n")
    lookup = AccountLookup(fake, clock=clock, ttl=60, error_ttl=10)
    cluster = catalog.cluster("tc")
    answer = asyncio.run(lookup.for_user(cluster, "alice"))
    assert answer.accounts == () and "Problem talking to the database: Connection refused" in answer.error
    clock.now += 5
    asyncio.run(lookup.for_user(cluster, "alice"))
    assert len(fake.calls) == 1  # no query per page view while it is down
    clock.now += 6
    fake.code, fake.err = 0, ""
    assert asyncio.run(lookup.for_user(cluster, "alice")).accounts == ("astro",)


def test_an_error_with_exit_status_0_is_no_answer(catalog: Catalog) -> None:
    fake = FakeSacctmgr("", code=0, err="sacctmgr: error: slurm_persist_conn_open_without_init: failed to open "
                                         "persistent connection to host:hpcgw-ctl:6819: Connection refused\n")
    answer = asyncio.run(AccountLookup(fake, clock=Clock()).for_user(catalog.cluster("tc"), "alice"))
    assert answer.accounts == () and "Connection refused" in answer.error


def test_a_hung_scheduler_neither_hangs_the_page_nor_grants(catalog: Catalog) -> None:
    fake = FakeSacctmgr()
    lookup = AccountLookup(fake, clock=Clock(), max_wait=0.05, timeout=0.2)
    cluster = catalog.cluster("tc")

    async def scenario() -> tuple[UserAccounts, UserAccounts]:
        fake.gate = asyncio.Event()  # never set: sacctmgr hangs
        page = await lookup.for_user(cluster, "alice", page=True)
        spawn = await lookup.for_user(cluster, "alice")
        return page, spawn

    page, spawn = asyncio.run(scenario())
    assert page.accounts == () and "not answered yet" in page.error
    assert spawn.accounts == () and "TimeoutError" in spawn.error


def test_settle_keeps_the_users_own_account_and_fills_the_default(catalog: Catalog) -> None:
    mine = UserAccounts(("astro", "chem"))
    custom = catalog.choice_from_options({"profile": "custom", "cluster": "tc", "queue": "debug", "account": "chem"})
    assert settle(catalog, custom, mine).account == "chem"
    preset = catalog.choice_from_options({"profile": "tc-default"})
    assert preset.account == "" and settle(catalog, preset, mine).account == "astro"
    assert settle(catalog, catalog.choice_from_options({"profile": "tc-chem"}), mine).account == "chem"


@pytest.mark.parametrize(("options", "mine", "message"), [
    # bob asks for alice's account
    ({"profile": "custom", "cluster": "tc", "queue": "debug", "account": "astro"}, UserAccounts(("bio",)),
     "unknown account 'astro' on cluster 'tc': not one of yours (yours: bio)"),
    ({"profile": "tc-chem"}, UserAccounts(("bio",)), "unknown account 'chem'"),
    # no association on a cluster that requires one
    ({"profile": "tc-default"}, UserAccounts(()), "you have no account on cluster 'tc'"),
    # the scheduler did not answer: nothing is granted
    ({"profile": "custom", "cluster": "tc", "queue": "debug", "account": "astro"},
     UserAccounts(error="the scheduler did not say"), "cannot check your accounts on cluster 'tc'"),
    ({"profile": "tc-default"}, UserAccounts(error="the scheduler did not say"), "cannot check your accounts"),
    ({"profile": "tc-default"}, None, "cannot check your accounts"),  # never looked up
    ({"profile": "custom", "cluster": "open", "queue": "debug", "account": "astro"},
     UserAccounts(error="down"), "cannot check your accounts on cluster 'open'"),
    ({"profile": "custom", "cluster": "grants", "queue": "debug", "account": "astro"},
     from_data(Catalog.from_data(DATA).cluster("grants"), "bob", ()), "not one of yours (yours: shared)"),
])
def test_settle_refuses_what_is_not_the_users(catalog: Catalog, options: dict[str, str],
                                              mine: Optional[UserAccounts], message: str) -> None:
    choice = catalog.choice_from_options(options)
    with pytest.raises(ChoiceError) as err:
        settle(catalog, choice, mine)
    assert message in str(err.value) and err.value.field == "account"


def test_without_a_required_account_the_job_runs_without_one(catalog: Catalog) -> None:
    choice = catalog.choice_from_options({"profile": "custom", "cluster": "open", "queue": "debug"})
    assert settle(catalog, choice, UserAccounts(())).account == ""
    assert settle(catalog, choice, UserAccounts(error="down")).account == ""


def test_clusters_without_accounts_are_untouched(catalog: Catalog) -> None:
    choice = catalog.choice_from_options({"profile": "custom", "cluster": "plain", "queue": "debug"})
    assert settle(catalog, choice, None) == choice
    with pytest.raises(ChoiceError, match="unknown account 'x' on cluster 'plain'"):
        catalog.choice_from_options({"profile": "custom", "cluster": "plain", "queue": "debug", "account": "x"})


@pytest.mark.parametrize("account", ["--wrap=id", "a b", "x\n#SBATCH --uid=0", "a" * 80, "$(id)"])
def test_malformed_accounts_are_refused_before_any_lookup(catalog: Catalog, account: str) -> None:
    with pytest.raises(ChoiceError) as err:
        catalog.choice_from_options({"profile": "custom", "cluster": "tc", "queue": "debug", "account": account})
    assert err.value.field == "account"


def test_notices(catalog: Catalog) -> None:
    tc, open_, plain = catalog.cluster("tc"), catalog.cluster("open"), catalog.cluster("plain")
    assert notice(tc, UserAccounts(("a",))) == ""
    assert "You have no account on Test cluster, so you cannot start a server there" in notice(tc, UserAccounts(()))
    assert "jobs there run under the scheduler's default" in notice(open_, UserAccounts(()))
    assert notice(tc, UserAccounts(error="x")) == "Your accounts on Test cluster are unknown right now: x."
    assert notice(plain, UserAccounts(())) == ""


@pytest.mark.parametrize(("change", "message"), [
    ({"account_source": "ldap"}, "account_source: must be one of data, sacctmgr"),
    ({"account_source": "sacctmgr", "submit": "ssh", "login_host": "l1"}, "sacctmgr needs scheduler: slurm and submit: local"),
    ({"account_source": "sacctmgr", "accounts": ["p"]}, "remove accounts and account_grants"),
    ({"account_source": "sacctmgr", "sacctmgr_cluster": "Bad Name"}, "sacctmgr_cluster: must be SLURM's ClusterName"),
    ({"sacctmgr_cluster": "x"}, "sacctmgr_cluster: applies to account_source: sacctmgr only"),
    ({"account_required": "yes"}, "account_required: must be true or false"),
    ({"account_grants": [{"name": "p", "users": ["a,b"]}]}, "account_grants[0].users: must be a list of user or group"),
    ({"account_grants": [{"name": "p"}]}, "account_grants[0]: names no users and no groups"),
    ({"account_grants": [{"name": "p;id", "users": ["a"]}]}, "account_grants[0].name: must match"),
    ({"account_grants": [{"name": "p", "users": ["a"], "role": "x"}]}, "account_grants[0]: unknown key(s) role"),
    ({"account_grants": [{"name": "p", "users": ["a"]}, {"name": "p", "groups": ["g"]}]}, "duplicate name 'p'"),
    ({"account_grants": {"p": ["a"]}}, "account_grants: must be a list"),
    ({"accounts": ["p", "p"]}, "accounts: duplicate name 'p'"),
])
def test_wrong_account_settings_name_the_variable(change: dict[str, Any], message: str) -> None:
    cluster = {"name": "c", "scheduler": "slurm", "queues": QUEUES, **change}
    with pytest.raises(ConfigError) as err:
        Catalog.from_data({"clusters": [cluster]})
    assert "spawn_profiles_clusters[0]." in str(err.value) and message in str(err.value)


def test_a_preset_account_outside_the_data_is_refused_at_load() -> None:
    data = {"clusters": [DATA["clusters"][2]], "presets": [{"key": "p", "cluster": "grants", "queue": "debug",
                                                             "account": "nope"}]}
    with pytest.raises(ConfigError, match=r"spawn_profiles_presets\[0\]: unknown account 'nope'"):
        Catalog.from_data(data)
