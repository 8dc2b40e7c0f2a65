"""The progress page's events: the job's id, state, pending reason, start
estimate and node, read from the spawner's last status answer."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import pytest

import hpcgw_progress as progress

NOW = datetime(2026, 5, 4, 10, 0, 0)


def view(job_status: str, reason: str = "", start: str = "", job_id: str = "4711") -> progress.JobView:
    return progress.job_view("Demo cluster", "debug", job_id, job_status, reason, start)


def test_before_the_job_id_the_page_says_it_submits() -> None:
    event = progress.event(view("", job_id=""), NOW)
    assert event["hpcgw"]["phase"] == "submitting" and event["progress"] == 10
    assert event["message"] == "Submitting your server's batch job to Demo cluster (queue debug)..."


def test_a_pending_job_shows_reason_and_estimate() -> None:
    event = progress.event(view("PENDING n/a", "Resources", "2026-05-04T10:12:00"), NOW)
    data = event["hpcgw"]
    assert data == {
        "phase": "pending", "cluster": "Demo cluster", "queue": "debug", "job_id": "4711", "state": "PENDING",
        "node": "", "reason": "Resources", "reason_text": progress.REASONS["Resources"],
        "start": "2026-05-04T10:12:00", "start_in_s": 720,
    }
    assert event["message"] == (
        "Batch job 4711 is waiting in the queue of Demo cluster (queue debug): the cores, memory or nodes it asks "
        "for are in use; it starts when they are free. The scheduler expects it to start at 2026-05-04 10:12:00 "
        "(in about 12 min).")
    json.dumps(event)  # the hub sends it as JSON


def test_a_pending_job_without_estimate_says_no_time() -> None:
    event = progress.event(view("PENDING n/a", "Priority"), NOW)
    assert event["hpcgw"]["start_in_s"] is None and "expects" not in event["message"]
    assert event["message"].endswith("jobs with a higher priority are ahead of yours in the queue.")


def test_a_running_job_shows_its_node_and_no_reason() -> None:
    event = progress.event(view("RUNNING hpcgw-c1", "None", "2026-05-04T09:59:00"), NOW)
    data = event["hpcgw"]
    assert (data["phase"], data["node"], data["reason"], data["start"], data["start_in_s"]) == (
        "running", "hpcgw-c1", "", "", None)
    assert event["message"] == "Batch job 4711 is running on hpcgw-c1; your server is starting..."
    assert event["progress"] > progress.event(view("PENDING n/a"), NOW)["progress"]


def test_a_submitted_job_before_its_first_answer_is_queued() -> None:
    event = progress.event(view(""), NOW)
    assert event["hpcgw"]["phase"] == "pending" and "asking the scheduler" in event["message"]


def test_an_ended_job_is_told_as_ended() -> None:
    assert progress.event(view("FAILED hpcgw-c1"), NOW)["hpcgw"]["phase"] == "ended"


@pytest.mark.parametrize(("reason", "words"), [
    ("Priority", "higher priority"),
    ("Resources", "in use"),
    ("QOSMaxCpuPerUserLimit", "limit your QOS sets per user"),
    ("QOSMaxJobsPerUserLimit", "limit your QOS sets per user"),
    ("QOSMaxWallDurationPerJobLimit", "will not start; cancel and ask for less"),
    ("QOSGrpCpuLimit", "QOS's limit for all its jobs"),
    ("AssocGrpCPUMinutesLimit", "your account's limit"),
    ("AssocMaxCpuPerJobLimit", "will not start"),
    ("PartitionTimeLimit", "will not start; cancel and ask for less"),
    ("ReqNodeNotAvail, UnavailableNodes:hpcgw-c[1-2]", "unavailable (down, drained or reserved)"),
    ("SomeFutureLimit", "a limit of the cluster holds it"),
    ("Nodes required for job are DOWN, DRAINED or reserved", "the scheduler says: Nodes required for job are DOWN"),
])
def test_reasons_are_told_in_the_users_words(reason: str, words: str) -> None:
    assert words in progress.explain(reason)


@pytest.mark.parametrize("reason", ["", "None"])
def test_no_reason_is_no_text(reason: str) -> None:
    assert progress.explain(reason) == ""


@pytest.mark.parametrize(("start", "seconds"), [
    ("2026-05-04T10:00:30", 30), ("2026-05-04T09:00:00", 0), ("N/A", None), ("", None), ("tomorrow", None)])
def test_the_estimate_in_seconds_from_now(start: str, seconds: Any) -> None:
    assert progress.seconds_until(start, NOW) == seconds


def test_the_node_of_a_pending_job_is_not_shown() -> None:
    assert view("PENDING hpcgw-c1").node == "" and view("CONFIGURING hpcgw-c2").node == "hpcgw-c2"


def test_follow_yields_once_per_change() -> None:
    views = iter([view("", job_id=""), view(""), view(""), view("PENDING n/a", "Priority"),
                  view("PENDING n/a", "Priority"), view("PENDING n/a", "Resources"), view("RUNNING c1")])
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def collect() -> list[dict[str, Any]]:
        out = []
        agen = progress.follow(lambda: next(views), 0.5, clock=lambda: NOW, sleep=sleep)
        try:
            async for event in agen:
                out.append(event)
        except RuntimeError:  # StopIteration of the test's views inside the generator
            pass
        return out

    events = asyncio.run(collect())
    assert [(e["hpcgw"]["phase"], e["hpcgw"]["reason"]) for e in events] == [
        ("submitting", ""), ("pending", ""), ("pending", "Priority"), ("pending", "Resources"), ("running", "")]
    assert set(sleeps) == {0.5}
