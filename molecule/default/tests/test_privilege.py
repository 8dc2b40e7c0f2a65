"""Privilege boundaries of the hub account and of users, attacked on the gateway.

The hub account holds sudo rules to act for users. An attacker who holds it
must not become a system account (munge, slurm, sshd ...) nor run anything
but the scheduler's own commands; a user must not make the hub's ssh run
code on the gateway through their ~/.ssh/config.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Callable

import pytest
from testinfra.host import Host

from conftest import user_jobs, wait_no_jobs

HUB = "jupyterhub"
RUNAS_GROUP = "hpcgw-users"
SSH_CONFIG = "/etc/ssh/hpcgw_submit_config"
LOGIN = "hpcgw-ctl"
VENV = "/opt/jupyterhub"
# One invocation of every command the rules allow, as the hub runs it.
ALLOWED_COMMANDS = [
    [f"{VENV}/bin/hpcgw-local-mediator"],
    ["/usr/bin/sbatch"],
    ["/usr/bin/squeue"],
    ["/usr/bin/scontrol", "show", "job", "12"],
    ["/usr/bin/scancel", "12"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN, "sbatch --parsable"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN, "squeue -h -j 12 -t all -o '%T|%B|%S|%r'"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN, "scancel 12"],
]


def hub_may(gateway: Host, runas: str, argv: list[str]) -> bool:
    """Would sudo let the hub account run argv as `runas`? (sudo -l: runs nothing)"""
    cmd = gateway.run(f"runuser -u {HUB} -- sudo -n -l -u {shlex.quote(runas)} "
                      + " ".join(shlex.quote(a) for a in argv))
    return cmd.rc == 0


def _accounts(gateway: Host) -> dict[str, int]:
    lines = gateway.check_output("getent passwd").splitlines()
    return {f.split(":")[0]: int(f.split(":")[2]) for f in lines}


def _members(gateway: Host) -> set[str]:
    """Members of the runas group, primary or supplementary."""
    group = gateway.check_output(f"getent group {RUNAS_GROUP}").split(":")
    members = {m for m in group[3].split(",") if m}
    gid = int(group[2])
    lines = gateway.check_output("getent passwd").splitlines()
    return members | {f.split(":")[0] for f in lines if int(f.split(":")[3]) == gid}


def test_the_hub_acts_for_the_group_members(gateway: Host) -> None:
    members = _members(gateway)
    assert {"alice", "bob"} <= members
    for user in ("alice", "bob"):
        for argv in ALLOWED_COMMANDS:
            assert hub_may(gateway, user, argv), (user, argv)


def test_the_hub_cannot_become_any_account_outside_the_group(gateway: Host) -> None:
    members = _members(gateway)
    outsiders = sorted(set(_accounts(gateway)) - members)
    assert {"root", "munge", "slurm", "chp", HUB, "www-data", "nobody"} <= set(outsiders)
    allowed = [(name, argv[0]) for name in outsiders for argv in ALLOWED_COMMANDS if hub_may(gateway, name, argv)]
    assert allowed == []
    # The attack of issue 9 as it was run: it must be refused, not just fail.
    cmd = gateway.run(f"runuser -u {HUB} -- sudo -n -u munge /usr/bin/squeue")
    assert cmd.rc != 0 and ("not allowed" in cmd.stderr or "password is required" in cmd.stderr), cmd.stderr


@pytest.mark.parametrize("argv", [
    ["/usr/bin/ssh", LOGIN, "scancel 12"],  # without -F: the user's ~/.ssh/config applies
    ["/usr/bin/ssh", LOGIN, "id"],
    ["/usr/bin/ssh", LOGIN, "-o", "ProxyCommand=id"],
    ["/usr/bin/ssh", "-o", "ProxyCommand=id", LOGIN, "squeue"],
    ["/usr/bin/ssh", "-F", "/tmp/evil_config", LOGIN, "scancel 12"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, "-o", "LocalCommand=id", LOGIN, "scancel 12"],
    ["/usr/bin/ssh", "-i", "/tmp/key", "-F", SSH_CONFIG, LOGIN, "scancel 12"],
    ["/usr/bin/ssh", "-E", "/tmp/log", "-F", SSH_CONFIG, LOGIN, "scancel 12"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN, "id"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN, "scancel 12; id"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN, "scancel 12", "; id"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN, "squeue -h -j 12 -t all -o '%T|%B|%S|%r' $(id)"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN, "squeue -h -j 12 -t all -o '%T|%B|%S|%r|%u'"],  # [|] is one pipe
    ["/usr/bin/ssh", "-F", SSH_CONFIG, "hpcgw-c1", "scancel 12"],
    ["/usr/bin/ssh", "-F", SSH_CONFIG, LOGIN, "sbatch --parsable --wrap=id"],
])
def test_ssh_through_sudo_is_pinned(gateway: Host, argv: list[str]) -> None:
    assert not hub_may(gateway, "alice", argv), argv


def test_a_users_ssh_config_runs_nothing_on_the_gateway(
    client: Callable[..., dict[str, Any]], gateway: Host
) -> None:
    """alice's own ~/.ssh/config (shared home) with LocalCommand and
    ProxyCommand: the hub's ssh must ignore it, and the SSH cluster still spawns."""
    marker = "/var/tmp/hpcgw-ssh-config-ran"
    gateway.run(f"rm -f {marker}")
    assert wait_no_jobs(gateway, "alice") == [], "alice still has a job from an earlier test"
    evil = (f"Host {LOGIN}\n    PermitLocalCommand yes\n    LocalCommand id > {marker}\n"
            f"Host hpcgw-*\n    ProxyCommand sh -c 'id >> {marker}; exec nc %h %p'\n")
    gateway.check_output(
        "runuser -u alice -- sh -c " + shlex.quote(
            f"mkdir -p ~/.ssh && chmod 700 ~/.ssh && printf %s {shlex.quote(evil)} > ~/.ssh/config"
            " && chmod 600 ~/.ssh/config"))
    try:
        started = client("start", "alice", json.dumps({"profile": "login-debug"}))
        assert started.get("ready") is True, started
        assert len(user_jobs(gateway, "alice")) == 1
        assert client("stop", "alice").get("stopped") is True
        assert wait_no_jobs(gateway, "alice") == []
        assert not gateway.file(marker).exists, gateway.file(marker).content_string
    finally:
        gateway.run("rm -f /home/alice/.ssh/config " + marker)


LISTENERS = r"""
import json, socket
port = 8081
found = []
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    fields = line.split()
    address, hexport = fields[1].split(":")
    if fields[3] == "0A" and int(hexport, 16) == port:
        found.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
probe = socket.socket()
probe.settimeout(2)
print(json.dumps({"listeners": found, "loopback": probe.connect_ex(("127.0.0.1", port)),
                  "own": socket.gethostbyname(socket.gethostname())}))
"""


def test_the_hub_listens_on_the_cluster_network_only(gateway: Host, node: Callable[[str], Host]) -> None:
    """Compute nodes reach the hub's port; no other address of the gateway has it open."""
    seen = json.loads(gateway.check_output("python3 - <<'EOF'\n" + LISTENERS + "\nEOF"))
    assert seen["listeners"] == [seen["own"]], seen  # not 0.0.0.0, not 127.0.0.1
    assert seen["loopback"] != 0, seen  # refused on loopback
    assert not [line for line in gateway.check_output("cat /proc/net/tcp6").splitlines()[1:]
                if line.split()[3] == "0A" and line.split()[1].endswith(":1F91")]
    code = node("hpcgw-c1").check_output(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://hpcgw-gw:8081/jupyter/hub/health').status)\"")
    assert code == "200"

