#!/usr/bin/env python3
"""Say, in the last lines of a failed run, what failed.

CI keeps only the tail of a run's output, and a Molecule scenario ends with
its destroy step, so the failing task or test is far above the tail. `make
molecule` tees each scenario's output to artifacts/molecule/<scenario>.log
and points pytest's JUnit report at artifacts/molecule/<scenario>.xml; when a
scenario fails it calls this tool, which prints:

* the failing Molecule step (from Molecule's recap);
* each failed or errored test of the verifier, with the first lines of its
  message (from the JUnit report);
* the last Ansible `fatal:`/`failed:` lines and the PLAY RECAP lines with
  failures (from the log), when the failure was in a playbook step.

usage: failure_digest.py SCENARIO LOG [JUNIT_XML]
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from demo import RECAP_RE

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Molecule frames the output of the commands it runs: "  │ <line>".
FRAME = re.compile(r"^[ \t]*│ ?", re.M)
MESSAGE_LINES = 12
LINE_WIDTH = 300


@dataclass(frozen=True)
class TestFailure:
    """One failed or errored test case of a JUnit report."""

    name: str
    kind: str
    message: str


def plain(text: str) -> str:
    """Text without terminal colour codes and without Molecule's frame."""
    return FRAME.sub("", ANSI.sub("", text))


def failed_steps(log: str) -> list[str]:
    """Molecule steps reported as failed, e.g. 'verify: Executed: Failed (Verifier tests failed)'."""
    steps = []
    for line in plain(log).splitlines():
        match = re.search(r"➜\s+(\w+):\s+Executed: Failed(.*)$", line)
        if match:
            steps.append(f"{match.group(1)}: failed{match.group(2).rstrip()}")
    return list(dict.fromkeys(steps))


def ansible_failures(log: str, keep: int = 6) -> list[str]:
    """The last `fatal:`/`failed:` task lines and the recap lines that count failures."""
    lines = plain(log).splitlines()
    fatal = [line.strip() for line in lines if re.match(r"\s*(fatal|failed): \[", line)]
    recap = [line.strip() for line in lines
             if (m := RECAP_RE.match(line)) and int(m.group(4)) + int(m.group(5)) > 0]  # unreachable + failed
    return [shorten(line) for line in fatal[-keep:] + recap[-keep:]]


def junit_failures(report: Path) -> list[TestFailure]:
    """Failed and errored test cases of a JUnit XML report."""
    root = ET.parse(report).getroot()
    found = []
    for case in root.iter("testcase"):
        for kind in ("failure", "error"):
            element = case.find(kind)
            if element is None:
                continue
            name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
            text = element.get("message") or ""
            if element.text and element.text.strip():
                text = element.text
            found.append(TestFailure(name=name, kind=kind, message=text))
    return found


def shorten(line: str) -> str:
    return line if len(line) <= LINE_WIDTH else line[:LINE_WIDTH] + " [...]"


def message_tail(message: str) -> list[str]:
    """The last lines of a failure's traceback: the assertion and what it compared."""
    lines = [line for line in plain(message).splitlines() if line.strip()]
    return [shorten(line) for line in lines[-MESSAGE_LINES:]]


def digest(scenario: str, log_text: str, report: Path | None) -> list[str]:
    out = [f"===== what failed in Molecule scenario {scenario} ====="]
    out += [f"step {step}" for step in failed_steps(log_text)] or ["step: none reported as failed"]
    tests = junit_failures(report) if report is not None and report.is_file() else []
    for test in tests:
        out.append(f"test {test.kind}: {test.name}")
        out += [f"    {line}" for line in message_tail(test.message)]
    if not tests:
        out += ansible_failures(log_text) or ["(no failed task or test found in the log)"]
    return out


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    scenario, log = argv[1], Path(argv[2])
    report = Path(argv[3]) if len(argv) == 4 else None
    log_text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    print("\n".join(digest(scenario, log_text, report)))
    print(f"full output: {log}" + (f", test report: {report}" if report else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
