"""The shared status poller: one squeue per cluster per interval for all its
servers, with the per-user query's verdicts (listed / gone / unknown, kept).

The scheduler is a fake runner that records every argv and answers from a
table of job states; time is a fake clock the tests move.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import pytest

import hpcgw_startup as startup
import hpcgw_status as status
from fakes import Clock, FakeSqueue, Log, Status
from hpcgw_batch_core import GuardedBatchCommands

SQUEUE = "/usr/bin/squeue"


def make(jobs: dict[str, str], **options: Any) -> tuple[status.SharedStatusPoller, FakeSqueue, Clock]:
    fake, clock = FakeSqueue(jobs), Clock()
    counter = status.CommandCounter(clock=clock)
    poller = status.SharedStatusPoller("c1", SQUEUE, fake, clock=clock, counter=counter, **options)
    return poller, fake, clock


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def cancel_one_of_two(gate: FakeSqueue, stopped_call: Any, other_call: Any) -> tuple[bool, Any]:
    """Start two callers of one gated query, cancel the first while the query
    runs, then let it finish: (was the first cancelled, the second's answer)."""
    gate.gate = asyncio.Event()
    stopped = asyncio.ensure_future(stopped_call)
    other = asyncio.ensure_future(other_call)
    await asyncio.sleep(0.01)
    stopped.cancel()
    gate.gate.set()
    try:
        await stopped
        was_cancelled = False
    except asyncio.CancelledError:
        was_cancelled = True
    return was_cancelled, await other


def test_concurrent_queries_share_one_call() -> None:
    """The hub's first poll of every server (at its start) asks all at once."""
    jobs = {str(100 + i): "RUNNING n1" for i in range(50)}
    poller, fake, _ = make(jobs)

    async def main() -> list[status.Answer]:
        return await asyncio.gather(*(poller.status(j) for j in jobs))

    answers = run(main())
    assert all(a == status.Answer("listed", "RUNNING n1") for a in answers)
    assert len(fake.calls) == 1 and fake.ids() == sorted(jobs, key=int)
    assert poller.counter.counts == {"c1": {"status-shared": 1}}


def test_jobs_asked_during_a_query_share_the_next_one() -> None:
    jobs = {str(100 + i): "RUNNING n1" for i in range(50)}
    poller, fake, _ = make(jobs)

    async def main() -> list[status.Answer]:
        fake.gate = asyncio.Event()
        first = asyncio.ensure_future(poller.status("100"))
        await asyncio.sleep(0.01)  # the first request's query is in flight...
        rest = [asyncio.ensure_future(poller.status(j)) for j in jobs if j != "100"]
        await asyncio.sleep(0.01)
        fake.gate.set()  # ...the 49 asking meanwhile wait for it, then share one more
        return await asyncio.gather(first, *rest)

    answers = run(main())
    assert all(a == status.Answer("listed", "RUNNING n1") for a in answers)
    assert len(fake.calls) == 2 and fake.ids(0) == ["100"] and fake.ids(1) == sorted(jobs, key=int)


def test_concurrent_queries_of_known_jobs_share_one_call() -> None:
    jobs = {str(100 + i): "RUNNING n1" for i in range(50)}
    poller, fake, clock = make(jobs)

    async def main() -> list[status.Answer]:
        await asyncio.gather(*(poller.status(j) for j in jobs))  # every server polled once
        clock.now += 31  # the hub's next poll round: the answer is stale
        fake.calls.clear()
        return await asyncio.gather(*(poller.status(j) for j in jobs))

    answers = run(main())
    assert len(answers) == 50 and len(fake.calls) == 1 and len(fake.ids()) == 50


def test_the_argv_is_squeue_as_the_hub_without_sudo() -> None:
    poller, fake, _ = make({"4711": "RUNNING n1", "4712": "PENDING n/a"})
    run(poller.status("4711"))
    run(poller.status("4712"))  # 4712 was not covered: a second query covers both
    assert fake.calls[0] == [SQUEUE, "-h", "-a", "-t", "all", "-o", "%i|%T|%B|%S|%r", "-j", "4711"]
    assert fake.calls[1][-1] == "4711,4712"
    assert not any("sudo" in word for call in fake.calls for word in call)


def test_a_fresh_answer_is_reused_within_the_idle_window() -> None:
    poller, fake, clock = make({"1": "RUNNING n1", "2": "RUNNING n2"})

    async def main() -> None:
        await asyncio.gather(poller.status("1"), poller.status("2"))
        calls = len(fake.calls)
        clock.now += 24
        assert await poller.status("2") == status.Answer("listed", "RUNNING n2")
        assert len(fake.calls) == calls
        clock.now += 2  # older than the idle window (25 s, under the hub's 27-33 s polls): asked again
        await poller.status("1")
        assert len(fake.calls) == calls + 1

    run(main())


def test_the_window_is_short_while_a_job_of_the_cluster_starts() -> None:
    poller, fake, clock = make({"1": "RUNNING n1", "2": "PENDING n/a"})

    async def main() -> None:
        await poller.status("1")
        await poller.status("2", starting=True)
        calls = len(fake.calls)
        assert poller.window(clock.now) == 1.0
        clock.now += 0.5
        await poller.status("1")  # still fresh
        assert len(fake.calls) == calls
        clock.now += 0.6
        await poller.status("1")  # even a running server's poll now gets a fresh answer
        assert len(fake.calls) == calls + 1
        # the starting job got its server (or went): after starting_keep the window is long again
        clock.now += 11
        assert poller.window(clock.now) == 25.0
        await poller.status("2", starting=False)
        assert poller.window(clock.now) == 25.0

    run(main())


@pytest.mark.parametrize("failure", [
    {"fail": "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"},
    {"fail": "slurm_load_jobs error: Invalid job id specified"},  # several ids: not a word on any one
    {"fail": ""},  # exit 1, no stderr: set below
    {"raises": OSError("fork failed")},
    {"raises": asyncio.TimeoutError()},
])
def test_a_failed_query_is_unknown_for_every_job(failure: dict[str, Any]) -> None:
    jobs = {"1": "RUNNING n1", "2": "RUNNING n2", "3": "PENDING n/a"}
    poller, fake, clock = make(jobs)

    async def main() -> list[status.Answer]:
        await asyncio.gather(*(poller.status(j) for j in jobs))
        clock.now += 31
        fake.fail = failure.get("fail", "") or ("" if "raises" in failure else " ")
        fake.raises = failure.get("raises")
        return await asyncio.gather(*(poller.status(j) for j in jobs))

    answers = run(main())
    assert [a.kind for a in answers] == ["unknown"] * 3


def test_a_job_missing_from_a_successful_answer_is_gone() -> None:
    poller, fake, clock = make({"1": "RUNNING n1", "2": "RUNNING n2"})

    async def main() -> tuple[status.Answer, status.Answer]:
        await asyncio.gather(poller.status("1"), poller.status("2"))
        del fake.jobs["2"]  # purged after MinJobAge
        clock.now += 31
        return await asyncio.gather(poller.status("1"), poller.status("2"))

    one, two = run(main())
    assert one.kind == "listed" and two == status.Answer("gone")


def test_an_ended_job_is_listed_with_its_final_state() -> None:
    poller, _, _ = make({"1": "TIMEOUT n1"})
    assert run(poller.status("1")) == status.Answer("listed", "TIMEOUT n1")


def test_a_single_id_squeue_does_not_know_is_gone() -> None:
    # squeue -j <one id> fails with "Invalid job id specified" once the job is purged
    poller, fake, _ = make({})
    assert run(poller.status("4711")) == status.Answer("gone")
    assert fake.ids() == ["4711"]


def test_ids_are_queried_in_chunks() -> None:
    jobs = {str(i): "RUNNING n1" for i in range(1, 1202)}
    poller, fake, clock = make(jobs, chunk=500)

    async def main() -> list[status.Answer]:
        await asyncio.gather(*(poller.status(j) for j in jobs))
        clock.now += 31
        fake.calls.clear()
        return await asyncio.gather(*(poller.status(j) for j in jobs))

    answers = run(main())
    assert all(a.kind == "listed" for a in answers)
    assert [len(fake.ids(i)) for i in range(len(fake.calls))] == [500, 500, 201]
    assert sorted(sum((fake.ids(i) for i in range(3)), []), key=int) == sorted(jobs, key=int)


def test_one_failing_chunk_leaves_the_others_answered() -> None:
    jobs = {str(i): "RUNNING n1" for i in range(1, 5)}
    poller, fake, clock = make(jobs, chunk=2)
    original = fake.__call__

    async def flaky(argv: Sequence[str]) -> tuple[int, str, str]:
        if argv[-1].startswith("3"):
            fake.calls.append(list(argv))
            return 1, "", "slurm_load_jobs error: Socket timed out on send/recv operation"
        return await original(argv)

    poller.runner = flaky

    async def main() -> list[status.Answer]:
        await asyncio.gather(*(poller.status(j) for j in jobs))
        clock.now += 31
        return await asyncio.gather(*(poller.status(j) for j in jobs))

    assert [a.kind for a in run(main())] == ["listed", "listed", "unknown", "unknown"]


HOSTILE_LINES = [
    "$(id)|RUNNING|n1|N/A|None",
    "4711;id|RUNNING|n1|N/A|None",
    "9999|RUNNING|n9|N/A|None",  # a job nobody asked about
    "",
    "garbage",
    "\x1b[31m|RUNNING",
    "4711 RUNNING n1",  # the old format's line: no id of this format
]


def test_hostile_or_foreign_lines_are_ignored() -> None:
    poller, fake, _ = make({"4711": "RUNNING n1"})
    fake.extra = HOSTILE_LINES
    assert run(poller.status("4711")) == status.Answer("listed", "RUNNING n1")


@pytest.mark.parametrize("line", [
    "4711|running|n1|N/A|None",  # not SLURM's state format
    "4711|RUNNING|n1|N/A|None|$(id)",  # a field too many
    "4711|RUNNING|n1|N/A",  # a field too few
    "4711|RUNNING|n1;id|N/A|None",
    " 4711|RUNNING|n1|N/A|None",
])
def test_a_malformed_line_of_an_asked_job_is_unknown_not_gone(line: str) -> None:
    poller, fake, _ = make({})
    fake.jobs = {"1": "RUNNING n1"}
    fake.extra = [line]

    async def main() -> list[status.Answer]:
        return await asyncio.gather(poller.status("1"), poller.status("4711"))

    answers = run(main())
    assert fake.ids() == ["1", "4711"] and answers[1].kind == "unknown"


def test_a_job_listed_twice_is_unknown() -> None:
    poller, fake, _ = make({"4711": "RUNNING n1"})
    fake.extra = ["4711|COMPLETED|n1|N/A|None"]
    assert run(poller.status("4711")).kind == "unknown"


def test_parse_listing_keeps_state_and_host_as_the_per_user_query_prints_them() -> None:
    out = "4711|RUNNING|n1|2026-05-04T10:00:00|None\n4712|PENDING||N/A|None\n4713|CONFIGURING|n[1-2]|N/A|None\n"
    listed = status.parse_listing(out, {"4711", "4712", "4713"})
    assert {j: a.text for j, a in listed.items() if a} == {
        "4711": "RUNNING n1", "4712": "PENDING", "4713": "CONFIGURING n[1-2]"}


@pytest.mark.parametrize(("line", "start", "reason"), [
    ("PENDING|n/a|2026-05-04T10:30:00|Resources", "2026-05-04T10:30:00", "Resources"),
    ("PENDING|n/a|N/A|Priority", "", "Priority"),
    ("PENDING|n/a|Unknown|QOSMaxCpuPerUserLimit", "", "QOSMaxCpuPerUserLimit"),
    ("PENDING|n/a|N/A|ReqNodeNotAvail, UnavailableNodes:n[1-2]", "", "ReqNodeNotAvail, UnavailableNodes:n[1-2]"),
    ("PENDING|n/a|N/A|Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority "
     "partitions", "", "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions"),
    ("RUNNING|n1|2026-05-04T10:00:00|None", "2026-05-04T10:00:00", ""),
    # shown on a page, never raw: dropped when outside SLURM's formats; the state still decides
    ("PENDING|n/a|tomorrow|<script>alert(1)</script>", "", ""),
    ("PENDING|n/a|05/04-10:00|Resources$(id)", "", ""),
    ("PENDING|n/a|N/A|" + "R" * 201, "", ""),
])
def test_the_start_estimate_and_the_reason_are_kept_when_well_formed(line: str, start: str, reason: str) -> None:
    answer = status.parse_listing(f"4711|{line}\n", {"4711"})["4711"]
    assert answer is not None and answer.kind == "listed"
    assert (answer.text.split()[0], answer.start, answer.reason) == (line.split("|")[0], start, reason)
    assert status.parse_user_status(line + "\n") == answer


def test_the_shared_poller_answers_with_reason_and_estimate() -> None:
    poller, _, _ = make({"4711": "PENDING n/a|2026-05-04T10:30:00|Resources"})
    assert run(poller.status("4711")) == status.Answer("listed", "PENDING n/a", "2026-05-04T10:30:00", "Resources")


@pytest.mark.parametrize("output", [
    "PENDING n/a",  # a site's own batch_query_cmd in the old format
    "",
    "PENDING|n/a|N/A",  # a field too few
    "pending|n/a|N/A|None",
    "RUNNING|n1 $(id)|N/A|None",
])
def test_the_per_user_answer_outside_the_format_is_not_parsed(output: str) -> None:
    assert status.parse_user_status(output) is None


@pytest.mark.parametrize("job_id", ["1;id", "$(id)", "", "4711 ", "4711.server", "1" * 21])
def test_job_ids_are_checked_before_any_call(job_id: str) -> None:
    poller, fake, _ = make({})
    with pytest.raises(ValueError, match="not a slurm job id"):
        run(poller.status(job_id))
    assert fake.calls == []


def test_a_cancelled_caller_leaves_the_query_to_the_others() -> None:
    poller, fake, _ = make({"1": "RUNNING n1", "2": "PENDING n/a"})

    async def main() -> tuple[bool, status.Answer]:
        await asyncio.gather(poller.status("1"), poller.status("2"))
        poller._taken_at = None  # stale
        return await cancel_one_of_two(fake, poller.status("2"), poller.status("1"))

    was_cancelled, answer = run(main())
    assert was_cancelled and answer.kind == "listed"


def test_jobs_nobody_asks_about_leave_the_query() -> None:
    poller, fake, clock = make({"1": "RUNNING n1", "2": "RUNNING n2"})

    async def main() -> None:
        await asyncio.gather(poller.status("1"), poller.status("2"))
        clock.now += 200  # job 2's server is gone from the hub
        await poller.status("1")

    run(main())
    assert fake.ids() == ["1"]


def test_the_environment_loses_squeue_filters() -> None:
    env = {"PATH": "/usr/bin", "SLURM_CONF": "/etc/slurm/slurm.conf", "SQUEUE_USERS": "hub",
           "SQUEUE_STATES": "R", "SLURM_CLUSTERS": "other"}
    assert status.query_env(env) == {"PATH": "/usr/bin", "SLURM_CONF": "/etc/slurm/slurm.conf",
                                     "SLURM_TIME_FORMAT": "standard"}
    # a site's own time format would make every start estimate unreadable
    assert status.query_env({"SLURM_TIME_FORMAT": "%d.%m %H:%M"})["SLURM_TIME_FORMAT"] == "standard"


def test_run_exec_runs_without_a_shell_and_times_out() -> None:
    code, out, err = run(status.run_exec([sys.executable, "-c", "import sys; print('a;b $(id)'); sys.exit(3)"]))
    assert (code, out, err) == (3, "a;b $(id)\n", "")
    with pytest.raises(asyncio.TimeoutError):
        run(status.run_exec([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2))


def test_commands_are_counted_per_cluster_and_kind_into_a_json_file(tmp_path: Path) -> None:
    counter = status.CommandCounter(every=0.01)
    counter.path = tmp_path / "counts.json"

    async def main() -> None:
        counter.count("c1", "status-shared")
        counter.count("c1", "status-shared")
        counter.count("c2", "status-user")
        await asyncio.sleep(0.05)

    run(main())
    data = json.loads(counter.path.read_text())
    assert data["counts"] == {"c1": {"status-shared": 2}, "c2": {"status-user": 1}}
    assert data["updated"] >= data["started"]
    assert [p.name for p in tmp_path.iterdir()] == ["counts.json"]


def test_configure_sets_one_poller_per_shared_cluster() -> None:
    status.configure(["a", "b"], "/opt/slurm/bin/squeue", "")
    try:
        first = status.poller_for("a")
        assert first is not None and first.squeue == "/opt/slurm/bin/squeue"
        assert status.poller_for("b") is not first
        assert status.poller_for("c") is None and status.poller_for("") is None
    finally:
        status.configure([], SQUEUE, "")


# --- the spawner's status query --------------------------------------------

class SlurmStates:
    """batchspawner 1.3.0 SlurmSpawner's state patterns on job_status."""

    job_status = ""

    def state_isrunning(self) -> bool:
        return bool(re.search(r"^(?:RUNNING|COMPLETING)", self.job_status))

    def state_ispending(self) -> bool:
        return bool(re.search(r"^(?:PENDING|CONFIGURING)", self.job_status))

    def state_isunknown(self) -> bool:
        return bool(re.search(r"^slurm_load_jobs error: (?:Socket timed out on send/recv|Unable to contact "
                              r"slurm controller)", self.job_status))


class Spawner(GuardedBatchCommands, SlurmStates):
    """A gateway SLURM spawner whose per-user command only records itself."""

    job_scheduler = "slurm"
    job_states = Status
    exec_prefix = "sudo -n -u {username}"
    batch_query_cmd = "squeue -h -j {job_id} -t all -o '%T %B'"
    batch_cancel_cmd = "scancel {job_id}"

    def __init__(self, cluster: str, submit: str = "local", job_id: str = "4711") -> None:
        self.hpcgw_cluster_name = cluster
        self.hpcgw_submit = submit
        self.hpcgw_starting = False
        self.job_id = job_id
        self.job_status = ""
        self.log = Log()
        self.commands: list[str] = []

    def get_req_subvars(self) -> dict[str, str]:
        return {"username": "alice"}

    async def run_command(self, cmd: str, input: Optional[str] = None, env: Any = None) -> str:
        self.commands.append(cmd)
        return "RUNNING n1"


@pytest.fixture
def shared() -> Any:
    """Cluster c1 has a shared poller answering from a fake squeue."""
    fake = FakeSqueue({"4711": "RUNNING n1"})
    status.configure(["c1"], SQUEUE, "", runner=fake)
    yield fake
    status.configure([], SQUEUE, "")


def test_a_shared_cluster_reads_the_poller(shared: FakeSqueue) -> None:
    spawner = Spawner("c1")
    assert run(spawner.query_job_status()) is Status.RUNNING
    assert spawner.job_status == "RUNNING n1" and spawner.commands == []
    assert len(shared.calls) == 1


@pytest.mark.parametrize(("listing", "verdict"), [
    ("PENDING n/a", Status.PENDING),
    ("CONFIGURING n1", Status.PENDING),
    ("COMPLETING n1", Status.RUNNING),
    ("TIMEOUT n1", Status.NOTFOUND),
    ("CANCELLED n1", Status.NOTFOUND),
    (None, Status.NOTFOUND),  # purged: gone
])
def test_the_shared_answer_gets_batchspawners_verdict(shared: FakeSqueue, listing: Optional[str],
                                                      verdict: Status) -> None:
    shared.jobs = {"4711": listing} if listing else {}
    spawner = Spawner("c1")
    assert run(spawner.query_job_status()) is verdict
    assert spawner.job_status == (listing or "")


def test_a_failed_shared_query_keeps_the_server(shared: FakeSqueue) -> None:
    shared.fail = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
    spawner = Spawner("c1")
    assert run(spawner.query_job_status()) is Status.UNKNOWN
    assert any("Status of job 4711 unknown for now (kept)" in line for line in spawner.log.lines)


@pytest.mark.parametrize(("cluster", "submit"), [
    ("c2", "local"),  # status_query: user (no poller for it)
    ("c1", "ssh"),  # reached over SSH: never the hub's own squeue
    ("", "local"),  # a server saved before the cluster name was kept
])
def test_user_and_ssh_clusters_ask_as_the_user(shared: FakeSqueue, cluster: str, submit: str) -> None:
    spawner = Spawner(cluster, submit)
    assert run(spawner.query_job_status()) is Status.RUNNING
    assert len(spawner.commands) == 1 and "squeue -h -j 4711" in spawner.commands[0]
    assert shared.calls == []


def test_a_hostile_stored_job_id_reaches_no_query(shared: FakeSqueue) -> None:
    spawner = Spawner("c1", job_id="4711;id")
    assert run(spawner.query_job_status()) is Status.NOTFOUND
    assert shared.calls == [] and spawner.commands == []


def test_every_scheduler_command_is_counted(shared: FakeSqueue) -> None:
    status.COUNTER.counts.clear()
    run(Spawner("c1").query_job_status())
    run(Spawner("c2").query_job_status())
    run(Spawner("c2").cancel_batch_job())
    assert status.COUNTER.counts == {"c1": {"status-shared": 1}, "c2": {"status-user": 1, "cancel": 1}}
    status.COUNTER.counts.clear()


class Watched(startup.WatchedStart, Spawner):
    """The spawner's poll (WatchedStart) on the guarded query."""

    def clear_state(self) -> None:
        self.job_id = ""
        self.job_status = ""


def test_a_running_servers_end_is_told_from_the_shared_answer(shared: FakeSqueue) -> None:
    shared.jobs = {"4711": "TIMEOUT n1"}
    spawner = Watched("c1")
    spawner.user = type("U", (), {"name": "alice"})()  # type: ignore[attr-defined]
    assert run(spawner.poll()) == 1
    assert "reached its time limit" in startup.end_notice_html(spawner.user)  # type: ignore[attr-defined]
    startup.forget_end("alice")


def test_a_stop_during_a_shared_query_cancels_the_caller_only(shared: FakeSqueue) -> None:
    async def main() -> tuple[bool, Status]:
        return await cancel_one_of_two(shared, Spawner("c1").query_job_status(), Spawner("c1").query_job_status())

    was_cancelled, verdict = run(main())
    assert was_cancelled and verdict is Status.RUNNING and len(shared.calls) == 1


class UserFormatSpawner(Spawner):
    """The gateway's per-user query (-o '%T|%B|%S|%r') and what SLURM answers."""

    batch_query_cmd = "squeue -h -j {job_id} -t all -o '%T|%B|%S|%r'"
    answer = "PENDING|n/a|2026-05-04T10:30:00|QOSMaxCpuPerUserLimit"

    async def run_command(self, cmd: str, input: Optional[str] = None, env: Any = None) -> str:
        self.commands.append(cmd)
        return self.answer + "\n"


def test_the_per_user_query_keeps_reason_and_estimate_beside_the_state() -> None:
    spawner = UserFormatSpawner("c2")
    assert run(spawner.query_job_status()) is Status.PENDING
    assert spawner.job_status == "PENDING n/a"  # what batchspawner's patterns read
    assert (spawner.hpcgw_job_reason, spawner.hpcgw_job_start) == ("QOSMaxCpuPerUserLimit", "2026-05-04T10:30:00")
    spawner.answer = "RUNNING|n1|2026-05-04T10:31:00|None"
    assert run(spawner.query_job_status()) is Status.RUNNING
    assert (spawner.job_status, spawner.hpcgw_job_reason) == ("RUNNING n1", "")


def test_the_shared_answer_carries_reason_and_estimate_to_the_spawner(shared: FakeSqueue) -> None:
    shared.jobs = {"4711": "PENDING n/a|N/A|Priority"}
    spawner = Spawner("c1")
    assert run(spawner.query_job_status()) is Status.PENDING
    assert (spawner.job_status, spawner.hpcgw_job_reason, spawner.hpcgw_job_start) == ("PENDING n/a", "Priority", "")


def test_the_ssh_sudo_rule_allows_the_slurm_status_query_the_spawner_sends() -> None:
    """The per-user query (hpcgw_batch) and the SSH clusters' sudo rule
    (vars/main.yml) change together: the rule's regex matches the command."""
    import yaml

    role = Path(__file__).resolve().parents[2] / "roles" / "spawn_profiles"
    source = (role / "files" / "hpcgw_batch.py").read_text(encoding="utf-8")
    query = re.search(r'batch_query_cmd = Unicode\("([^"]+)"\)', source)
    assert query is not None and status.USER_FORMAT in query.group(1)
    rules = yaml.safe_load((role / "vars" / "main.yml").read_text(encoding="utf-8"))["__spawn_profiles_commands"]
    (rule,) = [r for r in rules["slurm"]["ssh"] if r.startswith("squeue")]
    assert re.fullmatch(rule, query.group(1).format(job_id="4711"))
    assert not re.fullmatch(rule, query.group(1).format(job_id="4711") + " $(id)")
