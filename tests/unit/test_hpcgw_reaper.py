"""The orphan reaper's decisions: which of the gateway's jobs no server owns."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Iterator, Sequence

import pytest

import hpcgw_reaper as reaper

NOW = datetime(2026, 11, 25, 16, 0, 0)
SQUEUE = "\n".join([
    "101|alice|hpcgw:gw1|2026-11-25T15:50:00|RUNNING",   # owned by alice's server
    "102|alice|hpcgw:gw1|2026-11-25T15:50:00|RUNNING",   # orphan
    "103|bob|hpcgw:gw1|2026-11-25T15:59:30|PENDING",     # orphan-looking, but within the grace
    "104|bob|hpcgw:gw2|2026-11-25T15:00:00|RUNNING",     # another gateway's (test instance)
    "105|carol|(null)|2026-11-25T15:00:00|RUNNING",      # a user's own batch job
    "106|bob|hpcgw:gw1|2026-11-25T15:40:00|PENDING",     # a pending spawn the hub holds
    "x; rm|bob|hpcgw:gw1|2026-11-25T15:00:00|RUNNING",   # not a job id
    "107|bo b|hpcgw:gw1|2026-11-25T15:00:00|RUNNING",    # not a user name
])
USERS = [
    {"name": "alice", "servers": {"": {"state": {"child_state": {"job_id": "101"}, "profile": "debug-1c"}}}},
    {"name": "bob", "servers": {"": {"state": {"child_state": {"job_id": "106", "hpcgw_starting": True}}}}},
    {"name": "dave", "servers": {"": {"state": {}}}},
]


def test_listing_skips_malformed_lines() -> None:
    assert [j.job_id for j in reaper.parse_squeue(SQUEUE)] == ["101", "102", "103", "104", "105", "106"]


def test_owned_ids_come_from_every_servers_state() -> None:
    assert reaper.owned_job_ids(USERS) == {"101", "106"}


def test_a_named_servers_job_is_owned_and_a_true_orphan_is_not() -> None:
    """Several servers of one user (named servers): each one's job is owned;
    a job of that user no server holds is still an orphan."""
    users = [{"name": "alice", "servers": {
        "": {"state": {"child_state": {"job_id": "201"}}},
        "debug": {"state": {"child_state": {"job_id": "202"}, "profile": "debug-1c"}},
        "batch": {"state": {"child_state": {"job_id": "203", "hpcgw_starting": True}}},
    }}]
    listing = "\n".join(f"{job}|alice|hpcgw:gw1|2026-11-25T15:00:00|RUNNING" for job in ("201", "202", "203", "204"))
    owned = reaper.owned_job_ids(users)
    assert owned == {"201", "202", "203"}
    assert [j.job_id for j in reaper.orphans(reaper.parse_squeue(listing), owned, "gw1", NOW, 60)] == ["204"]


def test_only_this_gateways_unowned_jobs_past_the_grace_are_orphans() -> None:
    found = reaper.orphans(reaper.parse_squeue(SQUEUE), reaper.owned_job_ids(USERS), "gw1", NOW, grace=60)
    assert [(j.job_id, j.user) for j in found] == [("102", "alice")]


class Recorder:
    def __init__(self, listing: str) -> None:
        self.listing, self.calls = listing, []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        return self.listing if "squeue" in argv[0] else ""


@pytest.mark.parametrize(("dry_run", "cancels"), [(False, [["sudo", "-n", "-u", "alice", "/usr/bin/scancel", "102"]]),
                                                 (True, [])])
def test_a_sweep_cancels_as_the_user_or_only_says_so(dry_run: bool, cancels: list[list[str]]) -> None:
    runner = Recorder(SQUEUE)
    sweeper = reaper.Reaper(tag="gw1", grace=60, dry_run=dry_run, runner=runner)
    found = sweeper.sweep(reaper.owned_job_ids(USERS), now=NOW)
    assert [j.job_id for j in found] == ["102"]
    assert runner.calls[1:] == cancels


def test_only_local_slurm_clusters_are_swept() -> None:
    catalog = {"clusters": [{"name": "a", "scheduler": "slurm", "submit": "local"},
                            {"name": "b", "scheduler": "slurm", "submit": "ssh"},
                            {"name": "c", "scheduler": "pbs", "submit": "local"}]}
    assert reaper.local_clusters(catalog) == ["a"]


class _Hub(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        offset = int(self.path.split("offset=")[1].split("&")[0])
        assert self.headers["Authorization"] == "token t0k"
        page: dict[str, Any] = {"items": USERS[offset:offset + 2], "_pagination": {}}
        if offset == 0:
            page["_pagination"]["next"] = {"offset": 2}
        body = json.dumps(page).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture()
def hub() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hub/api"
    server.shutdown()


def test_every_page_of_users_is_read(hub: str) -> None:
    assert [u["name"] for u in reaper.hub_users(hub, "t0k")] == ["alice", "bob", "dave"]
