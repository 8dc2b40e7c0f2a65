"""playbooks/validate.yml stops a wrong inventory with a message that names
the variable, before any change (it runs against localhost, changing nothing)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_run import ROOT, load_vars, run_playbook

VALIDATE = ROOT / "playbooks" / "validate.yml"


def _assert_refused(result: subprocess.CompletedProcess[str], expected: str) -> None:
    """The play stopped, and its output (whitespace folded) names `expected`."""
    assert result.returncode != 0
    assert expected in " ".join(result.stdout.split()), result.stdout


def _groups(all_vars: dict[str, Any], ctl: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    base = dict(all_vars, munge_key_source_host="slurm_controller-host",
                **load_vars("inventories/demo/group_vars/all/demo_users.yml"))
    front = load_vars("inventories/demo/group_vars/gateway/front.yml")
    return {
        "gateway": dict(base, **front),
        "slurm_controller": {**base, "slurm_server_daemon": "slurmctld", **(ctl or {})},
        "slurm_compute": dict(base, slurm_server_daemon="slurmd"),
    }


@pytest.fixture()
def good() -> dict[str, Any]:
    return load_vars("inventories/demo/group_vars/all/slurm.yml")


def test_the_test_inventory_passes(tmp_path: Path, good: dict[str, Any]) -> None:
    result = run_playbook(VALIDATE, tmp_path, _groups(good))
    assert result.returncode == 0, result.stdout + result.stderr


def _bad(good: dict[str, Any], change: str) -> dict[str, Any]:
    data = copy.deepcopy(good)
    parts = data["slurm_client_partitions"]
    if change == "default_above_max":
        parts[0]["default_time"] = "01:00:00"
    elif change == "duplicate_partition":
        parts.append(dict(parts[0]))
    elif change == "missing_node":
        parts[0]["nodes"] = ["hpcgw-c9"]
    elif change == "bad_time":
        parts[1]["max_time"] = "1h"
    elif change == "two_defaults":
        parts[1]["default"] = True
    elif change == "bad_cluster_name":
        data["slurm_client_cluster_name"] = "Test Cluster"
    elif change == "node_cpus_not_int":
        data["slurm_client_nodes"][0]["cpus"] = "many"
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("default_above_max", "partition 'debug' in slurm_client_partitions"),
        ("duplicate_partition", "slurm_client_partitions"),
        ("missing_node", "got ['hpcgw-c9']"),
        ("bad_time", "max_time '1h'"),
        ("two_defaults", "at most one partition may have default: true"),
        ("bad_cluster_name", "slurm_client_cluster_name"),
        ("node_cpus_not_int", "cpus"),
    ],
)
def test_wrong_cluster_data_stops_the_play(tmp_path: Path, good: dict[str, Any],
                                           change: str, expected: str) -> None:
    result = run_playbook(VALIDATE, tmp_path, _groups(_bad(good, change)))
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in " ".join(out.split()), out


def test_missing_munge_key_source_is_named(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    for host_vars in groups.values():
        host_vars["munge_key_source_host"] = ""
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode != 0
    assert "munge_key_source_host" in result.stdout


def test_unknown_daemon_is_refused(tmp_path: Path, good: dict[str, Any]) -> None:
    result = run_playbook(VALIDATE, tmp_path, _groups(good, {"slurm_server_daemon": "slurmdbd"}))
    assert result.returncode != 0
    assert "slurm_server_daemon" in result.stdout


CLUSTER = {
    "name": "testcluster", "scheduler": "slurm",
    "queues": [{"name": "debug", "cores": {"default": 1, "max": 2}}],
}


@pytest.mark.parametrize(
    ("clusters", "presets", "expected"),
    [
        ([dict(CLUSTER, scheduler="slurmx")], [], "spawn_profiles_clusters[0].scheduler: must be one of slurm"),
        ([dict(CLUSTER, queues=[{"name": "debug", "cores": {"default": 4, "max": 2}}])], [],
         "spawn_profiles_clusters[0].queues[0].cores.default: 4 is outside 1..2"),
        ([CLUSTER, CLUSTER], [], "spawn_profiles_clusters: duplicate name 'testcluster'"),
        ([dict(CLUSTER, submit="ssh", login_host="login1", status_query="shared")], [],
         "spawn_profiles_clusters[0].status_query: shared needs scheduler: slurm and submit: local"),
        ([CLUSTER], [{"key": "gpu1", "cluster": "testcluster", "queue": "gpu"}],
         "spawn_profiles_presets[0]: unknown queue 'gpu' on cluster 'testcluster'"),
        ([dict(CLUSTER, port_range="9099-9000")], [],
         "spawn_profiles_clusters[0].port_range: '9099-9000' is reversed"),
        ([dict(CLUSTER, port_range="80-8080")], [],
         "spawn_profiles_clusters[0].port_range: '80-8080' starts below 1024"),
    ],
)
def test_wrong_spawn_profiles_stop_the_play(tmp_path: Path, good: dict[str, Any], clusters: list[Any],
                                            presets: list[Any], expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(spawn_profiles_clusters=clusters, spawn_profiles_presets=presets)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


@pytest.mark.parametrize("interval", [9, 3601])
def test_a_poll_interval_outside_its_range_stops_the_play(tmp_path: Path, good: dict[str, Any], interval: int) -> None:
    groups = _groups(good)
    groups["gateway"].update(spawn_profiles_clusters=[CLUSTER], spawn_profiles_poll_interval=interval)
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode != 0
    assert f"spawn_profiles_poll_interval must be 10 to 3600 seconds (got {interval})" in " ".join(result.stdout.split()), \
        result.stdout


@pytest.mark.parametrize("interval", [4, -30])
def test_a_too_short_availability_interval_stops_the_play(tmp_path: Path, good: dict[str, Any], interval: int) -> None:
    groups = _groups(good)
    groups["gateway"].update(spawn_profiles_clusters=[CLUSTER], spawn_profiles_availability_interval=interval)
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode != 0
    assert "spawn_profiles_availability_interval must be 0" in " ".join(result.stdout.split()), result.stdout


def test_good_spawn_profiles_pass(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"].update(spawn_profiles_clusters=[CLUSTER],
                             spawn_profiles_presets=[{"key": "dbg", "cluster": "testcluster", "queue": "debug"}])
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr


DEMO_ACCOUNTS = load_vars("inventories/demo/group_vars/slurm_controller/slurm.yml")["slurm_server_accounts"]


@pytest.mark.parametrize(
    ("gateway", "ctl", "expected"),
    [
        # the hub would ask sacctmgr about a cluster the gateway's slurm.conf does not name
        ({"spawn_profiles_clusters": [dict(CLUSTER, account_source="sacctmgr", sacctmgr_cluster="other")]}, {},
         "asked about as SLURM cluster(s) other, and the gateway's slurm.conf names 'testcluster'"),
        ({"spawn_profiles_clusters": [dict(CLUSTER, account_source="sacctmgr")], "spawn_profiles_accounts_ttl": 0}, {},
         "spawn_profiles_accounts_ttl must be at least 5 seconds (got 0)"),
        ({"spawn_profiles_clusters": [dict(CLUSTER, account_source="sacctmgr", submit="ssh", login_host="login1")]}, {},
         "spawn_profiles_clusters[0].account_source: sacctmgr needs scheduler: slurm and submit: local"),
        ({}, {"slurm_server_accounting": True, "slurm_server_accounts": [{"name": "Astro", "users": ["alice"]}]},
         "slurm_server_accounts[0].name must be a SLURM account name in lower case"),
        ({}, {"slurm_server_accounting": True,
              "slurm_server_accounts": [{"name": "astro", "users": ["alice"]}, {"name": "bio", "users": ["bob"],
                                                                                  "default": ["alice"]}]},
         "slurm_server_accounts[1].default: 'alice' is not in this account's users"),
        ({}, {"slurm_server_accounting": True, "slurm_server_accounts": [{"name": "astro", "users": ["alice,bob"]}]},
         "slurm_server_accounts[0].users must be a list of user names"),
        ({}, {"slurm_server_accounts": DEMO_ACCOUNTS},
         "slurm_server_accounts needs slurm_server_accounting: true on the controller"),
    ],
)
def test_wrong_account_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], gateway: dict[str, Any],
                                              ctl: dict[str, Any], expected: str) -> None:
    groups = _groups(good, ctl)
    groups["gateway"].update(gateway)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def test_the_demo_accounts_pass(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good, {"slurm_server_accounting": True, "slurm_server_accounts": DEMO_ACCOUNTS})
    demo = load_vars("inventories/demo/group_vars/gateway/spawn_profiles.yml")
    local = [c for c in demo["spawn_profiles_clusters"] if c.get("submit") == "local"]  # no login node here
    assert local and all(c.get("account_source") == "sacctmgr" for c in local)
    groups["gateway"].update(spawn_profiles_clusters=local, spawn_profiles_presets=[])
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr


def _example_gateway(tmp_path: Path) -> dict[str, Any]:
    """The example inventory's gateway variables, with a stand-in munge key."""
    gateway = load_vars("inventories/example/group_vars/gateway/slurm.yml",
                        "inventories/example/group_vars/gateway/front.yml",
                        "inventories/example/group_vars/gateway/spawn_profiles.yml")
    key = tmp_path / "munge.key"
    key.write_bytes(b"k" * 64)
    gateway["munge_key_file"] = str(key)
    return gateway


