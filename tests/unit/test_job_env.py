"""The Jupyter jobs' environment hook (role notebook_env's
etc/hpcgw-job-env.sh) as the batch script sources it (role spawn_profiles'
prologue): Lmod's login setup reaches the server and the cluster's
script_lines under the script's `set -eu`, which stays in force after it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined

from ansible_run import ROOT
from batch_render import CONTEXTS, render
from hpcgw_profiles import Catalog, batchspawner_traits

HOOK = ROOT / "roles/notebook_env/templates/hpcgw-job-env.sh.j2"
JOB_ENV = yaml.safe_load((ROOT / "roles/notebook_env/vars/main.yml").read_text())["__notebook_env_job_env"]

# What makes Debian's /etc/profile.d/lmod.sh unfit for `set -eu`: an early
# `return` guard, unset variables, a failing command; then what it sets.
FAKE_PROFILE = """\
( [ -n "${USER_IS_ROOT:-}" ] ) && return
export USER=${USER-${LOGNAME}}
false
export LMOD_CMD=/usr/share/lmod/lmod/libexec/lmod
module() { if [ "$1" = load ]; then export HPCGW_HELLO="$2"; fi; }
"""


XSTARTUP = "/opt/hpcgw-notebook/share/hpcgw-desktop/xstartup"


def _hook(profile: Path, enabled: bool = True, desktop: bool = False) -> str:
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["comment"] = lambda text: "# " + text
    return env.from_string(HOOK.read_text()).render(
        ansible_managed="Ansible managed", notebook_env_lmod_enabled=enabled,
        __notebook_env_lmod_profile=str(profile), notebook_env_desktop_enabled=desktop,
        __notebook_env_desktop_xstartup=XSTARTUP)


def _prefix(tmp_path: Path, hook: str | None) -> Path:
    prefix = tmp_path / "notebook"
    assert JOB_ENV.startswith("{{ notebook_env_prefix }}/")
    target = prefix / JOB_ENV.split("/", 1)[1]
    target.parent.mkdir(parents=True)
    if hook is not None:
        target.write_text(hook)
    return prefix


def _job(tmp_path: Path, prefix: Path, cmd: str,
         script_lines: tuple[str, ...] = ("module load hello/2.0",)) -> subprocess.CompletedProcess[str]:
    """The SLURM script of a spawn (the catalog's prologue for this prefix) run by bash."""
    data: dict[str, Any] = {"clusters": [{
        "name": "c", "scheduler": "slurm", "submit": "local", "notebook_prefix": str(prefix),
        "script_lines": list(script_lines), "queues": [{"name": "q"}]}]}
    catalog = Catalog.from_data(data)
    choice = catalog.choice_from_options({"profile": "custom", "cluster": "c", "queue": "q"})
    assert choice is not None
    prologue = batchspawner_traits(catalog, choice)["req_prologue"]
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    script = tmp_path / "job.sh"
    script.write_text(render("slurm", dict(CONTEXTS["minimal"], homedir=str(home), prologue=prologue, cmd=cmd)))
    return subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "bash", str(script)],
                          capture_output=True, text=True, check=False, timeout=60)


def test_lmod_reaches_the_script_lines_and_the_server(tmp_path: Path) -> None:
    profile = tmp_path / "lmod.sh"
    profile.write_text(FAKE_PROFILE)
    prefix = _prefix(tmp_path, _hook(profile))
    result = _job(tmp_path, prefix, 'echo "cmd=$LMOD_CMD hello=$HPCGW_HELLO flags=$-"')
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(out for out in result.stdout.splitlines() if out.startswith("cmd="))
    assert line.startswith("cmd=/usr/share/lmod/lmod/libexec/lmod hello=hello/2.0 flags="), line
    flags = line.rsplit("=", 1)[1]
    assert "e" in flags and "u" in flags, line  # the script's set -eu again


def test_an_unset_variable_still_stops_the_script_after_the_hook(tmp_path: Path) -> None:
    profile = tmp_path / "lmod.sh"
    profile.write_text(FAKE_PROFILE)
    result = _job(tmp_path, _prefix(tmp_path, _hook(profile)), 'echo "$HPCGW_NEVER_SET"; echo reached')
    assert result.returncode != 0
    assert "reached" not in result.stdout


def test_without_lmod_or_without_the_hook_the_job_runs_as_before(tmp_path: Path) -> None:
    profile = tmp_path / "lmod.sh"
    profile.write_text(FAKE_PROFILE)
    for number, hook in enumerate((_hook(profile, enabled=False), None, _hook(tmp_path / "absent.sh"))):
        case = tmp_path / str(number)
        case.mkdir()
        result = _job(case, _prefix(case, hook), 'echo "cmd=${LMOD_CMD:-none}"', script_lines=())
        assert result.returncode == 0, result.stdout + result.stderr
        assert "cmd=none" in result.stdout.splitlines(), result.stdout


def test_the_desktop_gets_the_sites_session_in_the_server_only_when_enabled(tmp_path: Path) -> None:
    """jupyter-remote-desktop-proxy reads JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP in
    the server, a child of the batch script: the hook exports it with the desktop."""
    profile = tmp_path / "lmod.sh"
    profile.write_text(FAKE_PROFILE)
    for desktop in (True, False):
        case = tmp_path / str(desktop)
        case.mkdir()
        hook = _hook(profile, enabled=False, desktop=desktop)
        result = _job(case, _prefix(case, hook),
                      'sh -c \'echo "xstartup=${JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP:-none}"\'', script_lines=())
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"xstartup={XSTARTUP if desktop else 'none'}" in result.stdout.splitlines(), result.stdout


def test_the_hook_ends_with_status_0_under_sh(tmp_path: Path) -> None:
    """HTCondor's command line chains the prologue's lines with &&."""
    profile = tmp_path / "lmod.sh"
    profile.write_text(FAKE_PROFILE + "false\n")
    for enabled in (True, False):
        hook = tmp_path / f"hook-{enabled}.sh"
        hook.write_text(_hook(profile, enabled, desktop=enabled))
        result = subprocess.run(["sh", "-c", f". {hook} && echo chained"], capture_output=True, text=True,
                                check=False, timeout=30)
        assert result.stdout.strip() == "chained", result.stdout + result.stderr
