"""slurm.conf rendered from the test inventory matches the golden file."""

from __future__ import annotations

from pathlib import Path

from ansible_run import ROOT, load_vars, run_playbook
from golden_files import assert_golden

GOLDEN = Path(__file__).parent / "golden" / "slurm.conf"


def test_slurm_conf_matches_golden(tmp_path: Path) -> None:
    dest = tmp_path / "slurm.conf"
    host_vars = load_vars("inventories/demo/group_vars/all/slurm.yml")
    # Extra vars: inventory data must win over the role defaults the
    # playbook loads with vars_files, as it does over role defaults in a play.
    result = run_playbook(Path(__file__).parent / "playbooks" / "render_slurm_conf.yml", tmp_path,
                          {"render": {}}, dict(host_vars, render_dest=str(dest)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert_golden(GOLDEN, dest.read_text())


def test_golden_has_one_line_per_node_and_partition() -> None:
    lines = GOLDEN.read_text().splitlines()
    assert [l for l in lines if l.startswith("NodeName=")] == [
        "NodeName=hpcgw-c1 CPUs=16 RealMemory=16384 State=UNKNOWN",
        "NodeName=hpcgw-c2 CPUs=16 RealMemory=16384 State=UNKNOWN",
    ]
    assert [l for l in lines if l.startswith("PartitionName=")] == [
        "PartitionName=debug Nodes=hpcgw-c1,hpcgw-c2 Default=YES MaxTime=00:30:00 DefaultTime=00:10:00 State=UP",
        "PartitionName=batch Nodes=ALL MaxTime=1-00:00:00 DefaultTime=01:00:00 State=UP",
    ]
    assert "ProctrackType=proctrack/linuxproc" in lines
    assert ROOT.joinpath("roles/slurm_client/templates/slurm.conf.j2").exists()
