"""Each role's contract is told three times and must say the same thing:
meta/argument_specs.yml (types, defaults, one true description per option),
defaults/main.yml (the values Ansible uses) and the README's variable table
(what an admin reads). The checker below lists every disagreement; the
negative tests prove it finds each kind on a deliberately broken copy."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_run import ROOT

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
TABLE_HEADER = "| Variable | Default | Description |"
CODE_SPAN = re.compile(r"`([^`]+)`|``\s?([^`]*?)\s?``")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def readme_table(readme: str) -> tuple[dict[str, str], list[str]]:
    """The rows of the README's variable table (name -> default cell), and format errors.

    The one format of every role README: a `## Variables` section holding a
    table `| Variable | Default | Description |`, one variable per row, its
    name as a code span in the first cell."""
    errors: list[str] = []
    rows: dict[str, str] = {}
    section = re.search(r"^## Variables\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if not section:
        return rows, ["README has no '## Variables' section"]
    lines = section.group(1).splitlines()
    if TABLE_HEADER not in lines:
        return rows, [f"README's '## Variables' has no table headed {TABLE_HEADER!r}"]
    start = lines.index(TABLE_HEADER) + 2
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) != 3:
            errors.append(f"README row has {len(cells)} cells, not 3: {line}")
            continue
        name = re.fullmatch(r"`([a-z0-9_]+)`", cells[0])
        if not name:
            errors.append(f"README row's first cell is not one variable name: {cells[0]}")
            continue
        if name.group(1) in rows:
            errors.append(f"README lists {name.group(1)} twice")
        rows[name.group(1)] = cells[1]
    return rows, errors


def _same_default(cell: str, value: Any) -> bool:
    """A default cell that is one code span must show the value; prose is free."""
    span = re.fullmatch(r"`([^`]+)`|``\s?(.*?)\s?``", cell)
    if not span:
        return True
    text = (span.group(1) or span.group(2)).replace("&#124;", "|").replace("\\|", "|")
    if text == str(value) or (isinstance(value, bool) and text == str(value).lower()):
        return True
    try:
        return yaml.safe_load(text) == value
    except yaml.YAMLError:
        return False


def contract_errors(role_dir: Path) -> list[str]:
    """Every disagreement between a role's spec, defaults and README."""
    role = role_dir.name
    errors: list[str] = []
    meta = _load(role_dir / "meta" / "main.yml") or {}
    if (meta.get("galaxy_info") or {}).get("role_name") != role:
        errors.append(f"meta/main.yml: galaxy_info.role_name is not {role}")
    spec_file = _load(role_dir / "meta" / "argument_specs.yml") or {}
    spec = spec_file.get("argument_specs", {}).get("main", {}).get("options", {})
    if not spec:
        return errors + ["meta/argument_specs.yml has no main entry point with options"]
    defaults = _load(role_dir / "defaults" / "main.yml") or {}

    for name in defaults:
        if name not in spec:
            errors.append(f"{name}: in defaults/main.yml, not in meta/argument_specs.yml")
    descriptions: dict[str, str] = {}
    for name, option in spec.items():
        description = option.get("description")
        text = " ".join(description) if isinstance(description, list) else str(description or "")
        if not text.strip():
            errors.append(f"{name}: no description in meta/argument_specs.yml")
        elif text in descriptions:
            errors.append(f"{name}: same description as {descriptions[text]} (describe what this option does)")
        else:
            descriptions[text] = name
        if option.get("required"):
            if "default" in option:
                errors.append(f"{name}: required in meta/argument_specs.yml, yet it has a default there")
            continue
        if name not in defaults:
            errors.append(f"{name}: in meta/argument_specs.yml, not in defaults/main.yml")
        elif "default" not in option:
            errors.append(f"{name}: no default in meta/argument_specs.yml (defaults/main.yml has {defaults[name]!r})")
        elif option["default"] != defaults[name]:
            errors.append(f"{name}: default {option['default']!r} in meta/argument_specs.yml, "
                          f"{defaults[name]!r} in defaults/main.yml")

    readme = role_dir / "README.md"
    rows, format_errors = readme_table(readme.read_text() if readme.is_file() else "")
    errors += format_errors
    for name in spec:
        if name not in rows and not format_errors:
            errors.append(f"{name}: in meta/argument_specs.yml, not in the README's variable table")
    for name, cell in rows.items():
        if name not in spec:
            errors.append(f"{name}: in the README's variable table, not in meta/argument_specs.yml")
        elif spec[name].get("required"):
            if "required" not in cell:
                errors.append(f"{name}: required, but the README's default cell does not say so ({cell})")
        elif name in defaults and not _same_default(cell, defaults[name]):
            errors.append(f"{name}: README default {cell} differs from defaults/main.yml {defaults[name]!r}")
    return [f"{role}: {e}" for e in errors]


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_and_readme_agree(role: str) -> None:
    assert contract_errors(ROOT / "roles" / role) == []


def test_every_role_is_checked() -> None:
    assert len(ROLES) == 10, ROLES


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda r: _edit(r / "defaults" / "main.yml", "chp_port: 8000", "chp_port: 8080"),
         "chp: chp_port: default 8000 in meta/argument_specs.yml, 8080 in defaults/main.yml"),
        (lambda r: _edit(r / "defaults" / "main.yml", "chp_start_timeout: 60", "chp_start_timeout: 60\nchp_new_knob: 1"),
         "chp: chp_new_knob: in defaults/main.yml, not in meta/argument_specs.yml"),
        (lambda r: _edit(r / "defaults" / "main.yml", "chp_start_timeout: 60", ""),
         "chp: chp_start_timeout: in meta/argument_specs.yml, not in defaults/main.yml"),
        (lambda r: _edit(r / "meta" / "argument_specs.yml", "        default: 60\n", ""),
         "chp: chp_start_timeout: no default in meta/argument_specs.yml"),
        (lambda r: _edit(r / "meta" / "argument_specs.yml", "description: Address of the proxy's REST API; loopback only (preflight).",
                         "description: Debian packages providing Node.js and npm."),
         "chp: chp_api_ip: same description as chp_node_packages"),
        (lambda r: _edit(r / "README.md", "| `chp_log_level` |", "| `chp_loglevel` |"),
         "chp: chp_log_level: in meta/argument_specs.yml, not in the README's variable table"),
        (lambda r: _edit(r / "README.md", "| `chp_api_port` | `8001` |", "| `chp_api_port` | `8002` |"),
         "chp: chp_api_port: README default `8002` differs from defaults/main.yml 8001"),
        (lambda r: _edit(r / "README.md", TABLE_HEADER, "| variable | default | meaning |"),
         "chp: README's '## Variables' has no table headed"),
        (lambda r: (r / "meta" / "main.yml").unlink(),
         "chp: meta/main.yml: galaxy_info.role_name is not chp"),
    ],
)
def test_the_checker_finds_each_disagreement(tmp_path: Path, breakage: Any, expected: str) -> None:
    role = tmp_path / "chp"
    shutil.copytree(ROOT / "roles" / "chp", role)
    assert contract_errors(role) == []
    breakage(role)
    errors = contract_errors(role)
    assert any(e.startswith(expected) for e in errors), errors