def test_the_example_inventory_passes(tmp_path: Path) -> None:
    result = run_playbook(VALIDATE, tmp_path, {"gateway": _example_gateway(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr


def test_ssh_login_host_without_a_known_key_is_named(tmp_path: Path) -> None:
    gateway = _example_gateway(tmp_path)
    gateway["ssh_submit_known_hosts"] = []
    result = run_playbook(VALIDATE, tmp_path, {"gateway": gateway})
    assert result.returncode != 0
    assert ("ssh_submit_login_hosts: login.other.example.edu is neither in the inventory group login_nodes"
            in " ".join(result.stdout.split())), result.stdout


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ssh_submit_known_hosts": ["login.other.example.edu ssh-ed25519"]}, "is not a known_hosts line"),
        ({"ssh_submit_env": ["JUPYTERHUB_*", "PATH; rm"]}, "ssh_submit_env: 'PATH; rm'"),
        ({"jupyterhub_sudo_ssh_targets": [{"host": "login1", "scheduler": "slurm"}]},
         "jupyterhub_sudo_ssh_targets is no longer used: set spawn_profiles_clusters (role spawn_profiles;"),
        ({"spawn_profiles_clusters": [dict(CLUSTER, submit="ssh", login_host="login ALL")]},
         "spawn_profiles_clusters[0].login_host: must name the login host"),
        ({"spawn_profiles_clusters": [dict(CLUSTER, scheduler="condor", submit="ssh", login_host="login.other.example.edu")],
          "spawn_profiles_presets": []},
         "spawn_profiles_clusters[0].scheduler: 'condor' with submit 'ssh' (cluster 'testcluster') cannot work"),
        ({"jupyterhub_sudo_ssh_hosts": ["login1"]}, "jupyterhub_sudo_ssh_hosts is no longer used"),
        ({"jupyterhub_sudo_runas_group": ""}, "jupyterhub_sudo_runas_group must name the group"),
        ({"jupyterhub_sudo_runas_group": "ALL, root"}, "jupyterhub_sudo_runas_group must name the group"),
        ({"jupyterhub_profiles": [{"display": "SLURM", "key": "s1", "class": "batchspawner.SlurmSpawner"}]},
         "jupyterhub_profiles: no longer used"),
        ({"jupyterhub_local_profile_name": "Gateway", "jupyterhub_local_profile_enabled": False},
         "jupyterhub_local_profile_enabled, jupyterhub_local_profile_name: no longer used"),
    ],
)
def test_wrong_ssh_submit_settings_stop_the_play(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    gateway = dict(_example_gateway(tmp_path), **change)
    result = run_playbook(VALIDATE, tmp_path, {"gateway": gateway})
    _assert_refused(result, expected)


GROUPS_OK = {
    "jupyterhub_base_url": "/jupyter/",
    "jupyterhub_allowed_groups": ["hpc-users"],
    "jupyterhub_admin_groups": ["gw-admins"],
    "gateway_apache_basic_users": [
        {"name": "alice", "password": "alice-test-pw"},
        {"name": "erin", "password": "erin-test-pw", "groups": ["physics", "hpc-users"]},
    ],
}


def test_groups_and_base_path_pass(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"].update(GROUPS_OK)
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"gateway_apache_basic_users": [{"name": "erin", "password": "x", "groups": ["hpc users"]}]},
         "gateway_apache_basic_users entry 'erin'"),
        ({"gateway_apache_basic_users": [{"name": "erin", "password": "x", "groups": "hpc-users"}]},
         "gateway_apache_basic_users entry 'erin'"),
        ({"gateway_apache_basic_users": [{"name": "er'in", "password": "x", "groups": ["hpc-users"]}]},
         "the name may only hold letters"),
        ({"gateway_apache_groups_header": ""}, "basic users with groups need gateway_apache_groups_header (got '')"),
        ({"gateway_apache_groups_env": "isMemberOf"}, "gateway_apache_groups_env must be empty"),
        ({"jupyterhub_auth_groups_header": "", "gateway_apache_basic_users": [{"name": "alice", "password": "x"}]},
         "they need jupyterhub_auth_groups_header (got '')"),
        ({"jupyterhub_admin_groups": ["a;b"]}, "the separator ';' (jupyterhub_auth_groups_separator)"),
        ({"jupyterhub_allowed_groups": [" hpc"]}, "jupyterhub_allowed_groups and jupyterhub_admin_groups"),
        ({"jupyterhub_base_url": "/jupyter"}, "jupyterhub_base_url must start and end with '/'"),
        ({"gateway_apache_base_path": "/hub2"}, "gateway_apache_base_path '/hub2' does not match jupyterhub_base_url '/jupyter/'"),
    ],
)
def test_wrong_groups_or_base_path_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                                 expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(GROUPS_OK)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_auth_strip_realm": True, "jupyterhub_auth_allowed_realms": []},
         "name the realms (IdPs) whose users own the local accounts in jupyterhub_auth_allowed_realms, e.g. [example.edu] (got [])"),
        ({"jupyterhub_auth_strip_realm": True, "jupyterhub_auth_allowed_realms": ["example.edu; x"]},
         'got ["example.edu; x"]'),
    ],
)
def test_wrong_realm_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                            expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def test_stripped_realms_with_allowed_realms_pass(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"].update(jupyterhub_auth_strip_realm=True, jupyterhub_auth_allowed_realms=["EXAMPLE.ORG"])
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"gateway_apache_metrics_allowed_networks": ["prometheus.example.org"]},
         'gateway_apache_metrics_allowed_networks: each entry is an IP address or network for Apache\'s Require ip'),
        ({"gateway_apache_metrics_allowed_networks": ["10.0.0.0/8 all"]}, 'got ["10.0.0.0/8 all"]'),
        ({"jupyterhub_metrics_service_name": "Metrics Reader"}, "jupyterhub_metrics_service_name must be a lowercase name"),
        ({"jupyterhub_metrics_token_file": "/etc/jupyterhub/secrets/gateway_secret"},
         "not another secret's file (got '/etc/jupyterhub/secrets/gateway_secret')"),
        ({"jupyterhub_metrics_token_file": "metrics_token"}, "jupyterhub_metrics_token_file an absolute path"),
    ],
)
def test_wrong_metrics_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                              expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def test_metrics_networks_of_every_form_pass(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"].update(gateway_apache_metrics_allowed_networks=[
        "10.1.2.3", "10.1.2.0/24", "10.1.0.0/255.255.0.0", "2001:db8::/32", "172.16"])
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr


