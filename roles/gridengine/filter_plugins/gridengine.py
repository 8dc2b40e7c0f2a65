"""Grid Engine object configurations (qconf -sp/-sq/-ssconf output) as data.

qconf prints an object as ``name value`` lines, a long value continued
with a trailing backslash. The role compares the attributes it manages
with what qconf shows and hands qconf the shown text with only those
attributes replaced (``qconf -Mq``/``-Mp``/``-Msconf`` take a whole
object), so a second run changes nothing and attributes the role does not
manage keep their values.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

# Names of parallel environments and queues (qconf refuses spaces and most
# punctuation; the batch script puts them on its #$ lines).
OBJECT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}\Z")


def _joined_lines(text: str) -> list[str]:
    """qconf's lines with backslash continuations joined; blanks and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in str(text).splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line.strip())
    if pending.strip():
        lines.append(pending.strip())
    return lines


def gridengine_parse(text: str) -> dict[str, str]:
    """{attribute: value} of a qconf object's text (value whitespace folded)."""
    parsed: dict[str, str] = {}
    for line in _joined_lines(text):
        key, _, value = line.partition(" ")
        parsed[key] = " ".join(value.split())
    return parsed


def gridengine_value(value: Any) -> str:
    """An attribute's value as qconf spells it: lists space-separated, booleans TRUE/FALSE."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) if value else "NONE"
    return " ".join(str(value).split())


def _same(current: str | None, wanted: str) -> bool:
    """Equal as qconf's lists are: the same words (commas or spaces), in any order."""
    if current is None:
        return False
    words = lambda v: sorted(v.replace(",", " ").split())  # noqa: E731
    return words(current) == words(wanted)


def gridengine_changes(text: str, wanted: Mapping[str, Any]) -> dict[str, str]:
    """The wanted attributes whose value differs from the shown object's."""
    current = gridengine_parse(text)
    out = {}
    for key, value in wanted.items():
        spelled = gridengine_value(value)
        if not _same(current.get(key), spelled):
            out[key] = spelled
    return out


def gridengine_merged(text: str, wanted: Mapping[str, Any]) -> str:
    """The shown object's text with the wanted attributes replaced (unknown
    ones appended: qconf then names them in its refusal)."""
    current = gridengine_parse(text)
    merged = dict(current)
    merged.update({k: gridengine_value(v) for k, v in wanted.items()})
    width = max((len(k) for k in merged), default=0) + 1
    return "".join(f"{k.ljust(width)}{v}\n" for k, v in merged.items())


def gridengine_objects(pes: list[Mapping[str, Any]], pe_defaults: Mapping[str, Any],
                       queues: list[Mapping[str, Any]], queue_defaults: Mapping[str, Any],
                       exec_hosts: list[str]) -> list[dict[str, Any]]:
    """The PEs and queues to hold, each {kind, name, attributes}: PEs first
    (a queue's pe_list must name existing ones)."""
    objects: list[dict[str, Any]] = []
    for pe in pes:
        attributes = dict(pe_defaults)
        attributes.update({k: v for k, v in pe.items() if k != "name"})
        objects.append({"kind": "p", "name": pe["name"], "attributes": attributes})
    for queue in queues:
        attributes = dict(queue_defaults)
        attributes.update(queue.get("config") or {})
        attributes["hostlist"] = list(queue.get("hosts") or exec_hosts)
        attributes["slots"] = queue.get("slots", 1)
        attributes["pe_list"] = list(queue.get("pe_list") or [])
        objects.append({"kind": "q", "name": queue["name"], "attributes": attributes})
    return objects


def _check_name(path: str, name: Any, seen: list[str], errors: list[str]) -> None:
    """A Grid Engine object's name: well formed and not taken (added to `seen`)."""
    if not isinstance(name, str) or not OBJECT_NAME.match(name):
        errors.append(f"{path}.name must match {OBJECT_NAME.pattern} (got {name!r})")
    elif name in seen:
        errors.append(f"{path}.name: duplicate name {name!r}")
    else:
        seen.append(name)


def gridengine_errors(pes: Any, queues: Any) -> list[str]:
    """What is wrong with the parallel environments and queues, naming the variable."""
    errors: list[str] = []
    pe_names: list[str] = []
    for i, pe in enumerate(pes if isinstance(pes, list) else []):
        name = pe.get("name") if isinstance(pe, Mapping) else None
        _check_name(f"gridengine_parallel_environments[{i}]", name, pe_names, errors)
    queue_names: list[str] = []
    for i, queue in enumerate(queues if isinstance(queues, list) else []):
        path = f"gridengine_queues[{i}]"
        if not isinstance(queue, Mapping):
            errors.append(f"{path} must be a dict with name, slots, pe_list, hosts, config")
            continue
        _check_name(path, queue.get("name"), queue_names, errors)
        slots = queue.get("slots", 1)
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            errors.append(f"{path}.slots must be a positive integer (got {slots!r})")
        unknown = [pe for pe in queue.get("pe_list") or [] if pe not in pe_names]
        if unknown:
            errors.append(f"{path}.pe_list names {', '.join(map(repr, unknown))}, not in gridengine_parallel_environments "
                          f"({', '.join(pe_names) or 'none'}): add it there or remove it from the queue")
        extra = sorted(set(queue) - {"name", "slots", "pe_list", "hosts", "config"})
        if extra:
            errors.append(f"{path}: unknown key(s) {', '.join(extra)}; queue attributes go into config")
    return errors


class FilterModule:
    """gridengine filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"gridengine_errors": gridengine_errors,
                "gridengine_parse": gridengine_parse,
                "gridengine_changes": gridengine_changes,
                "gridengine_merged": gridengine_merged,
                "gridengine_objects": gridengine_objects}
