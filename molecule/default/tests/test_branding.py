"""Issue 13, item 5: the demo's branding and announcement banner through Apache.

The hub's home, spawn and token pages show the site's title, the logo (its
URL answers 200 with the image's type), the help link, the banner and the
page's own text; the demo's login page (before any login) shows the title,
logo, text and help link. Changing the banner the documented way
(`site.yml --tags announcement -e jupyterhub_announcement=...`) shows the new
text, escaped, on the next page load while the hub keeps its PID; emptying
the file removes the banner, and putting the demo's file back restores it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from testinfra.host import Host

from conftest import BASE, ORIGIN, PASSWORDS, PREFIX, playbook_env

USER = "carol"  # a user without a server: her spawn page is the form
TITLE = "Demo HPC Centre"
HELP = 'id="hpcgw-help" href="https://hpc-gateway.example.org/docs/">Help and documentation</a>'
DEMO_BANNER = "Demo gateway: the cluster is reset whenever the demo is rebuilt. Keep nothing here you need."
BANNER_FILE = "/etc/jupyterhub/announcement.txt"
HOSTILE = "Maintenance <script>alert(1)</script> tonight, 20:00-22:00"
HOSTILE_SHOWN = "Maintenance &lt;script&gt;alert(1)&lt;/script&gt; tonight, 20:00-22:00"

# Runs on the controller with the stdlib client (gwclient), as carol's browser
# through Apache: the pages' HTML, the logo's status, type and first bytes,
# and the login page and its logo without any credentials.
PAGES = r"""
import json, sys, urllib.error, urllib.request
sys.path.insert(0, "/usr/local/bin")
from gwclient import INSECURE, Browser, login

base, user, password, origin, prefix = sys.argv[1:6]
browser = Browser(base, user, password)
out = {"login": login(browser)}
for page in ("home", "spawn", "token"):
    status, url, body = browser.request("GET", f"{prefix}/hub/{page}")
    out[page] = {"status": status, "url": url, "body": body}

def raw(opener, url, auth=""):
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", auth)
    try:
        with opener.open(req, timeout=30) as resp:
            return {"status": resp.status, "type": resp.headers.get("Content-Type", ""), "head": resp.read(200).decode("latin-1")}
    except urllib.error.HTTPError as err:
        return {"status": err.code, "type": err.headers.get("Content-Type", ""), "head": ""}

out["logo"] = raw(browser.opener, f"{origin}{prefix}/hub/logo", browser.auth)
anonymous = urllib.request.build_opener(urllib.request.HTTPSHandler(context=INSECURE))
out["login_page"] = raw(anonymous, f"{origin}/hpcgw-login/")
with anonymous.open(f"{origin}/hpcgw-login/", timeout=30) as resp:
    out["login_page"]["body"] = resp.read().decode()
out["login_logo"] = raw(anonymous, f"{origin}/hpcgw-login/logo.svg")
print(json.dumps(out))
"""


def _pages(controller: Host) -> dict[str, Any]:
    cmd = controller.run("python3 - " + " ".join([BASE, USER, PASSWORDS[USER], ORIGIN, PREFIX]) + " <<'EOF'\n" + PAGES + "\nEOF")
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout.strip().splitlines()[-1])


def _home(controller: Host) -> str:
    page = _pages(controller)["home"]
    assert page["status"] == 200, page["status"]
    return str(page["body"])


def _hub_pid(gateway: Host) -> str:
    pid = gateway.check_output("systemctl show -p MainPID --value jupyterhub").strip()
    assert pid not in ("", "0"), "the hub is not running"
    return pid


def _announcement_run(text: str) -> subprocess.CompletedProcess[str]:
    """The documented way: site.yml with the tag announcement (here the
    scenario's converge playbook, which imports site.yml), on the gateway."""
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    env = playbook_env()
    return subprocess.run(
        ["ansible-playbook", "-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent), str(scenario / "converge.yml"),
         "--tags", "announcement", "--limit", "gateway", "-e", json.dumps({"jupyterhub_announcement": text})],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )


def test_the_hubs_pages_show_title_logo_help_banner_and_their_text(controller: Host) -> None:
    pages = _pages(controller)
    assert pages["login"].get("name") == USER, pages["login"]
    for name in ("home", "spawn", "token"):
        page = pages[name]
        assert page["status"] == 200 and page["url"].endswith(f"/hub/{name}"), (name, page["status"], page["url"])
        body = page["body"]
        assert f"<title>{TITLE}</title>" in body or f"{TITLE}</title>" in body, name
        assert f'<span class="navbar-text me-3" id="hpcgw-site-title">{TITLE}</span>' in body, name
        assert f'src="{PREFIX}/hub/logo"' in body and f'alt="{TITLE} logo"' in body, name
        assert HELP in body, name
        assert f'id="hpcgw-announcement" role="status">{DEMO_BANNER}</div>' in body, name
    assert "Your server runs as a batch job on a compute node" in pages["home"]["body"]
    assert "Pick a preset, or a cluster, queue and size" in pages["spawn"]["body"]
    assert 'id="hpcgw-form-data"' in pages["spawn"]["body"]  # still the gateway's form under the branding
    assert 'id="hpcgw-page-text"' not in pages["token"]["body"]
    logo = pages["logo"]
    assert logo["status"] == 200 and logo["type"].startswith("image/svg+xml") and "<svg" in logo["head"], logo


def test_the_demo_login_page_shows_the_branding_before_any_login(controller: Host) -> None:
    pages = _pages(controller)
    login = pages["login_page"]
    assert login["status"] == 200, login
    assert f"<title>Sign in - {TITLE}</title>" in login["body"]
    assert f'<p id="hpcgw-site-title">{TITLE}</p>' in login["body"]
    assert '<img id="hpcgw-login-logo" src="/hpcgw-login/logo.svg"' in login["body"]
    assert "Sign in with your demo account" in login["body"]
    logo = pages["login_logo"]
    assert logo["status"] == 200 and logo["type"].startswith("image/svg+xml") and "<svg" in logo["head"], logo


def test_a_new_banner_shows_on_the_next_page_escaped_without_a_hub_restart(controller: Host, gateway: Host) -> None:
    pid = _hub_pid(gateway)
    gateway.check_output(f"cp -p {BANNER_FILE} {BANNER_FILE}.test-saved")
    try:
        run = _announcement_run(HOSTILE)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        home = _home(controller)
        assert f'id="hpcgw-announcement" role="status">{HOSTILE_SHOWN}</div>' in home
        assert "<script>alert(1)" not in home
        assert _hub_pid(gateway) == pid, "the hub restarted for a new banner"
        # The file is the banner: an empty one shows none (an admin's edit on the gateway).
        gateway.check_output(f": > {BANNER_FILE}")
        assert 'id="hpcgw-announcement"' not in _home(controller)
    finally:
        gateway.run(f"mv -f {BANNER_FILE}.test-saved {BANNER_FILE}")
    assert f'id="hpcgw-announcement" role="status">{DEMO_BANNER}</div>' in _home(controller)
    assert gateway.file(BANNER_FILE).mode == 0o640 and gateway.file(BANNER_FILE).group == "jupyterhub"
    assert _hub_pid(gateway) == pid
