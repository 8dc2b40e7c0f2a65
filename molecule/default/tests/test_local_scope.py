"""Local-profile servers run in a systemd scope each, with the user's limits.

The hub account starts them through one root launcher
(/usr/local/sbin/hpcgw-local-scope start|stop <user>, one pinned sudo rule):
every way to make it act for anyone but a member of the users' group, or to
run anything else, is refused. Inside, alice's server is held to her
MemoryMax, CPUQuota and TasksMax (inventories/demo front.yml: 1G, 100%, 256;
bob's own TasksMax 300; all local servers together 3G): a memory hog spread
over many processes is OOM-killed inside her scope and a fork bomb stops at
her TasksMax, while bob spawns and the hub answers; when her server stops,
her scope and everything left in it are gone.
"""

from __future__ import annotations

import json
import shlex
import uuid
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import wait_until

HUB = "jupyterhub"
LAUNCHER = "/usr/local/sbin/hpcgw-local-scope"
MEDIATOR = "/opt/jupyterhub/bin/hpcgw-local-mediator"
LOCAL = json.dumps({"profile": "local"})
# inventories/demo/group_vars/gateway/front.yml
MEMORY_MAX = 1 << 30
TASKS_MAX = 256
BOB_TASKS_MAX = 300
SLICE_MEMORY_MAX = 3 << 30
# The kernel lets an OOM-killed (dying) task or a no-fail allocation charge past
# the limit ("force" charge in mm/memcontrol.c), so the cgroup's high-water mark
# may stand a few pages above MemoryMax: seen 4 KiB over on a cgroup v1 CI host.
# 8 MiB bounds that for 16 dying hogs and is far below the 2 GiB they ask for.
FORCED_CHARGE_SLACK = 8 << 20
NICE = 10
HEALTH = ("python3 -c \"import urllib.request; "
          "print(urllib.request.urlopen('http://hpcgw-gw:8081/jupyter/hub/health', timeout=10).status)\"")


def as_hub(gateway: Host, argv: list[str], env: str = "", stdin: str | None = None) -> Any:
    """Run argv (a sudo command line) as the hub account; env: `NAME=value ...` before it."""
    line = f"runuser -u {HUB} -- env {env} " + " ".join(shlex.quote(a) for a in argv)
    if stdin is not None:
        line = f"printf %s {shlex.quote(stdin)} | {line}"
    return gateway.run(line)


def hub_may(gateway: Host, argv: list[str]) -> bool:
    """Would sudo let the hub account run argv? (sudo -l: runs nothing)"""
    return as_hub(gateway, ["sudo", "-n", "-l", *argv]).rc == 0


def scope_units(gateway: Host) -> str:
    return gateway.check_output("systemctl list-units --all --plain --no-legend 'hpcgw-local-*' || true")


def scope(gateway: Host, user: str) -> dict[str, str]:
    out = gateway.check_output(
        f"systemctl show hpcgw-local-{user}.scope -p ActiveState -p LoadState -p Slice -p ControlGroup "
        "-p MemoryMax -p TasksMax -p CPUQuotaPerSecUSec")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def cgroup_file(gateway: Host, candidates: list[str]) -> tuple[str, str]:
    """(path, content) of the first candidate file that exists (cgroup v1 or v2)."""
    for path in candidates:
        f = gateway.file(path)
        if f.exists:
            return path, f.content_string.strip()
    pytest.fail(f"none of these cgroup files exists: {candidates}")


def memory_files(cgroup: str, v1: str, v2: str) -> list[str]:
    return [f"/sys/fs/cgroup/memory{cgroup}/{v1}", f"/sys/fs/cgroup{cgroup}/{v2}"]


