#!/usr/bin/env python3
"""Make sure a Docker engine answers, starting one only when none does.

Order of business:

1. ``docker info`` answers: use that engine as it is and change nothing.
2. No engine answers, we are root on Debian/Ubuntu: install Debian's
   ``docker.io`` when ``dockerd`` is missing, start ``dockerd`` (through
   systemd when systemd is PID 1, else as a background process logging to
   ``/var/log/hpc-gateway-dockerd.log``) and wait until it answers.
3. Anything else: one line saying what to do, exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DOCKERD_LOG = Path("/var/log/hpc-gateway-dockerd.log")


def engine_answers(timeout: float = 10.0) -> bool:
    """True when the docker CLI exists and reaches an engine."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def is_debian_like(os_release: Path = Path("/etc/os-release")) -> bool:
    """True on Debian and its derivatives (ID or ID_LIKE mentions debian)."""
    try:
        text = os_release.read_text(encoding="utf-8")
    except OSError:
        return False
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    ids = {fields.get("ID", "")} | set(fields.get("ID_LIKE", "").split())
    return "debian" in ids or "ubuntu" in ids


def systemd_is_init() -> bool:
    return Path("/run/systemd/system").is_dir()


def install_docker_io() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends",
         "docker.io", "iptables", "ca-certificates"],
        check=True,
        env=env,
    )


def start_dockerd() -> None:
    if systemd_is_init():
        subprocess.run(["systemctl", "start", "docker"], check=True)
        return
    log = DOCKERD_LOG.open("ab")
    # Detached on purpose: the engine must outlive this script.
    subprocess.Popen(  # noqa: S603
        ["dockerd"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for_engine(deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if engine_answers(timeout=5.0):
            return True
        time.sleep(1.0)
    return False


def ensure_engine(wait_s: float = 90.0) -> int:
    if engine_answers():
        return 0
    if os.geteuid() != 0 or not is_debian_like():
        print(
            "docker_engine: no Docker engine answers; start one (e.g. "
            "'sudo systemctl start docker') or run this as root on Debian/Ubuntu "
            "so it can install docker.io and start dockerd.",
            file=sys.stderr,
        )
        return 2
    if shutil.which("dockerd") is None:
        print("docker_engine: installing Debian's docker.io", file=sys.stderr)
        install_docker_io()
    print("docker_engine: starting dockerd", file=sys.stderr)
    start_dockerd()
    if wait_for_engine(wait_s):
        return 0
    print(
        f"docker_engine: dockerd did not answer within {wait_s:.0f}s; "
        f"see {DOCKERD_LOG}",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only report whether an engine answers")
    parser.add_argument("--wait", type=float, default=90.0,
                        help="seconds to wait for a started dockerd")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if engine_answers() else 1
    return ensure_engine(args.wait)


if __name__ == "__main__":
    sys.exit(main())
