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
