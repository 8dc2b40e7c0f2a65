"""Compare a rendered text with its golden file, or rewrite the golden file.

    HPCGW_UPDATE_GOLDEN=1 pytest -q tests/unit     # rewrite every golden file

Without the variable a mismatch fails the test with a unified diff (golden
-> rendered); review the diff of tests/unit/golden/ after an update like any
other change.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
UPDATE_ENV = "HPCGW_UPDATE_GOLDEN"


def updating() -> bool:
    return os.environ.get(UPDATE_ENV, "") == "1"


def unified_diff(expected: str, actual: str, name: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                        fromfile=f"golden/{name}", tofile=f"rendered/{name}"))


def assert_golden(path: Path, rendered: str) -> None:
    """rendered == the golden file at path (written instead when updating)."""
    name = path.relative_to(GOLDEN).as_posix() if path.is_relative_to(GOLDEN) else str(path)
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != rendered:
            path.write_text(rendered)
        return
    if not path.exists():
        pytest.fail(f"no golden file {name}; review the render and write it with {UPDATE_ENV}=1", pytrace=False)
    expected = path.read_text()
    if rendered != expected:
        pytest.fail(f"{name} differs from its golden file ({UPDATE_ENV}=1 rewrites it once the change is "
                    f"intended):\n{unified_diff(expected, rendered, name)}", pytrace=False)


def assert_no_stale(directory: Path, expected: set[str]) -> None:
    """directory holds exactly the expected golden files (stale ones are removed when updating)."""
    present = {p.name for p in directory.iterdir() if p.is_file()} if directory.is_dir() else set()
    stale = sorted(present - expected)
    if updating():
        for name in stale:
            (directory / name).unlink()
        return
    assert not stale, (f"golden files no test renders any more: {stale}; "
                       f"{UPDATE_ENV}=1 removes them (a template renamed or moved?)")
