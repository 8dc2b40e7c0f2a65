"""The gateway's metrics (hpcgw_metrics) and where they are fed: a spawn's
outcome and duration per cluster and queue, the jobs waiting in the queue
(WatchedStart), every scheduler command's latency and errors (the shared
poller and the guarded batch commands, through hpcgw_status.observe), the
proxy's user routes. Each test reads the samples from its own registry."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator, Optional

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import hpcgw_metrics as metrics
import hpcgw_status as status
from fakes import Clock, FakeSqueue, Status
from test_hpcgw_batch_core import GuardedSlurm
from test_hpcgw_startup import FakeJob, Failed


@pytest.fixture()
def gm() -> metrics.GatewayMetrics:
    return metrics.GatewayMetrics(CollectorRegistry())


@pytest.fixture()
def observed(gm: metrics.GatewayMetrics) -> Iterator[metrics.GatewayMetrics]:
    """gm observes every scheduler command while the test runs (as the hub's config sets it up)."""
    status.OBSERVERS.append(gm.observe_scheduler_command)
    yield gm
    status.OBSERVERS.remove(gm.observe_scheduler_command)


def sample(gm: metrics.GatewayMetrics, name: str, **labels: str) -> Optional[float]:
    return gm.registry.get_sample_value(name, labels)


def spawns(gm: metrics.GatewayMetrics, cluster: str, queue: str) -> dict[str, float]:
    return {o: sample(gm, "hpcgw_spawns_total", cluster=cluster, queue=queue, outcome=o) or 0.0
            for o in metrics.OUTCOMES}


async def _ok() -> tuple[str, int]:
    return "hpcgw-c1", 40389


async def _fails() -> None:
    raise RuntimeError("sbatch: error: Batch job submission failed")


# --- spawns ------------------------------------------------------------------

def test_a_ready_spawn_counts_started_and_ready_and_its_duration() -> None:
    gm, clock = metrics.GatewayMetrics(CollectorRegistry()), Clock()

    async def slow() -> tuple[str, int]:
        clock.now += 42.0
        return await _ok()

    assert asyncio.run(gm.observe_spawn("testcluster", "debug", slow(), clock)) == ("hpcgw-c1", 40389)
    assert spawns(gm, "testcluster", "debug") == {"started": 1, "ready": 1, "failed": 0, "cancelled": 0}
    assert sample(gm, "hpcgw_spawn_duration_seconds_count", cluster="testcluster", queue="debug") == 1
    assert sample(gm, "hpcgw_spawn_duration_seconds_sum", cluster="testcluster", queue="debug") == 42.0
    # 42 s falls into the 45 s bucket, not the 30 s one
    assert sample(gm, "hpcgw_spawn_duration_seconds_bucket", cluster="testcluster", queue="debug", le="30.0") == 0
    assert sample(gm, "hpcgw_spawn_duration_seconds_bucket", cluster="testcluster", queue="debug", le="45.0") == 1


def test_a_failed_spawn_counts_failed_and_raises(gm: metrics.GatewayMetrics) -> None:
    with pytest.raises(RuntimeError, match="submission failed"):
        asyncio.run(gm.observe_spawn("testcluster", "batch", _fails()))
    assert spawns(gm, "testcluster", "batch") == {"started": 1, "ready": 0, "failed": 1, "cancelled": 0}
    assert sample(gm, "hpcgw_spawn_duration_seconds_count", cluster="testcluster", queue="batch") in (None, 0)


def test_a_stopped_pending_spawn_counts_cancelled(gm: metrics.GatewayMetrics) -> None:
    async def main() -> None:
        task = asyncio.ensure_future(gm.observe_spawn("vialogin", "debug", asyncio.sleep(3600)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert spawns(gm, "vialogin", "debug") == {"started": 1, "ready": 0, "failed": 0, "cancelled": 1}


def test_the_buckets_span_a_second_to_half_an_hour() -> None:
    assert metrics.SPAWN_BUCKETS[0] == 1.0 and metrics.SPAWN_BUCKETS[-1] == 1800.0
    assert list(metrics.SPAWN_BUCKETS) == sorted(set(metrics.SPAWN_BUCKETS))


def test_declared_queues_exist_at_zero_before_any_spawn(gm: metrics.GatewayMetrics) -> None:
    gm.declare([("testcluster", "debug"), ("local", "local")])
    assert spawns(gm, "testcluster", "debug") == dict.fromkeys(metrics.OUTCOMES, 0.0)
    assert sample(gm, "hpcgw_spawns_total", cluster="local", queue="local", outcome="started") == 0
    assert sample(gm, "hpcgw_jobs_pending", cluster="testcluster") == 0
    assert sample(gm, "hpcgw_scheduler_query_errors_total", cluster="testcluster", kind="submit") == 0


@pytest.mark.parametrize(("value", "expected"), [
    ("", "-"), (None, "-"), ("debug", "debug"), ("a\nb", "a?b"), ("x" * 100, "x" * 64),
])
def test_label_values_are_short_and_printable(value: Any, expected: str) -> None:
    assert metrics.label(value) == expected


def test_the_exposition_names_the_gateway_series(gm: metrics.GatewayMetrics) -> None:
    asyncio.run(gm.observe_spawn("testcluster", "debug", _ok()))
    text = generate_latest(gm.registry).decode()
    assert 'hpcgw_spawns_total{cluster="testcluster",outcome="started",queue="debug"} 1.0' in text
    for name in ("hpcgw_spawn_duration_seconds", "hpcgw_jobs_pending", "hpcgw_proxy_user_routes",
                 "hpcgw_proxy_routes_checked_timestamp_seconds", "hpcgw_scheduler_query_duration_seconds",
                 "hpcgw_scheduler_query_errors_total"):
        assert f"# HELP {name} " in text, name


# --- jobs waiting in the queue -------------------------------------------------

def test_pending_jobs_are_counted_once_and_leave_when_they_run(gm: metrics.GatewayMetrics) -> None:
    gm.job_pending("testcluster", "12", True)
    gm.job_pending("testcluster", "12", True)
    gm.job_pending("testcluster", "13", True)
    gm.job_pending("vialogin", "14", True)
    assert sample(gm, "hpcgw_jobs_pending", cluster="testcluster") == 2
    gm.job_pending("testcluster", "12", False)
    gm.job_pending("testcluster", "99", False)  # never pending: no change
    assert sample(gm, "hpcgw_jobs_pending", cluster="testcluster") == 1
    assert sample(gm, "hpcgw_jobs_pending", cluster="vialogin") == 1


class MeteredJob(FakeJob):
    """WatchedStart whose pending hook feeds a GatewayMetrics, recording the
    gauge's value at every query (as hpcgw_batch.GatewayBatchMixin does)."""

    def __init__(self, gm: metrics.GatewayMetrics, states: list[Status], events: dict[int, str] | None = None) -> None:
        super().__init__(states, events)
        self.gm = gm
        self.seen: list[float] = []

    def hpcgw_job_pending(self, pending: bool) -> None:
        self.gm.job_pending("testcluster", self.job_id, pending)

    async def query_job_status(self) -> Status:
        self.seen.append(sample(self.gm, "hpcgw_jobs_pending", cluster="testcluster") or 0.0)
        return await super().query_job_status()


def test_a_job_is_pending_while_queued_and_not_once_it_runs(gm: metrics.GatewayMetrics) -> None:
    job = MeteredJob(gm, [Status.PENDING, Status.PENDING, Status.RUNNING, Status.RUNNING], {3: "port", 4: "answer"})
    assert asyncio.run(job.start()) == ("hpcgw-c1", 40389)
    assert job.seen[:3] == [0.0, 1.0, 1.0]
    assert sample(gm, "hpcgw_jobs_pending", cluster="testcluster") == 0


def test_a_job_that_leaves_the_queue_is_no_longer_pending(gm: metrics.GatewayMetrics) -> None:
    job = MeteredJob(gm, [Status.PENDING, Status.NOTFOUND])
    with pytest.raises(Failed):
        asyncio.run(job.start())
    assert job.seen == [0.0, 1.0]
    assert sample(gm, "hpcgw_jobs_pending", cluster="testcluster") == 0


# --- scheduler commands --------------------------------------------------------

def _poller(fake: FakeSqueue, clock: Clock) -> status.SharedStatusPoller:
    return status.SharedStatusPoller("testcluster", "/usr/bin/squeue", fake, clock=clock,
                                     counter=status.CommandCounter(clock=clock))


def test_the_shared_query_is_timed(observed: metrics.GatewayMetrics) -> None:
    clock = Clock()

    class SlowSqueue(FakeSqueue):
        async def __call__(self, argv: Any) -> tuple[int, str, str]:
            clock.now += 0.3
            return await super().__call__(argv)

    answer = asyncio.run(_poller(SlowSqueue({"12": "RUNNING c1"}), clock).status("12"))
    assert answer.kind == status.LISTED
    labels = {"cluster": "testcluster", "kind": "status-shared"}
    assert sample(observed, "hpcgw_scheduler_query_duration_seconds_count", **labels) == 1
    assert sample(observed, "hpcgw_scheduler_query_duration_seconds_sum", **labels) == pytest.approx(0.3)
    assert sample(observed, "hpcgw_scheduler_query_errors_total", **labels) in (None, 0)


@pytest.mark.parametrize(("fail", "raises", "errors"), [
    ("slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n", None, 1),
    ("", OSError("squeue: not found"), 1),
])
def test_a_failed_shared_query_is_an_error(observed: metrics.GatewayMetrics, fail: str,
                                           raises: Optional[BaseException], errors: int) -> None:
    fake = FakeSqueue({"12": "RUNNING c1"})
    fake.fail, fake.raises = fail, raises
    answer = asyncio.run(_poller(fake, Clock()).status("12"))
    assert answer.kind == status.UNKNOWN
    assert sample(observed, "hpcgw_scheduler_query_errors_total", cluster="testcluster", kind="status-shared") == errors


def test_a_job_slurm_no_longer_knows_is_no_error(observed: metrics.GatewayMetrics) -> None:
    answer = asyncio.run(_poller(FakeSqueue({}), Clock()).status("12"))  # "Invalid job id specified"
    assert answer.kind == status.GONE_KIND
    labels = {"cluster": "testcluster", "kind": "status-shared"}
    assert sample(observed, "hpcgw_scheduler_query_duration_seconds_count", **labels) == 1
    assert sample(observed, "hpcgw_scheduler_query_errors_total", **labels) in (None, 0)


class NamedSlurm(GuardedSlurm):
    hpcgw_cluster_name = "vialogin"


class BrokenSlurm(NamedSlurm):
    """Every command fails as batchspawner reports it (RuntimeError with stderr)."""

    error = "ssh: connect to host login1 port 22: Connection refused"

    async def run_command(self, cmd: str, input: Optional[str] = None, env: Any = None) -> str:
        self.commands.append(cmd)
        raise RuntimeError(self.error)


def test_submit_status_and_cancel_are_timed_per_kind(observed: metrics.GatewayMetrics) -> None:
    spawner = NamedSlurm("4711")
    asyncio.run(spawner.submit_batch_script())
    asyncio.run(spawner.query_job_status())
    asyncio.run(spawner.cancel_batch_job())
    for kind in ("submit", "status-user", "cancel"):
        assert sample(observed, "hpcgw_scheduler_query_duration_seconds_count", cluster="vialogin", kind=kind) == 1
        assert sample(observed, "hpcgw_scheduler_query_errors_total", cluster="vialogin", kind=kind) in (None, 0)


def test_failing_commands_are_errors_but_a_gone_job_is_not(observed: metrics.GatewayMetrics) -> None:
    spawner = BrokenSlurm("4711")
    with pytest.raises(RuntimeError):
        asyncio.run(spawner.submit_batch_script())
    spawner.job_id = "4711"
    assert asyncio.run(spawner.query_job_status()) is Status.UNKNOWN
    with pytest.raises(RuntimeError):
        asyncio.run(spawner.cancel_batch_job())
    for kind in ("submit", "status-user", "cancel"):
        assert sample(observed, "hpcgw_scheduler_query_errors_total", cluster="vialogin", kind=kind) == 1, kind
    spawner.error = "slurm_load_jobs error: Invalid job id specified"
    assert asyncio.run(spawner.query_job_status()) is Status.NOTFOUND
    assert sample(observed, "hpcgw_scheduler_query_errors_total", cluster="vialogin", kind="status-user") == 1
    assert sample(observed, "hpcgw_scheduler_query_duration_seconds_count", cluster="vialogin", kind="status-user") == 2


def test_an_unusable_submit_answer_is_an_error(observed: metrics.GatewayMetrics) -> None:
    with pytest.raises(RuntimeError, match="not a job id"):
        asyncio.run(NamedSlurm("sbatch: error: invalid partition").submit_batch_script())
    assert sample(observed, "hpcgw_scheduler_query_errors_total", cluster="vialogin", kind="submit") == 1


def test_a_broken_observer_never_breaks_the_query(observed: metrics.GatewayMetrics) -> None:
    def broken(*_: Any) -> None:
        raise ValueError("observer bug")

    status.OBSERVERS.insert(0, broken)
    try:
        answer = asyncio.run(_poller(FakeSqueue({"12": "PENDING"}), Clock()).status("12"))
    finally:
        status.OBSERVERS.remove(broken)
    assert answer.kind == status.LISTED
    assert sample(observed, "hpcgw_scheduler_query_duration_seconds_count",
                  cluster="testcluster", kind="status-shared") == 1


# --- proxy routes --------------------------------------------------------------

ROUTES = {
    "/jupyter/": {"routespec": "/jupyter/", "target": "http://hpcgw-gw:8081", "data": {"hub": True}},
    "/jupyter/user/alice/": {"routespec": "/jupyter/user/alice/", "target": "http://hpcgw-c1:40389",
                             "data": {"user": "alice", "server_name": "", "last_activity": "2026-01-01T00:00:00Z"}},
    "/jupyter/user/bob/": {"routespec": "/jupyter/user/bob/", "target": "http://127.0.0.1:51000",
                           "data": {"user": "bob", "server_name": ""}},
    "/jupyter/services/x/": {"routespec": "/jupyter/services/x/", "target": "http://127.0.0.1:9", "data": {"service": "x"}},
}


def test_only_user_routes_are_counted() -> None:
    assert metrics.user_routes(ROUTES) == 2
    assert metrics.user_routes({}) == 0
    assert metrics.user_routes({"/odd/": {"data": None}, "/odder/": "not a route"}) == 0


def test_the_route_check_sets_the_gauge_and_its_time(gm: metrics.GatewayMetrics) -> None:
    gm.observe_routes(ROUTES, now=1_750_000_000.0)
    assert sample(gm, "hpcgw_proxy_user_routes") == 2
    assert sample(gm, "hpcgw_proxy_routes_checked_timestamp_seconds") == 1_750_000_000.0


def test_the_module_registers_on_the_default_registry() -> None:
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("hpcgw_proxy_user_routes") is not None
    assert metrics.METRICS.registry is REGISTRY
