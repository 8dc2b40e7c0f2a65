from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import idle_priority

TOOL = Path(idle_priority.__file__)
# Runs lower_priority() in a child (it renices and may start a session:
# never the test process's own) against fake cgroupfs/autogroup paths.
CHILD = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {tools!r})
import idle_priority
said = idle_priority.lower_priority(Path({root!r}), Path({autogroup!r}))
print(json.dumps({{"said": said, "pid": os.getpid(), "sid": os.getsid(0)}}))
"""


def v2_root(tmp_path: Path, subtree: str) -> Path:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text(subtree)
    return root


def run_child(root: Path, autogroup: Path) -> dict[str, object]:
    code = CHILD.format(tools=str(TOOL.parent), root=str(root), autogroup=str(autogroup))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_cgroup_v2_with_the_cpu_controller(tmp_path: Path) -> None:
    root = v2_root(tmp_path, "cpu memory pids\n")
    assert idle_priority.cpu_group(root) == (root / "hpcgw-idle", "cpu.weight", "1")
    seen = run_child(root, tmp_path / "autogroup")
    assert seen["said"] == [f"cgroup {root / 'hpcgw-idle'} (cpu.weight 1)", "nice 19"]
    assert (root / "hpcgw-idle" / "cpu.weight").read_text() == "1"
    assert (root / "hpcgw-idle" / "cgroup.procs").read_text() == str(seen["pid"])
    assert not (tmp_path / "autogroup").exists()


def test_cgroup_v1_cpu_hierarchy(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.shares").write_text("1024\n")
    (root / "cpu" / "hpcgw-idle").mkdir()  # left by an earlier run: reused
    assert idle_priority.cpu_group(root) == (root / "cpu" / "hpcgw-idle", "cpu.shares", "2")
    seen = run_child(root, tmp_path / "autogroup")
    assert seen["said"][0] == f"cgroup {root / 'cpu' / 'hpcgw-idle'} (cpu.shares 2)"
    assert (root / "cpu" / "hpcgw-idle" / "cpu.shares").read_text() == "2"
    assert (root / "cpu" / "hpcgw-idle" / "cgroup.procs").read_text() == str(seen["pid"])


def test_without_a_cpu_controller_an_autogroup_of_its_own(tmp_path: Path) -> None:
    root = v2_root(tmp_path, "memory pids\n")  # cpu not delegated at the root
    assert idle_priority.cpu_group(root) is None
    autogroup = tmp_path / "autogroup"
    seen = run_child(root, autogroup)
    assert seen["said"] == [f"no CPU group of its own (no CPU controller under {root})", "autogroup nice 19", "nice 19"]
    assert autogroup.read_text() == "19"
    assert seen["sid"] == seen["pid"]  # its own session, so its own autogroup
    assert not (root / "hpcgw-idle").exists()


def test_refusals_are_said_and_the_nice_value_still_applies(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.shares").write_text("1024\n")
    (root / "cpu" / "hpcgw-idle").write_text("")  # a file where the group goes: mkdir fails
    seen = run_child(root, tmp_path / "no" / "autogroup")  # no autogroup support
    said = seen["said"]
    assert isinstance(said, list) and len(said) == 3
    assert said[0].startswith("no CPU group of its own (") and "hpcgw-idle" in said[0]
    assert said[1].startswith("no autogroup of its own (")
    assert said[2] == "nice 19"


def test_the_command_runs_at_nice_19_in_the_group_the_host_allows() -> None:
    """The real path on this host: whatever it allows, the command runs,
    at nice 19, and in the group the tool says it joined."""
    probe = "import os; print(os.nice(0)); print(open('/proc/self/cgroup').read())"
    run = subprocess.run([sys.executable, str(TOOL), sys.executable, "-c", probe],
                         capture_output=True, text=True, check=True)
    nice, _, cgroups = run.stdout.partition("\n")
    assert nice == "19", run
    assert run.stderr.startswith("idle_priority: "), run.stderr
    if run.stderr.startswith("idle_priority: cgroup "):
        cpu_lines = [line for line in cgroups.splitlines() if line and line.split(":")[1] in {"", "cpu", "cpu,cpuacct"}]
        assert any(line.endswith("/hpcgw-idle") for line in cpu_lines), cgroups


def test_a_failing_command_keeps_its_exit_status() -> None:
    run = subprocess.run([sys.executable, str(TOOL), sys.executable, "-c", "raise SystemExit(3)"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 3, run


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert idle_priority.main([]) == 2
    assert "Usage: idle_priority.py COMMAND" in capsys.readouterr().err
