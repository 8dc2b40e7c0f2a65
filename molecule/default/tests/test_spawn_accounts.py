"""The spawn form's account select through Apache (issue 17, item 1): each
user sees exactly their own SLURM associations (role slurm_server created
them from slurm_server_accounts; the hub asks sacctmgr as itself) or their
grants on the SSH cluster (inventory data); another user's account is
refused through the form, the REST API and the estimate API, with the
message beside the field and nothing submitted; a spawn with alice's second
account runs a job charged to it; the queries are cached per user; and with
slurmdbd down the form says so and grants nothing."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import completed_jobs, user_jobs, wait_no_jobs, wait_until

CLUSTER = "testcluster"
DEBUG = "testcluster/debug"
HUB_ACCOUNT = "jupyterhub"


def _associations(controller: Host) -> dict[str, list[str]]:
    """SLURM's associations on the demo cluster, per user (sacctmgr on the controller)."""
    out = controller.check_output(f"sacctmgr -nP show assoc where cluster={CLUSTER} format=user,account")
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        user, _, account = line.partition("|")
        if user and user != "root":
            found.setdefault(user, []).append(account)
    return found


def _default_account(controller: Host, user: str) -> str:
    return controller.check_output(f"sacctmgr -nP show user {user} format=defaultaccount").strip()


def _queue(page: dict[str, Any], value: str) -> dict[str, Any]:
    return next(q for q in page["data"]["queues"] if q["value"] == value)


@pytest.fixture(scope="module", autouse=True)
def _no_servers(client: Callable[..., dict[str, Any]], gateway: Host) -> None:
    """A server left by an earlier module would answer /hub/spawn with a redirect instead of the form."""
    for user in ("alice", "bob", "carol"):
        client("stop", user)
        assert wait_no_jobs(gateway, user) == []


def test_demo_associations_are_in_slurm(controller: Host) -> None:
    assoc = _associations(controller)
    assert sorted(assoc.get("alice", [])) == ["astro", "chem"], assoc
    assert assoc.get("bob") == ["bio"], assoc
    assert _default_account(controller, "alice") == "astro"


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_each_user_sees_exactly_their_slurm_associations(
    client: Callable[..., dict[str, Any]], controller: Host, user: str
) -> None:
    want = _associations(controller)[user]
    default = _default_account(controller, user)
    page = client("page", user)
    assert page["page_status"] == 200 and page["data"], {k: page.get(k) for k in ("page_status", "page_url")}
    for value in ("testcluster/debug", "testcluster/batch"):
        queue = _queue(page, value)
        assert sorted(queue["accounts"]) == sorted(want), (user, queue["accounts"], want)
        assert queue["accounts"][0] == default and queue["account_notice"] == ""
    # the SSH cluster's accounts are inventory data, the same as the associations here
    assert sorted(_queue(page, "vialogin/debug")["accounts"]) == sorted(want)
    # the select offers only these (SLURM's default first; chosen unless the last spawn named another)
    assert page["selected"]["hpcgw-account"] in want, page["selected"]


def test_a_user_without_an_account_gets_a_notice_per_cluster(
    client: Callable[..., dict[str, Any]], controller: Host, gateway: Host
) -> None:
    assert "carol" not in _associations(controller)
    page = client("page", "carol")
    debug, login = _queue(page, DEBUG), _queue(page, "vialogin/debug")
    assert debug["accounts"] == [] and "run under the scheduler's default" in debug["account_notice"]
    assert login["accounts"] == [] and "you cannot start a server there" in login["account_notice"]
    # the SSH cluster requires an account: her preset there is refused before anything is submitted
    result = client("api", "carol", json.dumps({"profile": "login-debug"}))
    assert result.get("api_status") == 400, result
    assert "you have no account on cluster 'vialogin'" in json.dumps(result.get("api_body")), result
    assert result.get("server") == {} and user_jobs(gateway, "carol") == []


ALICES = "unknown account 'astro' on cluster 'testcluster': not one of yours (yours: bio)"


def test_bob_cannot_use_alices_account_through_the_form(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host, quiet: None
) -> None:
    before = len(completed_jobs(controller, "bob"))
    result = client("start", "bob", json.dumps({"profile": "custom", "cluster_queue": DEBUG, "account": "astro"}))
    assert ALICES in result.get("refused", ""), result
    assert ALICES in result.get("field_errors", {}).get("hpcgw-account", ""), result  # beside the account select
    assert result.get("server") == {} and user_jobs(gateway, "bob") == []
    assert len(completed_jobs(controller, "bob")) == before


