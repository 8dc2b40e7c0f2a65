"""Fixtures and helpers of the verifier: containers by name, the test
clients, the hub's journal, one polling helper."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pytest
import testinfra
from testinfra.host import Host

BROWSER = "hpcgw-browser"
CONTROLLER = "hpcgw-ctl"
COMPUTE = ("hpcgw-c1", "hpcgw-c2")
GATEWAY = "hpcgw-gw"
# The demo runs the hub under a base path (jupyterhub_base_url /jupyter/,
# gateway_apache_base_path /jupyter): every request goes through the prefix.
PREFIX = "/jupyter"
ORIGIN = "https://hpcgw-gw"
BASE = ORIGIN + PREFIX
# The demo's basic (TEST ONLY) logins: inventories/demo/group_vars/gateway/front.yml.
PASSWORDS = {
    "alice": "alice-test-pw",
    "bob": "bob-test-pw",
    "Bob@EXAMPLE.ORG": "bob-test-pw",
    "carol": "carol-test-pw",
    "dave": "dave-test-pw",
    "erin": "erin-test-pw",
    "frank": "frank-test-pw",
    "mallory": "mallory-test-pw",
    "root": "root-test-pw",
    "daemon": "daemon-test-pw",
    "svcacct": "svcacct-test-pw",
    # a valid SSO login of a realm the hub does not allow (only EXAMPLE.ORG)
    "alice@OTHER.ORG": "other-test-pw",
}
# The scenarios' users (bench accounts, group hpc-users), whom no module of
# their window uses; apart from PASSWORDS, which some modules go through to
# check that no demo user has a job left.
SCENARIO_PASSWORDS = {"burst28": "burst-test-pw", "burst29": "burst-test-pw", "burst30": "burst-test-pw"}
T = TypeVar("T")
# Fault recovery times measured in this run: (fault, seconds), printed at the
# end of the verifier's output and written to artifacts/molecule/recovery.json.
RECOVERY: list[tuple[str, float]] = []


# Playbooks that touch none of the containers the other tests use (the SSO
# configtests run on hpcgw-browser's scratch Apache) start in the background
# when the session's tests are collected, so their minutes of CPU overlap the
# suite's waits (outages, walltime, the culler) instead of adding to them; the
# test that owns one waits for it with background_playbook().
# browser_ready.yml waits for hpcgw-browser's packages (prepare installs them
# in the background while the cluster converges) and finishes that host. A
# module may add its own with background_run() (a name and the playbook's
# arguments), e.g. an install on the compute nodes that no test before it
# looks at.
BACKGROUND_PLAYBOOKS = {"test_sso_configtest.py": "sso_configtest.yml", "test_browser.py": "browser_ready.yml",
                        "test_metrics.py": "browser_ready.yml", "test_usage_report.py": "browser_ready.yml"}
# The arguments of those that are not a playbook of the scenario's directory alone.
_BACKGROUND_ARGS: dict[str, list[str]] = {}
_BACKGROUND: dict[str, tuple[Any, Path]] = {}


def background_run(module: str, name: str, *args: str) -> None:
    """Start `ansible-playbook <args>` at collection when `module` is selected;
    the module waits for it with background_playbook(name)."""
    BACKGROUND_PLAYBOOKS[module] = name
    _BACKGROUND_ARGS[name] = list(args)


def _background_command(name: str) -> list[str]:
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    return ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
            *_BACKGROUND_ARGS.get(name, [str(scenario / name)])]


def playbook_env() -> dict[str, str]:
    """The environment of an ansible-playbook run from a test: the project's roles, no colour."""
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    return dict(os.environ, ANSIBLE_ROLES_PATH=str(scenario.parents[1] / "roles"),
                ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")


# The check-mode run of site.yml (test_zz_check_mode.py, 2-3 min of CPU)
# starts in the background when the first test of these modules begins: they
# wait on batch jobs or send requests and change no file, package, account
# or service of the cluster (the window's test_spawn_accounts.py stops
# slurmdbd; test_usage_report.py starts the report's service), so the run
# sees the converged state as it would at the end. Any other test waits for
# it to finish before it starts (a stopped daemon or a re-converge under it
# would be a false change). The scenarios may run beside it: a test
# instance's accounts, packages and files change nothing of production's
# (the sudo rules name only the system accounts in the users' group).
CHECK_MODE_MODULE = "test_zz_check_mode.py"
_CHECK_MODE: dict[str, Any] = {}
_SELECTED: set[str] = set()


def _check_mode_command() -> list[str]:
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    return ["ansible-playbook", "-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent), "--check",
            str(scenario / "converge.yml")]


def check_mode_run(timeout: float = 900) -> tuple[int, str]:
    """The check-mode run's (rc, output): the background one, or one now."""
    if not _CHECK_MODE:
        run = subprocess.run(_check_mode_command(), capture_output=True, text=True, env=playbook_env(),
                             check=False, timeout=timeout)
        return run.returncode, run.stdout + run.stderr
    rc = _CHECK_MODE["process"].wait(timeout=timeout)
    return rc, _CHECK_MODE["log"].read_text()


# Scenarios that run in threads beside a window of other modules, instead
# of after them: the upgrade of the test instance (test_instance.py, about
# 10 min of playbooks and waits), the previous JupyterHub major on an
# instance of its own (test_previous_major.py, about 4 min) and a server
# reaching its walltime (test_walltime.py, minutes of waiting). They start
# with the window's first test; each scenario's own test runs after the
# window, waits for it and reports its outcome.
#
# The window's modules neither restart production's hub or proxy, run
# playbooks, stop slurmctld or munge, cull idle servers nor need whole
# nodes (test_browser.py's pending job holds both debug nodes; each of those
# would break a scenario or its checks of production, or wait on its jobs),
# and none uses a scenario's user (SCENARIO_PASSWORDS). The modules
# that do run before the window (BEFORE_WINDOW: they restore, re-converge
# and kill the hub) or after the scenarios' tests (every module in neither
# list, in name order).
BEFORE_WINDOW = ("test_backup_restore.py", "test_branding.py", "test_faults.py")
SCENARIO_MODULES = ("test_instance.py", "test_previous_major.py", "test_walltime.py")
SCENARIO_WINDOW = (
    "test_access_policy.py", "test_base_path.py", "test_demo_login.py", "test_demo_url.py",
    "test_desktop.py", "test_e2e.py", "test_forged_headers.py", "test_gridengine.py", "test_groups.py",
    "test_local_scope.py", "test_metrics.py", "test_modules.py", "test_named_servers.py", "test_notebook_env.py",
    "test_operators_audit.py", "test_operators_rights.py", "test_parallel.py", "test_privilege.py",
    "test_secrets.py", "test_server_proxy.py", "test_sudo_runas.py", "test_tls_http.py", "test_firewalled_nodes.py",
    "test_spawn_failures.py", "test_spawn_form.py", "test_spawn_slurm.py", "test_spawn_accounts.py",
    "test_usage_report.py",
)
# The window's modules the check mode may run beside (see above).
CHECK_MODE_OVERLAP = set(SCENARIO_WINDOW) - {"test_spawn_accounts.py", "test_usage_report.py"}
# How long a scenario's test (or a module after the window) waits for it.
SCENARIO_TIMEOUT = 2400
_SCENARIOS: dict[str, dict[str, Any]] = {}
_SCENARIO_FUNCTIONS: dict[str, Callable[[], None]] = {}


def background_scenario(function: Callable[[], None]) -> Callable[[], None]:
    """Register the scenario of the module that defines `function`."""
    _SCENARIO_FUNCTIONS[Path(function.__code__.co_filename).name] = function
    return function


def _start_scenario(module: str) -> None:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            _SCENARIO_FUNCTIONS[module]()
        except BaseException as exc:  # reported by the module's test, where it belongs
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"scenario-{module}", daemon=True)
    _SCENARIOS[module] = {"thread": thread, "outcome": outcome, "started": time.monotonic()}
    thread.start()


