"""The audit log (issue 12): one JSON line per login, spawn, stop and refusal in
the gateway's journal, tagged hpcgw-audit (jupyterhub_audit_identifier), the
way a site's syslog forwarding selects it."""

from __future__ import annotations

import json
import shlex
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import BASE, PASSWORDS, SCENARIO_PASSWORDS, user_jobs, wait_until

IDENTIFIER = "hpcgw-audit"
PRESET = json.dumps({"profile": "debug-1c"})
HUB_LOGIN = "http://hpcgw-gw:8081/jupyter/hub/login"  # the hub's own port, behind Apache's back


@pytest.fixture()
def audit(gateway: Host) -> Callable[..., list[dict[str, Any]]]:
    """audit(event=None, user=None, settle=2): the audit lines written since the test began, parsed.
    The scenarios' users' lines are left out: they log in beside this module
    (conftest.SCENARIO_WINDOW), and no test here acts as them."""
    since = gateway.check_output("date +%s.%N").strip()

    def read(event: str | None = None, settle: float = 2, **match: Any) -> list[dict[str, Any]]:
        def lines() -> list[dict[str, Any]]:
            out = gateway.check_output(f"journalctl -t {IDENTIFIER} -o cat --no-pager --since @{since}")
            records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            return [r for r in records if (event is None or r.get("event") == event)
                    and r.get("user") not in SCENARIO_PASSWORDS and all(r.get(k) == v for k, v in match.items())]
        # Lines are written before the response; the journal may take a moment.
        wait_until(lines, settle, interval=0.5)
        return lines()

    return read


def test_audit_lines_are_tagged_json_in_the_journal(gateway: Host, gwclient: Callable[..., dict[str, Any]],
                                                    audit: Callable[..., list[dict[str, Any]]]) -> None:
    assert gwclient("whoami", BASE, "carol", PASSWORDS["carol"]).get("name") == "carol"
    assert audit("login", user="carol")
    # Her login's entry (the test instance's hub, when test_instance.py runs
    # beside this module, writes under the same identifier).
    raw = gateway.check_output(f"journalctl -t {IDENTIFIER} -n 50 -o json --no-pager")
    entries = [(e, json.loads(e["MESSAGE"])) for e in map(json.loads, raw.splitlines())]
    entry, record = [(e, r) for e, r in entries if (r.get("event"), r.get("user")) == ("login", "carol")][-1]
    assert entry["SYSLOG_IDENTIFIER"] == IDENTIFIER
    assert entry["SYSLOG_FACILITY"] == "10" and entry["PRIORITY"] == "6"  # authpriv.info
    assert entry["_SYSTEMD_UNIT"] == "jupyterhub.service"
    assert record["v"] == 1 and record["ts"].endswith("Z")


def test_a_login_leaves_one_line(gwclient: Callable[..., dict[str, Any]],
                                 audit: Callable[..., list[dict[str, Any]]]) -> None:
    assert gwclient("whoami", BASE, "erin", PASSWORDS["erin"]).get("name") == "erin"
    (login,) = audit("login", user="erin")
    assert sorted(login["groups"]) == ["hpc-users", "physics"], login
    assert audit("refusal", user="erin") == []


@pytest.mark.parametrize(("login", "field", "value", "reason"), [
    ("mallory", "identity", "mallory", "blocked account"),
    ("dave", "user", "dave", "not allowed (not in the allowed users or groups)"),
    ("svcacct", "identity", "svcacct", "system account"),
])
def test_a_refused_login_leaves_one_refusal_line(outside: Host, audit: Callable[..., list[dict[str, Any]]],
                                                 login: str, field: str, value: str, reason: str) -> None:
    # One request through Apache (a browser would follow the hub's redirects back to the login).
    code = outside.check_output(
        f"curl -sk -o /dev/null -w '%{{http_code}}' -u {shlex.quote(login + ':' + PASSWORDS[login])} "
        f"{shlex.quote(BASE + '/hub/login')}")
    assert code == "403", code
    refusals = audit("refusal", what="login")
    assert len(refusals) == 1, refusals
    assert refusals[0][field] == value and refusals[0]["reason"] == reason, refusals
    assert audit("login") == []


def test_a_forged_identity_at_the_hubs_port_leaves_one_refusal_line(
    outside: Host, audit: Callable[..., list[dict[str, Any]]]
) -> None:
    code = outside.check_output(
        f"curl -s -o /dev/null -w '%{{http_code}}' -H 'X-Remote-User: alice' -H 'X-Gateway-Secret: guessed' "
        f"{shlex.quote(HUB_LOGIN)}")
    assert code == "403", code
    (refusal,) = audit("refusal", what="login")
    assert (refusal["identity"], refusal["reason"]) == ("alice", "wrong gateway secret"), refusal
    assert audit("login") == []


def test_a_refused_form_leaves_one_refusal_line_and_no_spawn(
    client: Callable[..., dict[str, Any]], gateway: Host, audit: Callable[..., list[dict[str, Any]]], quiet: None
) -> None:
    result = client("start", "bob", json.dumps(
        {"profile": "custom", "cluster_queue": "testcluster/debug", "cores": "3"}))
    assert "cores must be between 1 and 2" in result.get("refused", ""), result
    refusals = audit("refusal", user="bob")
    assert len(refusals) == 1, refusals
    assert refusals[0]["what"] == "spawn form" and "cores must be between 1 and 2" in refusals[0]["reason"], refusals
    assert audit("spawn", user="bob") == [] and audit("spawn_failed", user="bob", settle=0) == []
    assert len(audit("login", user="bob", settle=0)) == 1  # the client logged in once


def test_a_spawn_and_its_stop_leave_one_line_each(
    client: Callable[..., dict[str, Any]], gateway: Host, audit: Callable[..., list[dict[str, Any]]], quiet: None
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    (job_id, _, _, partition), = user_jobs(gateway, "alice")
    spawns = audit("spawn", user="alice")
    assert len(spawns) == 1, spawns
    spawn = spawns[0]
    assert {k: spawn.get(k) for k in ("profile", "cluster", "queue", "cores", "memory_gb", "walltime_min", "job_id")} \
        == {"profile": "debug-1c", "cluster": "testcluster", "queue": partition, "cores": 1, "memory_gb": 1,
            "walltime_min": 10, "job_id": job_id}, spawn
    assert client("stop", "alice").get("stopped") is True
    stops = audit("stop", user="alice")
    assert len(stops) == 1, stops
    assert (stops[0]["by"], stops[0]["job_id"], stops[0]["cluster"]) == ("alice", job_id, "testcluster"), stops
    assert audit("spawn_failed", user="alice", settle=0) == [] and audit("refusal", user="alice", settle=0) == []