# --- one owner per fact (issue 14): a setting moved to its owner is named ---

@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_proxy_public_port": 8000}, "jupyterhub_proxy_public_port is no longer used: set chp_port (role chp)"),
        ({"jupyterhub_proxy_api_url": "http://127.0.0.1:8001"},
         "jupyterhub_proxy_api_url is no longer used: set chp_api_ip and chp_api_port (role chp)"),
        ({"jupyterhub_slurm_bin_dir": "/usr/bin"},
         "jupyterhub_slurm_bin_dir is no longer used: set spawn_profiles_slurm_bin_dir (role spawn_profiles)"),
        ({"jupyterhub_sudo_ssh_config": "/etc/ssh/x"},
         "jupyterhub_sudo_ssh_config is no longer used: set ssh_submit_client_config (role ssh_submit)"),
        ({"chp_auth_env_file": "/etc/x.env"}, "chp_auth_env_file is no longer used: the proxy reads the token file role jupyterhub"),
        ({"spawn_profiles_exec_prefix": {"local": "sudo -u {username}"}}, "spawn_profiles_exec_prefix is no longer a setting"),
        ({"ssh_submit_client_config": "/etc/ssh/my config"},
         "ssh_submit_client_config (got '/etc/ssh/my config') must be absolute paths"),
    ],
)
def test_moved_settings_are_named(tmp_path: Path, good: dict[str, Any], change: dict[str, Any], expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def _with_notebook_nodes(groups: dict[str, dict[str, Any]], **node_vars: Any) -> dict[str, dict[str, Any]]:
    groups["notebook_nodes"] = dict(load_vars("inventories/demo/group_vars/notebook_nodes/notebook_env.yml"), **node_vars)
    return groups


def test_the_notebook_side_follows_the_hubs_version(tmp_path: Path, good: dict[str, Any]) -> None:
    result = run_playbook(VALIDATE, tmp_path, _with_notebook_nodes(_groups(good)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("gateway", "node", "expected"),
    [
        ({}, {"notebook_env_jupyterhub_version": "6.1.1"},
         "notebook_env_jupyterhub_version is no longer used: the notebook side always installs the hub's version, jupyterhub_version"),
        ({"jupyterhub_version": "5.5.4"}, {},
         "jupyterhub_version: notebook_nodes-host installs 6.1.1 for the single-user servers but gateway gateway-host runs the hub 5.5.4"),
    ],
)
def test_a_second_jupyterhub_version_is_refused(tmp_path: Path, good: dict[str, Any], gateway: dict[str, Any],
                                                node: dict[str, Any], expected: str) -> None:
    groups = _with_notebook_nodes(_groups(good), **node)
    groups["gateway"].update(gateway)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def test_the_previous_majors_release_passes_on_both_sides(tmp_path: Path, good: dict[str, Any]) -> None:
    """JupyterHub 5.5.4 (the previous major's lock files) on the hub and the nodes."""
    groups = _with_notebook_nodes(_groups(good), jupyterhub_version="5.5.4")
    groups["gateway"].update(jupyterhub_version="5.5.4")
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", ["6.1.2", "5.5.3", "7.0.0"])
def test_a_release_without_a_lock_file_is_refused(tmp_path: Path, good: dict[str, Any], version: str) -> None:
    """pip would refuse it against the lock, after the run changed other
    things: the hub's side (a gateway alone) and the nodes' side say so first."""
    groups = _groups(good)
    groups["gateway"].update(jupyterhub_version=version)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, "jupyterhub_version must be a release this bundle has a lock file for (6.1.1, 5.5.4: the current and "
                            f"the previous major; all >= 5.5.1, the 2026 advisories) and the spawners pinned to batchspawner 1.3.0 / "
                            f'wrapspawner 1.0.1 (got jupyterhub_version "{version}"')
    result = run_playbook(VALIDATE, tmp_path, _with_notebook_nodes(_groups(good), jupyterhub_version=version))
    _assert_refused(result, f'notebook_env: jupyterhub_version must be a release this role has a lock file for (6.1.1, 5.5.4; got "{version}")')


# --- checks that passed what cannot work (issue 14) --------------------------

@pytest.mark.parametrize("scheduler", ["pbs", "torque", "sge", "lsf", "condor"])
def test_a_local_cluster_without_sudo_rules_is_refused(tmp_path: Path, good: dict[str, Any], scheduler: str) -> None:
    """Only SLURM's commands are allowed locally: any other local scheduler
    passed every check and was refused by sudo at the first spawn."""
    groups = _groups(good)
    # (a two-core Grid Engine queue names its parallel environment, or the catalog refuses it first)
    pe = {"parallel_environment": "smp"} if scheduler == "sge" else {}
    groups["gateway"].update(spawn_profiles_clusters=[dict(CLUSTER, scheduler=scheduler, submit="local", **pe)])
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert (f"spawn_profiles_clusters[0].scheduler: '{scheduler}' with submit 'local' (cluster 'testcluster') cannot work"
            in out), result.stdout
    assert "submit: local works with slurm" in out
    assert "submit: ssh with slurm, torque, pbs, sge, lsf" in out


def test_pbs_over_ssh_passes(tmp_path: Path) -> None:
    gateway = _example_gateway(tmp_path)
    gateway["spawn_profiles_clusters"] = [dict(c, scheduler="pbs") if c["name"] == "othercluster" else c
                                          for c in gateway["spawn_profiles_clusters"]]
    result = run_playbook(VALIDATE, tmp_path, {"gateway": gateway})
    assert result.returncode == 0, result.stdout + result.stderr


# The demo's partitions: debug (hpcgw-c1/c2: 16 CPUs, 16384 MB, no GPU; max_time 00:30:00), batch (ALL, 1 day).
@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        ({"name": "debug", "walltime_min": {"default": 10, "max": 60}},
         "spawn_profiles_clusters[0].queues[0].walltime_min.max: 60 is above what partition 'debug' in "
         "slurm_client_partitions allows (30: max_time 00:30:00)"),
        ({"name": "batch", "walltime_min": {"default": 10, "max": 1441}},
         "spawn_profiles_clusters[0].queues[0].walltime_min.max: 1441 is above what partition 'batch'"),
        ({"name": "debug", "cores": {"default": 1, "max": 17}},
         "spawn_profiles_clusters[0].queues[0].cores.max: 17 is above what partition 'debug' in slurm_client_partitions "
         "allows (16: its largest node's cpus 16)"),
        ({"name": "batch", "memory_gb": {"default": 1, "max": 17}},
         "spawn_profiles_clusters[0].queues[0].memory_gb.max: 17 is above what partition 'batch' in slurm_client_partitions "
         "allows (16: its largest node's real_memory 16384)"),
        ({"name": "debug", "gpus": {"default": 0, "max": 1}},
         "spawn_profiles_clusters[0].queues[0].gpus.max: 1 is above what partition 'debug'"),
    ],
)
def test_a_queue_above_its_partition_is_refused(tmp_path: Path, good: dict[str, Any], queue: dict[str, Any],
                                                expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(spawn_profiles_clusters=[dict(CLUSTER, queues=[queue])])
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def test_queues_within_or_outside_the_known_partitions_pass(tmp_path: Path, good: dict[str, Any]) -> None:
    """At the partitions' limits, and a queue whose partition the bundle does not describe."""
    queues = [
        {"name": "debug", "cores": {"max": 16}, "memory_gb": {"max": 16}, "walltime_min": {"default": 10, "max": 30}},
        {"name": "batch", "cores": {"max": 16}, "walltime_min": {"default": 10, "max": 1440}},
        {"name": "elsewhere", "cores": {"max": 128}, "memory_gb": {"max": 2000}, "walltime_min": {"default": 10, "max": 99999},
         "gpus": {"default": 0, "max": 8}},
    ]
    groups = _groups(good)
    groups["gateway"].update(spawn_profiles_clusters=[dict(CLUSTER, queues=queues)])
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_hub_port": "eighty"}, "argument 'jupyterhub_hub_port' is of type str and we were unable to convert to int"),
        ({"jupyterhub_allowed_users": {"alice": True}}, "argument 'jupyterhub_allowed_users' is of type dict and we were unable to convert to list"),
        ({"jupyterhub_log_level": "LOUD"}, "value of jupyterhub_log_level must be one of: DEBUG, INFO, WARNING, ERROR, CRITICAL, got: LOUD"),
        ({"chp_timeout_ms": "soon"}, "argument 'chp_timeout_ms' is of type str and we were unable to convert to int"),
        ({"chp_node_packages": {"nodejs": 18}}, "argument 'chp_node_packages' is of type dict and we were unable to convert to list"),
        ({"gateway_apache_tls_selfsigned": "maybe"}, "argument 'gateway_apache_tls_selfsigned' is of type str and we were unable to convert to bool"),
        ({"gateway_apache_sso": "kerberos"}, "value of gateway_apache_sso must be one of: shibboleth, mellon, openidc, basic, got: kerberos"),
        ({"gateway_apache_basic_users": [{"name": "alice"}]}, "missing required arguments: password found in gateway_apache_basic_users"),
    ],
)
def test_wrong_type_of_a_gateway_option_stops_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                                       expected: str) -> None:
    """The gateway roles' argument specs run in the preflight: a wrong type or
    choice stops playbooks/validate.yml (before site.yml's SLURM play) and the
    message names the option."""
    groups = _groups(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "Validation of arguments failed" in out, result.stdout
    assert expected in out, result.stdout
    # any_errors_fatal: no play after the failing one runs on any host.
    assert "PLAY [Validate the SSH submission settings]" not in out


def test_site_yml_validates_before_it_changes_anything() -> None:
    site = yaml.safe_load((ROOT / "site.yml").read_text())
    assert site[0]["ansible.builtin.import_playbook"] == "playbooks/validate.yml"
    validate = yaml.safe_load(VALIDATE.read_text())
    roles_checked = {task["ansible.builtin.include_role"]["name"] for play in validate for task in play["tasks"]
                     if task["ansible.builtin.include_role"].get("tasks_from") == "validate.yml"}
    assert roles_checked == {p.name for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file()}
    for role in roles_checked:
        first = yaml.safe_load((ROOT / "roles" / role / "tasks" / "validate.yml").read_text())[0]
        assert "ansible.builtin.validate_argument_spec" in first, role


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_idle_culler_timeout": 30}, "jupyterhub_idle_culler_timeout must be at least 60 seconds"),
        ({"jupyterhub_idle_culler_timeout": 90, "jupyterhub_route_check_interval": 120},
         "got 90 and 120: activity reaches the hub at that interval"),
        ({"jupyterhub_idle_culler_interval": 5}, "jupyterhub_idle_culler_interval between 10 and the timeout (got 5)"),
        ({"jupyterhub_idle_culler_interval": 7200}, "jupyterhub_idle_culler_interval between 10 and the timeout (got 7200)"),
        ({"jupyterhub_idle_culler_max_age": 600}, "jupyterhub_idle_culler_max_age 0 (never) or at least the timeout (got 600)"),
        ({"jupyterhub_idle_culler_timeout": "an hour"}, "jupyterhub_idle_culler_timeout"),
        ({"jupyterhub_audit_identifier": "hpcgw audit"}, "jupyterhub_audit_identifier must be a syslog tag"),
        ({"jupyterhub_audit_identifier": ""}, "jupyterhub_audit_identifier must be a syslog tag"),
    ],
)
def test_wrong_culler_or_audit_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                                      expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


