"""The local profile's spawner: sudospawner with each server in its own scope.

``LocalScopeSpawner`` talks sudospawner's JSON protocol to a mediator that
runs as the user, as ``SudoSpawner`` does, but starts it in two ways:

* a spawn runs ``sudo -n <scope_launcher> start <user>`` (root, one pinned
  sudo rule): the launcher checks the user, puts the mediator into
  ``hpcgw-local-<user>.scope`` (``hpcgw-local.slice``) with the user's
  MemoryMax, CPUQuota and TasksMax, and runs it as the user there, so the
  server and everything it starts are held to those limits together;
* signals go as before (``sudo -u <user> <mediator>``); the mediator refuses
  to spawn outside the user's scope.

After the server stops (or is found dead), ``<scope_launcher> stop <user>``
ends the scope, so nothing the server left behind keeps running.

One local server per user: the scope, its limits and its stop are the
user's. With named servers (several servers per user), a second local
server is refused while one runs (:func:`other_local_server`); the user's
other servers are batch jobs.

The mediator's stderr is the hub's (the server's log joins the hub's
journal, as with SudoSpawner); its stdout carries the one JSON reply.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterable, Optional

from jupyterhub.utils import random_port
from sudospawner import SudoSpawner
from traitlets import Integer, Unicode


def parse_reply(out: bytes) -> dict[str, Any]:
    """The mediator's JSON reply (the one object on its stdout); {} when there is none."""
    text = out.decode("utf-8", "replace")
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return {}
    try:
        reply = json.loads(text[start:end + 1])
    except ValueError:
        return {}
    return reply if isinstance(reply, dict) else {}


def other_local_server(spawners: Iterable[Any], own_name: str, local_class: type) -> Optional[str]:
    """The name of another active local server among a user's spawners
    ("" for the default server), or None. A wrapper's (ProfilesSpawner's)
    server counts by its child."""
    for spawner in spawners:
        if spawner.name == own_name or not spawner.active:
            continue
        if isinstance(getattr(spawner, "child_spawner", None) or spawner, local_class):
            return str(spawner.name)
    return None


def one_local_server_message(other: str) -> str:
    """Why a second local server of a user is refused."""
    which = f'your server "{other}"' if other else "your default server"
    return (f"Request refused: the gateway's local profile runs one server per user, and {which} is one. "
            "Stop it first, or choose a cluster's queue for this server.")


class LocalScopeSpawner(SudoSpawner):  # type: ignore[misc]
    """SudoSpawner whose servers run in a systemd scope each, with the user's limits."""

    scope_launcher = Unicode("/usr/local/sbin/hpcgw-local-scope", config=True,
                             help="Root launcher the hub runs through sudo: start|stop <user>.")
    mediator_timeout = Integer(120, config=True,
                               help="Seconds one mediator or launcher call may take.")

    def mediator_argv(self, action: str) -> list[str]:
        """The command of one request: spawns through the scope launcher (root), signals as the user."""
        if action == "spawn":
            return ["sudo", "-n", self.scope_launcher, "start", self.user.name]
        return ["sudo", "-u", self.user.name, *self.sudo_args, self.sudospawner_path]

    async def do(self, action: str, **kwargs: Any) -> dict[str, Any]:
        argv = self.mediator_argv(action)
        self.log.debug("Local server of %s: %s", self.user.name, argv)
        # stderr stays the hub's: the server keeps it open after the mediator exits.
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        payload = json.dumps({**kwargs, "action": action}).encode("utf-8")
        try:
            out, _ = await asyncio.wait_for(proc.communicate(payload), self.mediator_timeout)
        except asyncio.TimeoutError as exc:
            raise RuntimeError(f"local server {action} for {self.user.name}: no answer in "
                               f"{self.mediator_timeout} s") from exc
        reply = parse_reply(out)
        if proc.returncode:
            raise RuntimeError(f"local server {action} for {self.user.name} failed (exit {proc.returncode})"
                               + (f": {reply['error']}" if reply.get("error") else ""))
        return reply

    async def start(self) -> tuple[str, int]:
        other = other_local_server(self.user.spawners.values(), self.name, LocalScopeSpawner)
        if other is not None:  # its scope would end the other server's
            raise RuntimeError(one_local_server_message(other))
        self.port = random_port()
        reply = await self.do("spawn", args=self.get_args(), env=self.get_env())
        if not reply.get("ok") or not isinstance(reply.get("pid"), int):
            raise RuntimeError(f"The local server of {self.user.name} did not start: "
                               f"{reply.get('error') or 'no answer from the mediator'}")
        self.pid = reply["pid"]
        return (self.ip or "127.0.0.1", self.port)

    async def end_scope(self) -> None:
        """Stop the user's scope: whatever the server left behind ends with it."""
        argv = ["sudo", "-n", self.scope_launcher, "stop", self.user.name]
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.DEVNULL)
        try:
            code = await asyncio.wait_for(proc.wait(), self.mediator_timeout)
        except asyncio.TimeoutError:
            code = None
        if code != 0:
            self.log.error("Could not end the local server scope of %s (%s): exit %s",
                           self.user.name, self.scope_launcher, code)

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            await self.end_scope()
