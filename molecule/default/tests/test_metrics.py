"""Issue 12, metrics: a real Prometheus (Debian's package, in hpcgw-browser)
scrapes the hub's /hub/metrics through Apache with the hub's metrics token;
after a spawn, a PromQL query returns the spawn counter of that cluster and
queue. The way in without SSO is that one path, for that token only: no
token, a user's token, forged identity headers, a source outside the allowed
networks and every path beside it are refused. The shipped alert rules pass
`promtool check rules` and their own `promtool test rules`.

The PromQL answer is kept in <project>/artifacts/metrics/promql.json."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import BASE, BROWSER, GATEWAY, PASSWORDS, PREFIX, wait_no_jobs, wait_until

TOKEN_FILE = "/etc/jupyterhub/secrets/metrics_token"
GATEWAY_CERT = "/etc/ssl/certs/hpcgw-gateway.crt"
RULES = Path(__file__).resolve().parents[3] / "roles" / "jupyterhub" / "files" / "prometheus"
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "metrics"
# Our Prometheus's files: config, token (root:prometheus 0640), the gateway's certificate, rules, data.
WORK = "/var/tmp/hpcgw-prometheus"
PROM = "http://127.0.0.1:19090"
UNIT = "hpcgw-test-prometheus"
JOB = "hpcgw-hub"
METRICS_URL = f"https://{GATEWAY}{PREFIX}/hub/metrics"
HUB_API = f"http://{GATEWAY}:8081{PREFIX}/hub/api"
USER = "carol"
SCRAPE_CONFIG = f"""
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files: [{WORK}/hpcgw-alerts.yml]
scrape_configs:
  - job_name: {JOB}
    scheme: https
    metrics_path: {PREFIX}/hub/metrics
    authorization:
      type: Bearer
      credentials_file: {WORK}/token
    tls_config:
      # the demo's self-signed certificate is its own CA
      ca_file: {WORK}/gateway.crt
      server_name: {GATEWAY}
    static_configs:
      - targets: ["{GATEWAY}:443"]
"""


def put(container: str, path: str, data: bytes, mode: str = "0640", group: str = "prometheus") -> None:
    """Write a file in a container from stdin (a secret never is an argument of a command)."""
    script = f"umask 077; cat > {shlex.quote(path)} && chgrp {group} {shlex.quote(path)} && chmod {mode} {shlex.quote(path)}"
    subprocess.run(["docker", "exec", "-i", container, "sh", "-c", script], input=data, check=True,
                   capture_output=True, timeout=60)


def read(container: str, path: str) -> bytes:
    return subprocess.run(["docker", "exec", container, "cat", path], check=True, capture_output=True,
                          timeout=60).stdout


@pytest.fixture(scope="module")
def prometheus(browser: Host) -> Iterator[Host]:
    """Our own Prometheus on the browser container's loopback, scraping the gateway only."""
    browser.run(f"systemctl stop {UNIT} 2>/dev/null; rm -rf {WORK}")
    browser.run_expect([0], f"install -d -o root -g prometheus -m 0750 {WORK} && "
                            f"install -d -o prometheus -g prometheus -m 0750 {WORK}/data")
    token = read(GATEWAY, TOKEN_FILE).strip()
    assert len(token) >= 32
    put(BROWSER, f"{WORK}/token", token + b"\n")
    # curl's header files: the metrics token, and no token at all (forged identity headers instead).
    put(BROWSER, f"{WORK}/hdr-metrics", b"Authorization: Bearer " + token + b"\n", group="root", mode="0600")
    put(BROWSER, f"{WORK}/gateway.crt", read(GATEWAY, GATEWAY_CERT), mode="0644")
    put(BROWSER, f"{WORK}/prometheus.yml", SCRAPE_CONFIG.encode())
    for rule_file in ("hpcgw-alerts.yml", "hpcgw-alerts.test.yml"):
        put(BROWSER, f"{WORK}/{rule_file}", (RULES / rule_file).read_bytes(), mode="0644")
    browser.run_expect([0], f"promtool check config {WORK}/prometheus.yml")
    browser.run_expect([0], (
        f"systemd-run --unit {UNIT} --collect -p User=prometheus -p Group=prometheus "
        f"/usr/bin/prometheus --config.file={WORK}/prometheus.yml --storage.tsdb.path={WORK}/data "
        f"--web.listen-address=127.0.0.1:19090"))
    ready = wait_until(lambda: browser.run(f"curl -fsS {PROM}/-/ready").rc == 0, 60)
    assert ready, browser.run(f"journalctl -u {UNIT} --no-pager -n 30").stdout
    yield browser
    browser.run(f"systemctl stop {UNIT}")
    browser.run(f"rm -rf {WORK}")


