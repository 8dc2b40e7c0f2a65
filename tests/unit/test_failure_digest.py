"""failure_digest: the last lines of a failed Molecule run name the failing step, test or task."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import failure_digest

# As Molecule prints a playbook's output: colours, and each line framed by "  │ ".
FRAME = "  \x1b[2m\x1b[33m│\x1b[0m "
MOLECULE_LOG = f"""\
{FRAME}TASK [jupyterhub : Hub answers] ************************************************
{FRAME}\x1b[0;31mfatal: [hpcgw-gw]: FAILED! => {{"msg": "Status code was -1: Connection refused"}}\x1b[0m
{FRAME}PLAY RECAP *********************************************************************
{FRAME}\x1b[32mhpcgw-c1                   : ok=61   changed=0    unreachable=0    failed=0    skipped=20\x1b[0m
{FRAME}\x1b[31mhpcgw-gw                   : ok=140  changed=3    unreachable=0    failed=1    skipped=31\x1b[0m
{FRAME}\x1b[31mhpcgw-ctl                  : ok=7    changed=0    unreachable=1    failed=0    skipped=0\x1b[0m
\x1b[32mdefault\x1b[0m ➜ \x1b[33mconverge\x1b[0m: \x1b[31mExecuted: Failed\x1b[0m \x1b[2m(Ansible playbook failed)\x1b[0m
\x1b[32mdefault\x1b[0m ➜ \x1b[33mdestroy\x1b[0m: \x1b[32mExecuted: Successful\x1b[0m
"""


def _junit_of_a_real_pytest_run(tmp_path: Path) -> Path:
    """Run pytest on one passing and one failing test; return its JUnit report."""
    (tmp_path / "test_sample.py").write_text(
        "def test_passes():\n    assert True\n\n"
        "def test_compares_jobs():\n    jobs = [['17', 'COMPLETING']]\n    assert jobs == []\n",
        encoding="utf-8")
    report = tmp_path / "report.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"--junitxml={report}", str(tmp_path / "test_sample.py")],
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    return report


def test_failed_verifier_test_is_named_with_its_assertion(tmp_path: Path) -> None:
    report = _junit_of_a_real_pytest_run(tmp_path)
    log = MOLECULE_LOG.replace("converge", "verify").replace("Ansible playbook failed", "Verifier tests failed")
    lines = failure_digest.digest("default", log, report)
    text = "\n".join(lines)
    assert "step verify: failed (Verifier tests failed)" in text
    assert "test failure: test_sample::test_compares_jobs" in text
    assert "COMPLETING" in text  # the compared values are shown
    assert "test_passes" not in text
    assert "fatal:" not in text  # tests found: the Ansible lines are not repeated


def test_failed_converge_shows_the_fatal_task_and_recap(tmp_path: Path) -> None:
    lines = failure_digest.digest("default", MOLECULE_LOG, tmp_path / "absent.xml")
    assert "step converge: failed (Ansible playbook failed)" in lines
    assert any(line.startswith("fatal: [hpcgw-gw]: FAILED!") for line in lines), lines
    assert any(line.startswith("hpcgw-gw") and "failed=1" in line for line in lines), lines
    assert any(line.startswith("hpcgw-ctl") and "unreachable=1" in line for line in lines), lines
    assert not any(line.startswith("hpcgw-c1") for line in lines), lines
    assert not any("\x1b" in line or "│" in line for line in lines)


def test_nothing_found_says_so() -> None:
    lines = failure_digest.digest("frontend", "INFO all good\n", None)
    assert lines[1:] == ["step: none reported as failed", "(no failed task or test found in the log)"]


def test_long_lines_are_cut() -> None:
    long = "fatal: [h]: FAILED! => " + "x" * 1000
    (line,) = failure_digest.ansible_failures(long)
    assert len(line) < 320 and line.endswith("[...]")


def test_command_line(tmp_path: Path) -> None:
    log = tmp_path / "default.log"
    log.write_text(MOLECULE_LOG, encoding="utf-8")
    tool = Path(failure_digest.__file__)
    run = subprocess.run([sys.executable, str(tool), "default", str(log), str(tmp_path / "none.xml")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0
    assert run.stdout.splitlines()[-1].startswith(f"full output: {log}")
    assert subprocess.run([sys.executable, str(tool)], capture_output=True, check=False).returncode == 2
