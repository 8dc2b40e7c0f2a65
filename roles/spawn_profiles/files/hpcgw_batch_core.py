"""Scheduler commands of the batch spawners, safe for the shells they cross.

Pure Python (no batchspawner or JupyterHub import), unit-tested in
``tests/unit``; ``hpcgw_batch`` puts :class:`GuardedBatchCommands` in front of
each upstream batchspawner class.

batchspawner 1.3.0 builds every scheduler command as ``exec_prefix + " " +
command``, formats both with the spawner's values (str.format or Jinja2) and
runs the line with ``asyncio.create_subprocess_shell``: the hub account's
``/bin/sh`` parses all of it, and for a cluster reached over SSH the login
node's shell parses the command a second time. Upstream takes the job id from
the submit output unchecked (Torque, PBS, SGE, LSF) or loosely checked, and
merges the request's ``user_options`` into the batch script's variables.
Here instead:

* the job id must match its scheduler's strict format
  (:func:`parse_job_id`, :func:`check_job_id`) before any command sees it;
* every value put into a command is shell-quoted, and for SSH the formatted
  command is then quoted once more as ssh's single argument
  (:func:`command_line`);
* the batch script sees the spawner's ``req_*`` values and the server
  command only, never ``user_options`` (:func:`template_vars`);
* a SLURM job's pending reason and start estimate (the shared answer's,
  or the per-user query's ``-o '%T|%B|%S|%r'``) are kept beside
  ``job_status`` (``hpcgw_job_reason``, ``hpcgw_job_start``) for the
  progress page; ``job_status`` stays ``"STATE HOST"``, which
  batchspawner's patterns read;
* a status query that fails is "job gone" only when the scheduler says the
  job does not exist; any other failure (controller unreachable, an SSH
  error, a timeout: batchspawner#315) is UNKNOWN, so a server is neither
  killed nor forgotten while the scheduler cannot answer
  (:func:`failed_query_is_gone`);
* on a cluster with a shared status poller (``status_query: shared``, a
  SLURM cluster the gateway submits to itself) the status comes from the
  poller's one query for all the cluster's jobs (:mod:`hpcgw_status`), with
  the same verdicts: listed (classified as batchspawner does), gone, or
  unknown (kept). Every scheduler command is counted
  (:data:`hpcgw_status.COUNTER`) and timed (:func:`hpcgw_status.observe`:
  its duration, and whether it failed without a verdict).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
import xml.etree.ElementTree as ET
from typing import Any, Callable, ClassVar, Mapping, Optional

import hpcgw_status

# What each scheduler's status command says (on stderr, exit non-zero) about
# a job it no longer knows. SGE's qstat -xml lists every job (no id), and
# HTCondor's condor_q answers a gone job with empty output.
GONE_ERRORS: dict[str, re.Pattern[str]] = {
    "slurm": re.compile(r"Invalid job id specified"),
    "torque": re.compile(r"Unknown Job Id"),
    "pbs": re.compile(r"Unknown Job Id|Job has finished"),
    "lsf": re.compile(r"Job <[0-9]+> is not found"),
}


def cancelled() -> bool:
    """Is the running task being cancelled? batchspawner's run_command turns
    a cancellation (a pending spawn stopped by the user) into RuntimeError."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        return False
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling and cancelling())


def failed_query_is_gone(scheduler: str, error: str) -> bool:
    """A failed status query: did the scheduler say the job is gone?"""
    pattern = GONE_ERRORS.get(scheduler)
    return bool(pattern and pattern.search(error))


_DIGITS = r"[0-9]{1,20}"
_NAME = r"[A-Za-z0-9_.-]{1,64}"
_SERVER = r"(?:\.[A-Za-z0-9_-]{1,63}){0,16}"

# The job id alone, as stored in the spawner's state (and restored after a
# hub restart): only characters no shell treats specially.
JOB_ID_RE: dict[str, re.Pattern[str]] = {
    "slurm": re.compile(_DIGITS),
    "torque": re.compile(_DIGITS + _SERVER),
    "pbs": re.compile(_DIGITS + _SERVER),
    "sge": re.compile(_DIGITS),
    "lsf": re.compile(_DIGITS),
    "condor": re.compile(_DIGITS + r"(?:\.[0-9]{1,9})?"),
}