@pytest.mark.parametrize(
    ("ctl", "all_vars", "expected"),
    [
        ({"slurm_server_accounting": True}, {"slurm_client_accounting_host": ""}, "slurm_client_accounting_host set"),
        ({"slurm_server_accounting": True, "slurm_server_accounting_config": {"StoragePass": "x"}}, {},
         "without StorageUser, StorageLoc or StoragePass"),
        ({"slurm_server_accounting": True, "slurm_server_accounting_db_name": "acct; DROP"}, {},
         "slurm_server_accounting_db_name"),
        ({}, {"slurm_client_accounting_host": "ctl host"}, "slurm_client_accounting_host must be empty"),
    ],
)
def test_wrong_accounting_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], ctl: dict[str, Any],
                                                 all_vars: dict[str, Any], expected: str) -> None:
    groups = _groups(dict(good, **all_vars), ctl)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def test_accounting_on_the_controller_passes(tmp_path: Path, good: dict[str, Any]) -> None:
    result = run_playbook(VALIDATE, tmp_path, _groups(good, {"slurm_server_accounting": True}))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("gateway_vars", "expected"),
    [
        ({"spawn_profiles_usage_report_on_calendar": "daily\nExecStart=/bin/sh"}, "spawn_profiles_usage_report_on_calendar"),
        ({"spawn_profiles_usage_report_dir": "/var/lib/report dir"}, "spawn_profiles_usage_report_dir must be absolute"),
        ({"spawn_profiles_usage_report_clusters": ["nowhere"]}, "unknown: ['nowhere']"),
        ({"spawn_profiles_usage_report_days": 0}, "spawn_profiles_usage_report_days at least 1"),
    ],
)
def test_wrong_usage_report_settings_stop_the_play(tmp_path: Path, good: dict[str, Any],
                                                   gateway_vars: dict[str, Any], expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(gateway_vars)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"notebook_env_server_proxy_version": "latest"},
         "notebook_env: notebook_env_server_proxy_version must be a release such as 4.6.0 (got 'latest')"),
        ({"notebook_env_extra_packages": ["jupyter_server_proxy==4.4.0"]},
         "jupyter-server-proxy is switched with notebook_env_server_proxy_enabled"),
    ],
)
def test_the_server_proxy_pin_is_checked(tmp_path: Path, good: dict[str, Any], node: dict[str, Any],
                                         expected: str) -> None:
    result = run_playbook(VALIDATE, tmp_path, _with_notebook_nodes(_groups(good), **node))
    _assert_refused(result, expected)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"notebook_env_server_proxy_enabled": False},
         "notebook_env: notebook_env_desktop_enabled needs notebook_env_server_proxy_enabled: true"),
        ({"notebook_env_desktop_version": "3.0.0"},
         "notebook_env_desktop_version must be a release 3.0.1 or later (earlier ones could open the VNC server on a TCP "
         "port; got '3.0.0')"),
        ({"notebook_env_desktop_version": "latest"}, "got 'latest'"),
        ({"notebook_env_extra_packages": ["Jupyter_Remote_Desktop_Proxy==3.0.1"]},
         "jupyter-remote-desktop-proxy is switched with notebook_env_desktop_enabled"),
        ({"notebook_env_desktop_extra_os_packages": ["paraview", "gnuplot x11"]}, "(wrong: ['gnuplot x11'])"),
    ],
)
def test_wrong_desktop_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], node: dict[str, Any],
                                              expected: str) -> None:
    """The demo inventory turns the desktop (and the proxy it needs) on; each change breaks one input."""
    result = run_playbook(VALIDATE, tmp_path, _with_notebook_nodes(_groups(good), **node))
    _assert_refused(result, expected)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"notebook_env_jupyterlmod_version": "latest"},
         "notebook_env: notebook_env_jupyterlmod_version must be a release such as 5.3.2 (got 'latest')"),
        ({"notebook_env_extra_packages": ["JupyterLmod==5.3.2"]},
         "jupyterlmod is switched with notebook_env_lmod_enabled"),
        ({"notebook_env_lmod_modulepath": ["etc/lmod/modules"]}, "Wrong: ['etc/lmod/modules']"),
        ({"notebook_env_lmod_modulepath": ["/opt/mods:/etc/lmod/modules"]}, "Wrong: ['/opt/mods:/etc/lmod/modules']"),
        ({"notebook_env_lmod_modulepath": ["/opt/mods # site"]}, "Wrong: ['/opt/mods # site']"),
        ({"notebook_env_lmod_modulepath": ["/opt/../etc"]}, "Wrong: ['/opt/../etc']"),
        ({"notebook_env_lmod_modulepath": ["/opt/mods", "/opt/mods"]}, "each once"),
        ({"notebook_env_lmod_modulepath": [], "notebook_env_lmod_demo_modules": False}, "at least one when"),
        ({"notebook_env_lmod_demo_root": "/opt/hpcgw modules"}, "Wrong: ['/opt/hpcgw modules']"),
        ({"notebook_env_lmod_demo_root": "/"}, "notebook_env_lmod_demo_root a directory of its own, not '/' (got '/')"),
        ({"notebook_env_lmod_enabled": False},
         "notebook_env: notebook_env_lmod_demo_modules needs notebook_env_lmod_enabled: true"),
        ({"notebook_env_lmod_modulepath": "/etc/lmod/modules"},
         "notebook_env_lmod_modulepath must be a list of directories (got '/etc/lmod/modules')"),
    ],
)
def test_wrong_lmod_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], node: dict[str, Any],
                                           expected: str) -> None:
    """The demo inventory turns Lmod and its demo tree on; each change breaks one input."""
    result = run_playbook(VALIDATE, tmp_path, _with_notebook_nodes(_groups(good), **node))
    _assert_refused(result, expected)


