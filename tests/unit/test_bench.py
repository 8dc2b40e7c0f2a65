"""The benchmark driver's pure parts: percentiles, ab and smaps parsing, the
scheduler-call count and the report table."""

from __future__ import annotations

import json
from typing import Sequence

import pytest

import bench

AB = """
Concurrency Level:      10
Complete requests:      5000
Failed requests:        0
Non-2xx responses:      3
Requests per second:    2654.11 [#/sec] (mean)
Time per request:       3.768 [ms] (mean)
Time per request:       0.377 [ms] (mean, across all concurrent requests)

Percentage of the requests served within a certain time (ms)
  50%      4
  66%      4
 100%     31 (longest request)
"""


@pytest.mark.parametrize(("samples", "fraction", "value"), [
    ([3.0, 1.0, 2.0, 5.0, 4.0], 0.5, 3.0), ([3.0, 1.0, 2.0, 5.0, 4.0], 0.95, 5.0),
    ([7.0], 0.5, 7.0), ([1.0, 2.0], 0.5, 1.0), (list(map(float, range(1, 21))), 0.95, 19.0)])
def test_percentile_is_nearest_rank(samples: list[float], fraction: float, value: float) -> None:
    assert bench.percentile(samples, fraction) == value


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        bench.percentile([], 0.5)


def test_parse_ab_counts_non_2xx_as_failures() -> None:
    assert bench.parse_ab(AB) == {"rps": 2654.11, "p50_ms": 4.0, "failed": 3, "mean_ms": 3.768}


def test_parse_ab_refuses_other_output() -> None:
    with pytest.raises(ValueError, match="not an ab report"):
        bench.parse_ab("apr_socket_connect(): Connection refused (111)")


def test_parse_pss_sums_every_process() -> None:
    text = "Rss: 9000 kB\nPss:    2048 kB\nPss_Anon: 100 kB\nRss: 1 kB\nPss: 1024 kB\n"
    assert bench.parse_pss_kb(text) == 3072


def test_scheduler_calls_are_counted_per_command() -> None:
    journal = "\n".join([
        "jupyterhub : PWD=/var/lib/jupyterhub ; USER=alice ; COMMAND=/usr/bin/squeue -h -j 3 -t all",
        "jupyterhub : PWD=/var/lib/jupyterhub ; USER=bob ; COMMAND=/usr/bin/squeue -h -j 4 -t all",
        "jupyterhub : PWD=/var/lib/jupyterhub ; USER=bob ; COMMAND=/usr/bin/sbatch --parsable",
        "jupyterhub : USER=root ; COMMAND=/usr/local/sbin/hpcgw-local-scope start alice",
        "pam_unix(sudo:session): session opened for user alice(uid=20001) by (uid=999)",
    ])
    assert bench.count_scheduler_calls(journal) == {"squeue": 2, "sbatch": 1}


def test_the_report_names_floors_overhead_and_ratios() -> None:
    results = {
        "spawn": bench.summary([3.0, 4.0, 5.0]), "floor_sbatch": bench.summary([1.0]),
        "floor_imports": bench.summary([1.5]),
        "hops": {"hub": {"rps": 4000.0, "p50_ms": 2.0}, "proxy_hub": {"rps": 3600.0, "p50_ms": 2.0},
                 "apache_proxy_hub": {"rps": 3000.0, "p50_ms": 3.0}, "ratio_apache_to_proxy": 0.83,
                 "ratio_proxy_to_hub": 0.9, "apache_added_p50_ms": 1.0,
                 "apache_session_proxy_hub": {"rps": 2900.0, "p50_ms": 3.0}, "ratio_session_to_proxy": 0.81,
                 "session_added_p50_ms": 1.0,
                 "sequential": {"proxy_hub": {"mean_ms": 1.5}, "apache_basic": {"mean_ms": 3.25},
                                "apache_session": {"mean_ms": 3.0}},
                 "session_added_ms": 1.5, "session_vs_basic_ms": -0.25},
        "login": {"check_ms": 0.31}, "memory": {"hub": 150.0, "proxy": 60.0, "apache": 30.0, "total": 240.0},
        "scheduler": {"servers_1": {"squeue": 2}, "servers_5": {"squeue": 2}},
    }
    report = bench.table(results)
    lines = dict(line.split("  ", 1) for line in report.splitlines())
    assert lines["gateway overhead (spawn - floors) p50"].strip() == "1.50 s"
    assert "0.83x (added p50 1 ms)" in report
    assert lines["ratio Apache (session)+proxy : proxy alone"].strip() == "0.81x (added p50 1 ms)"
    assert "150.0 + 60.0 + 30.0 = 240.0 MB" in report
    assert lines["Apache (TLS) + session login add, per request"].strip() == "1.50 ms"
    assert lines["session login vs Basic (password each request)"].strip() == "-0.25 ms"
    assert "scheduler calls/min, servers 5" in report


def test_main_writes_every_part_and_the_report(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    counts = iter(range(0, 1000, 3))
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: None)

    def runner(argv: Sequence[str]) -> str:
        command = argv[-1]
        calls.append(command)
        if command.startswith("ab "):
            return AB
        if bench.COUNTS_FILE in command:
            return json.dumps({"counts": {"c": {"status-shared": next(counts), "submit": 1}}})
        if "spawnclient.py bench" in command:
            return '{"seconds": [3.0]}'
        if "spawnclient.py" in command:
            return '{"seconds": 3.0, "ready": true, "stopped": true}'
        if "squeue" in command:
            return "0\n"
        if command.startswith("pgrep"):
            return "11\n"
        if "smaps_rollup" in command:
            return "Pss: 1024 kB\n"
        if "journalctl" in command:
            return "x ; COMMAND=/usr/bin/squeue -h\n"
        if command.startswith("date"):
            return "2026-11-25 20:00:00\n"
        return "0.5\n"

    assert bench.main(["--smoke", "--out", str(tmp_path)], runner=runner) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"memory.json", "hops.json", "login.json", "floor_sbatch.json", "floor_imports.json",
                     "spawn.json", "scheduler.json", "burst.json", "report.txt"}
    assert "spawn click-to-ready p50 / p95" in capsys.readouterr().out
    assert any(c.startswith("ab -q -k -c 10 -n 200 ") for c in calls)
    assert any(c.startswith("ab -q -k -c 10 -n 200 -C hpcgw_demo_session=") for c in calls)
    assert any(c.startswith("ab -q -k -c 1 -n 50 -C hpcgw_demo_session=") for c in calls)
    hops = json.loads((tmp_path / "hops.json").read_text())
    assert hops["session_added_ms"] == 0.0 and hops["sequential"]["apache_basic"]["mean_ms"] == 3.768
    burst = json.loads((tmp_path / "burst.json").read_text())
    assert (burst["users"], burst["ready"], burst["failed"], burst["jobs_left"]) == (2, 1, 1, 0)


def test_count_delta_keeps_what_changed() -> None:
    assert bench.count_delta({"a": 1, "b": 2}, {"a": 4, "b": 2, "c": 1}) == {"a": 3, "c": 1}
