"""The single-user environment on the compute nodes works from a batch job."""

from __future__ import annotations

import json
import uuid
from typing import Callable

import pytest
from testinfra.host import Host

from conftest import COMPUTE, wait_for_content, wait_job_gone

PREFIX = "/opt/hpcgw/notebook"


@pytest.mark.parametrize("name", COMPUTE)
def test_singleuser_commands_match_the_pinned_hub(node: Callable[[str], Host], name: str) -> None:
    host = node(name)
    assert host.check_output(f"{PREFIX}/bin/jupyterhub-singleuser --version").strip() == "6.1.1"
    assert host.file(f"{PREFIX}/bin/batchspawner-singleuser").is_file
    assert host.file(f"{PREFIX}/bin/batchspawner-singleuser").mode & 0o111


def test_extra_kernel_is_registered(node: Callable[[str], Host]) -> None:
    specs = json.loads(node(COMPUTE[1]).check_output(f"{PREFIX}/bin/jupyter kernelspec list --json"))
    kernels = specs["kernelspecs"]
    assert {"python3", "site-python"} <= set(kernels)
    assert kernels["site-python"]["spec"]["env"] == {"HPCGW_KERNEL": "site-python"}


def test_environment_runs_in_a_batch_job(gateway: Host) -> None:
    tag = uuid.uuid4().hex[:8]
    out_file = f"/home/bob/nbenv-{tag}.out"
    code = "import jupyterlab, batchspawner, ipykernel, socket; print(socket.gethostname(), jupyterlab.__version__)"
    job_id = gateway.check_output(
        f"runuser -u bob -- sbatch --parsable -p debug -t 2 --chdir=/home/bob "
        f"-o {out_file} --wrap '{PREFIX}/bin/python -c \"{code}\"'"
    ).strip()
    assert job_id.isdigit()
    content = wait_for_content(gateway, out_file)
    host, version = content.split()
    assert host in COMPUTE
    assert version == "4.6.6"
    # Gone from the queue before the next test counts bob's jobs.
    assert wait_job_gone(gateway, job_id), f"job {job_id} is still in squeue"


def test_lab_news_announcements_are_disabled(node: Callable[[str], Host]) -> None:
    """Compute nodes do not poll jupyter.org: the extension is off for every user."""
    out = node("hpcgw-c1").run("/opt/hpcgw/notebook/bin/jupyter labextension list 2>&1")
    assert out.rc == 0, out.stdout
    disabled = out.stdout.split("Disabled extensions:", 1)
    assert len(disabled) == 2, out.stdout
    assert "@jupyterlab/apputils-extension:announcements" in disabled[1], out.stdout