@pytest.mark.parametrize(("options", "message"), [
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": "astro"}, ALICES),
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": "chem"}, "unknown account 'chem'"),
    ({"profile": "custom", "cluster": "vialogin", "queue": "debug", "account": "astro"},
     "unknown account 'astro' on cluster 'vialogin': not one of yours (yours: bio)"),
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": "astro,bio"}, "unknown account"),
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": "bio --uid=0"}, "unknown account"),
])
def test_bob_cannot_use_alices_account_through_the_rest_api(
    client: Callable[..., dict[str, Any]], gateway: Host, options: dict[str, str], message: str, quiet: None
) -> None:
    result = client("api", "bob", json.dumps(options))
    assert result.get("api_status") == 400, result
    assert message in json.dumps(result.get("api_body")), result
    assert result.get("server") == {} and user_jobs(gateway, "bob") == []


def test_bob_gets_no_estimate_with_alices_account(client: Callable[..., dict[str, Any]],
                                                  hub_log: Callable[..., str]) -> None:
    bodies = [{"profile": "custom", "cluster_queue": DEBUG, "account": "astro"},
              {"profile": "custom", "cluster_queue": DEBUG, "account": "bio"}]
    (refused, answer, _), (allowed, own, _) = client("estimate", "bob", json.dumps(bodies))["answers"]
    assert refused == 400 and answer.get("field") == "account" and ALICES in answer.get("message", ""), answer
    assert allowed == 200 and own.get("start"), own  # his own account is fine
    assert "Start estimate for bob on testcluster/debug" in hub_log("Start estimate for bob")


def test_alices_spawn_with_her_second_account_runs_a_job_charged_to_it(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host, hub_log: Callable[..., str], quiet: None
) -> None:
    for _ in range(5):  # page views within the TTL share one sacctmgr query
        assert _queue(client("page", "alice"), DEBUG)["accounts"] == ["astro", "chem"]
    started = client("start", "alice", json.dumps({"profile": "custom", "cluster_queue": DEBUG, "account": "chem"}))
    assert started.get("ready") is True, started
    (job_id, _, _, _), = user_jobs(gateway, "alice")
    assert gateway.check_output(f"squeue -h -j {job_id} -o %a").strip() == "chem"
    assert "Account=chem" in controller.check_output(f"scontrol show job {job_id}")
    # the page views and the spawn cost at most one query (none when an earlier test's answer was fresh)
    assert hub_log().count("Accounts of alice on testcluster from sacctmgr") <= 1
    # the form remembers the account for her next visit
    assert client("stop", "alice").get("stopped") is True
    assert wait_no_jobs(gateway, "alice") == []
    assert client("page", "alice")["data"]["selected"].get("account") == "chem"


def test_sacctmgr_runs_as_the_hub_account_without_sudo(gateway: Host) -> None:
    """The hub's own query works unprivileged (the demo's slurmdbd has no PrivateData)."""
    out = gateway.check_output(
        f"runuser -u {HUB_ACCOUNT} -- sacctmgr --noheader --parsable2 show user where name=alice "
        f"cluster={CLUSTER} withassoc format=User,DefaultAccount,Cluster,Account")
    assert sorted(line.split("|")[3] for line in out.splitlines()) == ["astro", "chem"]
    assert "sacctmgr" not in gateway.file("/etc/sudoers.d/jupyterhub").content_string


def test_with_slurmdbd_down_the_form_says_so_and_grants_nothing(
    client: Callable[..., dict[str, Any]], controller: Host, gateway: Host
) -> None:
    """frank (no association) asks while the accounting store is down: the
    page answers at once with a notice, and an account he names is refused."""
    controller.check_output("systemctl stop slurmdbd")
    try:
        def unknown() -> dict[str, Any]:
            page = client("page", "frank")
            return page if _queue(page, DEBUG)["account_notice"].startswith("Your accounts on") else {}

        page = wait_until(unknown, 75, interval=3)  # a fresh answer from before the outage lives 60 s
        assert page, client("page", "frank")
        assert page["page_status"] == 200 and _queue(page, DEBUG)["accounts"] == []
        result = client("api", "frank", json.dumps(
            {"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": "astro"}))
        assert result.get("api_status") == 400, result
        assert "cannot check your accounts on cluster 'testcluster'" in json.dumps(result.get("api_body")), result
        assert user_jobs(gateway, "frank") == []
    finally:
        controller.check_output("systemctl start slurmdbd")
        assert wait_until(lambda: controller.run("sacctmgr -nP show cluster format=cluster").stdout.strip()
                          == CLUSTER, 60, interval=2)
