"""The spawn page's scheduler side: what is free (sinfo/squeue parsing, one
shared query per cluster per interval) and the start estimate (sbatch
--test-only built only from a checked choice, its answer parsed; the
per-user rate limit). Outputs are SLURM's as probed on the demo cluster."""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Sequence

import pytest

import hpcgw_sched as sched
from fakes import Clock
from hpcgw_profiles import Catalog, ChoiceError, Choice
from hpcgw_status import CommandCounter

# sinfo -h -a -o '%R %F %C' and squeue -h -a -t PENDING -o '%P' on the demo cluster
SINFO = "debug 0/2/0/2 0/32/0/32\nbatch 1/1/0/2 14/18/0/32\n"
PENDING = "batch\nbatch\ndebug,batch\n"


class FakeSlurm:
    """sinfo and squeue as the hub account runs them; records every argv."""

    def __init__(self, sinfo: str = SINFO, pending: str = PENDING) -> None:
        self.sinfo, self.pending = sinfo, pending
        self.calls: list[list[str]] = []
        self.gate: Optional[asyncio.Event] = None
        self.fail = ""

    async def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            return 1, "", self.fail
        return 0, self.sinfo if argv[0].endswith("sinfo") else self.pending, ""


def make(fake: FakeSlurm, **options: Any) -> tuple[sched.AvailabilityPoller, Clock]:
    clock = Clock()
    poller = sched.AvailabilityPoller("tc", "/usr/bin", fake, clock=clock, counter=CommandCounter(clock=clock), **options)
    return poller, clock


def test_parse_sinfo_and_pending() -> None:
    assert sched.parse_sinfo(SINFO) == {"debug": (2, 2, 32, 32), "batch": (1, 2, 18, 32)}
    assert sched.parse_pending(PENDING) == {"batch": 3, "debug": 1}
    free = sched.combine(sched.parse_sinfo(SINFO), sched.parse_pending(PENDING))
    assert free["batch"] == sched.Free(1, 2, 18, 32, 3) and free["debug"].pending_jobs == 1


def test_parse_sinfo_sums_split_lines_and_skips_garbage() -> None:
    out = "debug 0/1/0/1 0/16/0/16\ndebug 1/0/1/2 16/0/16/32\nbad line\nx 1/2/3 1/2/3/4\n$(id) 0/1/0/1 0/1/0/1\n"
    assert sched.parse_sinfo(out) == {"debug": (1, 3, 16, 48)}


def test_the_commands_are_fixed_and_without_sudo() -> None:
    fake = FakeSlurm()
    poller, _ = make(fake)
    asyncio.run(poller.current())
    assert fake.calls == [["/usr/bin/sinfo", "-h", "-a", "-o", "%R %F %C"],
                          ["/usr/bin/squeue", "-h", "-a", "-t", "PENDING", "-o", "%P"]]


def test_one_query_per_interval_for_every_page_view() -> None:
    fake = FakeSlurm()
    poller, clock = make(fake, interval=30.0)

    async def views(n: int) -> list[Any]:
        return list(await asyncio.gather(*(poller.current() for _ in range(n))))

    answers = asyncio.run(views(50))
    assert len(fake.calls) == 2 and poller.calls == 1
    assert all(a[0]["batch"].idle_cores == 18 for a in answers)
    clock.now += 29
    asyncio.run(views(20))
    assert poller.calls == 1
    clock.now += 2
    fake.sinfo = "batch 2/0/0/2 32/0/0/32\n"
    free, age = asyncio.run(poller.current())
    assert poller.calls == 2 and free["batch"].idle_cores == 0 and age == 0


def test_a_slow_query_does_not_hold_the_page() -> None:
    fake = FakeSlurm()
    poller, _ = make(fake, max_wait=0.05)

    async def main() -> tuple[Any, Any]:
        fake.gate = asyncio.Event()
        first = await poller.current()  # gives up waiting; the query goes on
        second_view = asyncio.ensure_future(poller.current())
        await asyncio.sleep(0.01)
        fake.gate.set()
        return first, await second_view

    first, second = asyncio.run(main())
    assert first == ({}, None)
    assert second[0]["debug"].idle_nodes == 2
    assert poller.calls == 1


def test_a_failed_query_shows_nothing() -> None:
    fake = FakeSlurm()
    poller, clock = make(fake)
    asyncio.run(poller.current())
    fake.fail = "slurm_load_partitions: Unable to contact slurm controller"
    clock.now += 60
    assert asyncio.run(poller.current()) == ({}, None)


