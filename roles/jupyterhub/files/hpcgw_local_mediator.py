"""The user's side of a local server: sudospawner's mediator, held to its scope.

Run as the user, with the hub's JSON request on stdin (sudospawner's
protocol): ``{"action": "spawn", "args": [...], "env": {...}}`` starts
``jupyterhub-singleuser``; ``{"action": "kill", "pid": N, "signal": S}``
signals it. A spawn is done only inside the user's own scope
(``hpcgw-local-<user>.scope`` in ``hpcgw-local.slice``, where the root
launcher ``hpcgw-local-scope`` puts this process with the user's limits):
the hub account's sudo rule that runs this as the user directly (needed for
signals) cannot start a server outside the limits. The server and all it
starts run at a lower CPU priority (``nice``) than the hub, proxy and Apache.

The work itself is sudospawner's own ``mediator.spawn`` and ``mediator.kill``.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from typing import Any, Callable, TextIO

SLICE = "hpcgw-local.slice"


def scope_name(user: str, slice_name: str = SLICE) -> str:
    """The user's scope in that slice (the launcher's naming)."""
    return f"{slice_name.removesuffix('.slice')}-{user}.scope"


def in_own_scope(cgroup_text: str, user: str, slice_name: str = SLICE) -> bool:
    """Does /proc/self/cgroup place this process in the user's local-server scope?

    The systemd hierarchy (cgroup v1 ``name=systemd``) or the unified one
    (``0::``) must end in ``.../hpcgw-local.slice/hpcgw-local-<user>.scope``;
    a user cannot move a process into it.
    """
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or parts[1] not in ("name=systemd", ""):
            continue
        path = parts[2].rstrip("/").split("/")
        if path[-2:] == [slice_name, scope_name(user, slice_name)]:
            return True
    return False


def refusal(message: str, out: TextIO) -> int:
    json.dump({"ok": False, "error": message}, out)
    out.flush()
    return 1


def main(singleuser: str, nice: int, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
         cgroup_file: str = "/proc/self/cgroup", mediator: Any = None,
         user: Callable[[], str] = lambda: pwd.getpwuid(os.getuid()).pw_name,
         slice_name: str = SLICE) -> int:
    """Serve one request of the hub; 0 when it was carried out."""
    if mediator is None:
        from sudospawner import mediator as upstream  # pylint: disable=import-outside-toplevel
        from tornado.log import enable_pretty_logging  # pylint: disable=import-outside-toplevel
        enable_pretty_logging()
        mediator = upstream
    try:
        request = json.load(stdin)
        action = request.pop("action")
    except (ValueError, AttributeError, KeyError):
        return refusal("expected a JSON request with an action", stdout)
    if action == "kill":
        mediator.kill(int(request["pid"]), int(request["signal"]))
        return 0
    if action != "spawn":
        return refusal(f"unknown action {action!r}", stdout)
    name = user()
    try:
        with open(cgroup_file, encoding="utf-8") as fh:
            placed = in_own_scope(fh.read(), name, slice_name)
    except OSError:
        placed = False
    if not placed:
        return refusal(f"a local server of {name} starts only in its scope {scope_name(name, slice_name)} "
                       "(through hpcgw-local-scope)", stdout)
    if nice:
        os.nice(nice)
    mediator.spawn(singleuser, list(request.get("args", [])), dict(request.get("env", {})))
    return 0
