"""The gateway instances of one host must share nothing: no port, no URL space.

Each instance leaves a record on its host (role jupyterhub,
``/etc/hpcgw/instances/<name>.json``, "production" for the empty instance):
its ports, its server name and its base URL. The preflight compares the
instance it is about to converge with the other records and refuses a clash
before anything changes. Pure functions; Ansible calls them as filters.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

INSTANCE = re.compile(r"([a-z][a-z0-9]{0,11})?\Z")
RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)\Z")
PORT_KEYS = ("hub_port", "proxy_port", "proxy_api_port")


def record_name(instance: str) -> str:
    """The record's file name (without .json): the empty instance is 'production'."""
    return instance or "production"


def _nested(a: str, b: str) -> bool:
    """Does one base URL contain the other ('/' contains every path)?"""
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def instance_clashes(this: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> list[str]:
    """What makes `this` instance clash with another instance of the host (empty: none).

    `this` and each of `others` hold: instance, hub_port, proxy_port,
    proxy_api_port, server_name, base_url. A record of `this` instance
    itself (an earlier run) is no clash.
    """
    errors: list[str] = []
    name = str(this.get("instance", ""))
    if not INSTANCE.match(name):
        return [f"jupyterhub_instance {name!r}: empty, or a lowercase letter then up to 11 lowercase letters or digits"]
    ports = {key: int(this[key]) for key in PORT_KEYS}
    if len(set(ports.values())) != len(ports):
        errors.append(f"instance {record_name(name)}: its own ports collide ({ports})")
    for other in others:
        other_name = str(other.get("instance", ""))
        if other_name == name:
            continue
        label = record_name(other_name)
        try:
            taken = {int(other[key]): key for key in PORT_KEYS}
        except (KeyError, TypeError, ValueError):
            errors.append(f"the record of instance {label} is malformed: {dict(other)!r}")
            continue
        for key, port in sorted(ports.items()):
            if port in taken:
                errors.append(f"instance {record_name(name)}: port {port} ({key}) is instance {label}'s {taken[port]}")
        if (str(other.get("server_name", "")) == str(this.get("server_name", ""))
                and _nested(str(other.get("base_url", "/")), str(this.get("base_url", "/")))):
            errors.append(f"instance {record_name(name)}: base URL {this.get('base_url')} on {this.get('server_name')} "
                          f"overlaps instance {label}'s {other.get('base_url')} (give it its own base path or server name)")
    return errors


def _release(version: str) -> tuple[int, int, int] | None:
    match = RELEASE.match(version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def hub_downgrade(this: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> str:
    """Why converging `this` instance would run an older JupyterHub on a
    database a newer one may have migrated (empty: it would not).

    The instance's own record (an earlier run; none on a first install, and
    none with a release from before records carried the version) holds the
    JupyterHub the hub last ran. A newer JupyterHub upgrades the database's
    schema when it starts (jupyterhub_upgrade_db); an older one cannot read
    that schema and the hub would not start again.
    """
    name = str(this.get("instance", ""))
    wanted = str(this.get("jupyterhub_version", ""))
    for other in others:
        if str(other.get("instance", "")) != name or "jupyterhub_version" not in other:
            continue
        ran = str(other["jupyterhub_version"])
        ran_release, wanted_release = _release(ran), _release(wanted)
        if ran_release is None or wanted_release is None:
            return (f"instance {record_name(name)}: cannot compare JupyterHub {wanted!r} with the {ran!r} of its record "
                    f"(X.Y.Z releases expected)")
        if wanted_release < ran_release:
            return (f"instance {record_name(name)}: its hub last ran JupyterHub {ran}, which upgrades the database's "
                    f"schema when it starts; JupyterHub {wanted} (jupyterhub_version) does not downgrade a schema, and "
                    f"the hub would not start on a newer one")
    return ""


class FilterModule:
    """Ansible filters of the gateway instances."""

    def filters(self) -> dict[str, Any]:
        return {"hpcgw_instance_clashes": instance_clashes, "hpcgw_instance_record_name": record_name,
                "hpcgw_hub_downgrade": hub_downgrade}
