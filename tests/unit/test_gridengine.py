"""Role gridengine: qconf's object text merged with the role's attributes
(idempotent: nothing to change once applied), its data checks, the
gateway's Grid Engine clusters checked against the master's queues, and the
preflight refusals through playbooks/validate.yml."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from ansible_run import ROOT, load_vars, run_inventory, run_playbook
from gridengine import gridengine_changes, gridengine_errors, gridengine_merged, gridengine_objects, gridengine_parse
from spawn_profiles import spawn_profiles_sge_errors

VALIDATE = ROOT / "playbooks" / "validate.yml"
QUEUE_SHOWN = """qname                 jupyter
hostlist              NONE
seq_no                0
load_thresholds       np_load_avg=1.75
pe_list               make
slots                 1
shell                 /bin/csh
shell_start_mode      posix_compliant
user_lists            NONE
complex_values        NONE
"""
DEMO = load_vars("inventories/demo/group_vars/all/gridengine.yml")


def _queue_object() -> dict[str, Any]:
    objects = gridengine_objects(DEMO["gridengine_parallel_environments"], {"control_slaves": "FALSE"},
                                 DEMO["gridengine_queues"], {"shell": "/bin/bash", "shell_start_mode": "unix_behavior"},
                                 ["hpcgw-c1", "hpcgw-c2"])
    assert [(o["kind"], o["name"]) for o in objects] == [("p", "smp"), ("q", "jupyter")]  # PEs before the queues naming them
    return objects[1]


def test_a_new_queue_gets_the_roles_attributes_and_keeps_the_others() -> None:
    wanted = _queue_object()["attributes"]
    assert gridengine_changes(QUEUE_SHOWN, wanted) == {
        "hostlist": "hpcgw-c1 hpcgw-c2", "slots": "2", "pe_list": "smp", "shell": "/bin/bash",
        "shell_start_mode": "unix_behavior", "load_thresholds": "NONE"}
    merged = gridengine_merged(QUEUE_SHOWN, wanted)
    parsed = gridengine_parse(merged)
    # the demo's own config (no load alarm), over Grid Engine's np_load_avg=1.75; the rest kept
    assert parsed["load_thresholds"] == "NONE" and parsed["qname"] == "jupyter"
    assert parsed["seq_no"] == "0" and parsed["user_lists"] == "NONE"
    assert list(parsed)[:3] == ["qname", "hostlist", "seq_no"]  # qconf's order kept
    # Applied, qconf shows it back (its own spacing, lists in its order): nothing left to change.
    shown_again = merged.replace("hpcgw-c1 hpcgw-c2", "hpcgw-c2 \\\n                      hpcgw-c1")
    assert gridengine_changes(shown_again, wanted) == {}


def test_a_changed_attribute_is_found_again() -> None:
    wanted = _queue_object()["attributes"]
    applied = gridengine_merged(QUEUE_SHOWN, wanted)
    drifted = re.sub(r"^slots +2$", "slots 4", applied, flags=re.M)
    assert drifted != applied
    assert gridengine_changes(drifted, wanted) == {"slots": "2"}


def test_values_are_spelled_as_qconf_does() -> None:
    assert gridengine_changes("control_slaves TRUE\npe_list NONE\n", {"control_slaves": False, "pe_list": []}) == {
        "control_slaves": "FALSE"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda pes, queues: queues[0].update(pe_list=["smp", "mpi"]),
         "gridengine_queues[0].pe_list names 'mpi', not in gridengine_parallel_environments (smp)"),
        (lambda pes, queues: pes.append({"name": "smp"}), "gridengine_parallel_environments[1].name: duplicate name 'smp'"),
        (lambda pes, queues: pes[0].update(name="smp 2"), "gridengine_parallel_environments[0].name must match"),
        (lambda pes, queues: queues[0].update(name="all q"), "gridengine_queues[0].name must match"),
        (lambda pes, queues: queues[0].update(slots=0), "gridengine_queues[0].slots must be a positive integer"),
        (lambda pes, queues: queues[0].update(shell="/bin/sh"), "gridengine_queues[0]: unknown key(s) shell"),
    ],
)
def test_wrong_queue_data_is_named(change: Any, message: str) -> None:
    pes, queues = copy.deepcopy(DEMO["gridengine_parallel_environments"]), copy.deepcopy(DEMO["gridengine_queues"])
    assert gridengine_errors(pes, queues) == []
    change(pes, queues)
    assert any(message in e for e in gridengine_errors(pes, queues)), gridengine_errors(pes, queues)


SGE_CLUSTER = {"name": "gridengine", "scheduler": "sge", "submit": "ssh", "login_host": "ctl",
               "parallel_environment": "smp", "queues": [{"name": "jupyter", "cores": {"max": 2}}]}
REMOTE = {"ctl": {"queues": DEMO["gridengine_queues"], "parallel_environments": DEMO["gridengine_parallel_environments"]}}


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        (SGE_CLUSTER, ""),
        (dict(SGE_CLUSTER, queues=[{"name": "jupyter"}], parallel_environment="mpi"), ""),  # one core: no PE used
        (dict(SGE_CLUSTER, parallel_environment="mpi"),
         "spawn_profiles_clusters[0].queues[0].parallel_environment: 'mpi' is not in the pe_list of queue 'jupyter' "
         "in gridengine_queues of ctl (smp)"),
        (dict(SGE_CLUSTER, queues=[{"name": "batch"}]),
         "spawn_profiles_clusters[0].queues[0].name: queue 'batch' is not in gridengine_queues of ctl (jupyter)"),
        (dict(SGE_CLUSTER, queues=[{"name": "jupyter", "cores": {"max": 4}}]),
         "spawn_profiles_clusters[0].queues[0].cores.max: 4 is above the 2 slot(s) per host of queue 'jupyter'"),
        (dict(SGE_CLUSTER, login_host="elsewhere", parallel_environment="mpi"), ""),  # not the bundle's: not checked
    ],
)
def test_gateway_sge_queues_are_checked_against_the_master(cluster: dict[str, Any], message: str) -> None:
    errors = spawn_profiles_sge_errors([cluster], REMOTE)
    assert errors == [] if not message else any(e.startswith(message) for e in errors), errors


def test_the_demo_gateway_matches_the_demo_master() -> None:
    clusters = load_vars("inventories/demo/group_vars/gateway/spawn_profiles.yml")["spawn_profiles_clusters"]
    sge = [c for c in clusters if c["scheduler"] == "sge"]
    assert [c["login_host"] for c in sge] == ["hpcgw-ctl"]
    assert spawn_profiles_sge_errors(clusters, {"hpcgw-ctl": REMOTE["ctl"]}) == []


# --- the preflight (playbooks/validate.yml; each run costs ~5 s of CPU) ----

def _master(**changes: Any) -> dict[str, Any]:
    return dict(DEMO, **dict({"gridengine_exec_hosts": ["gridengine_master-host"]}, **changes))


def _assert_refused(result: Any, expected: str) -> None:
    assert result.returncode != 0
    assert expected in " ".join(result.stdout.split()), result.stdout


def test_preflight_refuses_a_queue_naming_an_unknown_pe(tmp_path: Path) -> None:
    master = _master(gridengine_queues=[{"name": "jupyter", "slots": 2, "pe_list": ["mpi"]}])
    result = run_playbook(VALIDATE, tmp_path, {"gridengine_master": master})
    _assert_refused(result, "gridengine: gridengine_queues[0].pe_list names 'mpi', not in gridengine_parallel_environments (smp)")


def _gateway(tmp_path: Path, **cluster: Any) -> dict[str, Any]:
    key = tmp_path / "munge.key"
    key.write_bytes(b"k" * 64)
    gateway = dict(load_vars("inventories/demo/group_vars/all/slurm.yml", "inventories/demo/group_vars/all/demo_users.yml",
                             "inventories/demo/group_vars/gateway/front.yml"), munge_key_file=str(key))
    gateway.pop("munge_key_source_host")  # the demo's key host is not in this inventory
    gateway["spawn_profiles_clusters"] = [dict(SGE_CLUSTER, login_host="sgemaster", **cluster)]
    return gateway


def test_preflight_refuses_a_pe_the_masters_queue_does_not_offer(tmp_path: Path) -> None:
    # (host names of the inventory: a login_host is a DNS name, no "_")
    inventory = {"all": {"children": {
        "gateway": {"hosts": {"gw": _gateway(tmp_path, parallel_environment="mpi")}},
        "gridengine_master": {"hosts": {"sgemaster": _master(gridengine_exec_hosts=["sgemaster"])}}}}}
    result = run_inventory(VALIDATE, tmp_path, inventory)
    _assert_refused(result, "spawn_profiles_clusters[0].queues[0].parallel_environment: 'mpi' is not in the pe_list of "
                            "queue 'jupyter' in gridengine_queues of sgemaster (smp)")


def test_preflight_refuses_a_multicore_sge_queue_without_a_pe(tmp_path: Path) -> None:
    result = run_playbook(VALIDATE, tmp_path, {"gateway": _gateway(tmp_path, parallel_environment=None)})
    _assert_refused(result, "spawn_profiles_clusters[0].queues[0].parallel_environment: queue 'jupyter' offers up to 2 cores")
