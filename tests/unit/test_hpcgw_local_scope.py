"""The local servers' scope launcher (root, through the hub's sudo rule), its
user-side mediator and the hub's spawner that calls both."""

from __future__ import annotations

import asyncio
import io
import json
import os
import runpy
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import hpcgw_local_mediator as mediator
import hpcgw_local_scope as scope

CONFIG = {
    "group": "hpcgw-users",
    "min_uid": 1000,
    "refused": ["#0", "jupyterhub", "mallory", "root", "#4242"],
    "mediator": "/opt/jupyterhub/bin/hpcgw-local-mediator",
    "limits": {"memory_max": "1G", "cpu_quota": "100%", "tasks_max": 256},
    "users": {"bob": {"tasks_max": 300}},
    "stop_timeout": 10,
}
SETTINGS = scope.parse_settings(CONFIG)
PASSWD = {  # name: (uid, gid, groups)
    "alice": (20001, 20001, [20000]),
    "bob": (20002, 20002, [20000]),
    "mallory": (20007, 20007, [20000]),
    "svcacct": (997, 997, [20000]),
    "root": (0, 0, [20000]),
    "slurm": (64030, 64030, []),
    "eve": (4242, 4242, [20000]),
    "jupyterhub": (999, 996, []),
}


def _getpwnam(name: str) -> Any:
    key = name.lower()  # like a case-insensitive name service
    if key not in PASSWD:
        raise KeyError(name)
    uid, gid, _ = PASSWD[key]
    return types.SimpleNamespace(pw_name=key, pw_uid=uid, pw_gid=gid, pw_dir=f"/home/{key}", pw_shell="/bin/bash")


def _getgrnam(name: str) -> Any:
    if name != "hpcgw-users":
        raise KeyError(name)
    return types.SimpleNamespace(gr_gid=20000)


def _grouplist(name: str, gid: int) -> list[int]:
    return [gid, *PASSWD[name][2]]


def check(name: str) -> scope.Account:
    return scope.check_user(name, SETTINGS, _getpwnam, _getgrnam, _grouplist)


def test_a_member_above_the_minimum_uid_is_accepted() -> None:
    assert check("alice") == scope.Account("alice", 20001, 20001, "/home/alice", "/bin/bash")


@pytest.mark.parametrize(("name", "why"), [
    ("root", "refused"), ("jupyterhub", "refused"), ("mallory", "refused"), ("eve", "refused"),
    ("svcacct", "system account"), ("slurm", "not a member of hpcgw-users"), ("nosuch", "no account"),
    ("ALICE", "not the account's own name"), ("-p", "not a plain account name"),
    ("--uid=0", "not a plain account name"), ("../root", "not a plain account name"),
    ("alice/../root", "not a plain account name"), ("alice\n", "not a plain account name"),
    ("alice bob", "not a plain account name"), (".alice", "not a plain account name"),
    ("alice@EXAMPLE.ORG", "not a plain account name"), ("", "not a plain account name"), ("a" * 33, "not a plain"),
])
def test_everyone_else_is_refused(name: str, why: str) -> None:
    with pytest.raises(scope.Refused, match=why) as refused:
        check(name)
    assert refused.value.status == scope.EXIT_REFUSED


def test_start_runs_the_mediator_as_the_user_in_the_scope_with_the_limits() -> None:
    argv = scope.start_argv(check("alice"), SETTINGS)
    assert argv[:4] == ["/usr/bin/systemd-run", "--scope", "--quiet", "--collect"]
    assert "--unit=hpcgw-local-alice.scope" in argv and "--slice=hpcgw-local.slice" in argv
    props = [argv[i + 1] for i, a in enumerate(argv) if a == "-p"]
    assert props == ["MemoryMax=1G", "CPUQuota=100%", "TasksMax=256", "TimeoutStopSec=10s"]
    inner = argv[argv.index("--") + 1:]
    assert inner == ["/usr/bin/setpriv", "--reuid=20001", "--regid=20001", "--init-groups", "--inh-caps=-all", "--",
                     "/opt/jupyterhub/bin/hpcgw-local-mediator"]


def test_a_users_override_replaces_only_its_keys() -> None:
    assert scope.limits_for(check("bob"), SETTINGS) == {"memory_max": "1G", "cpu_quota": "100%", "tasks_max": "300"}


