"""Issue 5: a real browser (headless Chromium in hpcgw-browser) logs in through
Apache, picks a preset in the spawn form, watches the progress page, runs a
cell in JupyterLab on a compute node and stops the server from the hub's home
page; afterwards the user has no SLURM job left. Screenshots land in
<project>/artifacts/browser/."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import BASE, COMPUTE, completed_jobs, user_jobs, wait_no_jobs, wait_until

BROWSER = "hpcgw-browser"
USER, PASSWORD = "bob", "bob-test-pw"
PRESET = "debug-1c"
# Not under /tmp: that is a tmpfs, which `docker cp` cannot read.
REMOTE_SHOTS = "/var/tmp/hpcgw-browser-check"
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "browser"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser(node: Callable[[str], Host]) -> Host:
    return node(BROWSER)


@pytest.fixture
def clean_user(controller: Host) -> Iterator[None]:
    """bob starts without a job and is left without one, even when the check fails midway."""
    assert wait_no_jobs(controller, USER) == [], f"{USER} already has a SLURM job before the browser test"
    yield
    if user_jobs(controller, USER):
        controller.run(f"python3 /usr/local/bin/spawnclient.py stop {BASE} {USER} {PASSWORD}")


def _browser_check(browser: Host) -> tuple[Any, dict[str, Any]]:
    browser.run_expect([0], f"rm -rf {REMOTE_SHOTS}")
    cmd = browser.run(
        "python3 /usr/local/bin/browser_check.py "
        f"--url {BASE} --user {USER} --password {PASSWORD} --preset {PRESET} "
        f"--screenshots {REMOTE_SHOTS} --timeout 240 --expect-hosts {','.join(COMPUTE)}"
    )
    lines = cmd.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result = {}
    return cmd, result


def _png_size(path: Path) -> tuple[int, int, int]:
    """(width, height, bytes) of a PNG file; (0, 0, bytes) when it is no PNG."""
    data = path.read_bytes()
    if not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        return 0, 0, len(data)
    width, height = struct.unpack(">II", data[16:24])
    return width, height, len(data)


def _copy_screenshots() -> list[Path]:
    """docker cp the container's screenshot folder into artifacts/browser/ (replacing old ones)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
    # Not checked here: when the check failed before its first screenshot there is
    # nothing to copy, and the check's own failure message is the one to show.
    subprocess.run(["docker", "cp", f"{BROWSER}:{REMOTE_SHOTS}", str(ARTIFACTS)],
                   check=False, capture_output=True, text=True)
    return sorted(ARTIFACTS.glob("*.png"))


def test_browser_spawns_preset_runs_cell_on_compute_node_and_stops(
    browser: Host, controller: Host, clean_user: None
) -> None:
    done_before = len(completed_jobs(controller, USER))
    started = time.monotonic()
    cmd, result = _browser_check(browser)
    shots = _copy_screenshots()
    print(json.dumps(result, sort_keys=True), f"test {time.monotonic() - started:.1f}s", sep="\n")
    # Kept for the report (submit -> JupyterLab usable, stop time): artifacts/browser/result.json.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    assert cmd.rc == 0 and result.get("ok") is True, f"browser check failed: {cmd.stderr.strip()} {result}"
    assert result["hostname"] in COMPUTE, result
    assert result["progress_page_seen"] is True, result
    assert 0 < result["submit_to_lab_s"] < 240, result

    names = {p.name for p in shots}
    assert {"spawn-form.png", "notebook.png"} <= names, names
    for name in ("spawn-form.png", "notebook.png"):
        width, height, size = _png_size(ARTIFACTS / name)
        assert width >= 1000 and height >= 600 and size > 20_000, f"{name}: {width}x{height}, {size} bytes"

    assert wait_no_jobs(controller, USER) == [], "the stopped server left a SLURM job behind"
    assert controller.run(f"squeue -h -u {USER}").stdout.strip() == ""

    # The one job the form submitted ran in the preset's queue, on the node the cell printed.
    new = wait_until(lambda: completed_jobs(controller, USER)[done_before:], 30)
    assert len(new) == 1, new
    assert (new[0]["Partition"], new[0]["NodeList"]) == ("debug", result["hostname"]), new[0]