def _wait_scenarios() -> None:
    for scenario in _SCENARIOS.values():
        scenario["thread"].join(SCENARIO_TIMEOUT)


def run_scenario(module: str) -> None:
    """The test of a scenario module: wait for its background run (or run it
    now, when the window's modules were not selected) and raise what it raised."""
    if module not in _SCENARIOS:
        _SCENARIO_FUNCTIONS[module]()
        return
    scenario = _SCENARIOS[module]
    scenario["thread"].join(SCENARIO_TIMEOUT)
    assert not scenario["thread"].is_alive(), f"{module}'s scenario still runs after {SCENARIO_TIMEOUT} s"
    print(f"{module}: the scenario ran beside the window; {time.monotonic() - scenario['started']:.0f} s since it began")
    if "error" in scenario["outcome"]:
        raise scenario["outcome"]["error"]


@pytest.fixture(autouse=True)
def _background_work(request: pytest.FixtureRequest) -> None:
    module = Path(str(request.node.fspath)).name
    if module in CHECK_MODE_OVERLAP:
        if CHECK_MODE_MODULE in _SELECTED and not _CHECK_MODE:
            log = Path(tempfile.mkstemp(prefix="hpcgw-check-mode-", suffix=".log")[1])
            with log.open("w") as out:
                _CHECK_MODE.update(log=log, started=time.monotonic(), process=subprocess.Popen(
                    _check_mode_command(), stdout=out, stderr=subprocess.STDOUT, text=True, env=playbook_env()))
    elif _CHECK_MODE and _CHECK_MODE["process"].poll() is None:
        _CHECK_MODE["process"].wait(timeout=900)
    if module in SCENARIO_WINDOW:
        for scenario in SCENARIO_MODULES:
            if scenario in _SELECTED and scenario in _SCENARIO_FUNCTIONS and scenario not in _SCENARIOS:
                _start_scenario(scenario)
    elif module not in SCENARIO_MODULES:
        _wait_scenarios()


