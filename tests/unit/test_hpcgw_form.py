"""The spawn page: its data (hpcgw_form.page_data) and the page template
spawn.html rendered from it - fields fit the chosen queue, every
admin-provided title escaped, the field names and ids the hub, spawnclient
and the browser test rely on, the last choice pre-selected, a refused field's
message beside it, and the demo inventory's page as reviewed (golden)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from markupsafe import escape

from ansible_run import load_vars
from golden_files import GOLDEN, assert_golden
from hpcgw_accounts import UserAccounts, from_data, settle
from hpcgw_form import form_from_json, page_data, selection
from hpcgw_profiles import FORM_FIELDS, Catalog, ChoiceError
from hpcgw_sched import Free
from spawn_page import TEMPLATES, render, render_catalog

SCRIPT = "<script>alert('x')</script>"
# spawnclient.py's reading of the form (molecule/shared/files/spawnclient.py).
CHOICES = re.compile(r'<(?:option|input)[^>]*\bvalue="([^"]*)"[^>]*>\s*([^<]*)')
DATA_RE = re.compile(r'<script type="application/json" id="hpcgw-form-data">(.*?)</script>', re.S)


def demo_catalog() -> Catalog:
    data = load_vars("inventories/demo/group_vars/gateway/spawn_profiles.yml")
    return Catalog.from_data({"clusters": data["spawn_profiles_clusters"], "presets": data["spawn_profiles_presets"],
                              "notebook_prefix": data["spawn_profiles_notebook_prefix"]})


def gpu_catalog() -> Catalog:
    return Catalog.from_data({"clusters": [{
        "name": "gc", "title": "GPU cluster", "scheduler": "slurm", "accounts": ["proj1", "proj2"],
        "queues": [{"name": "cpu", "cores": {"default": 2, "max": 8}, "memory_gb": {"default": 4, "max": 64},
                    "walltime_min": {"default": 90, "max": 1440}},
                   {"name": "gpu", "cores": {"max": 4}, "memory_gb": {"max": 16}, "walltime_min": {"max": 240},
                    "gpus": {"default": 1, "max": 4}}]}]})


def plain_catalog() -> Catalog:
    """A cluster without accounts: the account field is hidden."""
    return Catalog.from_data({"clusters": [{"name": "plain", "scheduler": "slurm", "queues": [{"name": "q"}]}]})


def hostile_catalog() -> Catalog:
    return Catalog.from_data({
        "clusters": [{"name": "c", "title": f'C {SCRIPT} "q" & co', "scheduler": "slurm", "accounts": ["a"],
                      "queues": [{"name": "q", "title": f"Q {SCRIPT}", "cores": {"max": 2}}]}],
        "presets": [{"key": "p", "title": f"P {SCRIPT}", "cluster": "c", "queue": "q"}],
    })


def page_json(page: str) -> dict[str, Any]:
    found = DATA_RE.search(page)
    assert found, "no #hpcgw-form-data in the page"
    return json.loads(found.group(1))


def test_the_templates_are_in_the_role_files() -> None:
    assert (TEMPLATES / "spawn.html").is_file() and (TEMPLATES / "hpcgw_spawn_form.js").is_file()
    assert '{% extends "templates/spawn.html" %}' in (TEMPLATES / "spawn.html").read_text()


def test_every_admin_title_is_escaped_in_html_and_json() -> None:
    page = render_catalog(hostile_catalog(), f"L {SCRIPT}")
    # the page's own two scripts only: the JSON and the form's script
    assert page.count("<script") == 2 and page.count("</script>") == 2
    # preset, local, cluster and queue titles
    assert page.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") == 4
    assert "C &lt;script&gt;" in page and "&#34;q&#34; &amp; co" in page
    data = page_json(page)  # < > & ' are \\u-escaped in the JSON, so it cannot end its script element
    assert data["profiles"][0]["label"] == f"P {SCRIPT}"


def test_demo_page_matches_golden() -> None:
    free = {"testcluster": {"debug": Free(2, 2, 32, 32, 0), "batch": Free(1, 2, 20, 32, 3)}}
    catalog = demo_catalog()
    # alice's page: her SLURM associations on testcluster, her grants on vialogin
    accounts = {"testcluster": UserAccounts(("astro", "chem")),
                "vialogin": from_data(catalog.cluster("vialogin"), "alice", ())}
    page = render_catalog(catalog, "Dedicated Jupyter node (gateway)", free=free,
                          estimate_clusters=frozenset({"testcluster"}),
                          estimate_url="/jupyter/hub/api/users/alice/hpcgw-estimate", accounts=accounts)
    assert_golden(GOLDEN / "spawn_profiles" / "spawn_page.demo.html", page)


def test_field_names_ids_labels_and_descriptions() -> None:
    page = render_catalog(demo_catalog(), "Local")
    names = set(re.findall(r'\bname="([^"]+)"', page))
    assert names == FORM_FIELDS
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    for element_id in ("spawn_form", "hpcgw-form-data", "hpcgw-profile", "hpcgw-custom", "hpcgw-cq", "hpcgw-account",
                       "hpcgw-cores", "hpcgw-memory_gb", "hpcgw-walltime_min", "hpcgw-gpus", "hpcgw-free",
                       "hpcgw-estimate", "hpcgw-start"):
        assert element_id in ids, element_id
    labels = dict((target, text) for target, text in re.findall(r'<label class="form-label" for="([^"]+)">([^<]+)<', page))
    assert set(labels) <= ids
    assert labels["hpcgw-cores"] == "Cores" and labels["hpcgw-memory_gb"] == "Memory (GB)"
    assert labels["hpcgw-walltime_min"] == "Walltime (h:mm)"
    # every described-by id exists (help and error text)
    for described in re.findall(r'aria-describedby="([^"]+)"', page):
        assert set(described.split()) <= ids, described
    assert '<legend class="h5">Custom request</legend>' in page


def test_spawnclient_reads_the_choices_in_page_order() -> None:
    choices = [(value, label.strip()) for value, label in CHOICES.findall(render_catalog(demo_catalog(), "Local"))]
    values = [value for value, _ in choices]
    assert [v for v in values if v in ("debug-1c", "login-debug", "local", "custom", "testcluster/debug",
                                       "testcluster/batch", "vialogin/debug")] == [
        "debug-1c", "login-debug", "local", "custom", "testcluster/debug", "testcluster/batch", "vialogin/debug"]
    assert choices[0] == ("debug-1c", "Debug - 1 core, 10 min")


def test_custom_section_is_hidden_and_disabled_unless_chosen() -> None:
    page = render_catalog(demo_catalog(), "Local")
    assert re.search(r'<fieldset id="hpcgw-custom"[^>]* hidden disabled>', page)
    custom = render_catalog(demo_catalog(), "Local", last_options={"profile": "custom", "cluster": "testcluster",
                                                                   "queue": "batch", "cores": "2"})
    assert re.search(r'<fieldset id="hpcgw-custom" class="mb-3">', custom)


def test_each_queue_carries_its_limits_defaults_and_help() -> None:
    data = page_data(gpu_catalog(), None)
    cpu, gpu = data["queues"]
    assert cpu["limits"]["cores"] == {"min": 1, "max": 8, "default": 2, "step": 1, "value": "2",
                                      "help": "1 to 8 cores, default 2"}
    assert cpu["limits"]["walltime_min"]["value"] == "1:30"
    assert cpu["limits"]["walltime_min"]["help"] == "0:01 to 24:00 h:mm, default 1:30"
    assert cpu["limits"]["memory_gb"]["help"] == "1 to 64 GB, default 4"
    assert (cpu["gpus"], gpu["gpus"]) == (False, True)
    assert gpu["limits"]["gpus"]["help"] == "0 to 4 GPUs, default 1"
    assert cpu["accounts"] == ["proj1", "proj2"]


def test_inputs_get_the_chosen_queues_range_and_gpus_only_where_there_are_some() -> None:
    page = render_catalog(gpu_catalog(), None, last_options={"profile": "custom", "cluster": "gc", "queue": "cpu"})
    assert re.search(r'id="hpcgw-cores" name="cores" inputmode="numeric"\s+min="1" max="8" step="1" value="2"', page)
    assert re.search(r'<div class="mb-3" id="hpcgw-gpus-row" hidden>', page)
    assert re.search(r'id="hpcgw-gpus"[^>]*disabled>', page)
    assert 'value="1:30"' in page  # walltime as h:mm
    gpu = render_catalog(gpu_catalog(), None, last_options={"profile": "custom", "cluster": "gc", "queue": "gpu",
                                                            "gpus": "2", "account": "proj2"})
    assert re.search(r'<div class="mb-3" id="hpcgw-gpus-row">', gpu)
    assert re.search(r'name="gpus"[^>]*max="4" step="1" value="2"', gpu)
    assert '<option value="proj2" selected>proj2</option>' in gpu


def test_account_select_hidden_without_accounts() -> None:
    page = render_catalog(demo_catalog(), "Local")
    assert '<div class="mb-3" id="hpcgw-account-row" hidden>' in page
    assert re.search(r'id="hpcgw-account" name="account"[^>]*disabled>', page)


@pytest.mark.parametrize(("options", "selected"), [
    ({"profile": "login-debug"}, {"profile": "login-debug"}),
    ({"profile": "local"}, {"profile": "local"}),
    ({"profile": "custom", "cluster": "testcluster", "queue": "batch", "cores": "2", "walltime_min": "90"},
     {"profile": "custom", "cluster_queue": "testcluster/batch", "account": "", "cores": "2", "memory_gb": "1",
      "walltime_min": "1:30", "gpus": "0"}),
    ({"cluster": "testcluster", "queue": "debug"},  # REST API without a profile
     {"profile": "custom", "cluster_queue": "testcluster/debug", "account": "", "cores": "1", "memory_gb": "1",
      "walltime_min": "0:10", "gpus": "0"}),
    ({"profile": "gone-preset"}, {}),
    ({"profile": "custom", "cluster": "testcluster", "queue": "debug", "cores": "64"}, {}),
])
def test_last_choice_is_preselected(options: dict[str, Any], selected: dict[str, str]) -> None:
    assert selection(demo_catalog(), options, local=True) == selected


def test_last_choice_in_the_page() -> None:
    page = render_catalog(demo_catalog(), "Local", last_options={"profile": "login-debug"})
    assert '<option value="login-debug" selected>' in page
    assert page_json(page)["selected"]["profile"] == "login-debug"
    fresh = render_catalog(demo_catalog(), "Local", last_options={"profile": "removed"})
    assert page_json(fresh)["selected"]["profile"] == "debug-1c"


@pytest.mark.parametrize(("form", "field"), [
    ({"profile": ["custom"], "cluster_queue": ["testcluster/debug"], "cores": ["3"]}, "cores"),
    ({"profile": ["custom"], "cluster_queue": ["testcluster/debug"], "memory_gb": ["x"]}, "memory_gb"),
    ({"profile": ["custom"], "cluster_queue": ["testcluster/debug"], "walltime_min": ["0:31"]}, "walltime_min"),
    ({"profile": ["custom"], "cluster_queue": ["testcluster/nope"]}, "cluster_queue"),
    ({"profile": ["nope"]}, "profile"),
    ({"profile": ["custom"], "cluster_queue": ["gc/cpu"], "account": ["proj9"]}, "account"),
    ({"profile": ["custom"], "cluster_queue": ["gc/gpu"], "gpus": ["5"]}, "gpus"),
    # the field is hidden for this queue (no accounts, no GPUs): said beside the queue
    ({"profile": ["custom"], "cluster_queue": ["plain/q"], "account": ["proj9"]}, "cluster_queue"),
    ({"profile": ["custom"], "cluster_queue": ["testcluster/debug"], "gpus": ["1"]}, "cluster_queue"),
])
def test_refused_field_gets_the_message_beside_it(form: dict[str, list[str]], field: str) -> None:
    cq = form.get("cluster_queue", [""])[0]
    catalog = gpu_catalog() if cq.startswith("gc/") else plain_catalog() if cq.startswith("plain/") else demo_catalog()
    with pytest.raises(ChoiceError) as err:
        catalog.options_from_form(form)
    submitted = {k: v[0] for k, v in form.items()}
    page = render(page_data(catalog, "Local", submitted=submitted, error=err.value),
                  error_message=f"Request refused: {err.value}")
    data = page_json(page)
    assert data["error"]["field"] == field and data["error"]["message"] == str(err.value)
    element = data["error"]["id"]
    beside = re.search(rf'<div class="invalid-feedback d-block" id="{element}-error">([^<]*)</div>', page)
    assert beside and html.unescape(beside.group(1)) == str(err.value)
    assert re.search(rf'id="{element}"[^>]*aria-invalid="true"', page, re.S)
    assert f"Request refused: {escape(str(err.value))}" in page  # the hub's own message stays at the top
    if field in ("cores", "memory_gb", "walltime_min"):  # the value as sent, for the user to correct
        assert f'value="{escape(submitted[field])}"' in page


def test_submitted_values_are_escaped() -> None:
    page = render(page_data(demo_catalog(), "Local", submitted={"profile": "custom", "cluster_queue": "testcluster/debug",
                                                                 "cores": f'1" onfocus="x{SCRIPT}'},
                            error=ChoiceError("cores must be a whole number", "cores")))
    assert 'onfocus="x' not in page and SCRIPT not in page


def test_free_nodes_beside_each_queue() -> None:
    free = {"testcluster": {"debug": Free(1, 2, 16, 32, 2)}}
    data = page_data(demo_catalog(), "Local", free=free)
    debug, batch = data["queues"][0], data["queues"][1]
    assert debug["free"] == {"idle_nodes": 1, "total_nodes": 2, "idle_cores": 16, "total_cores": 32, "pending_jobs": 2}
    assert debug["free_text"] == "1 of 2 nodes idle, 16 of 32 cores idle, 2 jobs pending"
    assert batch["free"] is None and batch["free_text"] == ""
    page = render(data)
    assert "Demo cluster (dockerized SLURM) / Debug (1 of 2 nodes idle, 16 of 32 cores idle, 2 jobs pending)" in page


def test_estimate_only_where_the_hub_can_ask() -> None:
    data = page_data(demo_catalog(), "Local", estimate_clusters=frozenset({"testcluster"}), estimate_url="/e")
    assert [p["estimate"] for p in data["profiles"]] == [True, False, False, False, False]
    assert [q["estimate"] for q in data["queues"]] == [True, True, False, False]


def test_without_clusters_only_the_local_profile_is_offered() -> None:
    data = page_data(Catalog.from_data({}), "Local")
    assert [p["value"] for p in data["profiles"]] == ["local"] and data["queues"] == [] and not data["custom"]
    page = render(data)
    assert 'id="hpcgw-custom"' not in page and 'name="profile"' in page


def test_without_page_data_the_hubs_form_is_shown() -> None:
    assert "<p>fallback</p>" in render(None)


@pytest.mark.parametrize(("body", "field"), [
    ([], "profile"),
    ({"profile": "custom", "wrap": "--wrap=id"}, "profile"),
    ({"profile": ["custom"]}, "profile"),
    ({"profile": "custom", "cores": True}, "cores"),
    ({"profile": "custom", "cores": {"x": 1}}, "cores"),
])
def test_estimate_body_is_only_the_forms_fields(body: Any, field: str) -> None:
    with pytest.raises(ChoiceError) as err:
        form_from_json(body)
    assert err.value.field == field


def test_estimate_body_goes_through_the_forms_checks() -> None:
    form = form_from_json({"profile": "custom", "cluster_queue": "testcluster/debug", "cores": 2, "walltime_min": "0:20"})
    assert demo_catalog().options_from_form(form) == {"profile": "custom", "cluster": "testcluster", "queue": "debug",
                                                      "cores": "2", "walltime_min": "20"}


def _alice_and_carol() -> tuple[Catalog, dict[str, Any]]:
    catalog = demo_catalog()
    return catalog, {
        "alice": {"testcluster": UserAccounts(("astro", "chem")),
                  "vialogin": from_data(catalog.cluster("vialogin"), "alice", ())},
        "carol": {"testcluster": UserAccounts(()), "vialogin": from_data(catalog.cluster("vialogin"), "carol", ())},
    }


def test_each_user_sees_only_their_accounts_default_selected() -> None:
    catalog, accounts = _alice_and_carol()
    data = page_data(catalog, "Local", accounts=accounts["alice"],
                     last_options={"profile": "custom", "cluster": "testcluster", "queue": "batch"})
    assert {q["value"]: q["accounts"] for q in data["queues"]} == {
        "testcluster/debug": ["astro", "chem"], "testcluster/batch": ["astro", "chem"], "vialogin/debug": ["astro", "chem"],
        "gridengine/jupyter": []}  # a cluster without accounts
    assert all(q["account_notice"] == "" for q in data["queues"])
    page = render(data)
    assert re.search(r'id="hpcgw-account" name="account"[^>]*>\s*<option value="astro" selected>astro</option>\s*'
                     r'<option value="chem">chem</option>\s*</select>', page)
    assert '<div class="mb-3" id="hpcgw-account-row">' in page
    # the last choice's account is kept when it is still hers
    chem = page_data(catalog, "Local", accounts=accounts["alice"],
                     last_options={"profile": "custom", "cluster": "testcluster", "queue": "batch", "account": "chem"})
    assert chem["selected"]["account"] == "chem"


def test_a_user_without_accounts_gets_a_notice_per_cluster() -> None:
    catalog, accounts = _alice_and_carol()
    data = page_data(catalog, "Local", accounts=accounts["carol"])
    by_value = {q["value"]: q for q in data["queues"]}
    assert by_value["testcluster/debug"]["accounts"] == [] and by_value["vialogin/debug"]["accounts"] == []
    assert "run under the scheduler's default" in by_value["testcluster/debug"]["account_notice"]
    assert by_value["vialogin/debug"]["account_notice"].startswith(
        "You have no account on Demo cluster through its login node (SSH), so you cannot start a server there")
    page = render(page_data(catalog, "Local", accounts=accounts["carol"], last_options={"profile": "login-debug"}))
    notice = re.search(r'<p class="mb-1" id="hpcgw-account-notice">([^<]*)</p>', page)
    assert notice and "you cannot start a server there" in html.unescape(notice.group(1))
    assert '<div class="mb-3" id="hpcgw-account-row" hidden>' in page


def test_an_unknown_answer_is_said_and_offers_nothing() -> None:
    catalog = demo_catalog()
    data = page_data(catalog, "Local", accounts={"testcluster": UserAccounts(error=f"down {SCRIPT}")})
    debug = data["queues"][0]
    assert debug["accounts"] == [] and debug["account_notice"].startswith("Your accounts on Demo cluster")
    assert SCRIPT not in render(data)  # the scheduler's words are escaped


@pytest.mark.parametrize(("submitted", "field"), [
    # bob's form with alice's account: beside his account select
    ({"profile": "custom", "cluster_queue": "testcluster/debug", "account": "astro"}, "account"),
    # a preset he has no account for: beside the profile (the custom fields are hidden)
    ({"profile": "login-debug"}, "profile"),
])
def test_a_refused_account_is_said_beside_its_field(submitted: dict[str, str], field: str) -> None:
    catalog = demo_catalog()
    bob = {"testcluster": UserAccounts(("bio",)), "vialogin": from_data(catalog.cluster("vialogin"), "carol", ())}
    options = catalog.options_from_form({k: [v] for k, v in submitted.items()})
    choice = catalog.choice_from_options(options)
    assert choice is not None
    with pytest.raises(ChoiceError) as err:
        settle(catalog, choice, bob[choice.cluster])
    page = render(page_data(catalog, "Local", submitted=submitted, error=err.value, accounts=bob),
                  error_message=f"Request refused: {err.value}")
    data = page_json(page)
    assert data["error"]["field"] == field
    beside = re.search(rf'<div class="invalid-feedback d-block" id="{data["error"]["id"]}-error">([^<]*)</div>', page)
    assert beside and html.unescape(beside.group(1)) == str(err.value)
