"""Issue 9 item 4: per-user subdomains (jupyterhub_subdomain_host), the strong
isolation between users' servers, end to end on the demo.

The module switches the gateway to inventories/demo/options/subdomains.yml
(the hub at https://hpcgw-gw.test/jupyter/, alice's servers at
https://alice.hpcgw-gw.test/jupyter/user/alice/) with the roles' own tasks
(subdomains.yml beside converge.yml), and back to the demo's single origin
when it ends, whatever the outcome. Nothing resolves *.hpcgw-gw.test: curl
gets the gateway's address with --resolve, the test clients with
HPCGW_RESOLVE. As a browser would, from the login node:

* the certificate is valid for a user's host (curl checks the name against
  the gateway's own certificate as its only CA);
* a user's host serves users' servers only: the hub's pages, API and login
  there are a redirect to the hub's host, before any login;
* alice reaches her server on her host after login (the hub's OAuth across
  the two hosts); bob, logged in, is refused there, and his hub cookie,
  replayed on her host, opens nothing;
* the hub's login cookie and the SSO session cookie are host-only
  (__Host-, no Domain), so a cookie jar sends neither to a user's host;
* on a user's host, a server sees Apache's identity header only, never the
  forged ones, the secret or an SSO cookie (a header-echo probe routed
  by host in the proxy).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from testinfra.host import Host

from conftest import PASSWORDS, header_echo_probe, playbook_env, wait_until

PROJECT = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]).parents[1]
OPTION = PROJECT / "inventories" / "demo" / "options" / "subdomains.yml"
DOMAIN = "hpcgw-gw.test"
HUB = f"https://{DOMAIN}/jupyter"
LOCAL = json.dumps({"profile": "local"})
PROBE_USER = "hpcgw-probe"
PROBE_PORT = 18998
PROBE = header_echo_probe(PROBE_PORT)


def _switch(on: bool) -> None:
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    extra = ["-e", f"@{OPTION}"] if on else []
    # The demo's logo path is relative to the play's directory (playbooks/ in
    # site.yml); this play lives beside converge.yml.
    extra += ["-e", f"jupyterhub_branding_logo_file={PROJECT}/inventories/demo/files/hpcgw-demo-logo.svg"]
    run = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(PROJECT / "molecule" / "default" / "subdomains.yml"), *extra],
        capture_output=True, text=True, env=playbook_env(), check=False, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


@pytest.fixture(scope="module")
def subdomains(gateway: Host) -> Iterator[None]:
    """The gateway with per-user subdomains for this module; the demo's single origin after it."""
    _switch(True)
    try:
        yield
    finally:
        _switch(False)
        assert "subdomain_host" not in gateway.file("/etc/jupyterhub/jupyterhub_config.py").content_string
        assert "--host-routing" not in gateway.file("/etc/systemd/system/configurable-http-proxy.service").content_string


@pytest.fixture(scope="module")
def curl(outside: Host, subdomains: None) -> Callable[..., str]:
    """curl(*args) on the login node, with the hub's host and the users' hosts
    resolved to the gateway; returns stdout (stderr too with -v)."""
    address = outside.check_output("getent ahostsv4 hpcgw-gw | awk '{print $1; exit}'").strip()
    hosts = [DOMAIN] + [f"{name}.{DOMAIN}" for name in ("alice", "bob", PROBE_USER)]
    resolve = " ".join(f"--resolve {host}:443:{address}" for host in hosts)

    def run(*args: str) -> str:
        return outside.check_output(f"curl -sS {resolve} " + " ".join(args))

    return run


def _client(outside: Host, command: str, user: str, *args: str) -> dict[str, Any]:
    """spawnclient against the hub's host; the users' hosts resolve to the gateway."""
    cmd = outside.run(f"HPCGW_RESOLVE={DOMAIN}=hpcgw-gw python3 /usr/local/bin/spawnclient.py "
                      + " ".join(shlex.quote(a) for a in (command, HUB, user, PASSWORDS[user], *args)))
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout.strip().splitlines()[-1])


