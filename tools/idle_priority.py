#!/usr/bin/env python3
"""Run a command at the lowest CPU priority the host allows.

`make test` runs the quick tier (lint, unit tests, syntax) beside Molecule.
``nice -n 19`` alone does not keep it out of the containers' way: the kernel
weighs a nice value only against the processes of the same scheduling group.
The containers run in Docker's CPU cgroup; the quick tier runs in the root
cgroup's session autogroup (cgroup v1) or in the user's slice (cgroup v2),
and the kernel splits the CPU between those groups equally, whatever the
nice values inside them. Measured on a 2-core CI host: the niced quick tier
took 600 s of CPU in the first 12 min of a run, while Molecule's converge
waited for cores.

So the command goes into a CPU group of its own with the smallest weight,
where the host lets it:

* cgroup v2 with the cpu controller on at the root: ``<root>/hpcgw-idle``,
  ``cpu.weight`` 1 (of the default 100);
* cgroup v1 with a cpu hierarchy: ``<root>/cpu/hpcgw-idle``, ``cpu.shares``
  2 (of 1024);
* otherwise a session of its own (its own autogroup, where the kernel has
  them) with the autogroup's nice at 19;

and nice 19 in every case. Nothing is required: what the host refuses (not
root, a read-only cgroupfs inside a container) is skipped and said on
stderr, and the command runs anyway. The group is left in place (empty once
the command ends) and reused by the next run.

Usage: idle_priority.py COMMAND [ARG...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

GROUP = "hpcgw-idle"
CGROUP_ROOT = Path("/sys/fs/cgroup")
AUTOGROUP = Path("/proc/self/autogroup")
NICE = 19


def cpu_group(root: Path = CGROUP_ROOT) -> tuple[Path, str, str] | None:
    """The group to create under this host's cgroupfs, its weight file and
    the lowest weight, or None when there is no CPU controller to use."""
    controllers = root / "cgroup.controllers"
    if controllers.is_file():  # cgroup v2 (unified)
        subtree = root / "cgroup.subtree_control"
        if subtree.is_file() and "cpu" in subtree.read_text().split():
            return root / GROUP, "cpu.weight", "1"
        return None
    if (root / "cpu" / "cpu.shares").is_file():  # cgroup v1
        return root / "cpu" / GROUP, "cpu.shares", "2"
    return None


def join_cpu_group(root: Path = CGROUP_ROOT, pid: int | None = None) -> str:
    """Move `pid` (this process) into the low-weight group; what was done."""
    group = cpu_group(root)
    if group is None:
        raise OSError(f"no CPU controller under {root}")
    path, weight_file, weight = group
    path.mkdir(exist_ok=True)
    (path / weight_file).write_text(weight)
    (path / "cgroup.procs").write_text(str(os.getpid() if pid is None else pid))
    return f"cgroup {path} ({weight_file} {weight})"


def own_autogroup(autogroup: Path = AUTOGROUP) -> str:
    """A session of its own, so an autogroup of its own, at nice 19."""
    if os.getpid() != os.getpgrp():
        os.setsid()
    autogroup.write_text(str(NICE))
    return f"autogroup nice {NICE}"


def lower_priority(root: Path = CGROUP_ROOT, autogroup: Path = AUTOGROUP) -> list[str]:
    """Apply what the host allows; one line per step, applied or refused."""
    said: list[str] = []
    try:
        said.append(join_cpu_group(root))
    except OSError as error:
        said.append(f"no CPU group of its own ({error})")
        try:
            said.append(own_autogroup(autogroup))
        except OSError as autogroup_error:
            said.append(f"no autogroup of its own ({autogroup_error})")
    current = os.nice(0)
    if current < NICE:
        os.nice(NICE - current)
    said.append(f"nice {os.nice(0)}")
    return said


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    print("idle_priority: " + "; ".join(lower_priority()), file=sys.stderr)
    os.execvp(argv[0], argv)
    return 127  # not reached: execvp replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
