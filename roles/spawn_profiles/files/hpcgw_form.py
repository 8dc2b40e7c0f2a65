"""The spawn form: the catalog's choices as plain data (``form_data``), turned
into HTML by the Jinja2 template ``hpcgw_spawn_form.html.j2`` installed next
to this module, with autoescape on, so every admin-provided title is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, StrictUndefined

from hpcgw_profiles import CUSTOM_KEY, LOCAL_KEY, RESOURCES, Catalog

TEMPLATE = Path(__file__).with_name("hpcgw_spawn_form.html.j2")
CUSTOM_LABEL = "Custom: choose cluster, queue and size"


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    number: bool


@dataclass(frozen=True)
class Form:
    """What the form offers, in page order."""

    profiles: tuple[Option, ...]
    cluster_queues: tuple[Option, ...]
    fields: tuple[Field, ...]


def form_data(catalog: Catalog, local_title: str | None) -> Form:
    """Presets first, then the local profile and the custom request; the
    custom request's cluster/queue choices with their limits."""
    profiles = [Option(preset.key, preset.title) for preset in catalog.presets]
    if local_title:
        profiles.append(Option(LOCAL_KEY, local_title))
    if catalog.clusters and catalog.custom_enabled:
        profiles.append(Option(CUSTOM_KEY, CUSTOM_LABEL))
    queues = []
    for cluster in catalog.clusters:
        for queue in cluster.queues:
            limits = ", ".join(f"{key} {lim.minimum}-{lim.maximum}" for key, lim in queue.limits.items())
            queues.append(Option(f"{cluster.name}/{queue.name}", f"{cluster.title} / {queue.title} ({limits})"))
    fields = [Field("account", "account (optional)", False)]
    fields += [Field(key, key.replace("_", " "), True) for key in RESOURCES]
    return Form(tuple(profiles), tuple(queues), tuple(fields))


def render_form(form: Form, template: Path = TEMPLATE) -> str:
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template.read_text(encoding="utf-8")).render(form=form)


def form_html(catalog: Catalog, local_title: str | None) -> str:
    """The spawn form's HTML for this catalog."""
    return render_form(form_data(catalog, local_title))
