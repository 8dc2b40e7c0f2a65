"""Firewalled compute nodes: a cluster's port_range, from the admin's data
(hpcgw_profiles) through the hub's callback (hpcgw_callback_core) to the
node's launcher (hpcgw_singleuser)."""

from __future__ import annotations

import copy
import socket
from typing import Any, Optional

import pytest

import hpcgw_singleuser as launcher
from hpcgw_callback_core import CallbackRefused, JobReport, PortReport, check_port_range
from hpcgw_profiles import Catalog, ConfigError, child_config
from hpcgw_startup import failure_message

CLUSTER: dict[str, Any] = {
    "name": "fw", "scheduler": "slurm", "submit": "local", "port_range": "9000-9099",
    "queues": [{"name": "debug", "cores": {"max": 2}}],
}


def _catalog(**change: Any) -> Catalog:
    cluster = dict(copy.deepcopy(CLUSTER), **change)
    return Catalog.from_data({"clusters": [cluster]})


# --- the admin's data -----------------------------------------------------------

def test_the_range_reaches_the_child_spawner() -> None:
    catalog = _catalog()
    choice = catalog.choice_from_values({"cluster": "fw", "queue": "debug"})
    config = child_config(catalog, choice, {"batch_script": "x", "exec_prefix": "sudo -n -u {username}"})
    assert config["batchspawner_singleuser_cmd"] == "hpcgw-singleuser --port-range 9000-9099"
    assert (config["hpcgw_port_min"], config["hpcgw_port_max"]) == (9000, 9099)
    assert catalog.cluster("fw").port_range == (9000, 9099)


def test_without_a_range_batchspawner_picks_the_port() -> None:
    catalog = _catalog(port_range="")
    choice = catalog.choice_from_values({"cluster": "fw", "queue": "debug"})
    config = child_config(catalog, choice, {})
    assert "batchspawner_singleuser_cmd" not in config and "hpcgw_port_min" not in config
    assert catalog.cluster("fw").port_range is None