def test_only_configured_clusters_are_queried() -> None:
    fake = FakeSlurm()
    sched.configure(["tc"], "/opt/slurm/bin", fake)
    try:
        assert asyncio.run(sched.availability("other")) == ({}, None)
        assert fake.calls == []
        free, _ = asyncio.run(sched.availability("tc"))
        assert free["debug"].idle_cores == 32 and fake.calls[0][0] == "/opt/slurm/bin/sinfo"
    finally:
        sched.configure([], "/usr/bin")


CHOICE = Choice("testcluster", "debug", 2, 1, 90, 0, "")


def test_estimate_argv_has_only_the_checked_choice() -> None:
    argv = sched.estimate_argv(["sudo", "-n"], "/usr/bin/sbatch", "alice", CHOICE)
    assert argv == ["sudo", "-n", "-u", "alice", "/usr/bin/sbatch", "--test-only", "--wrap=true",
                    "--job-name=hpcgw-estimate", "--chdir=/tmp", "--output=/dev/null", "--nodes=1", "--ntasks=1",
                    "--partition=debug", "--time=01:30:00", "--mem=1G", "--cpus-per-task=2"]
    gpu = sched.estimate_argv(["sudo", "-n"], "/usr/bin/sbatch", "bob", Choice("c", "gpu", 1, 4, 5, 2, "proj1"))
    assert gpu[-2:] == ["--gres=gpu:2", "--account=proj1"]


@pytest.mark.parametrize("user", ["-u", "root -s", "a;b", "", "x" * 80, "--wrap=id"])
def test_estimate_refuses_odd_user_names(user: str) -> None:
    with pytest.raises(ValueError):
        sched.estimate_argv(["sudo", "-n"], "/usr/bin/sbatch", user, CHOICE)


def test_hostile_values_never_reach_the_command() -> None:
    """Every value comes through the catalog's checks; injected options are refused there."""
    catalog = Catalog.from_data({"clusters": [{"name": "tc", "scheduler": "slurm", "accounts": ["proj1"],
                                               "queues": [{"name": "debug", "cores": {"max": 2}}]}]})
    for bad in ({"cores": "1 --wrap=id"}, {"account": "--wrap=id"}, {"account": "proj2"},
                {"walltime_min": "1:00 --uid=0"}, {"memory_gb": "-1"}, {"cores": "3"}):
        with pytest.raises(ChoiceError):
            catalog.choice_from_options({"profile": "custom", "cluster": "tc", "queue": "debug", **bad})
    with pytest.raises(ChoiceError):
        catalog.choice_from_options({"profile": "custom", "cluster": "tc", "queue": "debug --wrap=id"})


def test_parse_estimate_as_slurm_says_it() -> None:
    err = "sbatch: Job 2 to start at 2026-11-25T22:19:18 using 2 processors on nodes hpcgw-c1 in partition debug\n"
    assert sched.parse_estimate(0, "", err) == sched.Estimate("2026-11-25T22:19:18", 2, "hpcgw-c1", "debug")
    many = "sbatch: Job 7 to start at 2026-01-02T03:04:05 using 64 processors on nodes c[001-004]\n"
    assert sched.parse_estimate(0, "", many).nodes == "c[001-004]"


@pytest.mark.parametrize(("code", "err", "message"), [
    (1, "allocation failure: Requested node configuration is not available\n",
     "The scheduler says: allocation failure: Requested node configuration is not available"),
    (1, "sbatch: error: Invalid generic resource (gres) specification\n",
     "The scheduler says: Invalid generic resource (gres) specification"),
    (1, "", "The scheduler says: sbatch exit status 1"),
    (0, "something else\x1b[31m\n", "The scheduler says: something else[31m"),
])
def test_parse_estimate_refusals(code: int, err: str, message: str) -> None:
    answer = sched.parse_estimate(code, "", err)
    assert answer.start == "" and answer.message == message
    assert answer.as_dict()["start"] is None


def test_rate_limit_per_user() -> None:
    clock = Clock()
    limiter = sched.RateLimiter(burst=3, every=2.0, clock=clock)
    assert [limiter.take("alice") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("alice") == pytest.approx(2.0)
    assert limiter.take("bob") == 0  # each user has their own bucket
    clock.now += 1
    assert limiter.take("alice") == pytest.approx(1.0)
    clock.now += 1
    assert limiter.take("alice") == 0
    clock.now += 100
    assert [limiter.take("alice") for _ in range(4)][-1] > 0  # never more than the burst
