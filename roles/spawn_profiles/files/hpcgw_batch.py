"""batchspawner classes of the gateway: checked job ids, shell-safe commands.

Each class is the upstream batchspawner 1.3.0 class with
:class:`hpcgw_batch_core.GuardedBatchCommands` in front of it (the logic and
its unit tests live there). ``hpcgw_spawner.SCHEDULER_CLASSES`` names these
classes; the child spawner gets ``hpcgw_submit`` (``local`` or ``ssh``) from
the cluster catalog.
"""

from __future__ import annotations

from typing import AsyncIterator

from batchspawner.batchspawner import (
    CondorSpawner,
    GridengineSpawner,
    JobStatus,
    LsfSpawner,
    PBSSpawner,
    SlurmSpawner,
    TorqueSpawner,
    format_template,
)
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Any, Bool, Float, HasTraits, Integer, Unicode, default

from hpcgw_batch_core import GuardedBatchCommands, job_server_name, sge_job_state
from hpcgw_metrics import METRICS
from hpcgw_startup import WatchedStart, failure_html
from hpcgw_progress import JobView, follow, job_view


try:
    # JupyterHub 6: a failure of the user's spawn, not of the hub (metrics'
    # "failure", no traceback, not counted by consecutive_failure_limit).
    from jupyterhub.spawner import SpawnException
except ImportError:  # JupyterHub 5 (the previous major, __jupyterhub_lock_files) has none
    class SpawnException(web.HTTPError):  # type: ignore[no-redef]
        """JupyterHub 5's way to the same page: an HTTPError whose message
        the hub shows (jupyterhub_message, set by the subclass). `reason`,
        JupyterHub 6's metrics label, has no reader on 5."""

        def __init__(self, message: str, *, reason: str, status_code: int = 400) -> None:
            del reason
            super().__init__(status_code, message)


