"""Fixtures that reach each container of the scenario by name."""

from __future__ import annotations

import json
import os
import shlex
import time
from typing import Any, Callable

import pytest
import testinfra
from testinfra.host import Host

CONTROLLER = "hpcgw-ctl"
COMPUTE = ("hpcgw-c1", "hpcgw-c2")
GATEWAY = "hpcgw-gw"
BASE = "https://hpcgw-gw"
PASSWORDS = {"alice": "alice-test-pw", "bob": "bob-test-pw"}


def _host(name: str) -> Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)


@pytest.fixture(scope="session")
def node() -> Callable[[str], Host]:
    """node(name) -> testinfra host of that container."""
    cache: dict[str, Host] = {}

    def get(name: str) -> Host:
        if name not in cache:
            cache[name] = _host(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def gateway(node: Callable[[str], Host]) -> Host:
    return node(GATEWAY)


@pytest.fixture(scope="session")
def controller(node: Callable[[str], Host]) -> Host:
    return node(CONTROLLER)


def wait_for_content(host: Host, path: str, seconds: int = 120) -> str:
    """Stripped content of a file a batch job writes, once it is non-empty."""
    for _ in range(seconds):
        f = host.file(path)
        if f.exists and f.content_string.strip():
            return f.content_string.strip()
        time.sleep(1)
    return ""


def user_jobs(host: Host, user: str) -> list[list[str]]:
    """The user's queued/running jobs as [job id, state, node list, partition]."""
    out = host.check_output(f"squeue -h -u {user} -o '%i %T %N %P'")
    return [line.split() for line in out.splitlines() if line.strip()]


# A cancelled or finished job stays in squeue (COMPLETING) until its processes
# are gone: slurmd sends SIGTERM, then SIGKILL after KillWait (30 s by default),
# so a server shutting down its kernels can legitimately take that long.
JOB_GONE_SECONDS = 90


def wait_no_jobs(host: Host, user: str, seconds: int = JOB_GONE_SECONDS) -> list[list[str]]:
    """The user's jobs once none is left, or what is left after `seconds`."""
    for _ in range(seconds):
        jobs = user_jobs(host, user)
        if not jobs:
            return jobs
        time.sleep(1)
    return user_jobs(host, user)


def wait_job_gone(host: Host, job_id: str, seconds: int = JOB_GONE_SECONDS) -> bool:
    """True once job `job_id` has left squeue (finished and cleaned up)."""
    for _ in range(seconds):
        if not host.check_output(f"squeue -h -j {job_id} -o %i 2>/dev/null || true").strip():
            return True
        time.sleep(1)
    return False


def completed_jobs(controller: Host, user: str) -> list[dict[str, str]]:
    """The user's finished jobs from slurmctld's job completion log, oldest first."""
    log = controller.file("/var/log/slurm/jobcomp.log")
    if not log.exists:
        return []
    return [dict(f.split("=", 1) for f in line.split() if "=" in f)
            for line in log.content_string.splitlines() if f"UserId={user}(" in line]


@pytest.fixture(scope="module")
def client(controller: Host) -> Callable[..., dict[str, Any]]:
    """client(command, user, *args): spawnclient.py on the controller, as a
    user's browser through Apache; returns its JSON result."""
    def call(command: str, user: str, *args: str) -> dict[str, Any]:
        cmd = controller.run(
            "python3 /usr/local/bin/spawnclient.py "
            + " ".join(shlex.quote(a) for a in (command, BASE, user, PASSWORDS[user], *args))
        )
        assert cmd.rc == 0, cmd.stderr
        return json.loads(cmd.stdout.strip().splitlines()[-1])

    return call
