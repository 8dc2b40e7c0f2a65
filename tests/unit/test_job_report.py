"""The job's exit reporter and the batch scripts' EXIT trap that calls it:
a job that ends with an error tells the hub its exit status and output tail."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

import hpcgw_job_report as report
from batch_render import CONTEXTS, render


def test_tail_keeps_the_last_lines_within_the_limits(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)) + "Traceback: SystemExit(3)\n")
    tail = report.log_tail(str(log))
    lines = tail.splitlines()
    assert lines[-1] == "Traceback: SystemExit(3)"
    assert len(lines) == report.MAX_TAIL_LINES
    assert len(report.log_tail(str(log), max_chars=50)) == 50


def test_tail_of_a_missing_or_unnamed_file_is_empty(tmp_path: Path) -> None:
    assert report.log_tail(str(tmp_path / "absent.log")) == ""
    assert report.log_tail("") == ""


def test_report_body_clamps_the_status() -> None:
    assert report.report(3, "x") == {"exit_status": 3, "log_tail": "x"}
    assert report.report(-9, "")["exit_status"] == 0
    assert report.report(300, "")["exit_status"] == 255


class _Hub(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Hub.received.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture()
def hub() -> Iterator[str]:
    _Hub.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hub/api"
    server.shutdown()


def test_send_posts_with_the_jobs_token(hub: str) -> None:
    code = report.send({"JUPYTERHUB_API_URL": hub, "JUPYTERHUB_API_TOKEN": "t0k"}, report.report(1, "boom"))
    assert code == 201
    assert _Hub.received == [{"path": "/hub/api/batchspawner", "auth": "token t0k",
                              "body": {"exit_status": 1, "log_tail": "boom"}}]


def test_send_without_a_hub_does_nothing() -> None:
    assert report.send({}, report.report(1, "")) == 0


def _run_script(tmp_path: Path, hub: str, cmd: str, prologue: str = "") -> subprocess.CompletedProcess[str]:
    """The rendered SLURM script run by bash as the job would, with the
    reporter on PATH and a fake job id; its output goes to the job's log."""
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))
    home = tmp_path / "home"
    home.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "hpcgw-job-report"
    tool.write_text(f"#!/bin/sh\nexec python3 {Path(report.__file__)} \"$@\"\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    context = dict(CONTEXTS["minimal"], homedir=str(home), cmd=cmd,
                   prologue=f"export PATH={bindir}:$PATH\n{prologue}")
    script = tmp_path / "job.sh"
    script.write_text(render("slurm", context))
    env = dict(os.environ, SLURM_JOB_ID="77", JUPYTERHUB_API_URL=hub, JUPYTERHUB_API_TOKEN="t0k", HOME=str(home))
    with (home / ".jupyterhub-slurm-77.log").open("w") as log:
        return subprocess.run(["bash", str(script)], env=env, stdout=log, stderr=subprocess.STDOUT,
                              text=True, check=False, timeout=60)


def test_a_failing_server_reports_status_and_output(tmp_path: Path, hub: str) -> None:
    result = _run_script(tmp_path, hub, "echo 'Traceback: SystemExit(3) in jupyter_server_config.py'; exit 3")
    assert result.returncode == 3
    (posted,) = _Hub.received
    assert posted["body"]["exit_status"] == 3
    assert "SystemExit(3) in jupyter_server_config.py" in posted["body"]["log_tail"]


def test_a_failing_prologue_reports_too(tmp_path: Path, hub: str) -> None:
    result = _run_script(tmp_path, hub, "echo never", prologue="echo 'module: python/9 not found'; false")
    assert result.returncode == 1
    (posted,) = _Hub.received
    assert "module: python/9 not found" in posted["body"]["log_tail"]
    assert "never" not in posted["body"]["log_tail"]


def test_a_server_that_ends_well_or_is_stopped_reports_nothing(tmp_path: Path, hub: str) -> None:
    assert _run_script(tmp_path, hub, "true").returncode == 0
    stopped = _run_script(tmp_path, hub, "kill -TERM $$; sleep 0.2; exit 143")
    assert stopped.returncode == 143
    assert _Hub.received == []


def test_the_users_jupyter_configuration_is_named(tmp_path: Path) -> None:
    (tmp_path / ".jupyter").mkdir()
    assert report.user_config_note({"HOME": str(tmp_path)}) == ""
    (tmp_path / ".jupyter" / "jupyter_server_config.py").write_text("raise SystemExit(3)\n")
    (tmp_path / ".jupyter" / "migrated").write_text("")
    note = report.user_config_note({"HOME": str(tmp_path)})
    assert note == "[hpcgw] your own Jupyter configuration: ~/.jupyter/ holds jupyter_server_config.py"
    assert report.user_config_note({}) == ""


def test_the_note_survives_a_full_tail() -> None:
    tail = "x" * report.MAX_TAIL_CHARS
    text = report.with_note(tail, "[hpcgw] note")
    assert len(text) == report.MAX_TAIL_CHARS and text.endswith("\n[hpcgw] note")
    assert report.with_note("", "[hpcgw] note") == "[hpcgw] note"
    assert report.with_note("abc", "") == "abc"


def test_a_silent_failure_names_the_configuration(tmp_path: Path, hub: str) -> None:
    """The issue's case: SystemExit(3) in the user's config prints nothing at all."""
    result = _run_script(tmp_path, hub,
                         "mkdir -p \"$HOME/.jupyter\"; : > \"$HOME/.jupyter/jupyter_server_config.py\"; exit 3")
    assert result.returncode == 3
    (posted,) = _Hub.received
    assert posted["body"]["log_tail"].endswith("~/.jupyter/ holds jupyter_server_config.py")
