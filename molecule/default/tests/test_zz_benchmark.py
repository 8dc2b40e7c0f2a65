"""The shipped benchmarks (`make bench`, tools/bench.py) in their smoke
size, so that their code cannot rot: every part runs once against the
cluster (spawn, both floors, proxy hop, login, scheduler calls, memory).
It asserts that each part produced its numbers, not what they are:
benchmarks are not timed tests (the numbers are in artifacts/bench-smoke/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PARTS = ("memory", "hops", "login", "floor_sbatch", "floor_imports", "spawn", "scheduler", "burst")


def test_the_benchmarks_run() -> None:
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    out = project / "artifacts" / "bench-smoke"
    run = subprocess.run([sys.executable, str(project / "tools" / "bench.py"), "--smoke", "--out", str(out)],
                         capture_output=True, text=True, check=False, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    print("\n" + run.stdout)
    results = {part: json.loads((out / f"{part}.json").read_text()) for part in PARTS}
    assert results["spawn"]["n"] == 1 and results["spawn"]["p50"] > 0
    assert results["hops"]["apache_proxy_hub"]["failed"] == 0, results["hops"]
    assert results["hops"]["hub"]["rps"] > 0 and results["hops"]["proxy_hub"]["rps"] > 0
    assert results["memory"]["hub"] > 0 and results["memory"]["proxy"] > 0 and results["memory"]["apache"] > 0
    assert results["scheduler"], results["scheduler"]
    burst = results["burst"]
    assert (burst["ready"], burst["failed"], burst["jobs_left"]) == (burst["users"], 0, 0), burst