def _branded(good: dict[str, Any]) -> dict[str, dict[str, Any]]:
    groups = _groups(good)
    groups["gateway"].update(load_vars("inventories/demo/group_vars/gateway/branding.yml"))
    return groups


def test_the_demo_branding_passes(tmp_path: Path, good: dict[str, Any]) -> None:
    result = run_playbook(VALIDATE, tmp_path, _branded(good))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_local_limits": {"memory_max": "1G", "cpu_quota": "100%"}}, "jupyterhub_local_limits: missing tasks_max"),
        ({"jupyterhub_local_limits": {"memory_max": "100M", "cpu_quota": "100%", "tasks_max": 256}},
         'jupyterhub_local_limits.memory_max "100M" must be a size of at least 512M'),
        ({"jupyterhub_local_limits": {"memory_max": "2 GB", "cpu_quota": "100%", "tasks_max": 256}},
         'jupyterhub_local_limits.memory_max "2 GB"'),
        ({"jupyterhub_local_limits": {"memory_max": "1G", "cpu_quota": "1.5", "tasks_max": 256}},
         'jupyterhub_local_limits.cpu_quota "1.5" must be a percentage of one CPU'),
        ({"jupyterhub_local_limits": {"memory_max": "1G", "cpu_quota": "100%", "tasks_max": 8}},
         'jupyterhub_local_limits.tasks_max "8" must be a number of processes and threads, at least 32'),
        ({"jupyterhub_local_limits": {"memory_max": "1G", "cpu_quota": "100%", "tasks_max": 64, "swap": "0"}},
         "jupyterhub_local_limits: unknown keys swap"),
        ({"jupyterhub_local_limits_users": {"bob": {"memory_max": "150%"}}},
         'jupyterhub_local_limits_users.bob.memory_max "150%"'),
        ({"jupyterhub_local_limits_users": {"-p": {"tasks_max": 64}}}, 'jupyterhub_local_limits_users: "-p" is not an account name'),
        ({"jupyterhub_local_slice_limits": {"cpu_quota": "lots"}}, 'jupyterhub_local_slice_limits.cpu_quota "lots"'),
        ({"jupyterhub_local_stop_timeout": 0}, "jupyterhub_local_stop_timeout 1-300 seconds (got 0)"),
        ({"jupyterhub_local_max_memory_mb": 2048}, "jupyterhub_local_max_memory_mb: no longer used"),
        ({"jupyterhub_local_max_processes": 256}, "set jupyterhub_local_limits (memory_max, cpu_quota, tasks_max"),
    ],
)
def test_wrong_local_limits_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                          expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def test_local_limits_of_every_form_pass(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"].update(
        jupyterhub_local_limits={"memory_max": "25%", "cpu_quota": "250%", "tasks_max": "1024"},
        jupyterhub_local_limits_users={"alice": {"memory_max": "524288K"}, "bob.smith": {"cpu_quota": "10%", "tasks_max": 32}},
        jupyterhub_local_slice_limits={"memory_max": "20G", "cpu_quota": "150%", "tasks_max": 4096})
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_branding_logo_file": "/nonexistent/logo.png"}, "got '/nonexistent/logo.png'"),
        ({"jupyterhub_branding_logo_file": "{{ playbook_dir }}/validate.yml"}, "playbooks/validate.yml'"),
        ({"jupyterhub_branding_help_url": "http://help.example.org/"}, "got 'http://help.example.org/'"),
        ({"jupyterhub_branding_help_url": "javascript:alert(1)"}, "got 'javascript:alert(1)'"),
        ({"jupyterhub_branding_help_url": "/docs/\" onmouseover=\"x()"}, "no http:, javascript: or other schemes"),
        ({"jupyterhub_branding_templates_dir": "/nonexistent/templates"}, "got '/nonexistent/templates'"),
        ({"jupyterhub_backup_keep": 0}, "jupyterhub_backup_keep at least 1 (got 0)"),
        ({"jupyterhub_backup_dir": "/var/backups"}, "got '/var/backups'"),
    ],
)
def test_wrong_branding_or_backup_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                                         expected: str) -> None:
    groups = _branded(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_admin_rights": "root"}, "value of jupyterhub_admin_rights must be one of: operator, full, got: root"),
        ({"jupyterhub_operator_group": "ops team"}, "jupyterhub_operator_group (got 'ops team')"),
    ],
)
def test_wrong_admin_rights_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                          expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_named_server_limit_per_user": -1}, "jupyterhub_named_server_limit_per_user a whole number"),
        ({"jupyterhub_named_server_limit_per_user": True}, "jupyterhub_named_server_limit_per_user a whole number"),
        ({"jupyterhub_named_server_limit_per_user": "two"}, "jupyterhub_named_server_limit_per_user"),
        ({"jupyterhub_named_servers_enabled": "sometimes"}, "jupyterhub_named_servers_enabled"),
    ],
)
def test_wrong_named_server_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                                   expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)
# --- parallel work from the notebook (notebook_env_parallel_*) ---------------

