"""Job ids and scheduler command lines of the gateway's batch spawners.

The attacker controls what a submit command prints on the login node (their
own shell start-up files run before it); batchspawner 1.3.0 then formats
that text into the next status/cancel command, which the hub account's
shell runs.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytest
from jinja2 import Template

from fakes import Log, Status
from hpcgw_batch_core import (
    GuardedBatchCommands,
    JobIdError,
    check_job_id,
    command_line,
    failed_query_is_gone,
    job_server_name,
    parse_job_id,
    sge_job_state,
    template_vars,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEDULERS = ("slurm", "torque", "pbs", "sge", "lsf", "condor")
INJECTION = "1'; id >/tmp/x; echo '"
# batchspawner 1.3.0's default query/cancel commands (the ones a job id reaches).
QUERY = {
    "slurm": "squeue -h -j {job_id} -o '%T %B'",
    "torque": "qstat -x {job_id}",
    "pbs": "qstat -fx {job_id}",
    "lsf": 'bjobs -a -noheader -o "STAT EXEC_HOST" {job_id}',
    "condor": 'condor_q {job_id} -format "%s, " JobStatus -format "%s" RemoteHost -format "\n" True',
}


@pytest.mark.parametrize(("scheduler", "output", "job_id"), [
    ("slurm", "4711", "4711"),
    ("slurm", "4711;hpc2", "4711"),
    ("slurm", "sbatch: warning: lowering --mem\n4711", "4711"),
    ("slurm", "Submitted batch job 4711", "4711"),
    ("slurm", "Submitted batch job 4711 on cluster hpc2", "4711"),
    ("torque", "4711.torque01.example.org\n", "4711.torque01.example.org"),
    ("pbs", "4711.pbs-server", "4711.pbs-server"),
    ("pbs", "4711", "4711"),
    ("sge", 'Your job 4711 ("spawner-jupyterhub") has been submitted', "4711"),
    ("sge", "4711", "4711"),
    ("lsf", "Job <4711> is submitted to default queue <normal>.", "4711"),
    ("lsf", "Job <4711> is submitted to queue <gpu_long>.", "4711"),
    ("condor", "Submitting job(s).\n1 job(s) submitted to cluster 4711.\n", "4711"),
])
def test_real_submit_outputs_are_accepted(scheduler: str, output: str, job_id: str) -> None:
    assert parse_job_id(scheduler, output) == job_id


HOSTILE = [
    INJECTION,
    "4711; id >/tmp/x",
    "4711 && id",
    "$(id >/tmp/x)",
    "4711`id`",
    "4711\nid >/tmp/x",
    "4711|id",
    "",
]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("output", HOSTILE)
def test_hostile_submit_output_is_refused(scheduler: str, output: str) -> None:
    with pytest.raises(JobIdError, match="the scheduler's submit output is not a job id: ") as info:
        parse_job_id(scheduler, output)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("scheduler", "output"), [
    ("slurm", "4711;hpc2; id"),
    ("torque", "4711.server;id"),
    ("pbs", "4711.server name"),
    ("sge", 'Your job 4711 ("x") has been submitted; id >/tmp/x'),
    ("lsf", "Job <4711;id> is submitted to queue <normal>."),
    ("lsf", "Job <4711> is submitted to queue <normal>.; id"),
    ("condor", "1 job(s) submitted to cluster 4711; id."),
])
def test_near_miss_outputs_are_refused(scheduler: str, output: str) -> None:
    with pytest.raises(JobIdError, match="not a job id"):
        parse_job_id(scheduler, output)


def test_refusal_message_is_short_and_printable() -> None:
    with pytest.raises(JobIdError) as info:
        parse_job_id("slurm", "\x1b[31m" + "A" * 500)
    message = str(info.value)
    assert len(message) < 150 and "\x1b" not in message and message.endswith("...'")


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("job_id", [INJECTION, "4711 ", "-1", "4711\n", "1" * 300, ""])
def test_hostile_stored_job_id_is_refused(scheduler: str, job_id: str) -> None:
    with pytest.raises(JobIdError, match=f"not a {scheduler} job id"):
        check_job_id(scheduler, job_id)


def test_unknown_scheduler_is_refused() -> None:
    with pytest.raises(JobIdError, match="unknown scheduler"):
        parse_job_id("moab", "4711")


@pytest.mark.parametrize(("scheduler", "template"), sorted(QUERY.items()))
def test_ssh_command_is_quoted_after_formatting(scheduler: str, template: str) -> None:
    job_id = check_job_id(scheduler, "4711.torque01.example.org" if scheduler in ("torque", "pbs") else "4711")
    line = command_line("sudo -n -u {username} /usr/bin/ssh login1", template,
                        {"username": "alice", "job_id": job_id}, remote=True)
    words = shlex.split(line)
    # the hub's shell hands ssh the formatted command as one argument...
    assert words[:6] == ["sudo", "-n", "-u", "alice", "/usr/bin/ssh", "login1"] and len(words) == 7
    # ...which the login node's shell parses exactly as the local command would
    assert words[6] == template.format(job_id=job_id)
    assert shlex.split(words[6]) == shlex.split(template.format(job_id=job_id))


@pytest.mark.parametrize("remote", [False, True])
def test_hostile_values_stay_one_argument(remote: bool) -> None:
    values = {"username": "al ice;id", "job_id": INJECTION}
    line = command_line("sudo -n -u {username} /usr/bin/ssh login1" if remote else "sudo -n -u {username}",
                        "scancel {job_id}", values, remote=remote)
    words = shlex.split(line)
    assert words[3] == "al ice;id"
    command = shlex.split(words[-1]) if remote else words[4:]
    assert command == ["scancel", INJECTION]


@pytest.mark.parametrize("remote", [False, True])
def test_real_shells_see_the_value_as_one_argument(tmp_path: Path, remote: bool) -> None:
    # /bin/sh -c stands for ssh: it hands its one argument to a second shell.
    marker = tmp_path / "x"
    value = f"1'; touch {marker}; echo '$(touch {marker})"
    line = command_line("/bin/sh -c" if remote else "", "printf '[%s]' {job_id}", {"job_id": value}, remote=remote)
    out = subprocess.run(line, shell=True, capture_output=True, text=True, check=True).stdout
    assert out == f"[{value}]"
    assert not marker.exists()


def test_empty_values_stay_empty() -> None:
    assert command_line("{prefix}", "qstat -xml {options}", {"prefix": "", "options": ""}, remote=False) == "qstat -xml "


class FakeSlurmSpawner:
    """The parts of batchspawner's SlurmSpawner the mixin calls."""

    exec_prefix = "sudo -n -u {username} /usr/bin/ssh login1"
    batch_submit_cmd = "sbatch --parsable"
    batch_query_cmd = QUERY["slurm"]
    batch_cancel_cmd = "scancel {job_id}"
    batch_script = (ROOT / "roles" / "spawn_profiles" / "files" / "batch" / "slurm.sh.j2").read_text(encoding="utf-8")

    def __init__(self, output: str, user_options: Optional[dict[str, Any]] = None) -> None:
        self.hpcgw_submit = "ssh"
        self.output = output
        # what wrapspawner's trait link would hand a child without the fix
        self.user_options = user_options or {}
        self.commands: list[str] = []
        self.script = ""
        self.job_id = ""
        self.job_status = ""
        self.log = Log()

    def get_req_subvars(self) -> dict[str, str]:
        return {"username": "alice", "homedir": "/home/alice", "keepvars": "JUPYTERHUB_API_TOKEN",
                "partition": "debug", "queue": "debug", "runtime": "00:10:00", "memory": "1G",
                "nprocs": "1", "ngpus": "0", "account": "proj1", "cluster": "", "prologue": "",
                "epilogue": ""}

    def cmd_formatted_for_batch(self) -> str:
        return "batchspawner-singleuser jupyterhub-singleuser"

    def get_env(self) -> dict[str, str]:
        return {}

    async def _get_batch_script(self, **subvars: Any) -> str:
        return Template(self.batch_script).render(**subvars)

    async def run_command(self, cmd: str, input: Optional[str] = None, env: Any = None) -> str:
        self.commands.append(cmd)
        if input is not None:
            self.script = input
            return self.output
        return "RUNNING c1"

    def state_isrunning(self) -> bool:
        return self.job_status.startswith("RUNNING")

    def state_ispending(self) -> bool:
        return self.job_status.startswith("PENDING")

    def state_isunknown(self) -> bool:
        return False


