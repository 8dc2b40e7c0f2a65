"""What a batch job may tell the hub on /hub/api/batchspawner (no JupyterHub imports).

Installed by the hpc-gateway ``jupyterhub`` role next to ``hpcgw_hub_api.py``
(the handler); unit-tested in ``tests/unit``. Two bodies are accepted, each
exactly: ``{"port": <1..65535>}`` from batchspawner-singleuser, and
``{"exit_status": <0..255>, "log_tail": <str>}`` from the batch script's EXIT
trap (``hpcgw-job-report``) when the job ends with an error. Anything else
is refused: upstream batchspawner sets every attribute a job's token posts.
A port outside the cluster's ``port_range`` (role spawn_profiles: the ports a
site's firewall opens) is refused too (:func:`check_port_range`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

MAX_TAIL_CHARS = 4000
MAX_STATUS = 255


class CallbackRefused(ValueError):
    """The body is not one of the accepted shapes."""


@dataclass(frozen=True)
class PortReport:
    """The port the job's server listens on."""

    port: int


@dataclass(frozen=True)
class JobReport:
    """What a job said about its own end."""

    exit_status: int
    log_tail: str


def _int_in(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def parse_callback(data: Any) -> Union[PortReport, JobReport]:
    """The checked body, or CallbackRefused with the reason."""
    if isinstance(data, dict) and "exit_status" in data:
        if set(data) != {"exit_status", "log_tail"}:
            raise CallbackRefused('body must be exactly {"exit_status": <int>, "log_tail": <str>}')
        if not _int_in(data["exit_status"], 0, MAX_STATUS):
            raise CallbackRefused(f"exit_status must be an integer in 0..{MAX_STATUS}")
        tail = data["log_tail"]
        if not isinstance(tail, str) or len(tail) > MAX_TAIL_CHARS:
            raise CallbackRefused(f"log_tail must be a string of at most {MAX_TAIL_CHARS} characters")
        return JobReport(exit_status=data["exit_status"], log_tail=tail)
    if not isinstance(data, dict) or set(data) != {"port"}:
        raise CallbackRefused('body must be exactly {"port": <int>}')
    if not _int_in(data["port"], 1, 65535):
        raise CallbackRefused("port must be an integer in 1..65535")
    return PortReport(port=data["port"])


def check_port_range(report: PortReport, low: int, high: int) -> PortReport:
    """The report when its port lies in low..high (a cluster's port_range;
    0, 0: no range), else CallbackRefused naming the range."""
    if (low or high) and not low <= report.port <= high:
        raise CallbackRefused(f"port {report.port} is outside the cluster's port_range {low}-{high}")
    return report
