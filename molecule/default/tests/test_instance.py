"""Issue 16: a test gateway instance beside production on the same host.

The demo's test instance (inventories/demo/instances/test.yml: jupyterhub_instance
test, hub port 8091, proxy 8010/8011, base path /jupyter-test/) is converged
with the gateway play only, next to the production gateway the scenario
converged. alice spawns on each through Apache (her two jobs carry each
instance's own mark); restarting the test hub and converging the test
instance again leaves production's hub, proxy, files, server and job as they
were; playbooks/remove_instance.yml then removes the test instance (its job,
units, accounts, directories, sudo file, launcher, Apache routes, record)
and production still answers. No job is left behind.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any, Callable

from testinfra.host import Host

from conftest import ORIGIN, PASSWORDS, playbook_env, user_jobs, wait_job_gone, wait_until
from instance_postgresql import check_database_dropped, check_state_in_postgresql

PRESET = json.dumps({"profile": "debug-1c"})
PROJECT = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]).parents[1]
INSTANCE_VARS = PROJECT / "inventories" / "demo" / "instances" / "test.yml"
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


def _playbook(playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(PROJECT / playbook), "-e", f"@{INSTANCE_VARS}", *args],
        capture_output=True, text=True, env=playbook_env(), check=False, timeout=900,
    )


def _converge_test_instance() -> None:
    run = _playbook("site.yml", "-l", "hpcgw-gw", "--tags", "gateway")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def _production(gateway: Host) -> dict[str, str]:
    """What must not change: production's file checksums and its hub's and proxy's PIDs."""
    sums = gateway.check_output("sha256sum " + " ".join(PRODUCTION_FILES))
    pids = {unit: gateway.check_output(f"systemctl show -p MainPID --value {unit}").strip()
            for unit in ("jupyterhub.service", "configurable-http-proxy.service")}
    return {"sums": sums, **pids}


def _job_mark(gateway: Host, job_id: str) -> str:
    return gateway.check_output(f"squeue -h -j {job_id} -o %k").strip()


def _test_client(controller: Host, command: str, *args: str) -> dict[str, Any]:
    """spawnclient against the test instance's base path (through the same Apache)."""
    cmd = controller.run("python3 /usr/local/bin/spawnclient.py "
                         + " ".join(shlex.quote(a) for a in (command, TEST_BASE, "alice", PASSWORDS["alice"], *args)))
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout.strip().splitlines()[-1])


def test_a_test_instance_beside_production_shares_nothing(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host, quiet: None
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    (prod_job, _, _, _), = user_jobs(gateway, "alice")
    assert _job_mark(gateway, prod_job) == "hpcgw:hpcgw-gw"
    before = _production(gateway)
    test_job = ""
    try:
        _converge_test_instance()
        assert gateway.service("jupyterhub-test").is_running
        assert gateway.service("configurable-http-proxy-test").is_running
        assert gateway.user("jupyterhub-test").exists and gateway.user("chp-test").exists

        # alice on the test instance: her own server there, a second job with the test mark.
        on_test = _test_client(controller, "start", PRESET)
        assert on_test.get("ready") is True, on_test
        test_job = next(j for j, *_ in user_jobs(gateway, "alice") if j != prod_job)
        assert _job_mark(gateway, test_job) == "hpcgw:hpcgw-gw-test"
        ran = _test_client(controller, "run", "print(6 * 7)")
        assert "42" in str(ran), ran
        # Its hub's database is PostgreSQL (instances/test.yml): backed up and restored under her server.
        check_state_in_postgresql(gateway, _playbook, lambda: _test_client(controller, "run", "print(6 * 7)"))

        # Restart the test hub and converge the test instance again.
        gateway.check_output("systemctl restart jupyterhub-test.service")
        _converge_test_instance()
        assert _production(gateway) == before
        assert prod_job in [j for j, *_ in user_jobs(gateway, "alice")]
        assert test_job in [j for j, *_ in user_jobs(gateway, "alice")]
        ran = client("run", "alice", "print(6 * 7)")
        assert "42" in str(ran), ran

        # Remove the test instance: nothing of it is left, production answers.
        removed = _playbook("playbooks/remove_instance.yml")
        assert removed.returncode == 0, removed.stdout[-4000:] + removed.stderr[-2000:]
        assert wait_job_gone(gateway, test_job), f"the test instance's job {test_job} is still there"
        test_job = ""
        left = [p for p in TEST_PATHS if gateway.file(p).exists]
        assert left == []
        assert not gateway.user("jupyterhub-test").exists and not gateway.user("chp-test").exists
        check_database_dropped(gateway)
        units = gateway.check_output("systemctl list-units --all --plain --no-legend 'jupyterhub-test*' 'configurable-http-proxy-test*' 'hpcgw-*-test.*' 'hpcgw-local_test*'")
        assert units.strip() == ""
        assert not any(p in gateway.check_output("ss -ltnH") for p in (":8091 ", ":8010 ", ":8011 "))
        gone = controller.run(f"curl -sk -o /dev/null -w '%{{http_code}}' -u alice:{PASSWORDS['alice']} {TEST_BASE}/hub/api")
        assert gone.stdout.strip() == "404", gone.stdout
        assert _production(gateway) == before
        assert prod_job in [j for j, *_ in user_jobs(gateway, "alice")]
        ran = client("run", "alice", "print(6 * 7)")
        assert "42" in str(ran), ran
    finally:
        if test_job:
            gateway.run(f"scancel {test_job}")
        if gateway.file("/etc/hpcgw/instances/test.json").exists:
            _playbook("playbooks/remove_instance.yml")
        assert client("stop", "alice").get("stopped") is True
        wait_until(lambda: not user_jobs(gateway, "alice"), 90)
