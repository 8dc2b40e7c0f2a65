"""The spawn page through Apache, as users see it (issue 17, items 1, 2, 4):
the hub's page template with the form's data as JSON (limits of the demo
queues), free nodes that match sinfo, shared by every page view, the
scheduler's start estimate for a valid size and 400 for hostile ones (no
sbatch run for them), a refused form with its message beside the field, and
the last choice pre-selected after a spawn."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import user_jobs, wait_no_jobs, wait_until

COUNTS = "/var/lib/jupyterhub/hpcgw-scheduler-commands.json"
DEBUG = "testcluster/debug"


def _queue(data: dict[str, Any], value: str) -> dict[str, Any]:
    return next(q for q in data["queues"] if q["value"] == value)


def _sinfo(controller: Host) -> dict[str, dict[str, int]]:
    """What the scheduler says is free, per partition, read on the controller."""
    free: dict[str, dict[str, int]] = {}
    for line in controller.check_output("sinfo -h -a -o '%R %F %C'").splitlines():
        name, nodes, cpus = line.split()
        n, c = [int(x) for x in nodes.split("/")], [int(x) for x in cpus.split("/")]
        free[name] = {"idle_nodes": n[1], "total_nodes": n[3], "idle_cores": c[1], "total_cores": c[3]}
    pending = controller.check_output("squeue -h -a -t PENDING -o '%P'").split()
    for name in free:
        free[name]["pending_jobs"] = sum(name in p.split(",") for p in pending)
    return free


@pytest.fixture(scope="module", autouse=True)
def _alice_has_no_server(client: Callable[..., dict[str, Any]], gateway: Host) -> None:
    """A server of alice's that an earlier module left behind would answer
    /hub/spawn with a redirect to it instead of the form."""
    client("stop", "alice")
    assert wait_no_jobs(gateway, "alice") == []


def test_page_is_the_hubs_template_with_the_queues_limits(client: Callable[..., dict[str, Any]]) -> None:
    page = client("page", "alice")
    assert page["page_status"] == 200 and page["data"], {k: page.get(k) for k in ("page_status", "page_url")}
    data = page["data"]
    debug, batch = _queue(data, DEBUG), _queue(data, "testcluster/batch")
    assert {k: debug["limits"]["cores"][k] for k in ("min", "max", "default")} == {"min": 1, "max": 2, "default": 1}
    assert debug["limits"]["walltime_min"]["max"] == 30 and debug["limits"]["walltime_min"]["value"] == "0:10"
    assert batch["limits"]["walltime_min"]["max"] == 1440 and batch["limits"]["walltime_min"]["value"] == "1:00"
    assert debug["limits"]["cores"]["help"] == "1 to 2 cores, default 1"
    assert debug["gpus"] is False  # her accounts: test_spawn_accounts
    assert [p["value"] for p in data["profiles"]] == ["debug-1c", "login-debug", "sge-1c", "local", "custom"]
    assert data["estimate_url"] == "/jupyter/hub/api/users/alice/hpcgw-estimate"
    assert data["fields"]["walltime_min"]["label"] == "Walltime (h:mm)"


def test_free_nodes_match_sinfo_and_are_shared_by_page_views(
    client: Callable[..., dict[str, Any]], controller: Host, gateway: Host
) -> None:
    def matches() -> dict[str, Any]:
        data = client("page", "carol")["data"]
        want = _sinfo(controller)
        got = {q["value"].split("/")[1]: q["free"] for q in data["queues"] if q["value"].startswith("testcluster/")}
        return data if all(got[name] == want[name] for name in got) else {}

    data = wait_until(matches, 75, interval=5)  # the hub's answer is up to 30 s old
    assert data, (_sinfo(controller), client("page", "carol")["data"]["queues"])
    assert _queue(data, "vialogin/debug")["free"] is None  # an SSH cluster shows nothing

    def availability_calls() -> int:
        counts = json.loads(gateway.file(COUNTS).content_string).get("counts", {})
        return int(counts.get("testcluster", {}).get("availability", 0))

    before = availability_calls()
    for user in ("alice", "carol", "erin", "alice", "carol", "erin"):
        assert client("page", user)["page_status"] == 200
    time.sleep(12)  # the counts file is rewritten every 10 s
    assert availability_calls() - before <= 2, "one sinfo/squeue per interval, not one per page view"


def test_estimate_for_a_valid_size(client: Callable[..., dict[str, Any]], hub_log: Callable[..., str]) -> None:
    bodies = [{"profile": "debug-1c"},
              {"profile": "custom", "cluster_queue": "testcluster/batch", "cores": "2", "memory_gb": "1",
               "walltime_min": "1:30"}]
    answers = client("estimate", "carol", json.dumps(bodies))["answers"]
    for status, answer, _ in answers:
        assert status == 200 and answer.get("start"), answers
        assert answer["nodes"].startswith("hpcgw-c"), answers
    assert answers[1][1]["processors"] == 2 and answers[1][1]["partition"] == "batch"
    assert "Start estimate for carol on testcluster/batch (2 core(s), 1 GB, 90 min" in hub_log("Start estimate for carol")


HOSTILE = [
    {"profile": "custom", "cluster_queue": DEBUG, "cores": "1 --wrap=id"},
    {"profile": "custom", "cluster_queue": DEBUG, "cores": "--wrap=id"},
    {"profile": "custom", "cluster_queue": DEBUG, "memory_gb": "1G --uid=0"},
    {"profile": "custom", "cluster_queue": DEBUG, "walltime_min": "0:10 --wrap=id"},
    {"profile": "custom", "cluster_queue": DEBUG, "gpus": "1"},
    {"profile": "custom", "cluster_queue": DEBUG, "account": "--wrap=id"},
    {"profile": "custom", "cluster_queue": DEBUG, "account": "bob"},
    {"profile": "custom", "cluster_queue": "testcluster/debug --wrap=id"},
    {"profile": "custom", "cluster_queue": DEBUG + "\n#SBATCH --uid=0"},
    {"profile": "custom", "cluster_queue": DEBUG, "cores": "3"},
    {"profile": "custom", "cluster_queue": DEBUG, "walltime_min": "0:31"},
    {"profile": "custom", "cluster_queue": DEBUG, "wrap": "id"},
    {"profile": "--wrap=id"},
    {"profile": "local"},
    {"profile": "login-debug"},  # an SSH cluster: its sudo rule pins sbatch --parsable
    ["--wrap=id"],
]


def test_hostile_estimates_are_refused_and_run_nothing(
    client: Callable[..., dict[str, Any]], hub_log: Callable[..., str]
) -> None:
    answers = client("estimate", "bob", json.dumps(HOSTILE))["answers"]
    for body, (status, answer, _) in zip(HOSTILE, answers):
        assert status == 400, (body, status, answer)
        assert isinstance(answer, dict) and answer.get("message") and "start" not in answer, (body, answer)
    assert "Start estimate for bob" not in hub_log()


def test_estimate_only_as_the_logged_in_user_and_with_the_xsrf_token(client: Callable[..., dict[str, Any]]) -> None:
    valid = json.dumps([{"profile": "debug-1c"}])
    other = client("estimate", "carol", valid, "--for", "alice")["answers"][0]
    assert other[0] in (403, 404), other
    admin = client("estimate", "frank", valid, "--for", "alice")["answers"][0]
    assert admin[0] == 403, admin  # an admin may manage alice's server, not run sbatch as her
    no_xsrf = client("estimate", "carol", valid, "--no-xsrf")["answers"][0]
    assert no_xsrf[0] == 403, no_xsrf


def test_estimates_are_rate_limited_per_user(client: Callable[..., dict[str, Any]]) -> None:
    bodies = [{"profile": "custom", "cluster_queue": DEBUG, "cores": str(1 + i % 2), "walltime_min": f"0:{10 + i:02d}"}
              for i in range(12)]  # all different: none is answered from the cache; 12 outrun the refill (1 per 3 s)
    answers = client("estimate", "erin", json.dumps(bodies))["answers"]
    statuses = [status for status, _, _ in answers]
    assert statuses[:5] == [200] * 5 and 429 in statuses, answers
    limited = next(a for a in answers if a[0] == 429)
    assert int(limited[2]) >= 1, limited


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"profile": "custom", "cluster_queue": DEBUG, "cores": "3"}, "hpcgw-cores", "cores must be between 1 and 2, got 3"),
    ({"profile": "custom", "cluster_queue": DEBUG, "walltime_min": "0:45"}, "hpcgw-walltime_min",
     "walltime_min must be between 1 and 30, got 45"),
    # not one of bob's SLURM accounts: said beside his account select
    ({"profile": "custom", "cluster_queue": DEBUG, "account": "proj9"}, "hpcgw-account", "unknown account 'proj9'"),
])
def test_refused_form_shows_the_message_beside_the_field(
    client: Callable[..., dict[str, Any]], gateway: Host, form: dict[str, str], field: str, message: str
) -> None:
    result = client("start", "bob", json.dumps(form))
    assert message in result.get("refused", ""), result
    assert message in result.get("field_errors", {}).get(field, ""), result
    assert result.get("server") == {} and user_jobs(gateway, "bob") == []


def test_last_choice_is_preselected_after_a_spawn(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host
) -> None:
    assert wait_no_jobs(gateway, "alice") == []
    started = client("start", "alice", json.dumps(
        {"profile": "custom", "cluster_queue": "testcluster/batch", "cores": "2", "walltime_min": "1:30"}))
    assert started.get("ready") is True, started
    (job_id, _, _, partition), = user_jobs(gateway, "alice")
    assert partition == "batch"
    assert "TimeLimit=01:30:00" in controller.check_output(f"scontrol show job {job_id}")  # h:mm reached SLURM
    assert client("stop", "alice").get("stopped") is True
    assert wait_no_jobs(gateway, "alice") == []
    page = client("page", "alice")
    selected = page["data"]["selected"]
    assert {k: selected.get(k) for k in ("profile", "cluster_queue", "cores", "walltime_min")} == {
        "profile": "custom", "cluster_queue": "testcluster/batch", "cores": "2", "walltime_min": "1:30"}, selected
    assert page["selected"]["hpcgw-profile"] == "custom" and page["selected"]["hpcgw-cq"] == "testcluster/batch", page