def _jar(outside: Host, path: str) -> list[dict[str, str]]:
    """curl's cookie file: each cookie's host, whether it goes to the names below it, name."""
    out = []
    for line in outside.file(path).content_string.splitlines():
        fields = line.split("\t")
        if len(fields) == 7 and (not line.startswith("#") or line.startswith("#HttpOnly_")):
            out.append({"domain": fields[0].removeprefix("#HttpOnly_"), "subdomains": fields[1], "name": fields[5],
                        "value": fields[6]})
    return out


def _no_userinfo(url: str) -> str:
    """curl's effective URL without the user:password --location-trusted puts in it."""
    return re.sub(r"^(https://)[^@/]*@", r"\1", url)


def _sent_cookies(trace: str) -> str:
    """The Cookie header curl -v sent ('' for none)."""
    return next((line.split(":", 1)[1].strip() for line in trace.splitlines() if line.lower().startswith("> cookie:")), "")


def test_the_certificate_covers_the_users_hosts(curl: Callable[..., str], gateway: Host, outside: Host) -> None:
    outside.check_output(f"cat > /tmp/hpcgw-sub-ca.pem <<'EOF'\n{gateway.file('/etc/ssl/certs/hpcgw-gateway.crt').content_string}EOF")
    try:
        for host in (DOMAIN, f"alice.{DOMAIN}"):
            code = curl("--cacert /tmp/hpcgw-sub-ca.pem -o /dev/null -w '%{http_code}'", f"https://{host}/jupyter/hub/health")
            assert code in ("200", "302", "401"), (host, code)  # the TLS name check passed
    finally:
        outside.run("rm -f /tmp/hpcgw-sub-ca.pem")


@pytest.mark.parametrize("path", ["/jupyter/hub/login", "/jupyter/hub/api/user", "/jupyter/hub/home",
                                  "/jupyter/", "/jupyter/user/../hub/login", "/jupyter-x/user/alice/"])
def test_a_users_host_sends_everything_but_servers_to_the_hubs_host(curl: Callable[..., str], path: str) -> None:
    out = curl(f"-k --path-as-is -D - -o /dev/null -u alice:{PASSWORDS['alice']}",
               "-H 'X-Remote-User: bob'", f"'https://alice.{DOMAIN}{path}'")
    assert out.split()[1] == "302", out
    target = path.replace("/user/../", "/")
    assert f"location: https://{DOMAIN}{target}\r" in out.lower(), out
    assert "set-cookie" not in out.lower() and "jupyterhub" not in out.lower(), out


def test_a_users_host_needs_the_sso_login(curl: Callable[..., str]) -> None:
    assert curl("-k -o /dev/null -w '%{http_code}'", f"https://alice.{DOMAIN}/jupyter/user/alice/") == "401"


@pytest.fixture(scope="module")
def alice_server(outside: Host, subdomains: None) -> Iterator[dict[str, Any]]:
    started = _client(outside, "start", "alice", LOCAL)
    try:
        assert started.get("ready") is True, started
        yield started
    finally:
        stopped = _client(outside, "stop", "alice")
        assert not stopped.get("server"), stopped