def test_the_environment_is_built_from_nothing() -> None:
    env = scope.child_env(check("alice"))
    assert env == {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/alice", "USER": "alice",
                   "LOGNAME": "alice", "SHELL": "/bin/bash", "LANG": "C.UTF-8"}


@pytest.mark.parametrize(("change", "why"), [
    ({"limits": {"memory_max": "1G", "cpu_quota": "100%"}}, "exactly the keys"),
    ({"limits": {"memory_max": "1G; rm", "cpu_quota": "100%", "tasks_max": 1}}, "memory_max"),
    ({"limits": {"memory_max": "1G", "cpu_quota": "100% -p User=root", "tasks_max": 1}}, "cpu_quota"),
    ({"limits": {"memory_max": "1G", "cpu_quota": "100%", "tasks_max": True}}, "tasks_max"),
    ({"users": {"-p": {"tasks_max": 5}}}, "account names"),
    ({"users": {"bob": {"swap": "0"}}}, "exactly the keys"),
    ({"min_uid": "many"}, "malformed"),
    ({"group": None, "refused": None}, "malformed"),
])
def test_a_wrong_configuration_is_refused(change: dict[str, Any], why: str) -> None:
    with pytest.raises(scope.Refused, match=why) as refused:
        scope.parse_settings({**CONFIG, **change})
    assert refused.value.status == scope.EXIT_CONFIG


def test_only_a_configuration_nobody_else_may_write_counts(tmp_path: Path) -> None:
    path = tmp_path / "local-scope.json"
    path.write_text(json.dumps(CONFIG))
    path.chmod(0o666)
    with pytest.raises(scope.Refused, match="writable by root only"):
        scope.load_settings(path)
    path.chmod(0o644)
    if os.geteuid() == 0:
        assert scope.load_settings(path) == SETTINGS
    else:
        with pytest.raises(scope.Refused, match="owned by root"):
            scope.load_settings(path)
    with pytest.raises(scope.Refused, match="cannot read"):
        scope.load_settings(tmp_path / "missing.json")


class Calls:
    """Records the launcher's systemctl calls and its execve."""

    def __init__(self, active: bool = False, stop_code: int = 0) -> None:
        self.run: list[list[str]] = []
        self.execs: list[tuple[str, list[str], dict[str, str]]] = []
        self.active = active
        self.stop_code = stop_code

    def runner(self, argv: list[str], **_: Any) -> Any:
        self.run.append(argv)
        code = {"is-active": 0 if self.active else 3, "stop": self.stop_code}.get(argv[1], 0)
        return subprocess.CompletedProcess(argv, code)

    def execve(self, path: str, argv: list[str], env: dict[str, str]) -> None:
        self.execs.append((path, argv, env))


@pytest.fixture()
def launcher(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(scope, "load_settings", lambda path: SETTINGS)
    real = scope.check_user
    monkeypatch.setattr(scope, "check_user",
                        lambda name, settings: real(name, settings, _getpwnam, _getgrnam, _grouplist))
    return scope


def test_start_ends_a_leftover_scope_then_execs_systemd_run(launcher: Any) -> None:
    calls = Calls(active=True)
    assert launcher.main(["start", "alice"], execve=calls.execve, run=calls.runner) == 1  # execve "returned"
    assert [c[1:] for c in calls.run] == [["is-active", "--quiet", "hpcgw-local-alice.scope"],
                                          ["stop", "hpcgw-local-alice.scope"],
                                          ["reset-failed", "hpcgw-local-alice.scope"]]
    assert calls.execs and calls.execs[0][0] == "/usr/bin/systemd-run"
    assert calls.execs[0][2]["USER"] == "alice"


def test_start_does_not_run_when_the_leftover_scope_will_not_stop(launcher: Any, capsys: Any) -> None:
    calls = Calls(active=True, stop_code=1)
    assert launcher.main(["start", "alice"], execve=calls.execve, run=calls.runner) == 1
    assert calls.execs == []
    assert "did not stop" in capsys.readouterr().err


def test_stop_stops_only_an_active_scope(launcher: Any) -> None:
    calls = Calls(active=False)
    assert launcher.main(["stop", "bob"], execve=calls.execve, run=calls.runner) == 0
    assert [c[1] for c in calls.run] == ["is-active", "reset-failed"] and calls.execs == []


@pytest.mark.parametrize("argv", [[], ["start"], ["start", "alice", "bob"], ["run", "alice"], ["--help"],
                                  ["start", "alice", "--", "sh"], ["stop", "alice", "-p", "User=root"]])
def test_anything_but_a_verb_and_a_name_is_a_usage_error(launcher: Any, argv: list[str], capsys: Any) -> None:
    calls = Calls()
    assert launcher.main(argv, execve=calls.execve, run=calls.runner) == scope.EXIT_USAGE
    assert calls.run == [] and calls.execs == []
    assert "usage: hpcgw-local-scope start|stop <user>" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["root", "svcacct", "slurm", "-p", "--uid=0", "../root"])