class GuardedSlurm(GuardedBatchCommands, FakeSlurmSpawner):
    job_scheduler = "slurm"
    job_states = Status


def test_hostile_submit_output_fails_the_spawn_and_runs_nothing_more() -> None:
    spawner = GuardedSlurm(INJECTION)
    with pytest.raises(RuntimeError, match="the scheduler's submit output is not a job id: ") as info:
        asyncio.run(spawner.submit_batch_script())
    assert "1'; id >/tmp/x; echo '" in str(info.value)
    assert spawner.job_id == ""
    assert len(spawner.commands) == 1
    # and nothing afterwards reaches a shell with it
    assert asyncio.run(spawner.query_job_status()) is Status.NOTFOUND
    asyncio.run(spawner.cancel_batch_job())
    assert len(spawner.commands) == 1


def test_hostile_restored_job_id_reaches_no_shell() -> None:
    spawner = GuardedSlurm("4711")
    spawner.job_id = INJECTION  # e.g. state saved by an unguarded spawner before an upgrade
    assert asyncio.run(spawner.query_job_status()) is Status.NOTFOUND
    asyncio.run(spawner.cancel_batch_job())
    assert spawner.commands == []
    assert any("No scheduler command for this job" in line for line in spawner.log.lines)


def test_good_job_goes_through_ssh_quoted() -> None:
    spawner = GuardedSlurm("4711;hpc2")
    assert asyncio.run(spawner.submit_batch_script()) == "4711"
    assert asyncio.run(spawner.query_job_status()) is Status.RUNNING
    asyncio.run(spawner.cancel_batch_job())
    remote = [shlex.split(cmd)[6] for cmd in spawner.commands]
    assert remote == ["sbatch --parsable", "squeue -h -j 4711 -o '%T %B'", "scancel 4711"]