def test_alice_reaches_her_server_on_her_host_and_bob_does_not(
        curl: Callable[..., str], outside: Host, alice_server: dict[str, Any]) -> None:
    assert alice_server["server"].get("url", "").startswith(f"https://alice.{DOMAIN}/jupyter/user/alice/"), alice_server
    status = f"https://alice.{DOMAIN}/jupyter/user/alice/api/status"
    # A page (APIs answer 403 without a login, pages start the hub's OAuth).
    page = f"https://alice.{DOMAIN}/jupyter/user/alice/files/.hpcgw-oauth-probe"
    try:
        # alice: her host, the hub's OAuth on the hub's host, back on hers;
        # then her server's API with its XSRF cookie, as JupyterLab calls it.
        alice = f"-k -c /tmp/hpcgw-sub-a -b /tmp/hpcgw-sub-a -u alice:{PASSWORDS['alice']}"
        out = curl(f"{alice} -L --location-trusted -o /dev/null -w '%{{http_code}} %{{url_effective}}'", page)
        assert _no_userinfo(out.split(" ", 1)[1]) == page and out.startswith("404 "), out  # back on her host, logged in
        jar = _jar(outside, "/tmp/hpcgw-sub-a")
        xsrf = next((c["value"] for c in jar if c["name"] == "_xsrf" and c["domain"] == f"alice.{DOMAIN}"), "")
        assert xsrf, jar
        out = curl(f"{alice} -H 'X-XSRFToken: {xsrf}' -H 'Referer: https://alice.{DOMAIN}/jupyter/user/alice/'",
                   "-w '\\n%{http_code}'", status)
        body, code = out.rsplit("\n", 1)
        assert code == "200" and "started" in json.loads(body), out
        hub_login = [c for c in jar if c["name"] == "__Host-jupyterhub-hub-login"]
        assert [(c["domain"], c["subdomains"]) for c in hub_login] == [(DOMAIN, "FALSE")], jar
        own = [c for c in jar if c["name"].startswith("__Host-jupyterhub-user-alice")]
        assert own and all((c["domain"], c["subdomains"]) == (f"alice.{DOMAIN}", "FALSE") for c in own), jar

        # bob, logged in on the hub, is refused by the hub's OAuth for her server.
        out = curl(f"-k -L --location-trusted -c /tmp/hpcgw-sub-b -b /tmp/hpcgw-sub-b -u bob:{PASSWORDS['bob']}",
                   "-o /dev/null -w '%{http_code} %{url_effective}'", page)
        code, where = out.split(" ", 1)
        assert code == "403" and _no_userinfo(where).startswith(f"{HUB}/hub/api/oauth2/authorize"), out
        # His hub cookie, replayed on her host by hand, opens nothing there either.
        (bob_login,) = [c for c in _jar(outside, "/tmp/hpcgw-sub-b") if c["name"] == "__Host-jupyterhub-hub-login"]
        out = curl(f"-k -D - -o /dev/null -u bob:{PASSWORDS['bob']}",
                   f"-H 'Cookie: __Host-jupyterhub-hub-login={bob_login['value']}'", page)
        assert out.split()[1] == "302" and f"location: {HUB}/hub/api/oauth2/authorize" in out.lower(), out
    finally:
        outside.run("rm -f /tmp/hpcgw-sub-a /tmp/hpcgw-sub-b")


def _proxy_route(gateway: Host, method: str, target: str = "") -> None:
    data = f"-d '{json.dumps({'target': target})}'" if target else ""
    with gateway.sudo():
        gateway.check_output(
            "set -a; . /etc/jupyterhub/secrets/proxy.env; "
            f"curl -sf -X {method} -H \"Authorization: token $CONFIGPROXY_AUTH_TOKEN\" {data} "
            f"http://127.0.0.1:8001/api/routes/{PROBE_USER}.{DOMAIN}/jupyter/user/{PROBE_USER}")


@pytest.fixture(scope="module")
def probe(gateway: Host, subdomains: None) -> Iterator[str]:
    """A header-echo server as the probe user's server, on its own host; its URL."""
    with gateway.sudo():
        gateway.check_output(f"cat > /tmp/hpcgw-sub-probe.py <<'EOF'\n{PROBE}\nEOF")
        gateway.check_output("systemd-run --unit=hpcgw-sub-probe python3 /tmp/hpcgw-sub-probe.py")
    try:
        assert wait_until(lambda: gateway.run(f"curl -sf -o /dev/null http://127.0.0.1:{PROBE_PORT}/").rc == 0,
                          15, interval=0.5), "the probe did not start"
        _proxy_route(gateway, "POST", f"http://127.0.0.1:{PROBE_PORT}")
        yield f"https://{PROBE_USER}.{DOMAIN}/jupyter/user/{PROBE_USER}/x"
    finally:
        _proxy_route(gateway, "DELETE")
        with gateway.sudo():
            gateway.run("systemctl stop hpcgw-sub-probe; rm -f /tmp/hpcgw-sub-probe.py")