@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"notebook_env_parallel_packages": ["dask>=2026.8.0"]}, "notebook_env_parallel_packages must be pinned as name==version; not pinned: ['dask>=2026.8.0']"),
        ({"notebook_env_parallel_queue": "debug;rm"}, "got 'debug;rm'"),
        ({"notebook_env_parallel_account": "astro chem"}, "got 'debug', 'astro chem'"),
        ({"notebook_env_parallel_cores": 0}, "notebook_env_parallel_cores at least 1 (got 0)"),
        ({"notebook_env_parallel_memory_mb": 1, "notebook_env_parallel_cores": 2}, "at least one MiB per core (got 1)"),
        ({"notebook_env_parallel_walltime": "10 min"}, "notebook_env_parallel_walltime [D-]HH:MM:SS (got '10 min')"),
        ({"notebook_env_parallel_walltime": "00:10"}, "(got '00:10')"),
        ({"notebook_env_parallel_interface": "eth0 ib0"}, "or empty (got 'eth0 ib0')"),
        # Against the cluster's data (role slurm_client's partitions and nodes).
        ({"notebook_env_parallel_queue": "gpu"}, "notebook_env_parallel_queue 'gpu' must be one of the cluster's partitions (debug, batch)"),
        ({"notebook_env_parallel_cores": 32}, "(32 cores, notebook_env_parallel_memory_mb 1024) must fit on one of its nodes (largest: 16 cores, 16384 MiB)"),
        ({"notebook_env_parallel_memory_mb": 32768}, "(1 cores, notebook_env_parallel_memory_mb 32768) must fit"),
        # Types (the argument spec).
        ({"notebook_env_parallel_cores": "many"}, "notebook_env_parallel_cores"),
        ({"notebook_env_parallel_dask_config": ["jobqueue"]}, "notebook_env_parallel_dask_config"),
    ],
)
def test_wrong_parallel_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                                expected: str) -> None:
    groups = _with_notebook_nodes(_groups(good), **good, **change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def test_parallel_settings_without_the_clusters_data_pass(tmp_path: Path, good: dict[str, Any]) -> None:
    """A site whose cluster the bundle does not describe: any partition name, the default partition."""
    for change in ({"notebook_env_parallel_queue": "gpu", "notebook_env_parallel_cores": 64},
                   {"notebook_env_parallel_queue": "", "notebook_env_parallel_interface": ""}):
        result = run_playbook(VALIDATE, tmp_path, _with_notebook_nodes(_groups(good), **change))
        assert result.returncode == 0, result.stdout + result.stderr


TEST_INSTANCE = {"jupyterhub_instance": "test", "jupyterhub_hub_port": 8091, "chp_port": 8010, "chp_api_port": 8011,
                 "jupyterhub_base_url": "/jupyter-test/"}


def _record_production(tmp_path: Path, **fields: str) -> Path:
    """The production instance's record as its gateway play leaves it (plus `fields`)."""
    records = tmp_path / "instances"
    records.mkdir()
    (records / "production.json").write_text(json.dumps(
        {"base_url": "/jupyter/", "hub_port": 8081, "instance": "", "proxy_api_port": 8001, "proxy_port": 8000,
         "server_name": "hpcgw-gw", **fields}))
    return records


def test_a_test_instance_beside_production_passes(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"].update(TEST_INSTANCE)
    result = run_playbook(VALIDATE, tmp_path, groups,
                          extra_vars={"__jupyterhub_instances_dir": str(_record_production(tmp_path))})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_hub_port": 8081}, "instance test: port 8081 (hub_port) is instance production's hub_port"),
        ({"chp_api_port": 8000}, "instance test: port 8000 (proxy_api_port) is instance production's proxy_port"),
        ({"jupyterhub_base_url": "/jupyter/"}, "base URL /jupyter/ on hpcgw-gw overlaps instance production's /jupyter/"),
        ({"jupyterhub_instance": "my-test"}, "jupyterhub_instance must be empty (the production instance) or a lowercase letter"),
    ],
)
def test_a_clashing_instance_stops_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                            expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update({**TEST_INSTANCE, **change})
    result = run_playbook(VALIDATE, tmp_path, groups,
                          extra_vars={"__jupyterhub_instances_dir": str(_record_production(tmp_path))})
    _assert_refused(result, expected)