# The last line of the submit command's output, per scheduler; the group
# "id" is the job id batchspawner 1.3.0's parse_job_id would return.
SUBMIT_OUTPUT_RE: dict[str, tuple[re.Pattern[str], ...]] = {
    # sbatch --parsable: "<id>" or "<id>;<cluster>"; plain sbatch:
    # "Submitted batch job <id>" (" on cluster <name>" with -M).
    "slurm": (
        re.compile(rf"(?P<id>{_DIGITS})(?:;{_NAME})?"),
        re.compile(rf"Submitted batch job (?P<id>{_DIGITS})(?: on cluster {_NAME})?"),
    ),
    # qsub: "<sequence>.<server>", e.g. "1234.torque01.example.org".
    "torque": (re.compile(rf"(?P<id>{_DIGITS}{_SERVER})"),),
    "pbs": (re.compile(rf"(?P<id>{_DIGITS}{_SERVER})"),),
    # qsub: 'Your job 1234 ("name") has been submitted'; qsub -terse: "1234".
    "sge": (
        re.compile(rf'Your job (?P<id>{_DIGITS}) \("[^"]{{0,200}}"\) has been submitted'),
        re.compile(rf"(?P<id>{_DIGITS})"),
    ),
    # bsub: "Job <1234> is submitted to queue <normal>." ("default queue" too).
    "lsf": (re.compile(rf"Job <(?P<id>{_DIGITS})> is submitted to (?:default )?queue <[^<>]{{1,200}}>\."),),
    # condor_submit: "1 job(s) submitted to cluster 1234." (after "Submitting job(s).").
    "condor": (re.compile(rf"[0-9]{{1,9}} job\(s\) submitted to cluster (?P<id>{_DIGITS})\."),),
}


def sge_job_state(output: str, job_id: str) -> str:
    """Grid Engine's ``qstat -xml`` answer about one job in the "STATE HOST"
    form of SLURM's per-user query (the progress page's view):
    ``RUNNING <host>`` (from its queue instance ``<queue>@<host>``),
    ``PENDING``, or "" when the job is not listed or the answer is no XML
    (an error text). batchspawner's own state checks read the XML itself."""
    try:
        root = ET.fromstring(output)
    except ET.ParseError:
        return ""
    for job in root.iter("job_list"):
        if (job.findtext("JB_job_number") or "").strip() != job_id:
            continue
        state = job.get("state", "")
        if state == "running":
            host = (job.findtext("queue_name") or "").partition("@")[2].strip()
            return f"RUNNING {host}".strip()
        if state == "pending":
            return "PENDING"
    return ""


class JobIdError(ValueError):
    """Scheduler output that is not a job id; the message is safe to log and show."""


def excerpt(text: str, limit: int = 80) -> str:
    """``text`` shortened and with control characters replaced, quoted for a message."""
    short = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return repr(short + ("..." if len(text) > limit else ""))


def check_job_id(scheduler: str, job_id: str) -> str:
    """``job_id`` when it has ``scheduler``'s job id format, else JobIdError."""
    pattern = JOB_ID_RE.get(scheduler)
    if pattern is None:
        raise JobIdError(f"unknown scheduler {scheduler!r}")
    if not isinstance(job_id, str) or len(job_id) > 255 or not pattern.fullmatch(job_id):
        raise JobIdError(f"not a {scheduler} job id: {excerpt(str(job_id))}")
    return job_id


def parse_job_id(scheduler: str, output: str) -> str:
    """The job id in a submit command's output, or JobIdError.

    Only the last non-empty line counts (login banners and warnings come
    first), and it must be exactly one of the scheduler's known formats.
    """
    formats = SUBMIT_OUTPUT_RE.get(scheduler)
    if formats is None:
        raise JobIdError(f"unknown scheduler {scheduler!r}")
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    for pattern in formats:
        match = pattern.fullmatch(last)
        if match:
            return check_job_id(scheduler, match.group("id"))
    raise JobIdError(f"the scheduler's submit output is not a job id: {excerpt(output.strip())}")


def shell_word(value: Any) -> str:
    """``value`` as one shell word; an empty value stays empty (as in batchspawner)."""
    text = str(value)
    return shlex.quote(text) if text else ""


def format_str(template: str, **values: Any) -> str:
    """str.format, batchspawner's formatting of templates without ``{{``."""
    return template.format(**values)


