"""Issues 16 and 13: a test gateway instance beside production on the same
host, upgraded in place from the previous release of this bundle.

The demo's test instance (inventories/demo/instances/test.yml: jupyterhub_instance
test, hub port 8091, proxy 8010/8011, base path /jupyter-test/) is converged
with the gateway play only, next to the production gateway the scenario
converged, by the PREVIOUS RELEASE of this bundle (commit PREVIOUS_RELEASE of
this repository, its own roles and demo inventory). She (USER) spawns on each
instance through Apache (her two jobs carry each instance's own mark). Then
the upgrade, as README "Upgrading" tells an operator to do it: `--check
--diff` of the current tree lists what will change and changes nothing; the
current tree's converge keeps her server and job on the test instance
(same job, her code still runs) and records the new release; a restart of
the test hub and a second converge change nothing. The instance then
switches to PostgreSQL (its demo setting) the documented way: her server
stopped, the SQLite file moved aside, a converge; on PostgreSQL her new
server's rows are in psql and a pg_dump backup restores under it
(instance_postgresql.py). Production's hub, proxy, files, server and job
stay as they were throughout.
playbooks/remove_instance.yml then removes the test instance (its job, units,
accounts, directories, sudo file, launcher, Apache routes, record) and
production still answers. No job is left behind.

Then the previous JupyterHub major (issue 13's version matrix): the compute
nodes get a notebook environment of PREVIOUS_JUPYTERHUB in a prefix of its
own beside production's, the test instance is converged again on that
release (both from the previous major's lock files), and her server there
runs it end to end (the hub's API and her kernel say so). The instance is
removed again and the prefix deleted; production still runs the current
release.

"She" is USER, a bench account: the scenario runs in the background beside
the modules of conftest.SCENARIO_WINDOW, which spawn alice and bob on
production meanwhile (so production also serves other users' spawns while
its test instance is installed, upgraded, switched and removed), and none of
them uses USER. The test below waits for it and reports its outcome.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from testinfra.host import Host

from conftest import (COMPUTE, CONTROLLER, GATEWAY, ORIGIN, SCENARIO_PASSWORDS, as_user, background_scenario,
                      container_host, playbook_env, run_scenario, spawn_client, user_jobs, wait_job_gone, wait_no_jobs)
from instance_postgresql import check_database_dropped, check_state_in_postgresql

USER = "burst30"

# Her servers run through the whole scenario (about 15 min beside the
# window): the debug queue's longest walltime, not the preset's 10 min.
PRESET = json.dumps({"profile": "custom", "cluster_queue": "testcluster/debug", "walltime_min": "30"})
PROJECT = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]).parents[1]
INSTANCE_VARS = PROJECT / "inventories" / "demo" / "instances" / "test.yml"
# The previous release the upgrade starts from: the last landed commit before
# release 2026.11.3 (it has the test instance, and no release in its record).
# Moved forward with every release (README, "Upgrading").
PREVIOUS_RELEASE = "30f94b411b98dd561a82c101a791be18f397fa90"
# The previous JupyterHub major the bundle supports (role jupyterhub's lock
# files): the other key of __jupyterhub_lock_files than jupyterhub_version.
_HUB_VARS = yaml.safe_load((PROJECT / "roles" / "jupyterhub" / "vars" / "main.yml").read_text())
CURRENT_JUPYTERHUB = yaml.safe_load((PROJECT / "roles" / "jupyterhub" / "defaults" / "main.yml").read_text())["jupyterhub_version"]
(PREVIOUS_JUPYTERHUB,) = [v for v in _HUB_VARS["__jupyterhub_lock_files"] if v != CURRENT_JUPYTERHUB]
# Its notebook environment on the compute nodes (shared /opt/hpcgw), beside production's.
PREVIOUS_MAJOR_PREFIX = "/opt/hpcgw/notebook-previous-major"
CURRENT_RELEASE = _HUB_VARS["jupyterhub_bundle_release"]
# The previous release knew SQLite only: the upgrade keeps it; the switch to
# the demo instance's PostgreSQL comes after (README, "The database").
KEEP_SQLITE = ("-e", "jupyterhub_db_backend=sqlite")
TEST_SQLITE = "/var/lib/jupyterhub-test/jupyterhub.sqlite"
RECAP = re.compile(r"^hpcgw-gw\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
TEST_BASE = ORIGIN + "/jupyter-test"
# Production's files and processes, which nothing of the test instance may change.
PRODUCTION_FILES = [
    "/etc/jupyterhub/jupyterhub_config.py",
    "/etc/jupyterhub/clusters.json",
    "/etc/jupyterhub/secrets/cookie_secret",
    "/etc/jupyterhub/secrets/gateway_secret",
    "/etc/jupyterhub/secrets/proxy.env",
    "/etc/sudoers.d/jupyterhub",
    "/etc/systemd/system/jupyterhub.service",
    "/etc/systemd/system/configurable-http-proxy.service",
    "/etc/apache2/sites-available/010-hpcgw-gateway.conf",
    "/etc/hpcgw-local-scope.json",
    "/etc/hpcgw/instances/production.json",
]
# Everything the test instance owns on the gateway; gone after its removal.
TEST_PATHS = [
    "/opt/jupyterhub-test",
    "/etc/jupyterhub-test",
    "/var/lib/jupyterhub-test",
    "/opt/configurable-http-proxy-test",
    "/etc/sudoers.d/jupyterhub-test",
    "/usr/local/sbin/hpcgw-local-scope-test",
    "/usr/local/sbin/hpcgw-hub-backup-test",
    "/etc/hpcgw-local-scope-test.json",
    "/etc/apache2/hpcgw-instances/test.conf",
    "/etc/hpcgw/instances/test.json",
    "/etc/systemd/system/jupyterhub-test.service",
    "/etc/systemd/system/configurable-http-proxy-test.service",
    "/etc/systemd/system/hpcgw-hub-backup-test.timer",
    "/etc/systemd/system/hpcgw-usage-report-test.timer",
    "/etc/systemd/system/hpcgw-local_test.slice",
]


def _playbook(playbook: str, *args: str, tree: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    """A playbook of `tree` (this one or the previous release's) with that
    tree's own roles, configuration and demo inventory, for the test instance."""
    env = dict(playbook_env(), ANSIBLE_CONFIG=str(tree / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(tree / "roles"))
    return subprocess.run(
        ["ansible-playbook", "-i", str(tree / "inventories" / "demo" / "hosts.yml"), str(tree / playbook),
         "-e", f"@{tree / 'inventories' / 'demo' / 'instances' / 'test.yml'}", *args],
        cwd=tree, capture_output=True, text=True, env=env, check=False, timeout=900,
    )


def _converge_test_instance(*args: str, tree: Path = PROJECT) -> str:
    """The gateway play for the test instance; its output."""
    run = _playbook("site.yml", "-l", "hpcgw-gw", "--tags", "gateway", *args, tree=tree)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run.stdout


def _gateway_changes(output: str) -> int:
    (changed, unreachable, failed), = RECAP.findall(output)
    assert (unreachable, failed) == ("0", "0"), output[-3000:]
    return int(changed)


def _previous_release(tmp: Path) -> Path:
    """This repository's tree at PREVIOUS_RELEASE, exported into `tmp`."""
    git = ["git", "-C", str(PROJECT)]
    if subprocess.run([*git, "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], capture_output=True,
                      check=False).returncode != 0:
        shallow = subprocess.run([*git, "rev-parse", "--is-shallow-repository"], capture_output=True,
                                 text=True, check=False)
        if shallow.returncode != 0 or shallow.stdout.strip() == "true":
            pytest.skip(f"the upgrade needs this repository's history (commit {PREVIOUS_RELEASE}): "
                        "run from a full clone, not an export or a shallow clone")
        pytest.fail(f"commit {PREVIOUS_RELEASE} (the previous release) is not in this repository")
    archive = subprocess.run([*git, "archive", "--format=tar", PREVIOUS_RELEASE], capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp


def _record(gateway: Host) -> dict[str, Any]:
    return json.loads(gateway.file("/etc/hpcgw/instances/test.json").content_string)


def _production(gateway: Host) -> dict[str, str]:
    """What must not change: production's file checksums and its hub's and proxy's PIDs."""
    sums = gateway.check_output("sha256sum " + " ".join(PRODUCTION_FILES))
    pids = {unit: gateway.check_output(f"systemctl show -p MainPID --value {unit}").strip()
            for unit in ("jupyterhub.service", "configurable-http-proxy.service")}
    return {"sums": sums, **pids}


def _job_mark(gateway: Host, job_id: str) -> str:
    return gateway.check_output(f"squeue -h -j {job_id} -o %k").strip()


def _remove_test_instance(gateway: Host, controller: Host, test_job: str) -> None:
    """playbooks/remove_instance.yml: its job, files, accounts, units and routes are gone."""
    removed = _playbook("playbooks/remove_instance.yml")
    assert removed.returncode == 0, removed.stdout[-4000:] + removed.stderr[-2000:]
    if test_job:
        assert wait_job_gone(gateway, test_job), f"the test instance's job {test_job} is still there"
    left = [p for p in TEST_PATHS if gateway.file(p).exists]
    assert left == []
    assert not gateway.user("jupyterhub-test").exists and not gateway.user("chp-test").exists
    units = gateway.check_output("systemctl list-units --all --plain --no-legend 'jupyterhub-test*' "
                                 "'configurable-http-proxy-test*' 'hpcgw-*-test.*' 'hpcgw-local_test*'")
    assert units.strip() == ""
    assert not any(p in gateway.check_output("ss -ltnH") for p in (":8091 ", ":8010 ", ":8011 "))
    gone = controller.run(f"curl -sk -o /dev/null -w '%{{http_code}}' -u {USER}:{SCENARIO_PASSWORDS[USER]} {TEST_BASE}/hub/api")
    assert gone.stdout.strip() == "404", gone.stdout


def _previous_major(gateway: Host, prod_job: str, test_client: Callable[..., dict[str, Any]]) -> None:
    """The compute nodes get the previous major's notebook environment in a
    prefix of its own (production's stays), the test instance its hub, both
    from their previous-major lock files; her spawn there runs that release
    end to end (a failure leaves her job to remove_instance.yml)."""
    matrix = ("-e", f"jupyterhub_version={PREVIOUS_JUPYTERHUB}", "-e", f"notebook_env_prefix={PREVIOUS_MAJOR_PREFIX}",
              "-e", f"spawn_profiles_notebook_prefix={PREVIOUS_MAJOR_PREFIX}")
    nodes = _playbook("site.yml", "-l", "notebook_nodes", "--tags", "notebook_env", *matrix)
    assert nodes.returncode == 0, nodes.stdout[-4000:] + nodes.stderr[-2000:]
    _converge_test_instance(*matrix)
    assert _record(gateway)["jupyterhub_version"] == PREVIOUS_JUPYTERHUB
    hub = gateway.check_output(f"curl -s http://hpcgw-gw:8091{TEST_BASE[len(ORIGIN):]}/hub/api/")
    assert json.loads(hub)["version"] == PREVIOUS_JUPYTERHUB, hub
    started = test_client("start", PRESET)
    assert started.get("ready") is True, started
    test_job = next(j for j, *_ in user_jobs(gateway, USER) if j != prod_job)
    ran = test_client("run", "import sys, jupyterhub, jupyter_server\n"
                              "print(jupyterhub.__version__, sys.prefix, jupyter_server.__version__)")
    assert ran.get("stdout", "").split()[:2] == [PREVIOUS_JUPYTERHUB, PREVIOUS_MAJOR_PREFIX], ran
    assert test_client("stop").get("stopped") is True
    assert wait_job_gone(gateway, test_job), f"the test instance's job {test_job} is still there"


@background_scenario
def upgrade_beside_production() -> None:
    gateway, controller = container_host(GATEWAY), container_host(CONTROLLER)
    client = as_user(spawn_client(controller), USER)
    test_client = as_user(spawn_client(controller, TEST_BASE), USER)
    assert wait_no_jobs(gateway, USER) == [], f"{USER} has a job from an earlier run"
    with tempfile.TemporaryDirectory(prefix="hpcgw-previous-") as tmp:
        _upgrade(gateway, controller, client, test_client, _previous_release(Path(tmp)))


def test_a_test_instance_upgraded_from_the_previous_release_beside_production() -> None:
    run_scenario(Path(__file__).name)


def _upgrade(gateway: Host, controller: Host, client: Callable[..., dict[str, Any]],
             test_client: Callable[..., dict[str, Any]], previous: Path) -> None:
    started = client("start", PRESET)
    assert started.get("ready") is True, started
    (prod_job, _, _, _), = user_jobs(gateway, USER)
    assert _job_mark(gateway, prod_job) == "hpcgw:hpcgw-gw"
    before = _production(gateway)
    test_job = ""
    try:
        # The previous release's test instance.
        _converge_test_instance(tree=previous)
        assert gateway.service("jupyterhub-test").is_running
        assert gateway.service("configurable-http-proxy-test").is_running
        assert gateway.user("jupyterhub-test").exists and gateway.user("chp-test").exists
        assert "release" not in _record(gateway)

        # She on the test instance: her own server there, a second job with the test mark.
        on_test = test_client("start", PRESET)
        assert on_test.get("ready") is True, on_test
        test_job = next(j for j, *_ in user_jobs(gateway, USER) if j != prod_job)
        assert _job_mark(gateway, test_job) == "hpcgw:hpcgw-gw-test"
        ran = test_client("run", "print(6 * 7)")
        assert "42" in str(ran), ran

        # Upgrade, keeping the instance's SQLite database (the previous
        # release's only backend): --check --diff lists the change and makes none ...
        preview = _converge_test_instance("--check", "--diff", *KEEP_SQLITE)
        assert _gateway_changes(preview) > 0, preview[-3000:]
        assert f'"release": "{CURRENT_RELEASE}"' in preview, preview[-3000:]
        assert "release" not in _record(gateway)
        # ... the current tree's converge keeps her server and its job ...
        _converge_test_instance(*KEEP_SQLITE)
        assert _record(gateway)["release"] == CURRENT_RELEASE
        assert test_job in [j for j, *_ in user_jobs(gateway, USER)]
        ran = test_client("run", "print(6 * 7)")
        assert "42" in str(ran), ran
        # ... and a restart of the test hub and a second run change nothing.
        gateway.check_output("systemctl restart jupyterhub-test.service")
        assert _gateway_changes(_converge_test_instance(*KEEP_SQLITE)) == 0
        assert _production(gateway) == before
        assert prod_job in [j for j, *_ in user_jobs(gateway, USER)]
        assert test_job in [j for j, *_ in user_jobs(gateway, USER)]
        ran = client("run", "print(6 * 7)")
        assert "42" in str(ran), ran

        # Then the switch to PostgreSQL (instances/test.yml), the documented
        # way: her server stopped, the SQLite file moved aside, a converge.
        assert test_client("stop").get("stopped") is True
        assert wait_job_gone(gateway, test_job), f"the test instance's job {test_job} is still there"
        test_job = ""
        gateway.check_output(f"mv {TEST_SQLITE} {TEST_SQLITE}.before-postgresql")
        _converge_test_instance()
        on_test = test_client("start", PRESET)
        assert on_test.get("ready") is True, on_test
        test_job = next(j for j, *_ in user_jobs(gateway, USER) if j != prod_job)
        # Its hub's rows in PostgreSQL, backed up and restored under her server.
        check_state_in_postgresql(gateway, _playbook, lambda: test_client("run", "print(6 * 7)"), USER)
        assert _production(gateway) == before

        # Remove the test instance: nothing of it is left, production answers.
        _remove_test_instance(gateway, controller, test_job)
        test_job = ""
        check_database_dropped(gateway)
        assert _production(gateway) == before
        assert prod_job in [j for j, *_ in user_jobs(gateway, USER)]

        # The previous JupyterHub major (issue 13's version matrix): the test
        # instance and a notebook environment beside production's, both on
        # its release and lock files; she spawns and her kernel runs it.
        _previous_major(gateway, prod_job, test_client)
        _remove_test_instance(gateway, controller, "")
        assert _production(gateway) == before
        assert prod_job in [j for j, *_ in user_jobs(gateway, USER)]
        ran = client("run", "import jupyterhub; print(jupyterhub.__version__)")
        assert ran.get("stdout", "").split() == [CURRENT_JUPYTERHUB], ran
    finally:
        if test_job:
            gateway.run(f"scancel {test_job}")
        if gateway.file("/etc/hpcgw/instances/test.json").exists:
            _playbook("playbooks/remove_instance.yml")
        # the previous major's notebook environment (shared by the nodes), also after a failure
        container_host(COMPUTE[0]).check_output(f"rm -rf {PREVIOUS_MAJOR_PREFIX} {PREVIOUS_MAJOR_PREFIX}.constraints.txt")
        assert client("stop").get("stopped") is True
        wait_no_jobs(gateway, USER)
