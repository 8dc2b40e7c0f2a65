"""Environment modules in JupyterLab (Lmod + jupyterlmod, role notebook_env).

alice's server runs in a SLURM job, which reads no login profile: it has
Lmod all the same (the prefix's etc/hpcgw-job-env.sh, sourced by the batch
script). She loads the demo's hello/2.0 through jupyterlmod's REST API - what
JupyterLab's Softwares panel calls - through Apache; a kernel started then
has the module's environment (its variable, its PATH, `module list`), and
after the unload the next kernel has none of it. Another user cannot load
modules into her server. JupyterLab lists and serves the panel's extension.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import COMPUTE

PRESET = json.dumps({"profile": "debug-1c"})
VERSION = "5.3.2"  # notebook_env_jupyterlmod_version's default
DEMO = "/opt/hpcgw/modules"  # the demo inventory's notebook_env_lmod_demo_root
LAB_EXTENSION = "@cmd-ntrf/jupyterlab-lmod"

# Run in a new kernel: what the module system gave the kernel's environment.
# Lmod's `module` is a shell function: bash gets it through BASH_ENV.
ENVIRONMENT = """
import json, os, shutil, subprocess
listed = subprocess.run(["bash", "-c", "module --terse list"], capture_output=True, text=True)
hello = shutil.which("hello")
print(json.dumps({
    "lmod_cmd": os.environ.get("LMOD_CMD"), "modulepath": os.environ.get("MODULEPATH", "").split(":"),
    "hello": os.environ.get("HPCGW_HELLO"), "loaded": os.environ.get("LOADEDMODULES", "").split(":"),
    "list": listed.stderr.split(), "list_rc": listed.returncode, "which": hello,
    "says": subprocess.run([hello], capture_output=True, text=True).stdout.strip() if hello else "",
}))
"""


def _environment(client: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    ran = client("run", "alice", ENVIRONMENT)
    assert ran.get("reply") == "ok", ran
    return json.loads(ran["stdout"].strip().splitlines()[-1])


def _calls(client: Callable[..., dict[str, Any]], user: str, *calls: list[Any]) -> list[dict[str, Any]]:
    out = client("server-call", user, "alice", json.dumps(list(calls)))
    return out["calls"]


@pytest.mark.parametrize("compute", COMPUTE)
def test_lmod_and_jupyterlmod_are_on_the_nodes(node: Callable[[str], Host], compute: str) -> None:
    host = node(compute)
    show = host.check_output("/opt/hpcgw/notebook/bin/pip show jupyterlmod")
    assert f"Version: {VERSION}" in show, show
    enabled = host.file("/opt/hpcgw/notebook/etc/jupyter/jupyter_server_config.d/jupyterlmod_jupyterserverextension.json")
    assert json.loads(enabled.content_string)["ServerApp"]["jpserver_extensions"]["jupyterlmod"] is True
    # A login shell of a user on the node sees the demo tree (Lmod's profile, /etc/lmod/modulespath).
    avail = host.run("runuser -u alice -- bash -lc 'module --terse avail hello'")
    assert avail.rc == 0, avail.stderr
    assert {"hello/1.0", "hello/2.0"} <= set(avail.stderr.split()), avail.stderr


def test_a_module_loaded_in_jupyterlab_reaches_new_kernels(
    client: Callable[..., dict[str, Any]], quiet: None
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    try:
        system, avail, load, listed = _calls(
            client, "alice",
            ["GET", "/module/system", None], ["GET", "/module/modules", None],
            ["POST", "/module", {"modules": ["hello/2.0"]}], ["GET", "/module", None])
        assert (system["status"], system["body"]) == (200, "lmod"), system
        assert {"hello/1.0", "hello/2.0"} <= set(avail["body"]), avail
        assert load["status"] == 200 and load["body"] is None, load  # null: no error from Lmod
        assert listed["body"] == ["hello/2.0"], listed

        loaded = _environment(client)
        # The batch job set Lmod up for the server (no login profile read).
        assert loaded["lmod_cmd"] == "/usr/share/lmod/lmod/libexec/lmod", loaded
        assert f"{DEMO}/modulefiles" in loaded["modulepath"], loaded
        assert loaded["hello"] == "2.0", loaded
        assert "hello/2.0" in loaded["loaded"] and "hello/2.0" in loaded["list"], loaded
        assert loaded["which"] == f"{DEMO}/software/hello/2.0/bin/hello", loaded
        assert loaded["says"].startswith("hello 2.0 from hpcgw-c"), loaded

        # Another signed-in user gets nowhere near her server's modules.
        (intruder,) = _calls(client, "carol", ["POST", "/module", {"modules": ["hello/1.0"]}])
        assert intruder["status"] in (401, 403), intruder
        (still,) = _calls(client, "alice", ["GET", "/module", None])
        assert still["body"] == ["hello/2.0"], still

        unload, empty = _calls(client, "alice",
                               ["DELETE", "/module", {"modules": ["hello"]}], ["GET", "/module", None])
        assert unload["status"] == 200 and unload["body"] is None, unload
        assert empty["body"] == [], empty
        after = _environment(client)
        assert after["hello"] is None and after["which"] is None, after
        assert "hello/2.0" not in after["list"] and "hello/2.0" not in after["loaded"], after

        # JupyterLab lists the panel's extension and serves its code.
        (lab,) = _calls(client, "alice", ["GET", "/lab", None])
        assert lab["status"] == 200, lab
        extensions = {ext["name"]: ext for ext in lab["body"]["federated_extensions"]}
        assert LAB_EXTENSION in extensions, sorted(extensions)
        assert LAB_EXTENSION not in lab["body"].get("disabledExtensions", []), lab["body"].get("disabledExtensions")
        (code,) = _calls(client, "alice",
                         ["GET", f"/lab/extensions/{LAB_EXTENSION}/{extensions[LAB_EXTENSION]['load']}", None])
        assert code["status"] == 200, code
    finally:
        assert client("stop", "alice").get("stopped") is True