def _record_version(tmp_path: Path, jupyterhub_version: str) -> Path:
    """Production's record from a run that installed `jupyterhub_version`."""
    return _record_production(tmp_path, release="2026.11", jupyterhub_version=jupyterhub_version)


@pytest.mark.parametrize(("ran", "wanted", "allow"), [
    ("6.1.1", "6.1.1", False),  # the same release: every re-run
    ("5.5.4", "6.1.1", False),  # the upgrade
    ("6.1.1", "5.5.4", True),   # the downgrade, after the database was put back (README, "Upgrading")
])
def test_the_hub_release_against_its_record_passes(tmp_path: Path, good: dict[str, Any], ran: str, wanted: str,
                                                   allow: bool) -> None:
    groups = _groups(good)
    groups["gateway"].update(jupyterhub_version=wanted, jupyterhub_allow_downgrade=allow)
    result = run_playbook(VALIDATE, tmp_path, groups,
                          extra_vars={"__jupyterhub_instances_dir": str(_record_version(tmp_path, ran))})
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_hub_going_back_to_an_older_jupyterhub_stops_the_play(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"].update(jupyterhub_version="5.5.4")
    result = run_playbook(VALIDATE, tmp_path, groups,
                          extra_vars={"__jupyterhub_instances_dir": str(_record_version(tmp_path, "6.1.1"))})
    _assert_refused(result, "instance production: its hub last ran JupyterHub 6.1.1, which upgrades the database's "
                            "schema when it starts; JupyterHub 5.5.4 (jupyterhub_version) does not downgrade a schema")
    assert "then run again with -e jupyterhub_allow_downgrade=true" in result.stdout


# --- the hub's database (jupyterhub_db_*) ------------------------------------

def test_an_external_postgresql_server_with_its_password_passes(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"].update(jupyterhub_db_backend="postgresql", jupyterhub_db_host="db.example.org",
                             jupyterhub_db_user="hub", jupyterhub_db_password="from-the-vault",
                             jupyterhub_db_sslmode="verify-full")
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "from-the-vault" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_db_backend": "postgresql", "jupyterhub_db_user": "hubdb"},
         "jupyterhub_db_user must be the hub account jupyterhub_user (jupyterhub) on the local PostgreSQL server"),
        ({"jupyterhub_db_backend": "postgresql", "jupyterhub_db_host": "db.example.org"},
         "jupyterhub_db_password is empty: the external PostgreSQL server db.example.org (jupyterhub_db_host) needs the password"),
        ({"jupyterhub_db_host": "db.example.org", "jupyterhub_db_password": "x"},
         "jupyterhub_db_host or jupyterhub_db_password is set, but jupyterhub_db_backend is sqlite"),
    ],
)
def test_inconsistent_database_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                                      expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update(change)
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


