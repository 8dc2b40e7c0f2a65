"""Issue 13, the version matrix: the previous JupyterHub major end to end,
on an instance of its own beside production.

The compute nodes get a notebook environment of PREVIOUS_JUPYTERHUB in a
prefix of its own (production's stays; installed from the verifier's
collection on, conftest.background_run), then an instance of the gateway
(molecule/default/vars/instance-previous-major.yml: "prev", hub port 8092,
proxy 8012/8013, /jupyter-prev/) is converged on that release, both from
the previous major's lock files. Her server there runs it end to end: the
hub's API says the release, her kernel prints it and the prefix. The
instance is removed (nothing of it is left) and the prefix deleted;
production still runs the current release, its files and PIDs unchanged,
and her production server answers throughout.

"She" is USER, a bench account that no other module uses: the scenario runs
in the background beside the modules of conftest.SCENARIO_WINDOW and beside
test_instance.py's upgrade of the demo's test instance (so two instances
are converged, used and removed at once next to production). The test
below waits for it and reports its outcome.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import (COMPUTE, CONTROLLER, GATEWAY, SCENARIO_PASSWORDS, as_user, background_playbook, background_run,
                      background_scenario, container_host, run_scenario, spawn_client, user_jobs, wait_job_gone,
                      wait_no_jobs)
from instances import CURRENT_JUPYTERHUB, PREVIOUS_JUPYTERHUB, PROJECT, Instance, production

USER = "burst28"
# Her production server runs through the scenario (minutes beside the window).
PRESET = json.dumps({"profile": "custom", "cluster_queue": "testcluster/debug", "walltime_min": "30"})
PREVIOUS = Instance(Path(__file__).parents[1] / "vars" / "instance-previous-major.yml")
# Its notebook environment on the compute nodes (shared /opt/hpcgw), beside production's.
PREFIX = "/opt/hpcgw/notebook-previous-major"
MATRIX = ("-e", f"jupyterhub_version={PREVIOUS_JUPYTERHUB}", "-e", f"notebook_env_prefix={PREFIX}",
          "-e", f"spawn_profiles_notebook_prefix={PREFIX}")
# That environment's install (a minute or two of pip on the nodes, in a prefix
# nothing else uses) starts at collection, beside the modules before the
# window, which mostly wait; the scenario waits for it first.
NODES = "previous-major-nodes"
background_run(Path(__file__).name, NODES, str(PROJECT / "site.yml"), "-l", "notebook_nodes",
               "--tags", "notebook_env", "-e", f"@{PREVIOUS.vars_file}", *MATRIX)


@background_scenario
def previous_major_beside_production() -> None:
    gateway, controller = container_host(GATEWAY), container_host(CONTROLLER)
    client = as_user(spawn_client(controller), USER)
    prev_client = as_user(spawn_client(controller, PREVIOUS.base), USER)
    assert wait_no_jobs(gateway, USER) == [], f"{USER} has a job from an earlier run"
    started = client("start", PRESET)
    assert started.get("ready") is True, started
    (prod_job, _, _, _), = user_jobs(gateway, USER)
    before = production(gateway)
    prev_job = ""
    try:
        rc, nodes = background_playbook(NODES)
        assert rc == 0, nodes[-4000:]
        PREVIOUS.converge(*MATRIX)
        assert PREVIOUS.record(gateway)["jupyterhub_version"] == PREVIOUS_JUPYTERHUB
        hub = gateway.check_output(f"curl -s {PREVIOUS.hub_api}")
        assert json.loads(hub)["version"] == PREVIOUS_JUPYTERHUB, hub

        on_prev = prev_client("start", PRESET)
        assert on_prev.get("ready") is True, on_prev
        prev_job = next(j for j, *_ in user_jobs(gateway, USER) if j != prod_job)
        ran = prev_client("run", "import sys, jupyterhub, jupyter_server\n"
                                 "print(jupyterhub.__version__, sys.prefix, jupyter_server.__version__)")
        assert ran.get("stdout", "").split()[:2] == [PREVIOUS_JUPYTERHUB, PREFIX], ran
        assert prev_client("stop").get("stopped") is True
        assert wait_job_gone(gateway, prev_job), f"the instance's job {prev_job} is still there"
        prev_job = ""

        PREVIOUS.remove(gateway, controller, USER, SCENARIO_PASSWORDS[USER])
        assert production(gateway) == before
        assert prod_job in [j for j, *_ in user_jobs(gateway, USER)]
        ran = client("run", "import jupyterhub; print(jupyterhub.__version__)")
        assert ran.get("stdout", "").split() == [CURRENT_JUPYTERHUB], ran
    finally:
        if prev_job:
            gateway.run(f"scancel {prev_job}")
        if gateway.file(f"/etc/hpcgw/instances/{PREVIOUS.name}.json").exists:
            PREVIOUS.playbook("playbooks/remove_instance.yml")
        # the notebook environment (shared by the nodes), also after a failure
        container_host(COMPUTE[0]).check_output(f"rm -rf {PREFIX} {PREFIX}.constraints.txt")
        assert client("stop").get("stopped") is True
        wait_no_jobs(gateway, USER)


def test_the_previous_jupyterhub_major_end_to_end_beside_production() -> None:
    run_scenario(Path(__file__).name)