def counter(text: str, name: str) -> int:
    """A 'name value' line of memory.oom_control, memory.events or pids.events."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return int(value)
    return 0


def server_pid(gateway: Host, user: str) -> str:
    return gateway.check_output(f"pgrep -n -u {user} -f jupyterhub-singleuser || true")


def health(gateway: Host) -> str:
    return gateway.check_output(HEALTH)


# --- the root launcher: exactly a verb and a group member's name ---------------

def test_the_hub_may_run_the_launcher_as_root_with_a_verb_and_a_name(gateway: Host) -> None:
    launcher = gateway.file(LAUNCHER)
    assert (launcher.user, launcher.group, launcher.mode) == ("root", "root", 0o755)
    config = gateway.file("/etc/hpcgw-local-scope.json")
    assert (config.user, config.mode) == ("root", 0o644)
    assert hub_may(gateway, [LAUNCHER, "start", "alice"])
    assert hub_may(gateway, [LAUNCHER, "stop", "bob"])


@pytest.mark.parametrize("argv", [
    [LAUNCHER, "start", "alice", "bob"],
    [LAUNCHER, "start", "-p"],
    [LAUNCHER, "start", "--uid=0"],
    [LAUNCHER, "start", "-p", "User=root"],
    [LAUNCHER, "start", "../../root"],
    [LAUNCHER, "start", "alice/../root"],
    [LAUNCHER, "start", "alice;id"],
    [LAUNCHER, "start", "alice@EXAMPLE.ORG"],
    [LAUNCHER, "start", ""],
    [LAUNCHER, "start"],
    [LAUNCHER, "run", "alice"],
    [LAUNCHER],
    ["-u", "alice", LAUNCHER, "start", "alice"],          # the launcher runs as root or not at all
    ["-u", "root", MEDIATOR],                               # the mediator never as root
    ["-u", "alice", MEDIATOR, "--logging=debug"],           # the mediator takes no argument
    ["/usr/bin/systemd-run", "--scope", "--uid=alice", "id"],
    ["/usr/bin/systemctl", "stop", "hpcgw-local-alice.scope"],
])
def test_sudo_refuses_every_other_command_line(gateway: Host, argv: list[str]) -> None:
    assert not hub_may(gateway, argv), argv
    ran = as_hub(gateway, ["sudo", "-n", *argv])
    assert ran.rc != 0 and ("not allowed" in ran.stderr or "password is required" in ran.stderr), ran.stderr


@pytest.mark.parametrize(("args", "status", "why"), [
    (["start", "root"], 77, "refused"),                 # uid 0
    (["start", "jupyterhub"], 77, "refused"),           # the hub account
    (["start", "mallory"], 77, "refused"),              # a blocked user, in the group
    (["stop", "nobody"], 77, "refused"),                # blocked, uid 65534
    (["start", "svcacct"], 77, "system account"),       # in the group, uid < 1000
    (["start", "slurm"], 77, "not a member of"),        # uid 64030, outside the group
    (["start", "nosuchuser"], 77, "no account"),
    (["start", "ALICE"], 77, "no account"),
    (["start", "alice\n"], 77, "not a plain account name"),  # sudo's regex lets a trailing newline through
    (["start alice"], 64, "usage"),                     # one argument: sudo joins them, the launcher counts
])
def test_the_launcher_refuses_whom_sudo_lets_through(gateway: Host, args: list[str], status: int, why: str) -> None:
    before = scope_units(gateway)
    if not hub_may(gateway, [LAUNCHER, *args]):
        # sudo may stop the trailing newline itself (it did on sudo 1.9.13):
        # refused one step earlier, and the launcher's own check stays.
        assert args[-1].endswith("\n"), args
        return
    ran = as_hub(gateway, ["sudo", "-n", LAUNCHER, *args])
    assert ran.rc == status, (ran.rc, ran.stdout, ran.stderr)
    assert why in ran.stderr, ran.stderr
    assert scope_units(gateway) == before


def test_only_the_launcher_itself_runs_as_root(gateway: Host) -> None:
    """A program of the hub's own under the launcher's name is refused; a
    bare name finds the real launcher (sudo's secure_path), never the hub's PATH."""
    evil = f"/tmp/hpcgw-path-{uuid.uuid4().hex[:8]}"
    marker = f"{evil}/ran-as-root"
    gateway.check_output(
        f"runuser -u {HUB} -- sh -c " + shlex.quote(
            f"mkdir -p {evil} && printf '#!/bin/sh\\nid > {marker}\\n' > {evil}/hpcgw-local-scope "
            f"&& chmod 755 {evil}/hpcgw-local-scope"))
    try:
        assert gateway.file(f"{evil}/hpcgw-local-scope").exists
        copy = as_hub(gateway, ["sudo", "-n", f"{evil}/hpcgw-local-scope", "start", "alice"])
        assert copy.rc != 0 and ("not allowed" in copy.stderr or "password is required" in copy.stderr), copy.stderr
        bare = as_hub(gateway, ["sudo", "-n", "hpcgw-local-scope", "start", "nosuchuser"], env=f"PATH={evil}:/usr/bin:/bin")
        assert bare.rc != 0, bare.stdout
        assert "no account" in bare.stderr or "not allowed" in bare.stderr, bare.stderr
        assert not gateway.file(marker).exists
    finally:
        gateway.run(f"rm -rf {evil}")


def test_no_environment_reaches_the_launcher(gateway: Host) -> None:
    """PYTHON* variables are refused by sudo or dropped, and the launcher's
    interpreter is isolated: a planted module never runs as root."""
    evil = f"/tmp/hpcgw-evil-{uuid.uuid4().hex[:8]}"
    marker = f"{evil}/ran-as-root"
    code = f"open({marker!r}, 'w').write('owned')\n"
    gateway.check_output(
        f"runuser -u {HUB} -- sh -c " + shlex.quote(
            f"mkdir -p {evil} && for m in re json sitecustomize usercustomize; do "
            f"printf %s {shlex.quote(code)} > {evil}/$m.py; done"))
    try:
        refused = as_hub(gateway, ["sudo", "-n", f"PYTHONPATH={evil}", LAUNCHER, "start", "nosuchuser"])
        assert refused.rc != 0 and "not allowed to set" in refused.stderr, refused.stderr
        preserved = as_hub(gateway, ["sudo", "-n", "-E", LAUNCHER, "start", "nosuchuser"], env=f"PYTHONPATH={evil}")
        assert preserved.rc != 0 and "not allowed to preserve" in preserved.stderr, preserved.stderr
        for argv in (["sudo", "-n", LAUNCHER, "start", "nosuchuser"],
                     ["sudo", "-n", "--preserve-env=PYTHONPATH,PYTHONSTARTUP", LAUNCHER, "start", "nosuchuser"]):
            ran = as_hub(gateway, argv, env=f"PYTHONPATH={evil} PYTHONSTARTUP={evil}/re.py PYTHONINSPECT=1 PYTHONHOME={evil}")
            # The launcher runs without them (77, its own refusal), or sudo refuses to keep them.
            assert (ran.rc == 77 and "no account" in ran.stderr) or \
                (ran.rc == 1 and "not allowed to set" in ran.stderr), (argv, ran.stderr)
        assert not gateway.file(marker).exists
    finally:
        gateway.run(f"rm -rf {evil}")


def test_the_mediator_as_the_user_signals_but_never_spawns(gateway: Host) -> None:
    """The hub's other rule (the mediator as alice, for signals) cannot start
    a server outside her scope."""
    before = server_pid(gateway, "alice")
    request = json.dumps({"action": "spawn", "args": [], "env": {"PATH": "/usr/bin:/bin"}})
    ran = as_hub(gateway, ["sudo", "-n", "-u", "alice", "-H", MEDIATOR], stdin=request)
    assert ran.rc == 1, (ran.stdout, ran.stderr)
    assert json.loads(ran.stdout) == {"ok": False, "error": "a local server of alice starts only in its scope "
                                                            "hpcgw-local-alice.scope (through hpcgw-local-scope)"}
    assert server_pid(gateway, "alice") == before
    signal = as_hub(gateway, ["sudo", "-n", "-u", "alice", "-H", MEDIATOR],
                    stdin=json.dumps({"action": "kill", "pid": 999999, "signal": 0}))
    assert signal.rc == 0 and json.loads(signal.stdout) == {"ok": True, "alive": False}, signal.stdout


# --- alice's server in her scope -------------------------------------------------

@pytest.fixture()
def alice_local(client: Callable[..., dict[str, Any]], gateway: Host) -> Iterator[str]:
    """alice's local server, started for each test (the memory hog may end it); its pid."""
    if server_pid(gateway, "alice"):  # a local server an earlier module left running
        client("stop", "alice")
    assert wait_until(lambda: "hpcgw-local-alice.scope" not in scope_units(gateway), 30), scope_units(gateway)
    started = client("start", "alice", LOCAL)
    assert started.get("ready") is True, started
    try:
        yield server_pid(gateway, "alice")
    finally:
        if server_pid(gateway, "alice"):
            client("stop", "alice")


def test_her_server_runs_in_her_scope_with_her_limits(alice_local: str, gateway: Host) -> None:
    unit = scope(gateway, "alice")
    assert unit["ActiveState"] == "active" and unit["Slice"] == "hpcgw-local.slice", unit
    assert (unit["MemoryMax"], unit["TasksMax"], unit["CPUQuotaPerSecUSec"]) == (str(MEMORY_MAX), str(TASKS_MAX), "1s")
    cgroup = unit["ControlGroup"]
    assert cgroup.endswith("/hpcgw.slice/hpcgw-local.slice/hpcgw-local-alice.scope"), cgroup
    # The kernel's own view: the limits are in the scope's cgroup files.
    memory = cgroup_file(gateway, memory_files(cgroup, "memory.limit_in_bytes", "memory.max"))
    assert int(memory[1]) == MEMORY_MAX, memory
    pids = cgroup_file(gateway, [f"/sys/fs/cgroup/pids{cgroup}/pids.max", f"/sys/fs/cgroup{cgroup}/pids.max"])
    assert int(pids[1]) == TASKS_MAX, pids
    cpu_v1 = [f"/sys/fs/cgroup/{c}{cgroup}/cpu.cfs_quota_us" for c in ("cpu,cpuacct", "cpu")]
    cpu = cgroup_file(gateway, cpu_v1 + [f"/sys/fs/cgroup{cgroup}/cpu.max"])
    if cpu[0].endswith("cpu.max"):
        quota, period = cpu[1].split()
    else:
        quota, period = cpu[1], gateway.file(cpu[0].replace("cfs_quota_us", "cfs_period_us")).content_string.strip()
    assert int(quota) == int(period), cpu  # 100%: one CPU
    # The server: alice's uid, her own groups only (nothing of root's), nice, in her scope, not in the hub's unit.
    pid = alice_local
    assert pid, "no jupyterhub-singleuser process of alice"
    placed = gateway.check_output(f"cat /proc/{pid}/cgroup")
    assert "/hpcgw-local.slice/hpcgw-local-alice.scope" in placed and "jupyterhub.service" not in placed, placed
    status = dict(line.split(":", 1) for line in gateway.check_output(f"cat /proc/{pid}/status").splitlines())
    assert status["Uid"].split() == [gateway.check_output("id -u alice")] * 4, status["Uid"]
    assert sorted(status["Groups"].split()) == sorted(gateway.check_output("id -G alice").split()), status["Groups"]
    assert gateway.check_output(f"ps -o ni= -p {pid}").strip() == str(NICE)
    assert gateway.check_output("systemctl show -p MemoryMax --value hpcgw-local.slice") == str(SLICE_MEMORY_MAX)


HOG = """
import json, os, time
out = {out!r}
pid = os.fork()
if pid == 0:
    os.setsid()  # outlives the kernel this code runs in
    children = []
    for _ in range(16):  # 16 x 128 MiB: twice alice's MemoryMax, no process near it
        child = os.fork()
        if child == 0:
            data = b"\\x01" * (128 << 20)
            time.sleep(25)
            os._exit(0)
        children.append(child)
    seen = {{"killed": 0, "ok": 0, "other": 0}}
    for child in children:
        _, status = os.waitpid(child, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9:
            seen["killed"] += 1
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            seen["ok"] += 1
        else:
            seen["other"] += 1
    with open(out + ".tmp", "w") as fh:
        json.dump(seen, fh)
    os.rename(out + ".tmp", out)
    os._exit(0)
print(pid)
"""


def _bob_spawns_while_the_hub_answers(client: Callable[..., dict[str, Any]], gateway: Host) -> None:
    assert health(gateway) == "200"
    other = client("start", "bob", LOCAL)
    try:
        assert other.get("ready") is True, other
        assert client("run", "bob", "print(6 * 7)").get("stdout", "").split() == ["42"]
        unit = scope(gateway, "bob")
        assert (unit["ActiveState"], unit["MemoryMax"], unit["TasksMax"]) == ("active", str(MEMORY_MAX),
                                                                              str(BOB_TASKS_MAX)), unit
        assert health(gateway) == "200"
    finally:
        assert client("stop", "bob").get("stopped") is True
    assert wait_until(lambda: "hpcgw-local-bob.scope" not in scope_units(gateway), 30), scope_units(gateway)


FORK_BOMB = """
import errno, json, os, time
out = {out!r}
pid = os.fork()
if pid == 0:
    os.setsid()
    children, error = [], None
    began = time.monotonic()
    try:
        while len(children) < 1000 and time.monotonic() - began < 30:
            child = os.fork()
            if child == 0:
                time.sleep(25)
                os._exit(0)
            children.append(child)
    except OSError as exc:
        error = errno.errorcode.get(exc.errno, str(exc.errno))
    with open(out + ".tmp", "w") as fh:
        json.dump({{"forked": len(children), "error": error, "nice": os.nice(0)}}, fh)
    os.rename(out + ".tmp", out)
    for child in children:
        os.waitpid(child, 0)
    os._exit(0)
print(pid)
"""


def test_a_fork_bomb_stops_at_her_tasks_max(alice_local: str, client: Callable[..., dict[str, Any]],
                                            gateway: Host) -> None:
    out = f"/tmp/hpcgw-forks-{uuid.uuid4().hex[:8]}.json"
    cgroup = scope(gateway, "alice")["ControlGroup"]
    events = [f"/sys/fs/cgroup/pids{cgroup}/pids.events", f"/sys/fs/cgroup{cgroup}/pids.events"]
    try:
        ran = client("run", "alice", FORK_BOMB.format(out=out))
        assert ran.get("stdout", "").strip().isdigit(), ran
        assert wait_until(lambda: gateway.file(out).exists, 60), "the fork bomb's report never came"
        seen = json.loads(gateway.file(out).content_string)
        assert seen["error"] == "EAGAIN" and seen["forked"] < TASKS_MAX, seen
        assert seen["nice"] == NICE, seen
        assert counter(cgroup_file(gateway, events)[1], "max") >= 1  # the pids controller refused forks
        # Her children hold her tasks for 25 s: bob spawns meanwhile and the hub answers.
        _bob_spawns_while_the_hub_answers(client, gateway)
        current = [f"/sys/fs/cgroup/pids{cgroup}/pids.current", f"/sys/fs/cgroup{cgroup}/pids.current"]
        assert wait_until(lambda: int(cgroup_file(gateway, current)[1]) < TASKS_MAX // 2, 60), "her forks never ended"
    finally:
        gateway.run(f"rm -f {out} {out}.tmp")


LEFTOVER = """
import subprocess
leftover = subprocess.Popen(["sleep", "600"], start_new_session=True)
print(leftover.pid)
"""


def test_her_scope_ends_with_her_server(alice_local: str, client: Callable[..., dict[str, Any]],
                                        gateway: Host) -> None:
    """A process the server left behind (its own session, so neither the
    kernel's nor the server's shutdown reaches it) ends with her scope."""
    leftover = client("run", "alice", LEFTOVER).get("stdout", "").strip()
    assert leftover.isdigit(), leftover
    assert "hpcgw-local-alice.scope" in gateway.check_output(f"cat /proc/{leftover}/cgroup")
    assert client("stop", "alice").get("stopped") is True
    assert wait_until(lambda: "hpcgw-local-alice.scope" not in scope_units(gateway), 30), scope_units(gateway)
    assert scope(gateway, "alice")["LoadState"] == "not-found"
    assert not gateway.file(f"/proc/{leftover}").exists, "the leftover process survived her server"
    assert server_pid(gateway, "alice") == ""


# Last in the module: the OOM killer may take her server too (then it is gone).
def test_a_memory_hog_in_many_processes_is_stopped_inside_her_scope(
        alice_local: str, client: Callable[..., dict[str, Any]], gateway: Host) -> None:
    out = f"/tmp/hpcgw-hog-{uuid.uuid4().hex[:8]}.json"
    cgroup = scope(gateway, "alice")["ControlGroup"]
    oom = memory_files(cgroup, "memory.oom_control", "memory.events")
    kills_before = counter(cgroup_file(gateway, oom)[1], "oom_kill")
    try:
        ran = client("run", "alice", HOG.format(out=out))
        assert ran.get("stdout", "").strip().isdigit(), ran
        # While her 16 processes press against her 1G, bob spawns and the hub answers.
        _bob_spawns_while_the_hub_answers(client, gateway)
        assert wait_until(lambda: gateway.file(out).exists, 90), "the hog's report never came"
        seen = json.loads(gateway.file(out).content_string)
        assert seen["killed"] >= 1 and sum(seen.values()) == 16, seen
        assert health(gateway) == "200"
        if "hpcgw-local-alice.scope" in scope_units(gateway) and gateway.file(oom[0]).exists:
            # The kernel's OOM kill, counted in her scope, which never went above
            # her limit (but for the dying hogs' forced charges).
            assert counter(cgroup_file(gateway, oom)[1], "oom_kill") > kills_before
            peak = cgroup_file(gateway, memory_files(cgroup, "memory.max_usage_in_bytes", "memory.peak"))
            assert int(peak[1]) <= MEMORY_MAX + FORCED_CHARGE_SLACK, peak
            # Her server itself is still there: the OOM killer took the hogs.
            assert client("run", "alice", "print(6 * 7)").get("stdout", "").split() == ["42"]
        else:
            # The OOM killer took her server too (cgroup v1 picks by size, the
            # scope then ends): nothing of hers is left running on the gateway.
            assert wait_until(lambda: gateway.run("pgrep -u alice").rc != 0, 30), gateway.run("ps -u alice").stdout
            assert wait_until(lambda: client("status", "alice").get("server") == {}, 60)
    finally:
        gateway.run(f"rm -f {out} {out}.tmp")
