"""Render the hub's spawn page template of role spawn_profiles (spawn.html)
as the hub does: Jinja2 with autoescape, "templates/spawn.html" resolving to
JupyterHub's own page - here a stub with the blocks it has (the hub's real
one is checked by the Molecule test through Apache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined

from hpcgw_form import page_data
from hpcgw_profiles import Catalog

TEMPLATES = Path(__file__).resolve().parents[2] / "roles" / "spawn_profiles" / "files" / "templates"
# JupyterHub 6.1.1's spawn.html extends page.html, whose body has these blocks.
STUB = "<!DOCTYPE html><html><body>{% block main %}{% endblock main %}{% block script %}{% endblock script %}</body></html>"


class FakeSpawner:
    def __init__(self, page: Optional[dict[str, Any]]) -> None:
        if page is not None:
            self.hpcgw_page = page


class FakeUser:
    name = "alice"


def render(page: Optional[dict[str, Any]], error_message: str = "", strict: bool = False) -> str:
    env = Environment(autoescape=True, undefined=StrictUndefined if strict else Environment().undefined,
                      loader=ChoiceLoader([PrefixLoader({"templates": DictLoader({"spawn.html": STUB})}, "/"),
                                           FileSystemLoader(str(TEMPLATES))]))
    return env.get_template("spawn.html").render(
        spawner=FakeSpawner(page), spawner_options_form="<p>fallback</p>", error_message=error_message,
        error_html_message=None, url="/jupyter/hub/spawn?_xsrf=x", for_user=FakeUser(), user=FakeUser())


def render_catalog(catalog: Catalog, local_title: Optional[str] = "Local", **kwargs: Any) -> str:
    return render(page_data(catalog, local_title, **kwargs))
