"""Render the batch-script templates as batchspawner does (Jinja2, its
substitution variables), for the golden-file tests."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, StrictUndefined

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "roles" / "spawn_profiles" / "files" / "batch"
SCHEDULER_FILES = {
    "slurm": "slurm.sh.j2",
    "torque": "torque.sh.j2",
    "pbs": "pbs.sh.j2",
    "sge": "sge.sh.j2",
    "lsf": "lsf.sh.j2",
    "condor": "condor.sub.j2",
}
CONTEXTS: dict[str, dict[str, str]] = {
    "full": {
        "username": "alice", "servername": "debug", "homedir": "/home/alice",
        "keepvars": "PATH,LANG,JUPYTERHUB_API_TOKEN,JUPYTERHUB_API_URL",
        "partition": "gpu", "queue": "gpu", "runtime": "01:30:00", "memory": "8G",
        "nprocs": "4", "ngpus": "1", "account": "proj1", "gateway_tag": "hpcgw-gw",
        "parallel_environment": "mpi-4",
        "prologue": "module load python\nexport OMP_NUM_THREADS=4", "epilogue": "",
        "cmd": "/opt/hpcgw/notebook/bin/batchspawner-singleuser /opt/hpcgw/notebook/bin/jupyterhub-singleuser",
    },
    "minimal": {
        "username": "bob", "servername": "", "homedir": "/home/bob", "keepvars": "JUPYTERHUB_API_TOKEN",
        "partition": "debug", "queue": "debug", "runtime": "00:10:00", "memory": "1G",
        "nprocs": "1", "ngpus": "0", "account": "", "gateway_tag": "", "prologue": "", "epilogue": "",
        "parallel_environment": "",
        "cmd": "batchspawner-singleuser jupyterhub-singleuser",
    },
}


def render(scheduler: str, context: dict[str, str]) -> str:
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    template = env.from_string((TEMPLATES / SCHEDULER_FILES[scheduler]).read_text())
    return template.render(**context)