def test_a_refused_user_gets_a_message_and_no_systemd_call(launcher: Any, name: str, capsys: Any) -> None:
    calls = Calls()
    assert launcher.main(["start", name], execve=calls.execve, run=calls.runner) == scope.EXIT_REFUSED
    assert calls.run == [] and calls.execs == []
    assert capsys.readouterr().err.startswith("hpcgw-local-scope: refused: ")


def test_the_launcher_runs_isolated_and_is_stdlib_only() -> None:
    source = Path(scope.__file__).read_text()
    assert source.startswith("#!/usr/bin/python3 -I\n")
    # A child interpreter that sees only the standard library can load it.
    code = f"import runpy; runpy.run_path({scope.__file__!r})['parse_settings']({CONFIG!r})"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- the user-side mediator --------------------------------------------------

V1 = ("12:pids:/docker/abc/hpcgw.slice/hpcgw-local.slice/hpcgw-local-alice.scope\n"
      "9:name=systemd:/docker/abc/hpcgw.slice/hpcgw-local.slice/hpcgw-local-alice.scope\n"
      "0::/docker/abc/hpcgw.slice/hpcgw-local.slice/hpcgw-local-alice.scope\n")
HUB = "9:name=systemd:/docker/abc/system.slice/jupyterhub.service\n0::/docker/abc/system.slice/jupyterhub.service\n"


@pytest.mark.parametrize(("text", "user", "inside"), [
    (V1, "alice", True),
    ("0::/hpcgw.slice/hpcgw-local.slice/hpcgw-local-alice.scope\n", "alice", True),
    (V1, "bob", False),
    (HUB, "alice", False),
    ("0::/hpcgw.slice/hpcgw-local.slice/hpcgw-local-alice.scope/evil\n", "alice", False),
    ("0::/user.slice/hpcgw-local-alice.scope\n", "alice", False),
    ("5:memory:/hpcgw.slice/hpcgw-local.slice/hpcgw-local-alice.scope\n0::/system.slice/x.service\n", "alice", False),
])
def test_the_mediator_knows_its_own_scope(text: str, user: str, inside: bool) -> None:
    assert mediator.in_own_scope(text, user) is inside


class FakeMediator:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def kill(self, pid: int, signal: int) -> None:
        self.calls.append(("kill", pid, signal))

    def spawn(self, singleuser: str, args: list[str], env: dict[str, str]) -> None:
        self.calls.append(("spawn", singleuser, args, env))


def _serve(request: dict[str, Any], cgroup: str, tmp_path: Path) -> tuple[int, FakeMediator, str]:
    cgroup_file = tmp_path / "cgroup"
    cgroup_file.write_text(cgroup)
    fake, out = FakeMediator(), io.StringIO()
    code = mediator.main("/venv/bin/jupyterhub-singleuser", 0, stdin=io.StringIO(json.dumps(request)), stdout=out,
                         cgroup_file=str(cgroup_file), mediator=fake, user=lambda: "alice")
    return code, fake, out.getvalue()


def test_a_spawn_inside_the_scope_starts_the_server(tmp_path: Path) -> None:
    code, fake, _ = _serve({"action": "spawn", "args": ["--debug"], "env": {"A": "1"}}, V1, tmp_path)
    assert code == 0 and fake.calls == [("spawn", "/venv/bin/jupyterhub-singleuser", ["--debug"], {"A": "1"})]


def test_a_spawn_outside_the_scope_is_refused(tmp_path: Path) -> None:
    code, fake, out = _serve({"action": "spawn", "args": [], "env": {}}, HUB, tmp_path)
    assert code == 1 and fake.calls == []
    assert json.loads(out) == {"ok": False, "error": "a local server of alice starts only in its scope "
                                                     "hpcgw-local-alice.scope (through hpcgw-local-scope)"}