def command_line(exec_prefix: str, command: str, values: Mapping[str, Any], remote: bool,
                 render: Callable[..., str] = format_str) -> str:
    """The line batchspawner's run_command gives to the hub account's shell.

    Every value is shell-quoted before ``render`` (batchspawner's
    format_template) substitutes it into ``exec_prefix`` and ``command``.
    With ``remote`` (the prefix ends in ``ssh <host>``), the formatted
    command is quoted as one argument afterwards: the hub's shell hands ssh
    exactly that text, and the login node's shell parses it once.
    """
    quoted = {name: shell_word(value) for name, value in values.items()}
    prefix = render(exec_prefix, **quoted)
    body = render(command, **quoted)
    if remote:
        body = shlex.quote(body)
    return " ".join(part for part in (prefix, body) if part)


_SERVER_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def job_server_name(name: str) -> str:
    """A server's name as the job's name carries it: JupyterHub 6 names are
    safe slugs already (a-z, 0-9, -); anything else an older hub allowed is
    replaced (the batch script holds it unquoted), and it is cut to 30."""
    return _SERVER_NAME_CHARS.sub("_", str(name or ""))[:30]


def template_vars(req_values: Mapping[str, Any], server_cmd: str) -> dict[str, Any]:
    """The batch script's variables: the spawner's req_* values and ``cmd``.

    batchspawner 1.3.0 also merges ``user_options`` here, so a REST request
    could overwrite any of them (``{"account": ""}`` drops ``--account``);
    the request's checked choice already is in the req_* values.
    """
    variables = dict(req_values)
    variables["cmd"] = server_cmd
    return variables


