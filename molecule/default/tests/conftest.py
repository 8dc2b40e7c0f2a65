"""Fixtures that reach each container of the scenario by name."""

from __future__ import annotations

import os
import time
from typing import Callable

import pytest
import testinfra
from testinfra.host import Host

CONTROLLER = "hpcgw-ctl"
COMPUTE = ("hpcgw-c1", "hpcgw-c2")
GATEWAY = "hpcgw-gw"


def _host(name: str) -> Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)


@pytest.fixture(scope="session")
def node() -> Callable[[str], Host]:
    """node(name) -> testinfra host of that container."""
    cache: dict[str, Host] = {}

    def get(name: str) -> Host:
        if name not in cache:
            cache[name] = _host(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def gateway(node: Callable[[str], Host]) -> Host:
    return node(GATEWAY)


@pytest.fixture(scope="session")
def controller(node: Callable[[str], Host]) -> Host:
    return node(CONTROLLER)


def wait_for_content(host: Host, path: str, seconds: int = 60) -> str:
    """Stripped content of a file a batch job writes, once it is non-empty."""
    for _ in range(seconds):
        f = host.file(path)
        if f.exists and f.content_string.strip():
            return f.content_string.strip()
        time.sleep(1)
    return ""
