"""The gateway instances of a host (issue 16): the clash rules of the
preflight (filter hpcgw_instance_clashes), each refusal and what passes."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from ansible_run import ROOT

_SPEC = importlib.util.spec_from_file_location(
    "hpcgw_instances", ROOT / "roles" / "jupyterhub" / "filter_plugins" / "hpcgw_instances.py")
assert _SPEC and _SPEC.loader
instances = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(instances)

PRODUCTION = {"instance": "", "hub_port": 8081, "proxy_port": 8000, "proxy_api_port": 8001,
              "server_name": "hpcgw-gw", "base_url": "/jupyter/"}
TEST = {"instance": "test", "hub_port": 8091, "proxy_port": 8010, "proxy_api_port": 8011,
        "server_name": "hpcgw-gw", "base_url": "/jupyter-test/"}


def test_production_and_a_test_instance_side_by_side_pass() -> None:
    assert instances.instance_clashes(TEST, [PRODUCTION]) == []
    assert instances.instance_clashes(PRODUCTION, [PRODUCTION, TEST]) == []


def test_an_instance_may_find_its_own_record() -> None:
    assert instances.instance_clashes(TEST, [TEST, PRODUCTION]) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"hub_port": 8081}, "instance test: port 8081 (hub_port) is instance production's hub_port"),
        ({"proxy_port": 8001}, "instance test: port 8001 (proxy_port) is instance production's proxy_api_port"),
        ({"proxy_api_port": 8000}, "instance test: port 8000 (proxy_api_port) is instance production's proxy_port"),
        ({"base_url": "/jupyter/"}, "base URL /jupyter/ on hpcgw-gw overlaps instance production's /jupyter/"),
        ({"base_url": "/jupyter/test/"}, "base URL /jupyter/test/ on hpcgw-gw overlaps"),
        ({"base_url": "/"}, "base URL / on hpcgw-gw overlaps"),
        ({"hub_port": 8010}, "instance test: its own ports collide"),
        ({"instance": "Test"}, "jupyterhub_instance 'Test'"),
        ({"instance": "te-st"}, "jupyterhub_instance 'te-st'"),
        ({"instance": "abcdefghijklm"}, "jupyterhub_instance 'abcdefghijklm'"),
    ],
)
def test_each_clash_is_refused(change: dict[str, Any], expected: str) -> None:
    errors = instances.instance_clashes({**TEST, **change}, [PRODUCTION])
    assert any(expected in e for e in errors), errors


def test_the_same_base_url_on_another_server_name_passes() -> None:
    assert instances.instance_clashes({**TEST, "base_url": "/jupyter/", "server_name": "test.hpcgw-gw"}, [PRODUCTION]) == []


def test_a_malformed_record_is_named_not_ignored() -> None:
    errors = instances.instance_clashes(TEST, [{"instance": "", "hub_port": "x"}])
    assert errors and "malformed" in errors[0]


def test_record_names() -> None:
    assert instances.record_name("") == "production"
    assert instances.record_name("test") == "test"


@pytest.mark.parametrize(("ran", "wanted", "expected"), [
    ("6.1.1", "6.1.1", ""),
    ("5.5.4", "6.1.1", ""),
    ("6.1.1", "6.1.2", ""),
    ("6.1.1", "5.5.4", "instance test: its hub last ran JupyterHub 6.1.1, which upgrades the database's schema"),
    ("6.1.1", "6.0.9", "JupyterHub 6.0.9 (jupyterhub_version) does not downgrade a schema"),
    ("6.10.0", "6.9.0", "its hub last ran JupyterHub 6.10.0"),  # numbers, not strings
    ("6.1.1", "6.1.1b1", "cannot compare JupyterHub '6.1.1b1' with the '6.1.1' of its record"),
])
def test_a_hub_going_back_to_an_older_jupyterhub_is_named(ran: str, wanted: str, expected: str) -> None:
    said = instances.hub_downgrade({**TEST, "jupyterhub_version": wanted}, [PRODUCTION, {**TEST, "jupyterhub_version": ran}])
    assert (expected in said) if expected else said == "", said


def test_only_the_instances_own_record_counts_for_its_hub_release() -> None:
    production_on_6 = {**PRODUCTION, "jupyterhub_version": "6.1.1"}
    assert instances.hub_downgrade({**TEST, "jupyterhub_version": "5.5.4"}, [production_on_6]) == ""
    # a first install, and a record of a release from before records carried the version
    assert instances.hub_downgrade({**TEST, "jupyterhub_version": "5.5.4"}, []) == ""
    assert instances.hub_downgrade({**TEST, "jupyterhub_version": "5.5.4"}, [TEST]) == ""
