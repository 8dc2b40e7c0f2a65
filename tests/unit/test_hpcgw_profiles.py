"""Cluster data validation and the server-side checks of users' choices."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hpcgw_profiles import (
    Catalog,
    ChoiceError,
    ConfigError,
    batchspawner_traits,
    child_config,
    format_walltime,
    parse_walltime,
)
from spawn_page import render_catalog as form_html

DATA: dict[str, Any] = {
    "clusters": [
        {
            "name": "testcluster",
            "title": "Test cluster",
            "scheduler": "slurm",
            "submit": "local",
            "accounts": ["proj1", "proj2"],
            "script_lines": ["module load python"],
            "queues": [
                {"name": "debug", "title": "Debug", "cores": {"default": 1, "max": 2},
                 "memory_gb": {"default": 1, "max": 2}, "walltime_min": {"default": 10, "max": 30}},
                {"name": "batch", "cores": {"max": 4}, "walltime_min": {"default": 60, "max": 1440},
                 "script_lines": ["export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK"]},
            ],
        },
        {"name": "other", "scheduler": "sge", "submit": "ssh", "login_host": "login.example.edu",
         "parallel_environment": "smp",
         "queues": [{"name": "allq", "cores": {"max": 8}}, {"name": "mpiq", "parallel_environment": "mpi",
                                                          "cores": {"max": 4}}]},
    ],
    "presets": [
        {"key": "debug-1c", "title": "Debug - 1 core, 10 min", "cluster": "testcluster", "queue": "debug"},
    ],
}


@pytest.fixture()
def catalog() -> Catalog:
    return Catalog.from_data(DATA)


def _with(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(DATA)
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["clusters"][0].update(scheduler="slurmx"), "spawn_profiles_clusters[0].scheduler: must be one of"),
        (lambda d: d["clusters"][0]["queues"][0]["cores"].update(default=3), "queues[0].cores.default: 3 is outside 1..2"),
        (lambda d: d["clusters"][0]["queues"].append(dict(d["clusters"][0]["queues"][0])), "duplicate name 'debug'"),
        (lambda d: d["clusters"].append(dict(d["clusters"][1])), "spawn_profiles_clusters: duplicate name 'other'"),
        (lambda d: d["presets"][0].update(queue="gpu"), "spawn_profiles_presets[0]: unknown queue 'gpu'"),
        (lambda d: d["presets"][0].update(key="local"), "'local' is reserved"),
        (lambda d: d["clusters"][1].update(login_host=""), "clusters[1].login_host: must name the login host"),
        (lambda d: d["clusters"][0].update(name="Test Cluster"), "clusters[0].name: must match"),
        (lambda d: d["clusters"][0]["queues"][0].update(script_lines=["a\nb"]), "script_lines: must be a list of single-line"),
        (lambda d: d["clusters"][0]["queues"][0]["cores"].update(max="2"), "cores.max: must be a non-negative integer"),
        (lambda d: d["clusters"][0].update(accounts=["p;rm -rf"]), "accounts[0]: must match"),
        (lambda d: d["clusters"][0].update(queues=[]), "queues: must be a non-empty list"),
        (lambda d: d["clusters"][0].update(queus=[]), "clusters[0]: unknown key(s) queus"),
        (lambda d: d["clusters"][0]["queues"][0].update(walltime="10"), "queues[0]: unknown key(s) walltime"),
        (lambda d: d["presets"][0].update(cpus=2), "presets[0]: unknown key(s) cpus"),
        (lambda d: d["clusters"][0].update(notebook_prefix="opt/x"), "notebook_prefix: must be an absolute path"),
        (lambda d: d["clusters"][0].update(notebook_prefix="/opt/../etc"), "notebook_prefix: must be an absolute path"),
        (lambda d: d["clusters"][0].update(status_query="hub"), "clusters[0].status_query: must be one of shared, user"),
        (lambda d: d["clusters"][1].update(status_query="shared"),
         "clusters[1].status_query: shared needs scheduler: slurm and submit: local"),
        (lambda d: d["clusters"][0].update(submit="ssh", login_host="l1", status_query="shared"),
         "clusters[0].status_query: shared needs scheduler: slurm and submit: local"),
        # Grid Engine's parallel environment: a name, on an SGE cluster, required above one core.
        (lambda d: d["clusters"][1].update(parallel_environment="smp 8"),
         "clusters[1].parallel_environment: must be a Grid Engine parallel environment's name"),
        (lambda d: d["clusters"][1]["queues"][1].update(parallel_environment="mpi;qdel -u '*'"),
         "clusters[1].queues[1].parallel_environment: must be a Grid Engine parallel environment's name"),
        (lambda d: d["clusters"][1].pop("parallel_environment"),
         "clusters[1].queues[0].parallel_environment: queue 'allq' offers up to 8 cores"),
        (lambda d: d["clusters"][0].update(parallel_environment="smp"),
         "clusters[0].parallel_environment: applies to scheduler: sge only (this cluster's is 'slurm')"),
        (lambda d: d["clusters"][0]["queues"][0].update(parallel_environment="smp"),
         "clusters[0].queues[0].parallel_environment: applies to scheduler: sge only"),
    ],
)
def test_wrong_admin_data_is_named(change: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        Catalog.from_data(_with(change))
    assert message in str(err.value)


def test_preset_resolves_to_queue_defaults(catalog: Catalog) -> None:
    choice = catalog.choice_from_options({"profile": "debug-1c"})
    assert choice is not None
    assert (choice.cluster, choice.queue, choice.cores, choice.memory_gb, choice.walltime_min, choice.gpus) == (
        "testcluster", "debug", 1, 1, 10, 0)
    assert choice.account == "proj1"


def test_custom_choice_within_limits(catalog: Catalog) -> None:
    choice = catalog.choice_from_options(
        {"profile": "custom", "cluster": "testcluster", "queue": "batch", "cores": "4",
         "walltime_min": 90, "account": "proj2"})
    assert choice is not None
    traits = batchspawner_traits(catalog, choice)
    assert traits == {
        "req_partition": "batch", "req_queue": "batch", "req_nprocs": "4", "req_memory": "1G",
        "req_runtime": "01:30:00", "req_ngpus": "0", "req_account": "proj2",
        "req_prologue": "export PATH=/opt/hpcgw-notebook/bin:$PATH\n"
                        "if [ -r /opt/hpcgw-notebook/etc/hpcgw-job-env.sh ]; then . /opt/hpcgw-notebook/etc/hpcgw-job-env.sh; fi\n"
                        "module load python\n"
                        "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK",
    }


@pytest.mark.parametrize(("options", "submit"), [
    # a valid choice with the account blanked: batchspawner merged it over req_account
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": ""}, "local"),
    ({"profile": "custom", "cluster": "other", "queue": "allq", "cores": 2}, "ssh"),
])
def test_child_gets_checked_traits_and_no_raw_user_options(catalog: Catalog, options: dict[str, Any],
                                                           submit: str) -> None:
    choice = catalog.choice_from_options(options)
    assert choice is not None
    spawner = {"batch_script": "#!/bin/sh", "exec_prefix": "sudo -n -u {username}"}
    config = child_config(catalog, choice, spawner)
    # set explicitly, so wrapspawner does not link the wrapper's raw user_options to the child
    assert config["user_options"] == {}
    assert config["hpcgw_submit"] == submit
    assert config["req_account"] == (catalog.cluster(choice.cluster).accounts or ("",))[0]
    assert {k: config[k] for k in spawner} == spawner
    assert config["hpcgw_cluster_name"] == choice.cluster


@pytest.mark.parametrize(("queue", "pe"), [("allq", "smp"), ("mpiq", "mpi")])
def test_sge_parallel_environment_comes_from_the_data(catalog: Catalog, queue: str, pe: str) -> None:
    """The queue's own parallel environment, else its cluster's, reaches the
    batch template as {parallel_environment}; the request cannot name one."""
    choice = catalog.choice_from_options({"profile": "custom", "cluster": "other", "queue": queue, "cores": "2"})
    assert choice is not None
    traits = batchspawner_traits(catalog, choice)
    assert (traits["req_parallel_environment"], traits["req_nprocs"]) == (pe, "2")
    with pytest.raises(ChoiceError, match="unknown option 'parallel_environment'"):
        catalog.choice_from_options({"profile": "custom", "cluster": "other", "queue": queue,
                                     "parallel_environment": "x"})


def test_one_core_sge_queue_needs_no_parallel_environment() -> None:
    data = _with(lambda d: d["clusters"][1].update(parallel_environment=None, queues=[{"name": "q1"}]))
    catalog = Catalog.from_data(data)
    choice = catalog.choice_from_options({"profile": "custom", "cluster": "other", "queue": "q1"})
    assert choice is not None
    assert batchspawner_traits(catalog, choice)["req_parallel_environment"] == ""


def test_status_query_defaults_to_shared_for_local_slurm_only() -> None:
    clusters = Catalog.from_data(DATA).clusters
    assert [c.status_query for c in clusters] == ["shared", "user"]
    data = _with(lambda d: d["clusters"][0].update(status_query="user"))
    assert Catalog.from_data(data).clusters[0].status_query == "user"


def test_local_profile(catalog: Catalog) -> None:
    assert catalog.choice_from_options({"profile": "local"}) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": "3"}, "cores must be between 1 and 2"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "memory_gb": "64"}, "memory_gb must be between"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "walltime_min": "31"}, "walltime_min must be between"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "gpus": "1"}, "gpus must be between 0 and 0"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": "two"}, "cores must be a whole number"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": "1\n#SBATCH --uid=0"}, "whole number"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": "-1"}, "whole number"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": "1.5"}, "whole number"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug\n#SBATCH -p batch"}, "unknown queue"),
        ({"profile": "custom", "cluster": "nope", "queue": "debug"}, "unknown cluster 'nope'"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": "root"}, "unknown account 'root'"),
        ({"profile": "nope"}, "unknown profile 'nope'"),
        ({}, "unknown profile ''"),
        ({"profile": "debug-1c", "cores": "2"}, "preset 'debug-1c' takes no other options"),
        ({"profile": "local", "cluster": "testcluster"}, "local profile takes no other options"),
        ({"profile": "debug-1c", "req_partition": "batch"}, "unknown option 'req_partition'"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": True}, "must be a string or an integer"),
        ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": [1]}, "must be a string or an integer"),
    ],
)
def test_abusive_options_are_refused(catalog: Catalog, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ChoiceError) as err:
        catalog.choice_from_options(options)
    assert message in str(err.value)


def test_form_custom_fields_only_count_for_custom(catalog: Catalog) -> None:
    form = {"profile": ["debug-1c"], "cluster_queue": ["testcluster/batch"], "cores": ["99"]}
    assert catalog.options_from_form(form) == {"profile": "debug-1c"}
    form["profile"] = ["custom"]
    with pytest.raises(ChoiceError, match="cores must be between 1 and 4"):
        catalog.options_from_form(form)
    form["cores"] = ["3"]
    assert catalog.options_from_form(form) == {
        "profile": "custom", "cluster": "testcluster", "queue": "batch", "cores": "3"}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"profile": ["custom", "local"]}, "field 'profile' must be given once"),
        ({"profile": ["local"], "evil": ["1"]}, "unknown field 'evil'"),
        ({"profile": ["custom"], "cluster_queue": ["testcluster/debug"], "cores": ["1 "], "gpus": ["0x1"]}, "whole number"),
    ],
)
def test_abusive_forms_are_refused(catalog: Catalog, form: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ChoiceError) as err:
        catalog.options_from_form(form)
    assert message in str(err.value)


def test_form_lists_profiles_in_a_stable_order_and_escapes(catalog: Catalog) -> None:
    data = _with(lambda d: d["clusters"][0].update(title="<b>Test</b>"))
    page = form_html(Catalog.from_data(data), "Dedicated Jupyter node")
    assert page.index('value="debug-1c"') < page.index('value="local"') < page.index('value="custom"')
    assert "<b>Test</b>" not in page and "&lt;b&gt;Test&lt;/b&gt;" in page
    assert page == form_html(Catalog.from_data(data), "Dedicated Jupyter node")
    assert 'value="testcluster/debug"' in page and 'value="other/allq"' in page


def test_custom_requests_can_be_disabled() -> None:
    catalog = Catalog.from_data(dict(DATA, custom_enabled=False))
    assert 'value="custom"' not in form_html(catalog, None)
    assert catalog.choice_from_options({"profile": "debug-1c"}) is not None
    with pytest.raises(ChoiceError, match="custom requests are disabled"):
        catalog.choice_from_options({"profile": "custom", "cluster": "testcluster", "queue": "debug"})


@pytest.mark.parametrize(("raw", "minutes"), [("90", 90), ("1:30", 90), ("0:05", 5), ("24:00", 1440), ("0:59", 59)])
def test_walltime_is_h_mm_or_minutes(raw: str, minutes: int) -> None:
    assert parse_walltime(raw) == minutes
    assert format_walltime(minutes) == (raw if ":" in raw else format_walltime(minutes))


@pytest.mark.parametrize("raw", ["1:60", "1:5", ":30", "1:", "1:30:00", "1h", "-5", "1:30\n#SBATCH -p x", " 90", "1,5"])
def test_walltime_spellings_refused(raw: str) -> None:
    with pytest.raises(ChoiceError) as err:
        parse_walltime(raw)
    assert err.value.field == "walltime_min"


def test_form_walltime_in_h_mm_is_kept_as_minutes(catalog: Catalog) -> None:
    options = catalog.options_from_form({"profile": ["custom"], "cluster_queue": ["testcluster/batch"],
                                         "walltime_min": ["1:30"]})
    assert options["walltime_min"] == "90"
    assert catalog.choice_from_options({"cluster": "testcluster", "queue": "batch", "walltime_min": 90}).walltime_min == 90
    assert catalog.choice_from_options({"cluster": "testcluster", "queue": "batch", "walltime_min": "2:00"}).walltime_min == 120
    with pytest.raises(ChoiceError, match="walltime_min must be between") as err:
        catalog.options_from_form({"profile": ["custom"], "cluster_queue": ["testcluster/debug"], "walltime_min": ["9:00"]})
    assert err.value.field == "walltime_min"


@pytest.mark.parametrize(("options", "field"), [
    ({"profile": "custom", "cluster": "nope", "queue": "debug"}, "cluster_queue"),
    ({"profile": "custom", "cluster": "testcluster", "queue": "nope"}, "cluster_queue"),
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": "0"}, "cores"),
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "gpus": "x"}, "gpus"),
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "account": "other"}, "account"),
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": [1]}, "cores"),
    ({"profile": "nope"}, "profile"),
    ({"profile": "debug-1c", "req_x": "1"}, "profile"),
])
def test_refusals_name_the_form_field(catalog: Catalog, options: dict[str, Any], field: str) -> None:
    with pytest.raises(ChoiceError) as err:
        catalog.choice_from_options(options)
    assert err.value.field == field
