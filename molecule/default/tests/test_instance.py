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
the test hub and a second converge change nothing, and a converge back to
the previous JupyterHub major on that database is refused by the preflight
before anything changes (her job runs on, the record and hub say 6). The
instance then
switches to PostgreSQL (its demo setting) the documented way: her server
stopped, the SQLite file moved aside, a converge; on PostgreSQL her new
server's rows are in psql and a pg_dump backup restores under it
(instance_postgresql.py). Production's hub, proxy, files, server and job
stay as they were throughout.
playbooks/remove_instance.yml then removes the test instance (its job, units,
accounts, directories, sudo file, launcher, Apache routes, record) and
production still answers. No job is left behind.

The previous JupyterHub major (issue 13's version matrix) is
test_previous_major.py, an instance of its own beside this one.

"She" is USER, a bench account: the scenario runs in the background beside
the modules of conftest.SCENARIO_WINDOW, which spawn alice and bob on
production meanwhile (so production also serves other users' spawns while
its test instance is installed, upgraded, switched and removed), and none of
them uses USER. The test below waits for it and reports its outcome.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import (CONTROLLER, GATEWAY, SCENARIO_PASSWORDS, as_user, background_scenario, container_host,
                      run_scenario, spawn_client, user_jobs, wait_job_gone, wait_no_jobs)
from instance_postgresql import check_database_dropped, check_state_in_postgresql
from instances import (CURRENT_JUPYTERHUB, CURRENT_RELEASE, PREVIOUS_JUPYTERHUB, PROJECT, Instance, gateway_changes,
                       production)

USER = "burst30"

# Her servers run through the whole scenario (about 10 min beside the
# window): the debug queue's longest walltime, not the preset's 10 min.
PRESET = json.dumps({"profile": "custom", "cluster_queue": "testcluster/debug", "walltime_min": "30"})
TEST = Instance(PROJECT / "inventories" / "demo" / "instances" / "test.yml")
# The previous release the upgrade starts from: the last landed commit before
# release 2026.11.3 (it has the test instance, and no release in its record).
# Moved forward with every release (README, "Upgrading").
PREVIOUS_RELEASE = "30f94b411b98dd561a82c101a791be18f397fa90"
# The previous release knew SQLite only: the upgrade keeps it; the switch to
# the demo instance's PostgreSQL comes after (README, "The database").
KEEP_SQLITE = ("-e", "jupyterhub_db_backend=sqlite")
TEST_SQLITE = "/var/lib/jupyterhub-test/jupyterhub.sqlite"


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


def _job_mark(gateway: Host, job_id: str) -> str:
    return gateway.check_output(f"squeue -h -j {job_id} -o %k").strip()


@background_scenario
def upgrade_beside_production() -> None:
    gateway, controller = container_host(GATEWAY), container_host(CONTROLLER)
    client = as_user(spawn_client(controller), USER)
    test_client = as_user(spawn_client(controller, TEST.base), USER)
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
    before = production(gateway)
    test_job = ""
    try:
        # The previous release's test instance.
        TEST.converge(tree=previous)
        assert gateway.service("jupyterhub-test").is_running
        assert gateway.service("configurable-http-proxy-test").is_running
        assert gateway.user("jupyterhub-test").exists and gateway.user("chp-test").exists
        assert "release" not in TEST.record(gateway)

        # She on the test instance: her own server there, a second job with the test mark.
        on_test = test_client("start", PRESET)
        assert on_test.get("ready") is True, on_test
        test_job = next(j for j, *_ in user_jobs(gateway, USER) if j != prod_job)
        assert _job_mark(gateway, test_job) == "hpcgw:hpcgw-gw-test"
        ran = test_client("run", "print(6 * 7)")
        assert "42" in str(ran), ran

        # Upgrade, keeping the instance's SQLite database (the previous
        # release's only backend): --check --diff lists the change and makes none ...
        preview = TEST.converge("--check", "--diff", *KEEP_SQLITE)
        assert gateway_changes(preview) > 0, preview[-3000:]
        assert f'"release": "{CURRENT_RELEASE}"' in preview, preview[-3000:]
        assert "release" not in TEST.record(gateway)
        # ... the current tree's converge keeps her server and its job ...
        TEST.converge(*KEEP_SQLITE)
        assert TEST.record(gateway)["release"] == CURRENT_RELEASE
        assert test_job in [j for j, *_ in user_jobs(gateway, USER)]
        ran = test_client("run", "print(6 * 7)")
        assert "42" in str(ran), ran
        # ... and a restart of the test hub and a second run change nothing.
        gateway.check_output("systemctl restart jupyterhub-test.service")
        assert gateway_changes(TEST.converge(*KEEP_SQLITE)) == 0
        # Back to the previous JupyterHub major on the database 6 has run on:
        # the preflight refuses it before anything changes (README, "Upgrading").
        back = TEST.playbook("site.yml", "-l", "hpcgw-gw", "--tags", "gateway", *KEEP_SQLITE,
                             "-e", f"jupyterhub_version={PREVIOUS_JUPYTERHUB}")
        assert back.returncode != 0, back.stdout[-3000:]
        assert (f"its hub last ran JupyterHub {CURRENT_JUPYTERHUB}, which upgrades the database's schema when it "
                f"starts; JupyterHub {PREVIOUS_JUPYTERHUB} (jupyterhub_version) does not downgrade") in back.stdout, \
            back.stdout[-3000:]
        assert "PLAY [Gateway front" not in back.stdout, back.stdout[-3000:]
        assert TEST.record(gateway)["jupyterhub_version"] == CURRENT_JUPYTERHUB
        assert json.loads(gateway.check_output(f"curl -s {TEST.hub_api}"))["version"] == CURRENT_JUPYTERHUB
        assert test_job in [j for j, *_ in user_jobs(gateway, USER)]
        assert production(gateway) == before
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
        TEST.converge()
        on_test = test_client("start", PRESET)
        assert on_test.get("ready") is True, on_test
        test_job = next(j for j, *_ in user_jobs(gateway, USER) if j != prod_job)
        # Its hub's rows in PostgreSQL, backed up and restored under her server.
        check_state_in_postgresql(gateway, TEST.playbook, lambda: test_client("run", "print(6 * 7)"), USER)
        assert production(gateway) == before

        # Remove the test instance: nothing of it is left, production answers.
        TEST.remove(gateway, controller, USER, SCENARIO_PASSWORDS[USER])
        assert wait_job_gone(gateway, test_job), f"the test instance's job {test_job} is still there"
        test_job = ""
        check_database_dropped(gateway)
        assert production(gateway) == before
        assert prod_job in [j for j, *_ in user_jobs(gateway, USER)]

        ran = client("run", "print(6 * 7)")
        assert "42" in str(ran), ran
    finally:
        if test_job:
            gateway.run(f"scancel {test_job}")
        if gateway.file(f"/etc/hpcgw/instances/{TEST.name}.json").exists:
            TEST.playbook("playbooks/remove_instance.yml")
        assert client("stop").get("stopped") is True
        wait_no_jobs(gateway, USER)
