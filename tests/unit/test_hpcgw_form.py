"""The spawn form rendered from its Jinja2 template: every admin-provided
title escaped, the field names and ids the hub, spawnclient and the browser
test rely on, and the demo inventory's form as reviewed (golden)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ansible_run import load_vars
from golden_files import GOLDEN, assert_golden
from hpcgw_form import TEMPLATE, form_data, form_html
from hpcgw_profiles import FORM_FIELDS, Catalog

SCRIPT = "<script>alert('x')</script>"
# spawnclient.py's reading of the form (molecule/shared/files/spawnclient.py).
CHOICES = re.compile(r'<(?:option|input)[^>]*\bvalue="([^"]*)"[^>]*>\s*([^<]*)')


def demo_catalog() -> Catalog:
    data = load_vars("inventories/demo/group_vars/gateway/spawn_profiles.yml")
    return Catalog.from_data({"clusters": data["spawn_profiles_clusters"], "presets": data["spawn_profiles_presets"],
                              "notebook_prefix": data["spawn_profiles_notebook_prefix"]})


def hostile_catalog() -> Catalog:
    return Catalog.from_data({
        "clusters": [{"name": "c", "title": f'C {SCRIPT} "q" & co', "scheduler": "slurm",
                      "queues": [{"name": "q", "title": f"Q {SCRIPT}", "cores": {"max": 2}}]}],
        "presets": [{"key": "p", "title": f"P {SCRIPT}", "cluster": "c", "queue": "q"}],
    })


def test_the_template_is_installed_beside_the_module() -> None:
    assert TEMPLATE.is_file() and TEMPLATE.parent.name == "files"


def test_every_admin_title_is_escaped() -> None:
    page = form_html(hostile_catalog(), f"L {SCRIPT}")
    assert "<script" not in page and "</script>" not in page
    assert page.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") == 4  # preset, local, cluster and queue titles
    assert "C &lt;script&gt;" in page and "&#34;q&#34; &amp; co" in page


def test_demo_form_matches_golden() -> None:
    assert_golden(GOLDEN / "spawn_profiles" / "spawn_form.demo.html", form_html(demo_catalog(), "Dedicated Jupyter node (gateway)"))


def test_field_names_and_ids_are_the_ones_clients_post() -> None:
    page = form_html(demo_catalog(), "Local")
    names = set(re.findall(r'\bname="([^"]+)"', page))
    assert names == FORM_FIELDS
    for element_id in ("hpcgw-profile", "hpcgw-custom", "hpcgw-cq", "hpcgw-account", "hpcgw-cores",
                       "hpcgw-memory_gb", "hpcgw-walltime_min", "hpcgw-gpus"):
        assert f'id="{element_id}"' in page
    labels = set(re.findall(r'<label for="([^"]+)"', page))
    assert labels <= set(re.findall(r'\bid="([^"]+)"', page))


def test_spawnclient_reads_the_choices_in_page_order() -> None:
    choices = [(value, label.strip()) for value, label in CHOICES.findall(form_html(demo_catalog(), "Local"))]
    assert [value for value, _ in choices] == [
        "debug-1c", "login-debug", "local", "custom", "testcluster/debug", "testcluster/batch", "vialogin/debug"]
    assert choices[0][1] == "Debug - 1 core, 10 min"


@pytest.mark.parametrize(("form", "options"), [
    ({"profile": ["debug-1c"]}, {"profile": "debug-1c"}),
    ({"profile": ["custom"], "cluster_queue": ["testcluster/batch"], "account": [""], "cores": ["2"],
      "memory_gb": [""], "walltime_min": ["90"], "gpus": [""]},
     {"profile": "custom", "cluster": "testcluster", "queue": "batch", "cores": "2", "walltime_min": "90"}),
])
def test_what_the_form_offers_is_accepted_back(form: dict[str, list[str]], options: dict[str, Any]) -> None:
    catalog = demo_catalog()
    offered = form_data(catalog, "Local")
    assert form["profile"][0] in {o.value for o in offered.profiles}
    assert all(v in {o.value for o in offered.cluster_queues} for v in form.get("cluster_queue", []))
    assert catalog.options_from_form(form) == options


def test_without_clusters_only_the_local_profile_is_offered() -> None:
    form = form_data(Catalog.from_data({}), "Local")
    assert [o.value for o in form.profiles] == ["local"] and form.cluster_queues == ()
