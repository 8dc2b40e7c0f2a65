#!/usr/bin/env python3
"""The embedded demo: a dockerized SLURM cluster plus a gateway, one command.

``demo.py up`` runs, each as a timed step with its own log under
``.demo/logs/``: the toolchain (``make toolchain``), the Docker engine
(``tools/docker_engine.py``), the base image (``tools/base_image.py``), the
containers (``molecule create`` + ``prepare`` of the ``default`` scenario,
which ``make test`` also runs), ``site.yml`` with ``inventories/demo/``, and
a health check of the published URL. Re-running it re-applies ``site.yml``
(it reports ``changed=0``) and recreates only what is missing.

``demo.py down`` removes the containers, networks and volumes (images stay);
``demo.py status`` says whether the demo answers.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
LOG_DIR = ROOT / ".demo" / "logs"
INVENTORY = ROOT / "inventories" / "demo" / "hosts.yml"
SCENARIO = "default"
CONTAINERS = ("hpcgw-ctl", "hpcgw-c1", "hpcgw-c2", "hpcgw-gw", "hpcgw-browser")
GATEWAY = "hpcgw-gw"
DEFAULT_PORT = 8443
RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def demo_port(environ: dict[str, str]) -> int:
    """The host port of the demo URL (HPCGW_DEMO_PORT, default 8443)."""
    raw = environ.get("HPCGW_DEMO_PORT", str(DEFAULT_PORT))
    if not raw.isdigit() or not 1024 <= int(raw) <= 65535:
        raise SystemExit(f"demo: HPCGW_DEMO_PORT must be a port number 1024..65535, got {raw!r}")
    return int(raw)


def recap_changes(output: str) -> dict[str, int]:
    """Changed tasks per host from an ansible-playbook PLAY RECAP."""
    return {m.group(1): int(m.group(3)) for m in RECAP_RE.finditer(output)}


def demo_logins(host_vars: dict[str, object]) -> list[tuple[str, str]]:
    """(user, password) of the basic-auth demo users of the gateway."""
    users = host_vars.get("gateway_apache_basic_users") or []
    assert isinstance(users, list)
    return [(str(u["name"]), str(u["password"])) for u in users if isinstance(u, dict)]


def login_lines(logins: list[tuple[str, str]]) -> list[str]:
    """The demo logins as printed: one line each, except a numbered series
    sharing one password (make bench's burst users), which is one line."""
    def series(user: str, password: str) -> tuple[str, str] | None:
        match = re.fullmatch(r"([a-z]+)\d+", user)
        return (match.group(1), password) if match else None

    members: dict[tuple[str, str], list[str]] = {}
    for user, password in logins:
        key = series(user, password)
        if key:
            members.setdefault(key, []).append(user)
    out: list[str] = []
    for user, password in logins:
        key = series(user, password)
        if key and len(members[key]) > 2:
            if members[key][0] == user:
                out.append(f"{user} .. {members[key][-1]} / {password}  ({len(members[key])} accounts for make bench)")
        else:
            out.append(f"{user} / {password}")
    return out


def demo_url(port: int, host_vars: dict[str, object]) -> str:
    """The demo's address: the published port plus the hub's base path."""
    base = str(host_vars.get("jupyterhub_base_url") or "/")
    if not base.startswith("/") or "{" in base:
        raise SystemExit(f"demo: jupyterhub_base_url must be a literal path, got {base!r}")
    return f"https://localhost:{port}{base if base.endswith('/') else base + '/'}"


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Runner:
    """Runs the steps with banners, timings and one log file per step."""

    env: dict[str, str]
    out: Callable[[str], None] = say
    total: int = 0
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def step(self, title: str, slug: str, commands: Sequence[Sequence[str]]) -> str:
        """Run the commands of one step; returns their stdout. Exits on failure."""
        self.done += 1
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = LOG_DIR / f"{self.done:02d}-{slug}.log"
        self.out(f"==> [{self.done}/{self.total}] {title}   (log: {log.relative_to(ROOT)})")
        start = time.monotonic()
        outputs = []
        with log.open("w", encoding="utf-8") as handle:
            for command in commands:
                handle.write(f"$ {' '.join(command)}\n")
                handle.flush()
                begin = handle.tell()
                # Streamed into the log, so `tail -f` shows a long step's progress.
                code = subprocess.run(list(command), cwd=ROOT, env=self.env, text=True, stdout=handle,
                                      stderr=subprocess.STDOUT, check=False).returncode
                handle.flush()
                with log.open(encoding="utf-8") as reader:
                    reader.seek(begin)
                    outputs.append(reader.read())
                handle.seek(0, os.SEEK_END)
                if code != 0:
                    elapsed = time.monotonic() - start
                    tail = "\n".join(outputs[-1].rstrip().splitlines()[-15:])
                    self.out(f"{tail}\n!!! step '{title}' FAILED after {format_seconds(elapsed)} "
                             f"(exit {code}); full log: {log}")
                    raise SystemExit(1)
        elapsed = time.monotonic() - start
        self.timings.append((title, elapsed))
        self.out(f"    done in {format_seconds(elapsed)}")
        return "".join(outputs)


def tool_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["HPCGW_DEMO_PORT"] = str(port)
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env.setdefault("HPCGW_WITH_BROWSER", "0")  # the test-only Chromium is not installed for the demo
    return env


def container_states() -> dict[str, str]:
    """Status of each demo container ('' when absent)."""
    states = {}
    for name in CONTAINERS:
        result = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", name],
                                capture_output=True, text=True, check=False)
        states[name] = result.stdout.strip() if result.returncode == 0 else ""
    return states


TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
TCP_LISTEN = "0A"
# Local addresses (as /proc/net/tcp* spell them) whose listener clashes with
# Docker publishing 127.0.0.1:<port>: loopback and the wildcard addresses.
CLASHING_ADDRESSES = {
    "0100007F",  # 127.0.0.1
    "00000000",  # 0.0.0.0
    "00000000000000000000000000000000",  # ::
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1
}


def listening_inodes(port: int, tables: Sequence[Path] = TCP_TABLES) -> set[str]:
    """Socket inodes of the TCP listeners on loopback/wildcard:<port>, from /proc."""
    inodes: set[str] = set()
    for table in tables:
        try:
            lines = table.read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == TCP_LISTEN and int(hex_port, 16) == port and address in CLASHING_ADDRESSES:
                inodes.add(fields[9])
    return inodes


def port_is_free(port: int) -> bool:
    """False only when something listens where Docker would publish the port.

    Connections of a removed demo that linger in TIME-WAIT do not count
    (Docker binds with address reuse). Without /proc, a bind with
    SO_REUSEADDR decides.
    """
    if TCP_TABLES[0].exists():
        return not listening_inodes(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def socket_links(pid_dir: Path) -> set[str]:
    """Targets of a process's file descriptors that it lets us read."""
    links = set()
    try:
        fds = list((pid_dir / "fd").iterdir())
    except OSError:
        return links
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return links


def port_holder(port: int, proc: Path = Path("/proc")) -> str:
    """Who listens on ``port``: 'pid N (command)' for each process the system
    shows, or a plain statement when it cannot tell."""
    inodes = listening_inodes(port)
    if not inodes:
        return "no listener visible in /proc/net/tcp (another network namespace or a race)"
    wanted = {f"socket:[{inode}]" for inode in inodes}
    holders = []
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        if wanted & socket_links(pid_dir):
            try:
                command = (pid_dir / "comm").read_text(encoding="utf-8").strip()
            except OSError:
                command = "?"
            holders.append(f"pid {pid_dir.name} ({command})")
    return ", ".join(sorted(holders)) or "a process this account cannot inspect"


def wait_for_hub(url: str, login: tuple[str, str] | None, timeout: float = 120.0) -> int:
    """GET <url>hub/health through Apache (as a demo user) until it answers 200."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the demo's certificate is self-signed
    headers = {}
    if login:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"{url}hub/health", headers=headers)
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        if status == 200:
            return status
        time.sleep(2)
    raise SystemExit(f"demo: {url}hub/health did not answer 200 within {timeout:.0f} s (last: {status})")


def gateway_vars(env: dict[str, str]) -> dict[str, object]:
    """The gateway's variables in the demo inventory, as Ansible sees them (not templated)."""
    inventory = subprocess.run(["ansible-inventory", "-i", str(INVENTORY), "--host", GATEWAY],
                               cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    host_vars = json.loads(inventory.stdout)
    assert isinstance(host_vars, dict)
    return host_vars


def up(port: int) -> None:
    env = tool_env(port)
    runner = Runner(env=env, total=6)
    python = sys.executable or "python3"
    runner.step("Toolchain (.venv: pinned Ansible, Molecule)", "toolchain", [["make", "-s", "toolchain"]])
    runner.step("Docker engine", "engine", [[python, "tools/docker_engine.py"]])
    image = runner.step("Base image (Debian bookworm, built locally, cached)", "image",
                        [[python, "tools/base_image.py"]]).strip().splitlines()[-1]
    env["HPCGW_BASE_IMAGE"] = image
    states = container_states()
    commands: list[list[str]] = []
    if any(state != "running" for state in states.values()):
        if any(states.values()):
            commands.append(["molecule", "destroy", "-s", SCENARIO])  # incomplete: start clean
        if not port_is_free(port):
            raise SystemExit(f"demo: 127.0.0.1:{port} is taken by {port_holder(port)}; "
                             "set HPCGW_DEMO_PORT to a free port")
    commands += [["molecule", "create", "-s", SCENARIO], ["molecule", "prepare", "-s", SCENARIO]]
    runner.step("Cluster containers (controller, 2 compute nodes, gateway)", "cluster", commands)
    output = runner.step("site.yml with inventories/demo/ (SLURM, notebook env, hub, proxy, Apache)",
                         "converge", [["ansible-playbook", "-i", str(INVENTORY), "site.yml"]])
    url = demo_url(port, gateway_vars(env))
    runner.step(f"Gateway answers at {url}", "health",
                [[python, __file__, "status", "--quiet"]])
    changed = sum(recap_changes(output).values())
    summary(url, changed, runner)


def summary(url: str, changed: int, runner: Runner) -> None:
    logins = demo_logins(gateway_vars(runner.env))
    total = time.monotonic() - runner.started
    lines = [
        "",
        f"The demo gateway is up: {url}",
        "  (self-signed certificate: accept the browser's warning)",
        "  DEMO-ONLY logins (a login page stands in for the campus SSO; Logout ends it); some are",
        "  refused on purpose, to show the access policy (README: Access policy):",
        *[f"    {line}" for line in login_lines(logins)],
        "  Pick a preset or a cluster/queue/size in the form; the server runs as a",
        "  SLURM job on hpcgw-c1 or hpcgw-c2.",
        f"  site.yml changed {changed} task(s){' - nothing to do, as it should on a re-run' if changed == 0 else ''}.",
        "  Tear it all down: make demo-down    (note: make test also replaces the demo)",
        "",
        "Times: " + ", ".join(f"{title.split(' (')[0]} {format_seconds(sec)}" for title, sec in runner.timings),
        f"Total: {format_seconds(total)}",
    ]
    runner.out("\n".join(lines))


def down(port: int) -> None:
    env = tool_env(port)
    env["HPCGW_BASE_IMAGE"] = subprocess.run(
        [sys.executable or "python3", "tools/base_image.py", "--print-tag"], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout.strip()
    runner = Runner(env=env, total=1)
    runner.step("Remove the demo's containers, networks and volumes (images stay)", "down",
                [["molecule", "destroy", "-s", SCENARIO]])
    left = [name for name, state in container_states().items() if state]
    if left:
        raise SystemExit(f"demo: still present: {', '.join(left)}")
    runner.out(f"Demo removed in {format_seconds(time.monotonic() - runner.started)}.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--quiet", action="store_true", help="status: print nothing on success")
    args = parser.parse_args(argv)
    port = demo_port(dict(os.environ))
    if args.action == "up":
        up(port)
    elif args.action == "down":
        down(port)
    else:
        host_vars = gateway_vars(tool_env(port))
        url = demo_url(port, host_vars)
        logins = demo_logins(host_vars)
        wait_for_hub(url, logins[0] if logins else None, timeout=120 if args.quiet else 5)
        if not args.quiet:
            print(f"demo: {url} answers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