def _values(seen: dict[str, Any], name: str) -> list[str]:
    wanted = name.lower().replace("_", "-")
    return [v for k, v in seen["headers"] if k.lower().replace("_", "-") == wanted]


def test_a_server_on_its_host_sees_apaches_identity_only(curl: Callable[..., str], probe: str) -> None:
    forged = ["X-Remote-User: bob", "X_Remote_User: bob", "x-remote-user: bob", "X-Remote-User-Groups: gw-admins",
              "X_Remote-User_Groups: gw-admins", "X-Gateway-Secret: guess", "X_Gateway_Secret: guess"]
    sso = "mod_auth_openidc_session=oidc-secret; mellon-cookie=mellon-secret; _shibsession_1=shib-secret; " \
          "__Host-hpcgw_demo_session=demo-secret; _xsrf=x1"
    headers = " ".join(f"-H '{h}'" for h in forged + [f"Cookie: {sso}"])
    seen = json.loads(curl(f"-k -u carol:{PASSWORDS['carol']} {headers}", probe))
    assert seen["path"] == f"/jupyter/user/{PROBE_USER}/x", seen
    assert _values(seen, "X-Remote-User") == ["carol"], seen
    assert _values(seen, "X-Remote-User-Groups") == [], seen
    assert _values(seen, "X-Gateway-Secret") == [], seen
    assert _values(seen, "Authorization") == [], seen
    assert _values(seen, "Cookie") == ["_xsrf=x1"], seen


def test_the_hub_and_sso_cookies_stay_on_the_hubs_host(curl: Callable[..., str], outside: Host, probe: str) -> None:
    """carol logs in as a browser does (the demo's login form, then the hub):
    both cookies are host-only __Host- cookies, and her jar sends neither
    to a user's host."""
    jar = "-c /tmp/hpcgw-sub-c -b /tmp/hpcgw-sub-c"
    try:
        login = curl(f"-k -D - -o /dev/null {jar} -d httpd_username=carol -d httpd_password={PASSWORDS['carol']}",
                     f"https://{DOMAIN}/hpcgw-login/submit")
        hub = curl(f"-k -L -D - -o /dev/null {jar}", f"'{HUB}/hub/login?next=/jupyter/hub/home'")
        set_cookies = [line for line in (login + hub).lower().splitlines() if line.startswith("set-cookie:")]
        for name in ("__host-hpcgw_demo_session=", "__host-jupyterhub-hub-login="):
            mine = [line for line in set_cookies if line.split(":", 1)[1].strip().startswith(name)]
            assert mine and all("domain=" not in line and "path=/;" in line.replace(" ", "") + ";" for line in mine), \
                set_cookies
        names = {c["name"] for c in _jar(outside, "/tmp/hpcgw-sub-c")}
        assert {"__Host-hpcgw_demo_session", "__Host-jupyterhub-hub-login"} <= names, names
        trace = curl(f"-k -v -o /dev/null {jar} -u carol:{PASSWORDS['carol']} {probe} 2>&1")
        sent = _sent_cookies(trace)
        assert "__Host-hpcgw_demo_session" not in sent and "__Host-jupyterhub-hub-login" not in sent, trace
        # ...while the hub's host gets both (the jar is not simply empty).
        trace = curl(f"-k -v -o /dev/null {jar} {HUB}/hub/home 2>&1")
        sent = _sent_cookies(trace)
        assert "__Host-hpcgw_demo_session=" in sent and "__Host-jupyterhub-hub-login=" in sent, trace
    finally:
        outside.run("rm -f /tmp/hpcgw-sub-c")
