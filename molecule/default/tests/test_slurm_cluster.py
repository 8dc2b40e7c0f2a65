"""The dockerized SLURM cluster works, and the gateway is a submit host."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Callable

import pytest
from testinfra.host import Host

from conftest import COMPUTE, CONTROLLER, GATEWAY, playbook_env, wait_for_content, wait_job_gone, wait_until


def test_every_compute_node_is_idle(gateway: Host) -> None:
    # Nodes register a few seconds after slurmd starts; give them a minute.
    def states() -> dict[str, str]:
        out = gateway.check_output("sinfo -h -N -p debug -o '%N %t'")
        return dict(line.split() for line in out.splitlines())

    wait_until(lambda: all(states().get(n) == "idle" for n in COMPUTE), 60, interval=2)
    assert states() == {n: "idle" for n in COMPUTE}


def test_partitions_carry_their_limits(gateway: Host) -> None:
    out = gateway.check_output("sinfo -h -o '%P %l'")
    limits = dict(line.split() for line in out.splitlines())
    assert limits == {"debug*": "30:00", "batch": "1-00:00:00"}


def test_gateway_has_the_controllers_slurm_conf(gateway: Host, controller: Host) -> None:
    gw_conf = gateway.file("/etc/slurm/slurm.conf")
    assert gw_conf.mode == 0o644
    assert gw_conf.content_string == controller.file("/etc/slurm/slurm.conf").content_string


@pytest.mark.parametrize("name", [CONTROLLER, *COMPUTE, GATEWAY])
def test_munge_key_is_shared_and_private(node: Callable[[str], Host], name: str) -> None:
    key = node(name).file("/etc/munge/munge.key")
    assert key.user == "munge"
    assert key.mode == 0o400
    assert key.sha256sum == node(CONTROLLER).file("/etc/munge/munge.key").sha256sum


@pytest.mark.parametrize("target", [CONTROLLER, *COMPUTE])
def test_munge_credential_decodes_across_hosts(
    gateway: Host, node: Callable[[str], Host], target: str
) -> None:
    payload = uuid.uuid4().hex
    cred = gateway.check_output(f"munge -s {payload}")
    out = node(target).check_output(f"echo '{cred}' | unmunge")
    assert "STATUS:          Success (0)" in out
    assert out.rstrip().endswith(payload)


def test_unmunge_rejects_a_foreign_key(node: Callable[[str], Host]) -> None:
    # A credential encoded with another key must not decode: proves the
    # shared key, not an accident, makes the previous test pass.
    gw = node(GATEWAY)
    d = "/run/hpcgw-foreign-munge"
    cred = gw.check_output(
        f"rm -rf {d} && install -d -o munge -g munge -m 0700 {d} && "
        f"dd if=/dev/urandom of={d}/key bs=1024 count=1 2>/dev/null && "
        f"chown munge: {d}/key && chmod 0400 {d}/key && "
        f"runuser -u munge -- munged --force --key-file={d}/key --socket={d}/sock "
        f"--pid-file={d}/pid --log-file={d}/log --seed-file={d}/seed && "
        f"munge --socket={d}/sock -n; kill $(cat {d}/pid); rm -rf {d}"
    )
    assert cred.startswith("MUNGE:")
    result = node(CONTROLLER).run(f"echo '{cred}' | unmunge")
    assert result.rc != 0
    assert "Invalid credential" in result.stdout + result.stderr


def test_a_rerun_restarts_a_munged_older_than_its_key(node: Callable[[str], Host]) -> None:
    """A run cut short after writing the key loses its restart handler: munged
    keeps the old key and the node's credentials are refused cluster-wide. A
    re-run of the munge role notices (munged older than the key) and restarts it."""
    compute = node(COMPUTE[1])
    compute.check_output("systemctl restart munge && sleep 2 && touch /etc/munge/munge.key")
    before = compute.check_output("systemctl show -p MainPID --value munge")
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    env = playbook_env()
    run = subprocess.run(
        ["ansible-playbook", "-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent), "--tags", "munge",
         "--limit", COMPUTE[1], str(scenario / "converge.yml")],
        capture_output=True, text=True, env=env, check=False, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert compute.check_output("systemctl show -p MainPID --value munge") != before
    ages = compute.check_output(
        "echo $(ps -o etimes= -p $(systemctl show -p MainPID --value munge)) "
        "$(( $(date +%s) - $(stat -c %Y /etc/munge/munge.key) ))").split()
    assert int(ages[0]) <= int(ages[1]), ages


def test_job_from_gateway_runs_on_a_compute_node_as_the_user(gateway: Host) -> None:
    tag = uuid.uuid4().hex[:8]
    out_file = f"/home/alice/job-{tag}.out"
    job_id = gateway.check_output(
        f"runuser -u alice -- sbatch --parsable -p debug -t 1 -J rig-{tag} "
        f"--chdir=/home/alice -o /home/alice/job-{tag}.slurm "
        f"--wrap 'echo $(hostname -s) $(id -un) $SLURM_JOB_ID > {out_file}'"
    ).strip()
    assert job_id.isdigit()
    content = wait_for_content(gateway, out_file)
    host, user, seen_id = content.split()
    assert host in COMPUTE
    assert user == "alice"
    assert seen_id == job_id
    assert gateway.file(out_file).user == "alice"
    # Gone from the queue before the next test counts alice's jobs.
    assert wait_job_gone(gateway, job_id), f"job {job_id} is still in squeue"
