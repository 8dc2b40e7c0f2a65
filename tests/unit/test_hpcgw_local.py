"""The local profile stays one server per user when named servers let a user
run several: its scope, limits and stop are the user's."""

from __future__ import annotations

import importlib
import sys
import types
from types import SimpleNamespace
from typing import Any, Iterator

import pytest


@pytest.fixture()
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """hpcgw_local with stand-ins for sudospawner and jupyterhub (not installed here)."""
    sudospawner = types.ModuleType("sudospawner")
    sudospawner.SudoSpawner = type("SudoSpawner", (), {})  # type: ignore[attr-defined]
    jupyterhub = types.ModuleType("jupyterhub")
    utils = types.ModuleType("jupyterhub.utils")
    utils.random_port = lambda: 4242  # type: ignore[attr-defined]
    traitlets = types.ModuleType("traitlets")
    traitlets.Integer = traitlets.Unicode = lambda *a, **k: None  # type: ignore[attr-defined]
    for name, module in {"sudospawner": sudospawner, "jupyterhub": jupyterhub, "jupyterhub.utils": utils,
                         "traitlets": traitlets}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "hpcgw_local", raising=False)
    yield importlib.import_module("hpcgw_local")
    sys.modules.pop("hpcgw_local", None)


class Batch:
    """A batch job's spawner (not local)."""


def _server(name: str, active: bool, child: Any = None) -> Any:
    return SimpleNamespace(name=name, active=active, child_spawner=child)


def test_another_running_local_server_is_found(local: Any) -> None:
    Local = local.LocalScopeSpawner
    spawners = [_server("", True, Local()), _server("debug", True, Batch()), _server("batch", False, Local())]
    assert local.other_local_server(spawners, "batch", Local) == ""
    # its own entry does not count, nor a stopped one, nor a batch job
    assert local.other_local_server(spawners, "", Local) is None
    assert local.other_local_server(spawners[1:], "new", Local) is None
    # a local spawner that is no wrapper counts by itself (role jupyterhub alone)
    plain = Local()
    plain.name, plain.active = "debug", True
    assert local.other_local_server([plain], "", Local) == "debug"


def test_the_refusal_names_the_running_server(local: Any) -> None:
    assert 'your server "debug" is one' in local.one_local_server_message("debug")
    assert "your default server is one" in local.one_local_server_message("")
    assert local.one_local_server_message("x").startswith("Request refused: ")