class GuardedBatchCommands:
    """Submit, query and cancel with checked job ids and shell-safe commands.

    A mixin placed before a batchspawner class (see ``hpcgw_batch``), which
    provides the attributes below; it replaces ``parse_job_id``,
    ``submit_batch_script``, ``query_job_status`` and ``cancel_batch_job``,
    the only places batchspawner 1.3.0 builds a command line.
    """

    job_scheduler: ClassVar[str] = ""
    job_states: ClassVar[Any] = None  # batchspawner.JobStatus
    render: ClassVar[Callable[..., str]] = staticmethod(format_str)

    # Provided by the batchspawner class (traits) or the composed class.
    hpcgw_submit: str
    hpcgw_cluster_name: str = ""  # the catalog's cluster name: its shared status poller, its counts
    hpcgw_starting: bool = False
    # The scheduler's pending reason and start estimate from the last status query ("" when none).
    hpcgw_job_reason: str = ""
    hpcgw_job_start: str = ""
    exec_prefix: str
    batch_submit_cmd: str
    batch_query_cmd: str
    batch_cancel_cmd: str
    job_id: str
    job_status: str
    log: Any
    get_req_subvars: Callable[[], dict[str, Any]]
    cmd_formatted_for_batch: Callable[[], str]
    get_env: Callable[[], dict[str, str]]
    run_command: Callable[..., Any]
    _get_batch_script: Callable[..., Any]
    state_isrunning: Callable[[], Any]
    state_ispending: Callable[[], Any]
    state_isunknown: Callable[[], Any]

    def _command(self, template: str, **extra: str) -> str:
        values = dict(self.get_req_subvars(), **extra)
        return command_line(self.exec_prefix, template, values, self.hpcgw_submit == "ssh", type(self).render)

    def _count(self, kind: str) -> None:
        hpcgw_status.COUNTER.count(self.hpcgw_cluster_name, kind)

    def _observe(self, kind: str, began: float, ok: bool) -> None:
        hpcgw_status.observe(self.hpcgw_cluster_name, kind, time.monotonic() - began, ok)

    def _shared_poller(self) -> Optional[hpcgw_status.SharedStatusPoller]:
        """The cluster's shared status poller; None: ask as the user (the
        catalog allows shared only for SLURM clusters submitted to locally)."""
        if self.job_scheduler != "slurm" or self.hpcgw_submit != "local":
            return None
        return hpcgw_status.poller_for(self.hpcgw_cluster_name)

    def parse_job_id(self, output: str) -> str:
        return parse_job_id(self.job_scheduler, output)

    def _checked_job_id(self) -> Optional[str]:
        try:
            return check_job_id(self.job_scheduler, self.job_id)
        except JobIdError as exc:
            self.log.error("No scheduler command for this job: %s", exc)
            return None

    async def submit_batch_script(self) -> str:
        variables = template_vars(self.get_req_subvars(), self.cmd_formatted_for_batch())
        script = await self._get_batch_script(**variables)
        cmd = self._command(self.batch_submit_cmd)
        self.log.info("Submitting the batch job: %s", cmd)
        self._count("submit")
        began = time.monotonic()
        try:
            output = await self.run_command(cmd, input=script, env=self.get_env())
        except Exception:
            self._observe("submit", began, False)
            raise
        try:
            self.job_id = self.parse_job_id(output)
        except JobIdError as exc:
            self._observe("submit", began, False)
            self.job_id = ""
            self.log.error("Job submission refused: %s", exc)
            raise RuntimeError(str(exc)) from None
        self._observe("submit", began, True)
        self.log.info("Job %s submitted", self.job_id)
        return self.job_id

    async def query_job_status(self) -> Any:
        states = self.job_states
        self.hpcgw_job_reason = self.hpcgw_job_start = ""
        job_id = self._checked_job_id() if self.job_id else None
        if job_id is None:
            self.job_status = ""
            return states.NOTFOUND
        poller = self._shared_poller()
        if poller is not None:
            return await self._shared_status(poller, job_id)
        cmd = self._command(self.batch_query_cmd, job_id=job_id)
        self._count("status-user")
        began = time.monotonic()
        try:
            self.job_status = await self.run_command(cmd)
        except RuntimeError as exc:  # the scheduler's stderr, as batchspawner keeps it
            if cancelled():  # a stop of the pending spawn, not a scheduler failure
                raise asyncio.CancelledError() from exc
            self.job_status = str(exc.args[0]) if exc.args else ""
            if not failed_query_is_gone(self.job_scheduler, self.job_status):
                self._observe("status-user", began, False)
                self.log.warning("Status of job %s unknown for now (kept): %s", job_id, self.job_status.strip()[:200])
                return states.UNKNOWN
        except Exception as exc:  # noqa: BLE001  (no answer is no verdict: keep the server)
            self._observe("status-user", began, False)
            self.log.warning("Status of job %s unknown for now (kept): %s", job_id, exc)
            self.job_status = ""
            return states.UNKNOWN
        self._observe("status-user", began, True)
        return self._classified()

    def _read_user_status(self) -> None:
        """SLURM's per-user answer ``STATE|HOST|START|REASON`` -> job_status
        ``"STATE HOST"`` and the reason and estimate beside it; any other
        answer (a site's own batch_query_cmd, an error) stays as it is."""
        if self.job_scheduler != "slurm":
            return
        answer = hpcgw_status.parse_user_status(self.job_status)
        if answer is not None:
            self.job_status = answer.text
            self.hpcgw_job_reason, self.hpcgw_job_start = answer.reason, answer.start

    async def _shared_status(self, poller: hpcgw_status.SharedStatusPoller, job_id: str) -> Any:
        """The job's verdict from the cluster's shared query (a cancel of the
        caller propagates: the query itself goes on for the others)."""
        answer = await poller.status(job_id, starting=bool(self.hpcgw_starting))
        if answer.kind == hpcgw_status.UNKNOWN:
            self.log.warning("Status of job %s unknown for now (kept): %s", job_id, answer.text)
            self.job_status = ""
            return self.job_states.UNKNOWN
        self.job_status = answer.text  # "STATE HOST" as the per-user query prints it; "" when gone
        self.hpcgw_job_reason, self.hpcgw_job_start = answer.reason, answer.start
        return self._classified()

    def _classified(self) -> Any:
        """batchspawner's verdict on ``job_status`` (its state_* patterns)."""
        self._read_user_status()
        states = self.job_states
        if self.state_isrunning():
            return states.RUNNING
        if self.state_ispending():
            return states.PENDING
        if self.state_isunknown():
            return states.UNKNOWN
        return states.NOTFOUND

    async def cancel_batch_job(self) -> None:
        if not self.job_id:  # nothing submitted, or the state already cleared
            return
        job_id = self._checked_job_id()
        if job_id is None:
            return
        cmd = self._command(self.batch_cancel_cmd, job_id=job_id)
        self.log.info("Cancelling job %s: %s", job_id, cmd)
        self._count("cancel")
        began = time.monotonic()
        try:
            await self.run_command(cmd)
        except Exception:
            self._observe("cancel", began, False)
            raise
        self._observe("cancel", began, True)