@pytest.mark.parametrize("user_options", [
    {"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": ""},
    {"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": "other", "prologue": "id"},
])
def test_user_options_never_reach_the_batch_script(user_options: dict[str, Any]) -> None:
    spawner = GuardedSlurm("4711", user_options=user_options)
    asyncio.run(spawner.submit_batch_script())
    assert "#SBATCH --account=proj1\n" in spawner.script
    assert "other" not in spawner.script and "\nid\n" not in spawner.script


def test_template_vars_are_the_spawners_values_and_cmd() -> None:
    got = template_vars({"account": "proj1", "queue": "debug"}, "batchspawner-singleuser")
    assert got == {"account": "proj1", "queue": "debug", "cmd": "batchspawner-singleuser"}


@pytest.mark.parametrize(("name", "expected"), [
    ("", ""),
    ("debug", "debug"),
    ("batch-2", "batch-2"),
    # an older hub's name: nothing the unquoted batch script line would read as syntax
    ("my server;id", "my_server_id"),
    ("x" * 40, "x" * 30),
])
def test_the_job_name_carries_a_safe_server_name(name: str, expected: str) -> None:
    assert job_server_name(name) == expected


class FailingQuery(GuardedSlurm):
    """The status command fails with the given error (stderr, or an exception)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__("4711")
        self.job_id = "4711"
        self.error = error

    async def run_command(self, cmd: str, input: Optional[str] = None, env: Any = None) -> str:
        raise self.error


@pytest.mark.parametrize(("error", "status"), [
    (RuntimeError("slurm_load_jobs error: Invalid job id specified"), Status.NOTFOUND),
    (RuntimeError("slurm_load_jobs error: Unable to contact slurm controller (connect failure)"), Status.UNKNOWN),
    (RuntimeError("slurm_load_jobs error: Zero Bytes were transmitted or received"), Status.UNKNOWN),
    (RuntimeError("ssh: connect to host login1 port 22: Connection refused"), Status.UNKNOWN),
    (RuntimeError(""), Status.UNKNOWN),
    (OSError("sudo: unable to fork"), Status.UNKNOWN),
])
def test_a_failed_query_means_gone_only_when_the_scheduler_says_so(error: BaseException, status: Status) -> None:
    """batchspawner#315: any squeue failure made the hub stop the server."""
    assert asyncio.run(FailingQuery(error).query_job_status()) is status


