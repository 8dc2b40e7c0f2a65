"""The batch-script templates render to the reviewed golden files, carry the
no-requeue setting, and never hold the API token."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_render import CONTEXTS, SCHEDULER_FILES, render
from golden_files import assert_golden

GOLDEN = Path(__file__).parent / "golden" / "batch"
NO_REQUEUE = {
    "slurm": "#SBATCH --no-requeue",
    "torque": "#PBS -r n",
    "pbs": "#PBS -r n",
    "sge": "#$ -r n",
    "lsf": "#BSUB -rn",
    "condor": "max_retries = 0",
}


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@pytest.mark.parametrize("scheduler", sorted(SCHEDULER_FILES))
def test_matches_golden(scheduler: str, context: str) -> None:
    assert_golden(GOLDEN / f"{scheduler}-{context}.txt", render(scheduler, CONTEXTS[context]))


@pytest.mark.parametrize("scheduler", sorted(SCHEDULER_FILES))
def test_no_requeue_and_no_token(scheduler: str) -> None:
    context = dict(CONTEXTS["full"], keepvars="JUPYTERHUB_API_TOKEN")
    rendered = render(scheduler, context)
    assert NO_REQUEUE[scheduler] in rendered
    # Only the variable's name may appear (in the export list), never a value.
    assert "JUPYTERHUB_API_TOKEN=" not in rendered


@pytest.mark.parametrize("scheduler", sorted(SCHEDULER_FILES))
def test_optional_lines_follow_the_choice(scheduler: str) -> None:
    full = render(scheduler, CONTEXTS["full"])
    minimal = render(scheduler, CONTEXTS["minimal"])
    assert "proj1" in full and "proj1" not in minimal
    assert "module load python" in full


JOB_NAME = {
    "slurm": "#SBATCH --job-name=",
    "torque": "#PBS -N ",
    "pbs": "#PBS -N ",
    "sge": "#$ -N ",
    "lsf": "#BSUB -J ",
}


@pytest.mark.parametrize("scheduler", sorted(JOB_NAME))
def test_the_job_name_says_which_server_it_is(scheduler: str) -> None:
    """Operators tell a user's servers apart in the queue: a named server's
    job is jupyterhub-<user>-<server>, the default server's jupyterhub-<user>."""
    named = render(scheduler, CONTEXTS["full"])
    default = render(scheduler, CONTEXTS["minimal"])
    assert f"{JOB_NAME[scheduler]}jupyterhub-alice-debug\n" in named
    assert f"{JOB_NAME[scheduler]}jupyterhub-bob\n" in default


def test_sge_takes_its_parallel_environment_from_the_data() -> None:
    """More than one core: -pe with the queue's parallel environment (from
    the cluster data, rendered into {parallel_environment}), never a fixed
    name; one core: no -pe at all (a queue without a PE still runs it)."""
    assert "#$ -pe mpi-4 4\n" in render("sge", CONTEXTS["full"])
    assert "#$ -pe smp 2\n" in render("sge", dict(CONTEXTS["full"], parallel_environment="smp", nprocs="2"))
    assert "-pe" not in render("sge", CONTEXTS["minimal"])
    assert "-pe" not in render("sge", dict(CONTEXTS["full"], nprocs="1"))
    # The queue's shell_start_mode may ignore the #! line: the shell is asked for.
    assert "#$ -S /bin/bash\n" in render("sge", CONTEXTS["minimal"])