def _module_rank(module: str) -> int:
    """Where a module runs: before the window, in it, the scenarios' tests, after."""
    if module in BEFORE_WINDOW:
        return 0
    if module in SCENARIO_WINDOW:
        return 1
    return 2 if module in SCENARIO_MODULES else 3


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Order the modules around the scenario's window (stable otherwise) and
    start the background playbook of every selected module that owns one."""
    items.sort(key=lambda item: _module_rank(Path(str(item.fspath)).name))
    selected = {Path(str(item.fspath)).name for item in items}
    _SELECTED.update(selected)
    for module, playbook in BACKGROUND_PLAYBOOKS.items():
        if module not in selected or playbook in _BACKGROUND or "MOLECULE_INVENTORY_FILE" not in os.environ:
            continue
        log = Path(tempfile.mkstemp(prefix=f"hpcgw-{Path(playbook).stem}-", suffix=".log")[1])
        with log.open("w") as out:
            process = subprocess.Popen(_background_command(playbook), stdout=out, stderr=subprocess.STDOUT,
                                       text=True, env=playbook_env())
        _BACKGROUND[playbook] = (process, log)


def background_playbook(playbook: str, timeout: float = 1200) -> tuple[int, str]:
    """Wait for a playbook started at collection (or run it now): (rc, output)."""
    if playbook not in _BACKGROUND:
        run = subprocess.run(_background_command(playbook), capture_output=True, text=True, env=playbook_env(),
                             check=False, timeout=timeout)
        return run.returncode, run.stdout + run.stderr
    process, log = _BACKGROUND[playbook]
    rc = process.wait(timeout=timeout)
    return rc, log.read_text()


def record_recovery(fault: str, seconds: float) -> None:
    """Keep one fault's recovery time for the run's summary (and print it)."""
    RECOVERY.append((fault, round(seconds, 1)))
    print(f"{fault}: {seconds:.1f} s")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RECOVERY:
        return
    terminalreporter.section("fault recovery times")
    width = max(len(fault) for fault, _ in RECOVERY)
    for fault, seconds in RECOVERY:
        terminalreporter.write_line(f"{fault.ljust(width)}  {seconds:7.1f} s")
    project = os.environ.get("MOLECULE_PROJECT_DIRECTORY")
    if project:
        out = Path(project) / "artifacts" / "molecule" / "recovery.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps([{"fault": f, "seconds": s} for f, s in RECOVERY], indent=1) + "\n")


def wait_until(probe: Callable[[], T], seconds: float, interval: float = 1.0) -> T:
    """Call `probe` until it returns something truthy or `seconds` have passed;
    returns its last value (falsy on timeout), for the caller to assert on."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def seconds_until(probe: Callable[[], T], seconds: float, interval: float = 0.5) -> tuple[float, T]:
    """wait_until, timed: (seconds until `probe` was truthy, or inf; its last value)."""
    began = time.monotonic()
    value = wait_until(probe, seconds, interval)
    return (time.monotonic() - began if value else float("inf")), value