@pytest.mark.parametrize(("scheduler", "error", "gone"), [
    ("slurm", "slurm_load_jobs error: Invalid job id specified", True),
    ("torque", "qstat: Unknown Job Id 4711.server", True),
    ("pbs", "qstat: 4711.server Job has finished, use -x or -H", True),
    ("lsf", "Job <4711> is not found", True),
    ("sge", "error: commlib error: got select error (Connection refused)", False),
    ("condor", "-- Failed to fetch ads from: <10.0.0.1:9618>", False),
    ("slurm", "slurm_load_jobs error: Socket timed out on send/recv operation", False),
])
def test_gone_errors_per_scheduler(scheduler: str, error: str, gone: bool) -> None:
    assert failed_query_is_gone(scheduler, error) is gone


class CancelledQuery(GuardedSlurm):
    """run_command as batchspawner's: a cancel during the command becomes RuntimeError."""

    def __init__(self) -> None:
        super().__init__("4711")
        self.job_id = "4711"

    async def run_command(self, cmd: str, input: Optional[str] = None, env: Any = None) -> str:
        try:
            await asyncio.sleep(10)
        except BaseException:  # noqa: BLE001  (batchspawner 1.3.0 has a bare except here)
            raise RuntimeError(f"{cmd} exit status -9: ") from None
        return "RUNNING c1"


def test_a_stop_during_a_status_query_cancels_the_spawn() -> None:
    """A pending spawn stopped by its user: the query must not turn the
    cancellation into "status unknown" and keep the spawn waiting."""

    async def stop_while_querying() -> bool:
        task = asyncio.ensure_future(CancelledQuery().query_job_status())
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(stop_while_querying()) is True


# qstat -xml as Grid Engine 8.1.9 prints it: a running job in queue_info, a pending one in job_info.
QSTAT_XML = """<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>12</JB_job_number>
      <JB_name>jupyterhub-alice</JB_name>
      <JB_owner>alice</JB_owner>
      <state>r</state>
      <queue_name>jupyter@hpcgw-c2</queue_name>
      <slots>1</slots>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>13</JB_job_number>
      <state>qw</state>
      <queue_name></queue_name>
      <slots>2</slots>
    </job_list>
  </job_info>
</job_info>
"""


@pytest.mark.parametrize(("output", "job_id", "view"), [
    (QSTAT_XML, "12", "RUNNING hpcgw-c2"),
    (QSTAT_XML, "13", "PENDING"),
    (QSTAT_XML, "1", ""),  # not listed: gone
    (QSTAT_XML, "", ""),
    ("error: commlib error: got select error (Connection refused)", "12", ""),  # no XML: no view
    ("", "12", ""),
])
def test_sge_status_reads_as_state_and_host_for_the_progress_page(output: str, job_id: str, view: str) -> None:
    assert sge_job_state(output, job_id) == view
