"""The shipped spawn benchmark (also `make bench-spawn` against the demo):
click-to-ready of the preset, several rounds, median recorded as an artifact.
It asserts that every round became ready, not a time: the numbers are for
the report (artifacts/bench/spawn.json, and the test's output)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from testinfra.host import Host

ROUNDS = int(os.environ.get("HPCGW_BENCH_ROUNDS", "5"))


def test_spawn_click_to_ready_benchmark(controller: Host) -> None:
    out = controller.check_output(
        "python3 /usr/local/bin/spawnclient.py bench https://hpcgw-gw/jupyter alice alice-test-pw "
        f"{ROUNDS} '{{\"profile\": \"debug-1c\"}}'")
    result = json.loads(out.strip().splitlines()[-1])
    assert "error" not in result, result
    assert len(result["seconds"]) == ROUNDS
    project = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."))
    artifacts = project / "artifacts" / "bench"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "spawn.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nspawn click-to-ready over {ROUNDS} rounds: median {result['median']} s, "
          f"min {result['min']} s, max {result['max']} s: {result['seconds']}")