def wait_server_gone(status: Callable[[], dict[str, Any]], seconds: int) -> tuple[float, dict[str, Any]]:
    """Poll a user's status (spawnclient's) until she has no server: (seconds
    it took, or inf; the last status, whose notice says why it ended)."""
    last: dict[str, Any] = {}

    def gone() -> bool:
        last.clear()
        last.update(status())
        return last.get("server") == {}

    took, _ = seconds_until(gone, seconds, interval=2)
    return took, last


def container_host(name: str) -> Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)


@pytest.fixture(scope="session")
def node() -> Callable[[str], Host]:
    """node(name) -> testinfra host of that container."""
    cache: dict[str, Host] = {}

    def get(name: str) -> Host:
        if name not in cache:
            cache[name] = container_host(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def gateway(node: Callable[[str], Host]) -> Host:
    return node(GATEWAY)


@pytest.fixture(scope="session")
def controller(node: Callable[[str], Host]) -> Host:
    return node(CONTROLLER)


@pytest.fixture(scope="session")
def browser(node: Callable[[str], Host]) -> Host:
    """hpcgw-browser (headless Chromium, Prometheus), once browser_ready.yml has finished it."""
    rc, output = background_playbook("browser_ready.yml")
    assert rc == 0, output[-3000:]
    return node(BROWSER)


def wait_for_content(host: Host, path: str, seconds: int = 120) -> str:
    """Stripped content of a file a batch job writes, once it is non-empty."""
    def content() -> str:
        f = host.file(path)
        return f.content_string.strip() if f.exists else ""
    return wait_until(content, seconds)


def user_jobs(host: Host, user: str) -> list[list[str]]:
    """The user's queued/running jobs as [job id, state, node list, partition]."""
    out = host.check_output(f"squeue -h -u {user} -o '%i %T %N %P'")
    return [line.split() for line in out.splitlines() if line.strip()]


# A cancelled or finished job stays in squeue (COMPLETING) until its processes
# are gone: slurmd sends SIGTERM, then SIGKILL after KillWait (30 s by default),
# so a server shutting down its kernels can legitimately take that long.
JOB_GONE_SECONDS = 90


def wait_no_jobs(host: Host, user: str, seconds: int = JOB_GONE_SECONDS) -> list[list[str]]:
    """The user's jobs once none is left, or what is left after `seconds`."""
    wait_until(lambda: not user_jobs(host, user), seconds)
    return user_jobs(host, user)


def wait_job_gone(host: Host, job_id: str, seconds: int = JOB_GONE_SECONDS) -> bool:
    """True once job `job_id` has left squeue (finished and cleaned up)."""
    return wait_until(
        lambda: not host.check_output(f"squeue -h -j {job_id} -o %i 2>/dev/null || true").strip(), seconds)


@pytest.fixture()
def quiet(gateway: Host) -> Iterator[None]:
    """alice and bob have no job before the test, and none is left after it."""
    for user in ("alice", "bob"):
        assert wait_no_jobs(gateway, user) == [], f"{user} still has a job from an earlier test"
    yield
    for user in ("alice", "bob"):
        assert wait_no_jobs(gateway, user) == [], f"{user} has a job left"


def completed_jobs(controller: Host, user: str) -> list[dict[str, str]]:
    """The user's finished jobs from slurmctld's job completion log, oldest first."""
    log = controller.file("/var/log/slurm/jobcomp.log")
    if not log.exists:
        return []
    return [dict(f.split("=", 1) for f in line.split() if "=" in f)
            for line in log.content_string.splitlines() if f"UserId={user}(" in line]


def spawn_client(controller: Host, base: str = BASE) -> Callable[..., dict[str, Any]]:
    """client(command, user, *args): spawnclient.py on the controller, as a
    user's browser through Apache to the hub under `base`; returns its JSON result."""
    def call(command: str, user: str, *args: str) -> dict[str, Any]:
        cmd = controller.run(
            "python3 /usr/local/bin/spawnclient.py "
            + " ".join(shlex.quote(a) for a in (command, base, user, PASSWORDS.get(user) or SCENARIO_PASSWORDS[user],
                                                *args))
        )
        assert cmd.rc == 0, cmd.stderr
        return json.loads(cmd.stdout.strip().splitlines()[-1])

    return call


def as_user(client: Callable[..., dict[str, Any]], user: str) -> Callable[..., dict[str, Any]]:
    """A spawn_client bound to one user: call(command, *args)."""
    return lambda command, *args: client(command, user, *args)


@pytest.fixture(scope="module")
def client(controller: Host) -> Callable[..., dict[str, Any]]:
    """spawn_client through the demo's production hub."""
    return spawn_client(controller)


@pytest.fixture(scope="session")
def outside(controller: Host) -> Host:
    """A host that is not the gateway (the cluster's login node): requests that
    come from a compute node or a user's machine start here."""
    return controller


@pytest.fixture(scope="session")
def gwclient(outside: Host) -> Callable[..., dict[str, Any]]:
    """gwclient(command, *args): the stdlib gateway client on `outside`; returns its JSON result."""
    def run(*args: str) -> dict[str, Any]:
        cmd = outside.run("python3 /usr/local/bin/gwclient.py " + " ".join(shlex.quote(a) for a in args))
        assert cmd.rc == 0, cmd.stderr
        return json.loads(cmd.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture()
def hub_log(gateway: Host) -> Iterator[Callable[..., str]]:
    """hub_log(wanted="", seconds=15): the hub's journal written since the test
    began (after a journal cursor, so nothing of an earlier test within the same
    second); with `wanted`, read again until it is there. The cursor is the
    hub's own last entry: journalctl -u ... --after-cursor skips the first
    entry of the unit when the cursor is another unit's (systemd 252)."""
    cursor = ""
    for line in gateway.check_output("journalctl -u jupyterhub -n 1 --show-cursor --no-pager -o cat").splitlines():
        if line.startswith("-- cursor: "):
            cursor = line[len("-- cursor: "):].strip()
    assert cursor, "no journal entry of the hub on the gateway"

    def read(wanted: str = "", seconds: float = 15) -> str:
        def text() -> str:
            out = gateway.check_output(
                f"journalctl -u jupyterhub --no-pager -o cat --after-cursor {shlex.quote(cursor)}")
            return out if wanted in out else ""
        found = wait_until(text, seconds if wanted else 0, interval=0.5)
        return found or gateway.check_output(
            f"journalctl -u jupyterhub --no-pager -o cat --after-cursor {shlex.quote(cursor)}")

    yield read


def spellings(name: str, cases: bool = True) -> list[str]:
    """Every dash/underscore spelling of a header name, plus case variants.

    cases=False for requests made by gwclient: urllib sends every header name
    capitalized, so case variants would only repeat the same request (curl
    sends them as written).
    """
    parts = name.split("-")
    out = [parts[0]]
    for part in parts[1:]:
        out = [prefix + sep + part for prefix in out for sep in ("-", "_")]
    return out + ([name.lower(), name.upper(), name.lower().replace("-", "_")] if cases else [])


def header_echo_probe(port: int) -> str:
    """A server (Python source) that echoes each request's path and headers as
    JSON on 127.0.0.1:`port`. It runs as root on the gateway and never returns
    the shared secret: a secret header's value is replaced by whether it equals
    the hub's secret."""
    return f"""
import hmac, json, http.server
SECRET = open("/etc/jupyterhub/secrets/gateway_secret").read().strip()
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        pairs = []
        for key, value in self.headers.items():
            if key.lower().replace("_", "-") == "x-gateway-secret":
                value = "<secret>" if hmac.compare_digest(value.encode(), SECRET.encode()) else "<other>"
            pairs.append([key, value])
        body = json.dumps({{"path": self.path, "headers": pairs}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", {port}), Echo).serve_forever()
"""