def promql(browser: Host, query: str) -> list[dict[str, Any]]:
    out = browser.check_output(f"curl -fsS {PROM}/api/v1/query --data-urlencode {shlex.quote('query=' + query)}")
    answer = json.loads(out)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def scalar(browser: Host, query: str) -> float:
    """The query's one value (NaN when it has none)."""
    result = promql(browser, query)
    return float(result[0]["value"][1]) if len(result) == 1 else float("nan")


def fetch(host: Host, url: str, header_file: str = "", *headers: str) -> tuple[int, str]:
    """curl from `host`: (status, body); --path-as-is sends the path exactly as written."""
    args = ["curl", "-sS", "--path-as-is", "--max-time", "30", "-o", "/tmp/hpcgw-metrics-body", "-w", "%{http_code}",
            "--cacert", f"{WORK}/gateway.crt"]
    if header_file:
        args += ["-H", f"@{header_file}"]
    for header in headers:
        args += ["-H", header]
    code = host.check_output(" ".join(shlex.quote(a) for a in [*args, url]))
    body = host.check_output("cat /tmp/hpcgw-metrics-body; rm -f /tmp/hpcgw-metrics-body")
    return int(code), body


def test_promtool_checks_and_unit_tests_the_shipped_rules(prometheus: Host) -> None:
    checked = prometheus.run(f"promtool check rules {WORK}/hpcgw-alerts.yml")
    assert checked.rc == 0 and "SUCCESS: 4 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = prometheus.run(f"cd {WORK} && promtool test rules hpcgw-alerts.test.yml")
    assert tested.rc == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_the_metrics_token_reads_metrics_through_apache(prometheus: Host) -> None:
    status, body = fetch(prometheus, METRICS_URL, f"{WORK}/hdr-metrics")
    assert status == 200, body[:300]
    assert "jupyterhub_running_servers" in body
    assert 'hpcgw_spawns_total{cluster="testcluster",outcome="started",queue="debug"}' in body
    assert "hpcgw_proxy_user_routes" in body


def test_without_the_metrics_token_the_hub_refuses(prometheus: Host, gwclient: Callable[..., dict[str, Any]]) -> None:
    # No token, forged identity headers: Apache lets the request through
    # without SSO and drops the headers; the hub refuses (its message).
    forged = ["X-Remote-User: bob", "X-Remote-User-Groups: gw-admins", "X-Gateway-Secret: guess"]
    status, body = fetch(prometheus, METRICS_URL, "", *forged)
    assert status == 403 and "read:metrics" in body, (status, body[:300])
    status, body = fetch(prometheus, METRICS_URL, "", "Authorization: Bearer 0123456789abcdef0123456789abcdef")
    assert status == 403 and "read:metrics" in body, (status, body[:300])
    # A user's own API token: a user may not read the hub's metrics.
    user = gwclient("token", BASE, "alice", PASSWORDS["alice"])
    assert user.get("token_status") == 201 and len(user.get("token", "")) >= 16, user
    put(BROWSER, f"{WORK}/hdr-user", f"Authorization: Bearer {user['token']}\n".encode(), group="root", mode="0600")
    status, body = fetch(prometheus, METRICS_URL, f"{WORK}/hdr-user")
    assert status == 403 and "read:metrics" in body, (status, body[:300])
    # ... while the same token is a valid token of alice's (so the 403 above is the scope, not a bad token).
    status, body = fetch(prometheus, f"{HUB_API}/user", f"{WORK}/hdr-user")
    assert status == 200 and json.loads(body)["name"] == "alice", body[:300]


def test_the_metrics_token_reads_metrics_and_nothing_else(prometheus: Host) -> None:
    status, body = fetch(prometheus, f"{HUB_API}/user", f"{WORK}/hdr-metrics")
    assert status == 200, body[:300]
    me = json.loads(body)
    assert (me["kind"], me["name"]) == ("service", "hpcgw-metrics"), me
    assert "read:metrics" in me["scopes"], me
    assert all(s == "read:metrics" or s.endswith("!service=hpcgw-metrics") for s in me["scopes"]), me
    # Straight to the hub's API (Apache would not even let it through without SSO).
    for method, path in [("GET", "/users"), ("GET", "/users/alice"), ("POST", "/users/alice/server"),
                         ("POST", "/users/alice/tokens"), ("GET", "/services"), ("GET", "/proxy")]:
        code = prometheus.check_output(
            f"curl -sS -o /dev/null -w '%{{http_code}}' -X {method} -H @{WORK}/hdr-metrics "
            f"{shlex.quote(HUB_API + path)}")
        assert code in ("403", "404"), (method, path, code)