class JobEnded(SpawnException):  # type: ignore[misc]
    """The job ended (or never answered) before its server could serve.

    A SpawnException: JupyterHub shows the message on the progress page and
    answers the REST API with it, and does not count a user's own failing
    job towards consecutive_failure_limit (which would stop the hub).
    502: the user's server, behind the hub, failed.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="job_ended", status_code=502)
        self.jupyterhub_message = message
        self.jupyterhub_html_message = failure_html(message)


class GatewayBatchMixin(WatchedStart, GuardedBatchCommands, HasTraits):
    """The guarded commands, the watched start, and the traits GatewaySpawner sets.

    ``query_job_status`` (GuardedBatchCommands), which batchspawner's and
    WatchedStart's ``poll`` and ``start`` call, reads the cluster's shared
    status poller when there is one (``hpcgw_status``), else asks as the user.
    """

    job_states = JobStatus
    render = staticmethod(format_template)
    hpcgw_submit = Unicode(
        "local", help="How the scheduler is reached: local, or ssh (exec_prefix ends in ssh <host>).",
    )
    hpcgw_cluster_title = Unicode("the cluster", help="The cluster's title, for messages.")
    # The catalog's cluster name: its shared status poller (hpcgw_status, set
    # up by the hub's config for clusters with status_query: shared) and the
    # key of its scheduler command counts. Empty (a server saved before it
    # existed): the status is asked as the user.
    hpcgw_cluster_name = Unicode("", help="The cluster's name in the catalog.")
    # {servername} of the batch script: the job's name is jupyterhub-<user>-<server>
    # for a named server (jupyterhub-<user> for the default one), so operators
    # see in the queue which of a user's servers a job is.
    req_servername = Unicode(help="The server's name ('' for the user's default server).")

    @default("req_servername")
    def _req_servername_default(self) -> str:
        return job_server_name(self.name)

    # {gateway_tag} of the batch script: the job's comment hpcgw:<tag>, how the reaper knows its jobs.
    req_gateway_tag = Unicode("", help="This gateway's mark on its jobs (spawn_profiles_gateway_tag).")
    hpcgw_job_check_interval = Float(
        2.0, help="Seconds between scheduler checks while a running job's server starts.",
    )
    hpcgw_progress_interval = Float(
        1.0, help="Seconds between looks at the job's last known state for the progress page.",
    )
    # The cluster's port_range (0, 0: none): the hub's callback refuses a port
    # outside it; the job's launcher (hpcgw-singleuser) picks one inside it.
    hpcgw_port_min = Integer(0, help="Lowest port the job's server may report (0: any).")
    hpcgw_port_max = Integer(0, help="Highest port the job's server may report (0: any).")
    # What the job's EXIT trap reported (hpcgw_callback_core.JobReport), set by the callback handler.
    hpcgw_job_report = Any(None, allow_none=True)
    # From the submit until the server answers; saved with the job id (WatchedStart.poll).
    hpcgw_starting = Bool(False)

    def get_state(self) -> dict[str, object]:
        state = super().get_state()
        if self.hpcgw_starting:
            state["hpcgw_starting"] = True
        return state

    def load_state(self, state: dict[str, object]) -> None:
        super().load_state(state)
        self.hpcgw_starting = bool(state.get("hpcgw_starting", False))

    def clear_state(self) -> None:
        super().clear_state()
        self.hpcgw_starting = False

    def hpcgw_where(self) -> str:
        return self.hpcgw_cluster_title

    def hpcgw_job_pending(self, pending: bool) -> None:
        METRICS.job_pending(self.hpcgw_cluster_name, self.job_id, pending)

    async def hpcgw_server_answers(self) -> bool:
        """Does the server answer HTTP (any status) where it said it listens?"""
        url = url_path_join(f"http://{self.ip}:{self.port}{self.server.base_url}", "api")
        try:
            response = await AsyncHTTPClient().fetch(
                HTTPRequest(url, request_timeout=2.0, follow_redirects=False), raise_error=False)
        except (OSError, HTTPClientError):  # refused, reset, timed out: not (yet) serving
            return False
        return response.code != 599

    def hpcgw_failure(self, message: str) -> Exception:
        return JobEnded(message)

    def hpcgw_job_view(self) -> JobView:
        """The job as the progress page shows it, from the last status answer."""
        return job_view(self.hpcgw_cluster_title, str(getattr(self, "req_queue", "") or ""), self.job_id,
                        self.job_status, self.hpcgw_job_reason, self.hpcgw_job_start)

    async def progress(self) -> AsyncIterator[dict[str, object]]:  # type: ignore[override]
        """Job id, state, pending reason, start estimate and node, each time they
        change (hpcgw_progress; no scheduler command of its own)."""
        async for event in follow(self.hpcgw_job_view, self.hpcgw_progress_interval):
            yield event


class GatewaySlurmSpawner(GatewayBatchMixin, SlurmSpawner):
    """SlurmSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "slurm"
    # -t all: an ended job still shows its final state (TIMEOUT, NODE_FAIL,
    # ...) for MinJobAge, so the user is told why the server ended. %S and
    # %r: the start estimate and pending reason of the progress page
    # (hpcgw_status.parse_user_status). Role jupyterhub's sudo rule for SSH
    # clusters pins this exact command.
    batch_query_cmd = Unicode("squeue -h -j {job_id} -t all -o '%T|%B|%S|%r'").tag(config=True)


class GatewayTorqueSpawner(GatewayBatchMixin, TorqueSpawner):
    """TorqueSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "torque"


class GatewayPBSSpawner(GatewayBatchMixin, PBSSpawner):
    """PBSSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "pbs"


class GatewayGridengineSpawner(GatewayBatchMixin, GridengineSpawner):
    """GridengineSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "sge"
    # {parallel_environment} of sge.sh.j2: a job of more than one core asks
    # for `-pe <it> <cores>`; from the queue's (or cluster's) data in the
    # catalog (hpcgw_profiles.batchspawner_traits), never from the request.
    req_parallel_environment = Unicode("", help="The Grid Engine parallel environment of multi-core jobs.")

    def hpcgw_job_view(self) -> JobView:
        """The progress page's view: job_status is qstat's XML here, read as
        "RUNNING <host>" or "PENDING" (no pending reason or start estimate)."""
        return job_view(self.hpcgw_cluster_title, str(getattr(self, "req_queue", "") or ""), self.job_id,
                        sge_job_state(self.job_status or "", self.job_id), "", "")


class GatewayLsfSpawner(GatewayBatchMixin, LsfSpawner):
    """LsfSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "lsf"


class GatewayCondorSpawner(GatewayBatchMixin, CondorSpawner):
    """CondorSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "condor"