def test_a_signal_needs_no_scope(tmp_path: Path) -> None:
    code, fake, _ = _serve({"action": "kill", "pid": 4321, "signal": 15}, HUB, tmp_path)
    assert code == 0 and fake.calls == [("kill", 4321, 15)]


@pytest.mark.parametrize("request_", [{"action": "exec", "cmd": "sh"}, {"pid": 1}])
def test_other_requests_are_refused(tmp_path: Path, request_: dict[str, Any]) -> None:
    code, fake, out = _serve(request_, V1, tmp_path)
    assert code == 1 and fake.calls == [] and json.loads(out)["ok"] is False


# --- the hub's spawner (JupyterHub, sudospawner and traitlets are stubbed) ---

def _stub_modules(monkeypatch: pytest.MonkeyPatch) -> Any:
    traitlets = types.ModuleType("traitlets")
    traitlets.Unicode = lambda default="", **_: default  # type: ignore[attr-defined]
    traitlets.Integer = lambda default=0, **_: default  # type: ignore[attr-defined]
    utils = types.ModuleType("jupyterhub.utils")
    utils.random_port = lambda: 45678  # type: ignore[attr-defined]
    hub = types.ModuleType("jupyterhub")
    hub.utils = utils  # type: ignore[attr-defined]
    sudo = types.ModuleType("sudospawner")

    class SudoSpawner:  # the attributes LocalScopeSpawner uses
        sudo_args = ["-nH"]
        sudospawner_path = "/opt/jupyterhub/bin/hpcgw-local-mediator"
        ip = "127.0.0.1"
        name = ""  # the user's default server
        stopped = False

        def __init__(self) -> None:
            self.user = types.SimpleNamespace(name="alice", spawners={})
            self.log = types.SimpleNamespace(debug=lambda *a: None, error=lambda *a: self.errors.append(a))
            self.errors: list[Any] = []

        def get_args(self) -> list[str]:
            return ["--debug"]

        def get_env(self) -> dict[str, str]:
            return {"JUPYTERHUB_API_TOKEN": "secret"}

        async def stop(self, now: bool = False) -> None:
            self.stopped = True

    sudo.SudoSpawner = SudoSpawner  # type: ignore[attr-defined]
    for name, module in (("traitlets", traitlets), ("jupyterhub", hub), ("jupyterhub.utils", utils), ("sudospawner", sudo)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "hpcgw_local", raising=False)
    import hpcgw_local  # pylint: disable=import-outside-toplevel
    return hpcgw_local


def test_spawns_go_through_the_launcher_and_signals_as_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    local = _stub_modules(monkeypatch).LocalScopeSpawner()
    assert local.mediator_argv("spawn") == ["sudo", "-n", "/usr/local/sbin/hpcgw-local-scope", "start", "alice"]
    assert local.mediator_argv("kill") == ["sudo", "-u", "alice", "-nH", "/opt/jupyterhub/bin/hpcgw-local-mediator"]


FAKE_SUDO = r"""
import json, os, sys, time
try:
    request = json.load(sys.stdin)
except ValueError:
    request = None
with open(sys.argv[1], "w") as fh:
    json.dump({"argv": sys.argv[2:], "request": request}, fh)
if os.fork() == 0:            # the server: keeps stderr open, outlives the mediator
    os.dup2(os.open(os.devnull, os.O_RDWR), 1)
    time.sleep(15)
    os._exit(0)
sys.stdout.write(%r)
sys.stdout.flush()
"""


def _fake_exec(monkeypatch: pytest.MonkeyPatch, module: Any, tmp_path: Path, reply: Any, code: int = 0) -> Path:
    script, record = tmp_path / "fake_sudo.py", tmp_path / "record.json"
    script.write_text(FAKE_SUDO % json.dumps(reply) + f"sys.exit({code})\n")
    real = asyncio.create_subprocess_exec

    async def run(*argv: str, **kwargs: Any) -> Any:
        return await real(sys.executable, str(script), str(record), *argv, **kwargs)

    monkeypatch.setattr(module.asyncio, "create_subprocess_exec", run)
    return record