# Paths beside or below the metrics path, spelled to slip past a loose match:
# each still needs the SSO login (401) or is refused by Apache (400/404).
ESCAPES = [
    "/hub/metrics/../api/users",
    "/hub/metrics/%2e%2e/api/users",
    "/hub/metrics/%2E%2E/api/users",
    "/hub/metrics/.%2e/api/users",
    "/hub/metrics%2f..%2fapi%2fusers",
    "/hub/metrics;/../api/users",
    "/hub/metrics%3f/../../hub/api/users",
    "/hub/metricsX",
    "/hub/metrics/",
    "/hub/metrics/x",
    "/hub/metrics%0a",
    "/hub/metrics%00",
    "/hub/Metrics",
    "/hub/api/metrics",
    "/hub/api/users",
    "/hub/admin",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_no_other_path_is_open_without_sso(prometheus: Host, path: str) -> None:
    status, body = fetch(prometheus, f"https://{GATEWAY}{PREFIX}{path}", f"{WORK}/hdr-metrics")
    assert status in (400, 401, 403, 404), (path, status, body[:300])
    assert '"name"' not in body and "jupyterhub_" not in body, (path, body[:300])
    if "%" not in path:
        assert status == 401, (path, status)  # Apache asks for the SSO login


def test_a_source_outside_the_allowed_networks_is_refused_by_apache(gateway: Host, prometheus: Host) -> None:
    # From the gateway's own loopback (127.0.0.1 is not in the demo's
    # gateway_apache_metrics_allowed_networks), even with the right token.
    out = gateway.check_output(
        f"printf 'Authorization: Bearer %s\\n' \"$(cat {TOKEN_FILE})\" | "
        f"curl -sk --max-time 30 -H @- -w '\\n%{{http_code}}' https://localhost{PREFIX}/hub/metrics")
    body, _, code = out.rpartition("\n")
    assert code == "403", out[-300:]
    assert "read:metrics" not in body and "jupyterhub_" not in body, body[:300]  # Apache's 403, not the hub's
    # The same origin reaches the gateway's vhost (not the catch-all's 403): another path asks for the login.
    other = gateway.check_output(f"curl -sk --max-time 30 -o /dev/null -w '%{{http_code}}' https://localhost{PREFIX}/hub/home")
    assert other == "401", other


@pytest.fixture
def spawned(client: Callable[..., dict[str, Any]], gateway: Host) -> Iterator[dict[str, Any]]:
    assert wait_no_jobs(gateway, USER) == [], f"{USER} already has a job"
    started = client("start", USER, json.dumps({"profile": "debug-1c"}))
    yield started
    client("stop", USER)
    assert wait_no_jobs(gateway, USER) == []


def test_prometheus_sees_the_spawn_of_that_cluster_and_queue(prometheus: Host, spawned: dict[str, Any]) -> None:
    assert spawned.get("ready") is True, spawned
    # Read from the hub right after the spawn (counters restart with the hub:
    # this run's value, not an earlier one's).
    _, text = fetch(prometheus, METRICS_URL, f"{WORK}/hdr-metrics")
    line = next(row for row in text.splitlines()
                if row.startswith('hpcgw_spawns_total{cluster="testcluster",outcome="started",queue="debug"}'))
    at_hub = float(line.split()[-1])
    assert at_hub >= 1, line
    query = f'hpcgw_spawns_total{{job="{JOB}",cluster="testcluster",queue="debug",outcome="started"}}'
    ready = f'hpcgw_spawns_total{{job="{JOB}",cluster="testcluster",queue="debug",outcome="ready"}}'
    # A scrape during the spawn saw it started, not yet ready: wait for a
    # scrape after it (both counters at the hub's values of this moment).
    seen = wait_until(lambda: scalar(prometheus, query) >= at_hub and scalar(prometheus, ready) >= 1, 30)
    assert seen, (promql(prometheus, query), promql(prometheus, ready))
    result = promql(prometheus, query)
    assert scalar(prometheus, f'up{{job="{JOB}"}}') == 1
    assert scalar(prometheus, f'hpcgw_spawn_duration_seconds_count{{job="{JOB}",cluster="testcluster",'
                              f'queue="debug"}}') >= 1
    assert scalar(prometheus, f'sum(hpcgw_scheduler_query_duration_seconds_count{{job="{JOB}",'
                              f'cluster="testcluster",kind="submit"}})') >= 1
    # The shipped rules are loaded and the hub is not "down".
    rules = json.loads(prometheus.check_output(f"curl -fsS {PROM}/api/v1/rules"))
    alerts = {r["name"]: r for g in rules["data"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"HpcgwHubDown", "HpcgwSpawnFailureRatioHigh", "HpcgwProxyRoutesMismatch",
                           "HpcgwProxyRouteCheckStale"}, alerts
    # Every rule evaluates; the hub is not down. (A scrape slower than the
    # test's 2 s interval on a busy 2-core machine reads as up == 0 for one
    # sample: "pending" is possible, "firing" needs minutes of it.)
    assert all(alert["health"] == "ok" for alert in alerts.values()), alerts
    assert alerts["HpcgwHubDown"]["state"] != "firing", alerts
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "promql.json").write_text(json.dumps(
        {"query": query, "result": result, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
         "url": f"{PROM}/api/v1/query?query={urllib.parse.quote(query)}"}, indent=1) + "\n")
    print(query, "->", json.dumps(result))