@pytest.mark.parametrize("value", ["9000-9000", "1024-65535", "40000-40009"])
def test_good_ranges(value: str) -> None:
    low, high = (int(p) for p in value.split("-"))
    assert _catalog(port_range=value).cluster("fw").port_range == (low, high)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9000", 'must be "LOW-HIGH"'),
        ("9000:9099", 'must be "LOW-HIGH"'),
        ("9000 - 9099", 'must be "LOW-HIGH"'),
        ("9000-9099-9100", 'must be "LOW-HIGH"'),
        ("-9099", 'must be "LOW-HIGH"'),
        (9000, 'must be "LOW-HIGH"'),
        (["9000", "9099"], 'must be "LOW-HIGH"'),
        ("9099-9000", "is reversed: the low end comes first (9000-9099)"),
        ("80-8080", "ports under 1024 are privileged"),
        ("0-100", "ports under 1024 are privileged"),
        ("60000-70000", "ends above 65535"),
        ("9000-9099\n", 'must be "LOW-HIGH"'),
    ],
)
def test_bad_ranges_are_named(value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _catalog(port_range=value)
    assert str(err.value).startswith("spawn_profiles_clusters[0].port_range: "), err.value
    assert message in str(err.value)


# --- the hub's callback ------------------------------------------------------------

def test_the_callback_takes_a_port_inside_the_range_only() -> None:
    assert check_port_range(PortReport(9000), 9000, 9099) == PortReport(9000)
    assert check_port_range(PortReport(9099), 9000, 9099) == PortReport(9099)
    assert check_port_range(PortReport(40389), 0, 0) == PortReport(40389)  # no range
    for port in (8999, 9100, 40389):
        with pytest.raises(CallbackRefused, match=f"port {port} is outside the cluster's port_range 9000-9099"):
            check_port_range(PortReport(port), 9000, 9099)


# --- the node's launcher ----------------------------------------------------------

def test_the_command_line() -> None:
    assert launcher.parse_args(["--port-range", "9000-9099", "jupyterhub-singleuser", "--debug"]) == (
        (9000, 9099), ["jupyterhub-singleuser", "--debug"])
    assert launcher.parse_args(["--port-range=9000-9001", "x"]) == ((9000, 9001), ["x"])
    for bad in ([], ["jupyterhub-singleuser"], ["--port-range", "9000-9099"], ["--port-range", "90-99", "x"],
                ["--port-range", "9099-9000", "x"], ["--port", "9000", "x"]):
        with pytest.raises(launcher.UsageError):
            launcher.parse_args(bad)


def test_every_port_is_tried_once_from_the_start() -> None:
    assert launcher.candidates(9000, 9003, 9002) == [9002, 9003, 9000, 9001]
    assert launcher.candidates(9000, 9000, 9000) == [9000]
    tried: list[int] = []

    def probe(host: str, port: int) -> bool:
        tried.append(port)
        return port == 9001

    assert launcher.free_port(9000, 9003, "0.0.0.0", 9002, probe) == 9001
    assert tried == [9002, 9003, 9000, 9001]
    assert launcher.free_port(9000, 9003, "0.0.0.0", 9000, lambda h, p: False) is None


def test_a_listening_port_is_busy_and_a_closed_one_free() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        busy = holder.getsockname()[1]
        assert launcher.can_bind("127.0.0.1", busy) is False
        assert launcher.free_port(busy, busy, "127.0.0.1", busy) is None
    assert launcher.can_bind("127.0.0.1", busy) is True


def test_the_service_url_gets_the_port() -> None:
    url = "http://0.0.0.0:0/jupyter/user/alice/"
    assert launcher.listen_host(url) == "0.0.0.0"
    assert launcher.listen_host("") == "0.0.0.0"
    assert launcher.with_port(url, 9042) == "http://0.0.0.0:9042/jupyter/user/alice/"
    assert launcher.with_port("http://[::]:0/x/", 9042) == "http://[::]:9042/x/"


class _Exec:
    def __init__(self) -> None:
        self.called: Optional[tuple[str, list[str]]] = None

    def __call__(self, path: str, args: list[str]) -> None:
        self.called = (path, args)


def _env() -> dict[str, str]:
    return {"JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:0/jupyter/user/alice/",
            "JUPYTERHUB_API_URL": "http://hub:8081/jupyter/hub/api", "JUPYTERHUB_API_TOKEN": "t0k"}


def test_a_free_port_is_reported_then_the_server_runs_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[int] = []
    monkeypatch.setattr(launcher, "report_port", lambda env, port: (reported.append(port), (201, "{}"))[1])
    env, run = _env(), _Exec()
    code = launcher.main(["--port-range", "9000-9099", "jupyterhub-singleuser", "--debug"], env, run,
                         pick=lambda low, high, host: 9042)
    assert code == 0 and reported == [9042]
    assert env["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:9042/jupyter/user/alice/"
    assert run.called == ("jupyterhub-singleuser", ["jupyterhub-singleuser", "--debug"])


def test_a_full_range_fails_with_a_message(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(launcher, "report_port", lambda env, port: pytest.fail("nothing to report"))
    run = _Exec()
    code = launcher.main(["--port-range", "9000-9001", "jupyterhub-singleuser"], _env(), run,
                         pick=lambda low, high, host: None)
    assert code == launcher.NO_PORT and run.called is None
    err = capsys.readouterr().err
    assert "no free port for the Jupyter server on" in err
    assert "all 2 port(s) of the range 9000-9001" in err
    # What the user reads: the job's output and the hint for it.
    message = failure_message("42", "Demo cluster", "", JobReport(launcher.NO_PORT, err))
    assert "exit status 75" in message and "range 9000-9001" in message
    assert "Every port the site opens for Jupyter servers on that node is taken" in message


def test_a_port_the_hub_refuses_stops_the_job(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(launcher, "report_port", lambda env, port: (400, '{"message": "outside"}'))
    run = _Exec()
    code = launcher.main(["--port-range", "9000-9001", "x"], _env(), run, pick=lambda low, high, host: 9000)
    assert code == launcher.NO_PORT and run.called is None
    assert "the hub did not take port 9000 (HTTP 400)" in capsys.readouterr().err


def test_a_bad_command_line_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher.main(["jupyterhub-singleuser"], _env(), _Exec()) == 2
    assert "usage: hpcgw-singleuser" in capsys.readouterr().err