# --- per-user subdomains (jupyterhub_subdomain_host; issue 9 item 4) --------

SUBDOMAINS = load_vars("inventories/demo/options/subdomains.yml")


def test_the_demos_subdomain_option_passes(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"].update(SUBDOMAINS)
    result = run_playbook(VALIDATE, tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"jupyterhub_subdomain_host": "hpcgw-gw.test"}, "jupyterhub_subdomain_host must be empty (no per-user subdomains) or"),
        ({"jupyterhub_subdomain_host": "http://hpcgw-gw.test"}, "got 'http://hpcgw-gw.test'"),
        ({"jupyterhub_subdomain_host": "https://hpcgw-gw.test/"}, "got 'https://hpcgw-gw.test/'"),
        ({"jupyterhub_subdomain_host": "https://hpcgw-gw.test:8443"}, "without port, path or trailing slash"),
        ({"jupyterhub_subdomain_host": "https://hpcgw-gw", "gateway_apache_server_name": "hpcgw-gw"},
         "got 'https://hpcgw-gw'"),
        ({"jupyterhub_subdomain_host": "https://HPCGW-GW.test"}, "got 'https://HPCGW-GW.test'"),
        ({"jupyterhub_subdomain_host": "https://10.0.0.5", "gateway_apache_server_name": "10.0.0.5"}, "an IP address has no subdomains"),
        ({"jupyterhub_instance": "test", "jupyterhub_base_url": "/jupyter-test/", "jupyterhub_hub_port": 8091,
          "chp_port": 8010, "chp_api_port": 8011},
         "A test instance (jupyterhub_instance 'test') shares production's Apache site"),
        ({"gateway_apache_server_name": "hpcgw-gw"},
         "the hub's host (jupyterhub_subdomain_host 'https://hpcgw-gw.test', role jupyterhub) must be gateway_apache_server_name (got 'hpcgw-gw')"),
        ({"gateway_apache_user_domain": "other.test"}, "leave gateway_apache_user_domain unset (it follows the hub; got 'other.test')"),
        ({"chp_host_routing": False}, "chp_host_routing is False but jupyterhub_subdomain_host (role jupyterhub) is 'https://hpcgw-gw.test'"),
    ],
)
def test_wrong_subdomain_settings_stop_the_play(tmp_path: Path, good: dict[str, Any], change: dict[str, Any],
                                                expected: str) -> None:
    groups = _groups(good)
    groups["gateway"].update({**SUBDOMAINS, **change})
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, expected)


def test_host_routing_without_subdomains_stops_the_play(tmp_path: Path, good: dict[str, Any]) -> None:
    groups = _groups(good)
    groups["gateway"]["chp_host_routing"] = True
    result = run_playbook(VALIDATE, tmp_path, groups)
    _assert_refused(result, "chp_host_routing is True but jupyterhub_subdomain_host (role jupyterhub) is ''")
