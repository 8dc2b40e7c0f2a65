"""batchspawner classes of the gateway: checked job ids, shell-safe commands.

Each class is the upstream batchspawner 1.3.0 class with
:class:`hpcgw_batch_core.GuardedBatchCommands` in front of it (the logic and
its unit tests live there). ``hpcgw_spawner.SCHEDULER_CLASSES`` names these
classes; the child spawner gets ``hpcgw_submit`` (``local`` or ``ssh``) from
the cluster catalog.
"""

from __future__ import annotations

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
from traitlets import HasTraits, Unicode

from hpcgw_batch_core import GuardedBatchCommands


class GatewayBatchMixin(GuardedBatchCommands, HasTraits):
    """The guarded commands plus the submit-mode trait set by GatewaySpawner."""

    job_states = JobStatus
    render = staticmethod(format_template)
    hpcgw_submit = Unicode(
        "local", help="How the scheduler is reached: local, or ssh (exec_prefix ends in ssh <host>).",
    )


class GatewaySlurmSpawner(GatewayBatchMixin, SlurmSpawner):
    """SlurmSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "slurm"


class GatewayTorqueSpawner(GatewayBatchMixin, TorqueSpawner):
    """TorqueSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "torque"


class GatewayPBSSpawner(GatewayBatchMixin, PBSSpawner):
    """PBSSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "pbs"


class GatewayGridengineSpawner(GatewayBatchMixin, GridengineSpawner):
    """GridengineSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "sge"


class GatewayLsfSpawner(GatewayBatchMixin, LsfSpawner):
    """LsfSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "lsf"


class GatewayCondorSpawner(GatewayBatchMixin, CondorSpawner):
    """CondorSpawner with checked job ids and shell-safe commands."""

    job_scheduler = "condor"