def test_a_spawn_returns_while_the_server_keeps_running(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = _stub_modules(monkeypatch)
    record = _fake_exec(monkeypatch, module, tmp_path, {"ok": True, "pid": 4242})
    local = module.LocalScopeSpawner()
    address = asyncio.run(asyncio.wait_for(local.start(), 10))  # not the server's 15 s
    assert address == ("127.0.0.1", 45678) and local.pid == 4242
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["sudo", "-n", "/usr/local/sbin/hpcgw-local-scope", "start", "alice"]
    assert seen["request"] == {"action": "spawn", "args": ["--debug"], "env": {"JUPYTERHUB_API_TOKEN": "secret"}}


@pytest.mark.parametrize(("reply", "code", "message"), [
    ({"ok": False, "error": "a local server of alice starts only in its scope"}, 1, "starts only in its scope"),
    ({"ok": False, "error": "Exited with status: 1"}, 0, "did not start: Exited with status: 1"),
    ("not json", 77, r"spawn for alice failed \(exit 77\)"),
])
def test_a_failed_spawn_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reply: Any, code: int,
                                 message: str) -> None:
    module = _stub_modules(monkeypatch)
    _fake_exec(monkeypatch, module, tmp_path, reply, code)
    with pytest.raises(RuntimeError, match=message):
        asyncio.run(asyncio.wait_for(module.LocalScopeSpawner().start(), 10))


def test_a_stop_ends_the_scope_after_the_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = _stub_modules(monkeypatch)
    record = _fake_exec(monkeypatch, module, tmp_path, {"ok": True})
    local = module.LocalScopeSpawner()
    asyncio.run(asyncio.wait_for(local.stop(), 10))
    assert local.stopped and local.errors == []
    assert json.loads(record.read_text())["argv"] == ["sudo", "-n", "/usr/local/sbin/hpcgw-local-scope", "stop", "alice"]


def test_the_reply_is_the_one_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    parse = _stub_modules(monkeypatch).parse_reply
    assert parse(b'log line\n{"ok": true, "pid": 7}\n') == {"ok": True, "pid": 7}
    assert parse(b"") == {} and parse(b"{broken") == {} and parse(b"[1, 2]") == {}


# Issue 16: a test instance's launcher reads its own configuration and runs
# its users' servers in its own slice, never in production's.
@pytest.mark.parametrize(("installed", "config"), [
    ("hpcgw-local-scope", "/etc/hpcgw-local-scope.json"),
    ("hpcgw-local-scope-test", "/etc/hpcgw-local-scope-test.json"),
])
def test_the_configuration_is_named_after_the_installed_launcher(tmp_path: Path, installed: str, config: str) -> None:
    launcher = tmp_path / installed
    launcher.write_bytes(Path(scope.__file__).read_bytes())
    assert runpy.run_path(str(launcher))["CONFIG_FILE"] == Path(config)


def test_a_test_instance_scope_lives_in_its_own_slice() -> None:
    settings = scope.parse_settings({**CONFIG, "slice": "hpcgw-local_test.slice"})
    account = scope.check_user("alice", settings, _getpwnam, _getgrnam, _grouplist)
    argv = scope.start_argv(account, settings)
    assert "--unit=hpcgw-local_test-alice.scope" in argv and "--slice=hpcgw-local_test.slice" in argv
    assert scope.unit_name(account, settings) != scope.unit_name(account, SETTINGS)


@pytest.mark.parametrize("slice_name", ["hpcgw-local-test.slice", "system.slice", "hpcgw-local_Test.slice",
                                        "hpcgw-local_test", "../hpcgw-local.slice"])
def test_a_slice_that_is_not_an_instance_slice_is_refused(slice_name: str) -> None:
    with pytest.raises(scope.Refused, match="slice"):
        scope.parse_settings({**CONFIG, "slice": slice_name})


def test_the_mediator_of_a_test_instance_wants_its_own_slice() -> None:
    test = "0::/hpcgw.slice/hpcgw-local_test.slice/hpcgw-local_test-alice.scope\n"
    assert mediator.in_own_scope(test, "alice", "hpcgw-local_test.slice") is True
    assert mediator.in_own_scope(test, "alice") is False  # production's mediator refuses it
    assert mediator.in_own_scope(V1, "alice", "hpcgw-local_test.slice") is False
