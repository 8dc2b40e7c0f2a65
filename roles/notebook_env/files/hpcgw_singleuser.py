#!/usr/bin/env python3
"""Start the single-user server on a port inside the range a site's firewall opens.

Installed by the hpc-gateway ``notebook_env`` role as ``<prefix>/bin/hpcgw-singleuser``.
For a cluster with a ``port_range`` (role ``spawn_profiles``) the hub puts it in
the batch script in place of batchspawner's ``batchspawner-singleuser``, which
takes any free port:

    hpcgw-singleuser --port-range 9000-9099 jupyterhub-singleuser [ARGS...]

On the compute node it tries the range's ports, from a random one onwards,
until one can be bound; tells the hub that port (``POST
$JUPYTERHUB_API_URL/batchspawner {"port": N}`` with the job's own token, as
batchspawner-singleuser does); puts it into ``JUPYTERHUB_SERVICE_URL``, where
the server reads its address; and replaces itself with the server command.
When every port of the range is taken, or the hub refuses the port, it exits
with status 75 and a message on stderr: the batch script's EXIT trap reports
the job's output to the hub, and the spawn fails at once with it.

Standard library only.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Mapping, MutableMapping, Optional, Sequence

RANGE_RE = re.compile(r"([0-9]{1,5})-([0-9]{1,5})")
# EX_TEMPFAIL: nothing is wrong with the job, the node has no port for it now.
NO_PORT = 75
ROUTE = "batchspawner"


class UsageError(ValueError):
    """The command line is not ``--port-range LOW-HIGH COMMAND [ARGS...]``."""


def parse_range(text: str) -> tuple[int, int]:
    """``"9000-9099"`` -> (9000, 9099); UsageError unless 1024 <= low <= high <= 65535."""
    match = RANGE_RE.fullmatch(text.strip())
    if not match:
        raise UsageError(f"port range {text!r} is not LOW-HIGH")
    low, high = int(match.group(1)), int(match.group(2))
    if not 1024 <= low <= high <= 65535:
        raise UsageError(f"port range {text!r} must lie within 1024-65535, low end first")
    return low, high


USAGE = "usage: hpcgw-singleuser --port-range LOW-HIGH COMMAND [ARGS...]"


def parse_args(argv: Sequence[str]) -> tuple[tuple[int, int], list[str]]:
    """(the range, the server's command line) from ``--port-range R COMMAND...``."""
    args = list(argv)
    if args and args[0].startswith("--port-range="):
        text, command = args[0].split("=", 1)[1], args[1:]
    elif len(args) >= 2 and args[0] == "--port-range":
        text, command = args[1], args[2:]
    else:
        raise UsageError(USAGE)
    if not command:
        raise UsageError(USAGE)
    return parse_range(text), command


def candidates(low: int, high: int, start: int) -> list[int]:
    """Every port of the range once, from ``start`` onwards, wrapping around."""
    size = high - low + 1
    offset = (start - low) % size
    return [low + (offset + i) % size for i in range(size)]


def can_bind(host: str, port: int) -> bool:
    """Can a server listen on host:port now? (SO_REUSEADDR as tornado sets it,
    so a port whose last connections are in TIME_WAIT counts as free.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError:
            return False
    return True


def free_port(low: int, high: int, host: str, start: int,
              probe: Callable[[str, int], bool] = can_bind) -> Optional[int]:
    """The first port of the range, from ``start``, that ``probe`` finds free; None when none is."""
    for port in candidates(low, high, start):
        if probe(host, port):
            return port
    return None


def listen_host(service_url: str) -> str:
    """The address the server will listen on (JUPYTERHUB_SERVICE_URL's host), 0.0.0.0 by default."""
    host = urllib.parse.urlsplit(service_url).hostname if service_url else None
    return host or "0.0.0.0"


def with_port(service_url: str, port: int) -> str:
    """JUPYTERHUB_SERVICE_URL with its port replaced."""
    parts = urllib.parse.urlsplit(service_url)
    host = parts.hostname or "0.0.0.0"
    if ":" in host:
        host = f"[{host}]"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def report_port(environ: Mapping[str, str], port: int, timeout: float = 30.0) -> tuple[int, str]:
    """POST the port to the hub's callback: (HTTP status or 0 when unreachable, the answer's text)."""
    api_url = environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
    token = environ.get("JUPYTERHUB_API_TOKEN", "")
    if not api_url or not token:
        return 0, "JUPYTERHUB_API_URL or JUPYTERHUB_API_TOKEN is not set"
    request = urllib.request.Request(
        f"{api_url}/{ROUTE}", data=json.dumps({"port": port}).encode(), method="POST",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the hub's own URL)
            return int(response.status), response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(2000).decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


def no_port_message(low: int, high: int, node: str) -> str:
    return (f"hpcgw-singleuser: no free port for the Jupyter server on {node}: all {high - low + 1} port(s) "
            f"of the range {low}-{high} that the site opens for Jupyter servers are in use. "
            "Try again later, or ask your support team.")


def main(argv: Sequence[str], environ: MutableMapping[str, str],
         execvp: Callable[[str, list[str]], object] = os.execvp,
         pick: Optional[Callable[[int, int, str], Optional[int]]] = None) -> int:
    try:
        (low, high), command = parse_args(argv)
    except UsageError as exc:
        print(f"hpcgw-singleuser: {exc}", file=sys.stderr)
        return 2
    service_url = environ.get("JUPYTERHUB_SERVICE_URL", "")
    host = listen_host(service_url)
    if pick is None:
        port = free_port(low, high, host, random.randint(low, high))  # noqa: S311 (spreading, not secrecy)
    else:
        port = pick(low, high, host)
    if port is None:
        print(no_port_message(low, high, socket.gethostname()), file=sys.stderr)
        return NO_PORT
    status, answer = report_port(environ, port)
    if status not in (200, 201):
        print(f"hpcgw-singleuser: the hub did not take port {port} (HTTP {status or 'unreachable'}): "
              f"{answer.strip()[:300]}", file=sys.stderr)
        return NO_PORT
    print(f"hpcgw-singleuser: port {port} of {low}-{high}", file=sys.stderr)
    if service_url:
        environ["JUPYTERHUB_SERVICE_URL"] = with_port(service_url, port)
    else:  # a hub without JUPYTERHUB_SERVICE_URL takes the port on the command line
        command = command + [f"--port={port}"]
    execvp(command[0], command)
    return 0  # not reached: execvp replaces the process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
