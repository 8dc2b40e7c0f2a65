#!/usr/bin/env python3
"""Tell the hub why a Jupyter batch job ended: its exit status and the tail of its output.

Installed by the hpc-gateway ``notebook_env`` role as ``<prefix>/bin/hpcgw-job-report``
and called by the bundle's batch scripts on a non-zero exit (an EXIT trap), so
that a server which could not start (a broken ``~/.jupyter`` configuration, a
failing module load) fails the spawn at once with the reason, instead of the
hub waiting for its timeout. It uses the job's own API token and URL
(``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL``) and the standard library
only, so it runs under whatever ``python3`` the job's environment has.

Usage: hpcgw-job-report STATUS [LOG_FILE]
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

# What the hub accepts (roles/spawn_profiles/files/hpcgw_spawner.py).
MAX_TAIL_CHARS = 4000
MAX_TAIL_LINES = 40
ROUTE = "batchspawner"


def log_tail(path: str, max_chars: int = MAX_TAIL_CHARS, max_lines: int = MAX_TAIL_LINES) -> str:
    """The last lines of the job's output file ('' when it cannot be read)."""
    if not path:
        return ""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4 * max_chars))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = data.splitlines()[-max_lines:]
    text = "\n".join(lines)
    return text[-max_chars:]


CONFIG_PATTERNS = ("jupyter_*config.py", "jupyter_*config.json")


def user_config_note(environ: Mapping[str, str]) -> str:
    """A line naming the user's own Jupyter configuration files, if any.

    A broken one stops the server, often silently (``raise SystemExit(3)``
    prints nothing), so the user is shown where to look.
    """
    home = environ.get("HOME", "")
    folder = Path(environ.get("JUPYTER_CONFIG_DIR") or (Path(home) / ".jupyter" if home else ""))
    if not str(folder) or not folder.is_dir():
        return ""
    try:
        found = sorted({p.name for pattern in CONFIG_PATTERNS for p in folder.glob(pattern)})
    except OSError:
        return ""
    if not found:
        return ""
    shown = str(folder).replace(home, "~", 1) if home else str(folder)
    return f"[hpcgw] your own Jupyter configuration: {shown}/ holds {', '.join(found)}"


def with_note(tail: str, note: str, max_chars: int = MAX_TAIL_CHARS) -> str:
    """The tail with the note as its last line, within max_chars (the tail is cut first)."""
    if not note:
        return tail[-max_chars:]
    room = max_chars - len(note) - 1
    kept = tail[-room:] if room > 0 else ""
    return (f"{kept}\n{note}" if kept else note)[-max_chars:]


def report(status: int, tail: str) -> dict[str, object]:
    """The body the hub's callback takes for an ended job."""
    return {"exit_status": max(0, min(255, status)), "log_tail": tail}


def send(environ: Mapping[str, str], body: dict[str, object], timeout: float = 10.0) -> int:
    """POST the report to the hub; the HTTP status, or 0 when the hub is unreachable."""
    api_url = environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
    token = environ.get("JUPYTERHUB_API_TOKEN", "")
    if not api_url or not token:
        return 0
    request = urllib.request.Request(
        f"{api_url}/{ROUTE}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the hub's own URL)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    if len(argv) < 2 or not argv[1].lstrip("-").isdigit():
        print("usage: hpcgw-job-report STATUS [LOG_FILE]", file=sys.stderr)
        return 2
    status = int(argv[1])
    tail = with_note(log_tail(argv[2] if len(argv) > 2 else ""), user_config_note(environ))
    code = send(environ, report(status, tail))
    print(f"hpcgw-job-report: exit status {status} reported to the hub (HTTP {code or 'unreachable'})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
