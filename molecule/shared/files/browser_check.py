#!/usr/bin/python3
"""Browser check of the gateway: headless Chromium driven by Selenium.

Runs inside the test-only browser container with Debian's python3,
python3-selenium, chromium and chromium-driver (nothing downloaded).
Talks only to the gateway named by --url. Steps, in order:

  login      basic SSO of Apache (an Authorization header on every request of the tab)
  form       open the spawn form, screenshot it
  choose     pick the preset in the profile select
  submit     post the form (the timer starts)
  progress   the progress page, until it hands over to JupyterLab
  lab        JupyterLab's shell and file browser are up (the timer stops)
  workspace  JupyterLab again with a reset workspace (nothing restored from earlier runs)
  notebook   a new notebook with the Python 3 kernel, from the launcher (a new one if none shows)
  kernel     the kernel is idle
  run        type and run a cell that prints the host name, read the output
  hostname   the output names an expected compute node
  desktop    (with --desktop) the launcher's "Desktop" card opens the desktop in a new
             tab: noVNC says Connected and the session has drawn (desktop.png)
  stop       "Stop My Server" on the hub home page, until the hub shows it stopped

Other scenarios (--scenario), each from the login on, for the states of
the spawn form and the progress page (issue 17); every page they visit is
checked with axe-core (--axe: its axe.min.js, injected into the page), the
violations kept in the JSON line ("axe": page -> [{id, impact, nodes}]):

  form      the home page with the site's branding and banner (home-branded.png:
            title, logo, help link, banner, home text), the form with the preset (form-preset.png), the custom request
            with its limits (form-custom.png: min/max/value of each input),
            the form at 360x740 (form-360.png: horizontal overflow, the Start
            button inside the page's width), then by keyboard alone (Tab to
            the profile select, arrow keys to the preset, Tab to Start,
            Enter): the progress page while the job runs and its server
            starts (progress-running.png, node shown), JupyterLab, and stop
  pending   submit the preset while the cluster is full: the progress page
            with the job's state and pending reason (progress-pending.png),
            then Cancel by keyboard (focus, Enter) until the page says the
            start is cancelled (progress-cancelled.png)
  failed    submit the preset whose server fails: the progress page with the
            job's output and what to try (progress-failed.png)

Prints one JSON line on stdout. On failure: exit status 1, the failing step
on stderr and in the JSON line, a screenshot and the page source
(failure-<step>.png/.html) in --screenshots.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeVar

from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CODE = "import socket; print(socket.gethostname())"
T = TypeVar("T")

# JupyterLab 4 and JupyterHub page elements, checked against the real pages.
SPAWN_FORM = (By.ID, "spawn_form")
SPAWN_SUBMIT = (By.CSS_SELECTOR, "#spawn_form [type=submit]")
PROFILE_SELECT = (By.ID, "hpcgw-profile")
LAB_SHELL = (By.ID, "jp-main-dock-panel")
LAB_DIALOG = (By.CSS_SELECTOR, ".jp-Dialog")
NEW_LAUNCHER = (By.CSS_SELECTOR, ".jp-FileBrowser-toolbar [data-command='launcher:create']")
LAUNCHER_CARD = (By.CSS_SELECTOR, ".jp-Launcher .jp-LauncherCard[data-category='Notebook']")
CELL_EDITOR = (By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content")
FIRST_PROMPT = (By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-InputPrompt")
CELL_OUTPUT = (By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-OutputArea-output")
KERNEL_STATUS = (By.CSS_SELECTOR, ".jp-StatusBar-Item .jp-StatusBar-TextItem[title^='Change kernel']")
# jupyter-remote-desktop-proxy's page (noVNC): its status text and the remote screen.
DESKTOP_STATUS = (By.ID, "status")
DESKTOP_CANVAS = (By.CSS_SELECTOR, "#screen canvas")
STOP_BUTTON = (By.ID, "stop")
START_BUTTON = (By.ID, "start")
# The gateway's progress page (role spawn_profiles, spawn_pending.html).
JOB_STATE = (By.ID, "hpcgw-state")
JOB_ID = (By.ID, "hpcgw-job-id")
JOB_NODE = (By.ID, "hpcgw-node")
JOB_REASON = (By.ID, "hpcgw-reason")
JOB_REASON_TEXT = (By.ID, "hpcgw-reason-text")
JOB_START = (By.ID, "hpcgw-start")
CANCEL_BUTTON = (By.ID, "hpcgw-cancel")
LOGIN_USER = (By.ID, "hpcgw-username")
LOGIN_PASSWORD = (By.ID, "hpcgw-password")
CANCELLED = (By.ID, "hpcgw-cancelled")
FAILURE = (By.ID, "hpcgw-failure")
CUSTOM = "custom"
# The custom request's number inputs (role spawn_profiles' form: hpcgw-<field>).
LIMIT_INPUTS = ("hpcgw-cores", "hpcgw-memory_gb", "hpcgw-walltime_min", "hpcgw-gpus")
SERIOUS = ("serious", "critical")


class StepFailed(Exception):
    """A step did not reach its goal; the message says what was seen."""


@dataclass
class Run:
    """State of one check: the driver, where screenshots go, what was measured."""

    driver: WebDriver
    base: str
    user: str
    screenshots: str
    timeout: float
    step: str = "start"
    result: dict[str, Any] = field(default_factory=dict)
    axe: str = ""  # axe-core's source, injected into each page checked

    def url(self, path: str) -> str:
        return self.base + path

    def path(self) -> str:
        """The current page's path below the gateway's base path ("/jupyter/hub/home" -> "/hub/home")."""
        prefix = urllib.parse.urlsplit(self.base).path.rstrip("/")
        path = urllib.parse.urlsplit(self.driver.current_url).path
        return path[len(prefix):] if prefix and path.startswith(prefix + "/") else path

    def wait(self, condition: Callable[[WebDriver], T], what: str, timeout: Optional[float] = None) -> T:
        try:
            return WebDriverWait(self.driver, timeout or self.timeout, poll_frequency=0.25,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(condition)
        except TimeoutException as exc:
            raise StepFailed(f"timed out after {timeout or self.timeout:.0f}s waiting for {what} "
                             f"(page: {self.driver.current_url})") from exc

    def screenshot(self, name: str) -> str:
        path = os.path.join(self.screenshots, name)
        if not self.driver.save_screenshot(path):
            raise StepFailed(f"could not save the screenshot {path}")
        self.result.setdefault("screenshots", []).append(path)
        return path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="gateway base URL, e.g. https://hpcgw-gw")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--preset", required=True, help="preset key in the spawn form, e.g. debug-1c")
    parser.add_argument("--screenshots", required=True, help="directory for the PNG screenshots")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds allowed for each wait")
    parser.add_argument("--expect-hosts", default="hpcgw-c1,hpcgw-c2",
                        help="comma-separated host names the cell may print (the compute nodes)")
    parser.add_argument("--scenario", default="lab", choices=("lab", "form", "pending", "failed"))
    parser.add_argument("--axe", default="", help="axe-core's axe.min.js: check every page the scenario visits")
    parser.add_argument("--desktop", action="store_true",
                        help="lab scenario: open the desktop from the launcher (jupyter-remote-desktop-proxy)")
    return parser.parse_args(argv)


def start_browser(host: str, window: str = "1400,900") -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={window}", "--ignore-certificate-errors", "--lang=en-US",
                # Every other host is unresolvable: no traffic (or credentials) beyond the gateway.
                f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {host}"):
        options.add_argument(arg)
    options.accept_insecure_certs = True  # the gateway's self-signed test certificate
    # Leaving JupyterLab with an unsaved notebook raises a beforeunload prompt: accept it.
    options.set_capability("unhandledPromptBehavior", "accept")
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def form_login(run: Run, password: str) -> None:
    """The demo's SSO stand-in as a user meets it: any hub page without a
    session is the login page (checked with axe); one sign-in, then the tab
    rides the session cookie (no Basic credentials at all)."""
    run.driver.get(run.url("/hub/home"))
    run.wait(EC.presence_of_element_located(LOGIN_PASSWORD), "the demo's login page")
    run.result["login_page"] = run.path()
    run.screenshot("login.png")
    axe_check(run, "login")
    run.driver.find_element(*LOGIN_USER).send_keys(run.user)
    run.driver.find_element(*LOGIN_PASSWORD).send_keys(password + Keys.ENTER)
    # The login's fixed target is the hub (its spawn page for a user without a server).
    run.wait(lambda d: run.path().startswith("/hub/") and not d.find_elements(*LOGIN_PASSWORD)
             and d.execute_script("return document.readyState") == "complete", "the hub after the login page")
    run.driver.get(run.url("/hub/home"))
    run.wait(EC.presence_of_element_located(START_BUTTON), "the hub home page after the login page")


def send_credentials(run: Run, password: str) -> None:
    """The Authorization header on every request of the current tab (DevTools: per tab)."""
    token = base64.b64encode(f"{run.user}:{password}".encode()).decode()
    run.driver.execute_cdp_cmd("Network.enable", {})
    run.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})


def login(run: Run, password: str) -> None:
    """Basic SSO of Apache for page loads, XHR and websockets alike.

    Chromium does not answer a websocket's 401 with credentials it took from a
    URL (JupyterLab then never starts), so the tab sends the Authorization
    header itself (DevTools Network.setExtraHTTPHeaders); the host resolver
    rules keep it from reaching any other host.
    """
    send_credentials(run, password)
    run.driver.get(run.url("/hub/home"))
    run.wait(lambda d: run.path().startswith("/hub/") and d.find_elements(*START_BUTTON),
             "the hub home page after login (an empty page: Apache refused the credentials)")
    shown = run.driver.execute_script("return (window.jhdata || {}).user || ''")
    if shown != run.user:
        raise StepFailed(f"the hub's page is for user {shown!r}, expected {run.user!r}")


def open_form(run: Run) -> None:
    run.driver.get(run.url("/hub/spawn"))
    if run.path().startswith(f"/user/{run.user}/") or "/spawn-pending/" in run.path():
        raise StepFailed(f"{run.user} already has a server ({run.driver.current_url}); stop it first")
    run.wait(EC.visibility_of_element_located(PROFILE_SELECT), "the profile select of the spawn form")
    run.wait(EC.element_to_be_clickable(SPAWN_SUBMIT), "the spawn form's submit button")


def choose(run: Run, preset: str) -> None:
    select = Select(run.driver.find_element(*PROFILE_SELECT))
    values = [o.get_attribute("value") for o in select.options]
    if preset not in values:
        raise StepFailed(f"preset {preset!r} is not offered; options: {values}")
    select.select_by_value(preset)
    chosen = select.first_selected_option
    if chosen.get_attribute("value") != preset:
        raise StepFailed(f"the select shows {chosen.get_attribute('value')!r} after choosing {preset!r}")
    run.result["profile_title"] = chosen.text.strip()


def submit(run: Run) -> float:
    run.driver.find_element(*SPAWN_SUBMIT).click()
    return time.monotonic()


def _spawn_state(run: Run, seen: dict[str, bool]) -> str:
    """'lab' when JupyterLab's page is loaded; raises on a refusal or failed spawn."""
    driver = run.driver
    path = run.path()
    if path.startswith("/hub/spawn-pending/"):
        if not seen.get("progress"):
            seen["progress"] = True
            run.screenshot("progress.png")
        message = driver.execute_script(
            "var m = document.getElementById('progress-message'); return m ? m.textContent : '';") or ""
        if "failed" in message.lower():
            raise StepFailed(f"the progress page reports: {message.strip()}")
        return ""
    if path.startswith(f"/user/{run.user}/"):
        return "lab" if driver.find_elements(*LAB_SHELL) else ""
    if path.startswith("/hub/spawn"):
        body = driver.execute_script("return document.body ? document.body.innerText : ''") or ""
        if "Request refused" in body or "Spawn failed" in body:
            raise StepFailed(f"the hub answered the form with: {body.strip()[:300]}")
    if any(e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, "div.error")):
        raise StepFailed(f"the hub shows an error page: {driver.find_element(By.TAG_NAME, 'body').text[:300]}")
    return ""


def watch_progress(run: Run, submitted: float) -> None:
    seen: dict[str, bool] = {}
    run.wait(lambda d: _spawn_state(run, seen) == "lab", "JupyterLab after the progress page")
    run.result["progress_page_seen"] = bool(seen.get("progress"))
    if not seen.get("progress"):
        raise StepFailed("JupyterLab came up without the progress page ever being shown")
    run.wait(EC.element_to_be_clickable(NEW_LAUNCHER), "JupyterLab's file browser (New Launcher button)")
    run.result["submit_to_lab_s"] = round(time.monotonic() - submitted, 1)


def fresh_workspace(run: Run) -> None:
    """JupyterLab restores the last layout from the home directory (earlier runs' notebooks,
    kernel dialogs); its documented ?reset URL starts from the default layout instead."""
    run.driver.get(run.url(f"/user/{run.user}/lab?reset"))
    run.wait(EC.element_to_be_clickable(NEW_LAUNCHER), "JupyterLab with a reset workspace")


def _notebook_cards(driver: WebDriver) -> list[WebElement]:
    return [c for c in driver.find_elements(*LAUNCHER_CARD) if c.is_displayed()]


def click(run: Run, element: WebElement, what: str) -> None:
    """Click once JupyterLab's layout has settled (while it moves, clicks land on other widgets)."""
    def attempt(_: WebDriver) -> bool:
        try:
            element.click()
        except ElementClickInterceptedException:
            return False
        return True

    run.wait(attempt, f"{what} to take a click", timeout=30)


def new_notebook(run: Run) -> None:
    """From the launcher the reset layout opens; without one, the file browser's "+" opens one."""
    try:
        cards = run.wait(_notebook_cards, "the launcher", timeout=30)
    except StepFailed:
        click(run, run.driver.find_element(*NEW_LAUNCHER), "the New Launcher button")
        cards = run.wait(_notebook_cards, "the launcher's notebook cards")
    run.screenshot("launcher.png")
    titles = [(c.get_attribute("title") or c.text).strip() for c in cards]
    python3 = [c for c, t in zip(cards, titles) if t.startswith("Python 3")]
    if not python3:
        raise StepFailed(f"no Python 3 notebook card in the launcher; cards: {titles}")
    click(run, python3[0], "the Python 3 notebook card")
    run.wait(EC.visibility_of_element_located(CELL_EDITOR), "the new notebook's first cell")


def _no_dialog(driver: WebDriver) -> bool:
    """True unless JupyterLab shows a modal dialog, which no step expects: fail with its text."""
    dialogs = [d for d in driver.find_elements(*LAB_DIALOG) if d.is_displayed()]
    if dialogs:
        raise StepFailed(f"JupyterLab shows a dialog: {' '.join(dialogs[0].text.split())[:300]}")
    return True


def _kernel_status(driver: WebDriver) -> str:
    """The status bar's kernel item, e.g. 'Python 3 (ipykernel) | Idle' ('' before it exists).

    The notebook toolbar's execution indicator says idle before any kernel is
    connected; the status bar item says Idle only once the kernel answers.
    """
    items = driver.find_elements(*KERNEL_STATUS)
    return items[0].text.strip() if items else ""


def _kernel_idle(driver: WebDriver) -> str:
    """The status bar's text once it says Idle, else ''; a dialog fails the step."""
    _no_dialog(driver)
    status = _kernel_status(driver)
    return status if status.endswith("| Idle") else ""


def wait_kernel_idle(run: Run) -> float:
    started = time.monotonic()
    status = run.wait(_kernel_idle, "the notebook's kernel to be Idle in the status bar")
    kernel = status.rpartition("|")[0].strip()
    if not kernel.startswith("Python 3"):
        raise StepFailed(f"the notebook runs kernel {kernel!r}, not Python 3")
    run.result["kernel"] = kernel
    return round(time.monotonic() - started, 1)


def _started(driver: WebDriver) -> bool:
    prompts = driver.find_elements(*FIRST_PROMPT)
    return bool(prompts) and prompts[0].text.strip() not in ("", "[ ]:")


def _stdout(driver: WebDriver) -> str:
    """The first cell's printed text once there; an error output fails the step."""
    for output in driver.find_elements(*CELL_OUTPUT):
        mime, text = output.get_attribute("data-mime-type"), output.text.strip()
        if mime == "application/vnd.jupyter.stdout" and text:
            return text
        if mime == "application/vnd.jupyter.stderr" and "Error" in text:
            raise StepFailed(f"the cell failed: {text[:300]}")
    return ""


def run_cell(run: Run) -> str:
    editor: WebElement = run.driver.find_element(*CELL_EDITOR)
    click(run, editor, "the first cell's editor")
    editor.send_keys(CODE)
    typed = run.driver.find_element(*CELL_EDITOR).text.strip()
    if typed != CODE:
        raise StepFailed(f"the cell holds {typed!r} after typing {CODE!r}")
    editor.send_keys(Keys.SHIFT, Keys.ENTER)
    run.wait(_started, "the cell to start running (its prompt to leave [ ]:)", timeout=30)
    return run.wait(_stdout, "the cell's output")


def check_hostname(run: Run, hostname: str, expected: list[str]) -> None:
    if hostname not in expected:
        raise StepFailed(f"the notebook ran on {hostname!r}, not on a compute node {expected}")


# Distinct colours on a 32x32 grid of the remote screen: a VNC screen nothing
# has drawn on yet is one colour; the session's background, panel, terminal
# and text make many.
CANVAS_COLOURS = """
var c = document.querySelector('#screen canvas');
if (!c || !c.width || !c.height) { return 0; }
var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, seen = {};
for (var y = 0; y < 32; y++) { for (var x = 0; x < 32; x++) {
  var i = 4 * (Math.floor((y + 0.5) * c.height / 32) * c.width + Math.floor((x + 0.5) * c.width / 32));
  seen[d[i] + ',' + d[i + 1] + ',' + d[i + 2]] = true; } }
return Object.keys(seen).length;
"""


def open_desktop(run: Run, password: str) -> dict[str, Any]:
    """The launcher's Desktop card (jupyter-server-proxy's, new browser tab):
    noVNC connects through the gateway and the session draws; back to JupyterLab after.
    The new tab has none of the first tab's DevTools settings: it gets the
    Basic credentials too and loads the page again (a user's browser sends
    them, or the SSO cookie, in every tab)."""
    lab = run.driver.current_window_handle
    click(run, run.driver.find_element(*NEW_LAUNCHER), "the New Launcher button")
    cards = run.wait(lambda d: [c for c in d.find_elements(By.CSS_SELECTOR, ".jp-Launcher .jp-LauncherCard")
                                if c.is_displayed() and (c.get_attribute("title") or c.text).strip().startswith("Desktop")],
                     "the launcher's Desktop card", timeout=30)
    before = set(run.driver.window_handles)
    click(run, cards[0], "the Desktop card")
    tabs = run.wait(lambda d: sorted(set(d.window_handles) - before), "the desktop's new tab", timeout=30)
    run.driver.switch_to.window(tabs[0])
    opened = run.driver.current_url
    send_credentials(run, password)
    run.driver.get(run.url(f"/user/{run.user}/desktop/"))
    run.wait(lambda d: run.path() == f"/user/{run.user}/desktop/", "the desktop page", timeout=30)
    run.wait(lambda d: _value(run, DESKTOP_STATUS) == "Connected", "noVNC's status to say Connected")
    run.wait(lambda d: d.execute_script(CANVAS_COLOURS) >= 3, "the desktop session to draw on the screen")
    canvas = run.driver.find_element(*DESKTOP_CANVAS)
    shown = {"status": _value(run, DESKTOP_STATUS), "colours": run.driver.execute_script(CANVAS_COLOURS),
             "width": canvas.size["width"], "height": canvas.size["height"], "tab_opened": opened}
    run.screenshot("desktop.png")
    run.driver.close()
    run.driver.switch_to.window(lab)
    return shown


def _stopped(run: Run) -> bool:
    stop = run.driver.find_elements(*STOP_BUTTON)
    start = run.driver.find_elements(*START_BUTTON)
    return bool(start) and not any(s.is_displayed() for s in stop) and "Start" in start[0].text


def stop_server(run: Run) -> float:
    run.driver.get(run.url("/hub/home"))
    button = run.wait(EC.element_to_be_clickable(STOP_BUTTON), "the hub's Stop My Server button")
    # The button is in the HTML before require.js has loaded home.js, which
    # binds its click handler: a click before that does nothing at all.
    run.wait(lambda d: d.execute_script(
        "var el = document.getElementById('stop');"
        "var events = el && window.jQuery && jQuery._data(el, 'events');"
        "return !!(events && events.click);"), "the Stop My Server button's handler (home.js loaded)")
    started = time.monotonic()
    button.click()
    run.wait(lambda d: _stopped(run), "the home page to show the server stopped")
    # The page's own state can be ahead of the hub's: reload until the hub renders it stopped.
    deadline = time.monotonic() + run.timeout
    while True:
        run.driver.get(run.url("/hub/home"))
        run.wait(EC.presence_of_element_located(START_BUTTON), "the hub home page")
        if _stopped(run):
            return round(time.monotonic() - started, 1)
        if time.monotonic() > deadline:
            raise StepFailed("the hub home page still offers Stop My Server after reloads")
        time.sleep(2)


def check(run: Run, args: argparse.Namespace) -> None:
    run.step = "login"
    login(run, args.password)
    run.step = "form"
    open_form(run)
    run.screenshot("spawn-form.png")
    run.step = "choose"
    choose(run, args.preset)
    run.step = "submit"
    submitted = submit(run)
    run.step = "progress"
    watch_progress(run, submitted)
    run.step = "workspace"
    fresh_workspace(run)
    run.step = "notebook"
    new_notebook(run)
    run.step = "kernel"
    run.result["kernel_idle_s"] = wait_kernel_idle(run)
    run.step = "run"
    hostname = run_cell(run)
    run.result["hostname"] = hostname
    run.screenshot("notebook.png")
    run.step = "hostname"
    check_hostname(run, hostname, [h for h in args.expect_hosts.split(",") if h])
    if args.desktop:
        run.step = "desktop"
        started = time.monotonic()
        run.result["desktop"] = open_desktop(run, args.password)
        run.result["desktop"]["seconds"] = round(time.monotonic() - started, 1)
    run.step = "stop"
    run.result["stop_s"] = stop_server(run)
    run.screenshot("stopped.png")


# --- the states of the form and the progress page (issue 17) ---------------

AXE_RUN = """
var done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then(function(r) {
  done(r.violations.map(function(v) {
    return {id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(function(n) { return n.target.join(" "); })};
  }));
}).catch(function(e) { done("axe failed: " + e); });
"""


def axe_check(run: Run, page: str) -> list[dict[str, Any]]:
    """axe-core's violations on the current page, kept in the result under ``page``."""
    if not run.axe:
        return []
    run.driver.set_script_timeout(60)
    run.driver.execute_script(run.axe)
    violations = run.driver.execute_async_script(AXE_RUN)
    if isinstance(violations, str):
        raise StepFailed(f"{page}: {violations}")
    run.result.setdefault("axe", {})[page] = violations
    return violations


def _value(run: Run, locator: tuple[str, str]) -> str:
    found = run.driver.find_elements(*locator)
    return " ".join(found[0].text.split()) if found and found[0].is_displayed() else ""


def job_fields(run: Run) -> dict[str, str]:
    """What the progress page shows about the batch job (empty: not shown)."""
    fields = {"job_id": JOB_ID, "state": JOB_STATE, "node": JOB_NODE, "reason": JOB_REASON,
              "reason_text": JOB_REASON_TEXT, "start": JOB_START}
    return {name: _value(run, locator) for name, locator in fields.items()}


def progress_page(run: Run) -> None:
    run.wait(lambda d: "/spawn-pending/" in run.path() and d.execute_script(
        "return window._jupyterhub_page_loaded === true && !!document.getElementById('hpcgw-job');"),
        "the gateway's progress page (spawn_pending.html with the job's fields)")


def _failed_message(run: Run) -> str:
    return str(run.driver.execute_script(
        "var m = document.getElementById('progress-message'); return m ? m.textContent : '';") or "")


def wait_job(run: Run, want: Callable[[dict[str, str]], bool], what: str) -> dict[str, str]:
    def seen(_: WebDriver) -> dict[str, str]:
        if run.driver.find_elements(*FAILURE) and run.driver.find_element(*FAILURE).is_displayed():
            raise StepFailed(f"the start failed while waiting for {what}: {_failed_message(run).strip()[:300]}")
        fields = job_fields(run)
        return fields if want(fields) else {}
    return run.wait(seen, what)


def form_states(run: Run, preset: str) -> None:
    """The form with the preset, the custom request with its limits, at 360 px."""
    run.step = "form-preset"
    open_form(run)
    choose(run, preset)
    run.screenshot("form-preset.png")
    axe_check(run, "form")
    run.step = "form-custom"
    choose(run, CUSTOM)
    limits = {}
    for name in LIMIT_INPUTS:
        for element in run.driver.find_elements(By.ID, name):
            if element.is_displayed():
                limits[name] = {a: element.get_attribute(a) or "" for a in ("min", "max", "value")}
                if not element.is_enabled():
                    raise StepFailed(f"{name} is shown but disabled once Custom is chosen: it would not be sent")
    run.result["custom_limits"] = limits
    run.screenshot("form-custom.png")
    axe_check(run, "form-custom")
    run.step = "form-360"
    run.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True})
    try:
        open_form(run)
        choose(run, preset)
        run.result["narrow"] = run.driver.execute_script("""
            var b = document.querySelector('#spawn_form [type=submit]');
            b.scrollIntoView({block: 'center'});
            var r = b.getBoundingClientRect();
            return {viewport: window.innerWidth, scroll_width: document.documentElement.scrollWidth,
                    start_left: Math.round(r.left), start_right: Math.round(r.right),
                    start_in_view: r.top >= 0 && r.bottom <= window.innerHeight && r.width > 0};""")
        run.screenshot("form-360.png")
        axe_check(run, "form-360")
    finally:
        run.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _active_id(run: Run) -> str:
    return str(run.driver.execute_script(
        "var a = document.activeElement; return a ? (a.id || a.tagName + ':' + (a.type || '')) : '';"))


def keyboard_submit(run: Run, preset: str) -> list[str]:
    """Tab to the profile select, arrow keys to the preset, Tab to Start, Enter: no mouse."""
    open_form(run)
    run.driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    start = run.driver.find_element(*SPAWN_SUBMIT)
    pressed: list[str] = []

    def press(key: str, name: str) -> None:
        ActionChains(run.driver).send_keys(key).perform()
        pressed.append(name)

    for _ in range(60):
        press(Keys.TAB, "Tab")
        if _active_id(run) == PROFILE_SELECT[1]:
            break
    else:
        raise StepFailed(f"Tab never reached the profile select (keys: {len(pressed)})")
    select = run.driver.find_element(*PROFILE_SELECT)
    press(Keys.HOME, "Home")
    for _ in range(20):
        if select.get_attribute("value") == preset:
            break
        press(Keys.ARROW_DOWN, "ArrowDown")
    if select.get_attribute("value") != preset:
        raise StepFailed(f"the arrow keys did not reach preset {preset!r} in the profile select")
    for _ in range(60):
        if run.driver.switch_to.active_element == start:
            break
        press(Keys.TAB, "Tab")
    else:
        raise StepFailed("Tab never reached the Start button")
    press(Keys.ENTER, "Enter")
    return pressed


def branding(run: Run) -> dict[str, Any]:
    """What the page shows of the site's branding (issue 13): the tab's title,
    the title beside the logo, whether the logo image loaded (its natural
    width), the help link, the announcement banner and the page's text."""
    return run.driver.execute_script("""
        const text = (sel) => { const e = document.querySelector(sel); return e ? e.textContent.trim() : ""; };
        const logo = document.querySelector("#jupyterhub-logo img");
        const help = document.querySelector("#hpcgw-help");
        return {title: document.title, site_title: text("#hpcgw-site-title"),
                logo_width: logo ? logo.naturalWidth : 0, logo_alt: logo ? logo.alt : "",
                help_href: help ? help.getAttribute("href") : "", help_text: text("#hpcgw-help"),
                banner: text("#hpcgw-announcement"), page_text: text("#hpcgw-page-text")};""")


def check_form(run: Run, args: argparse.Namespace) -> None:
    run.step = "login"
    form_login(run, args.password)
    run.driver.get(run.url("/hub/home"))
    run.wait(EC.presence_of_element_located(START_BUTTON), "the hub home page")
    run.step = "branding"
    run.wait(lambda d: d.execute_script(
        "const i = document.querySelector('#jupyterhub-logo img'); return !!i && i.complete;"), "the logo to load")
    run.result["branding"] = branding(run)
    run.screenshot("home-branded.png")
    axe_check(run, "home")
    run.step = "form"
    form_states(run, args.preset)
    run.step = "keyboard"
    run.result["keys"] = keyboard_submit(run, args.preset)
    submitted = time.monotonic()
    run.step = "running"
    progress_page(run)
    fields = wait_job(run, lambda f: bool(f["node"]) and "RUNNING" in f["state"],
                      "the progress page to show the running job and its node")
    run.result["running"] = fields
    run.screenshot("progress-running.png")
    axe_check(run, "progress-running")
    run.step = "progress"
    watch_progress(run, submitted)
    run.step = "stop"
    run.result["stop_s"] = stop_server(run)


def submit_preset(run: Run, args: argparse.Namespace) -> None:
    run.step = "login"
    login(run, args.password)
    run.step = "form"
    open_form(run)
    choose(run, args.preset)
    submit(run)
    run.step = "progress"
    progress_page(run)


def check_pending(run: Run, args: argparse.Namespace) -> None:
    submit_preset(run, args)
    run.step = "pending"
    fields = wait_job(run, lambda f: "PENDING" in f["state"] and bool(f["reason"]) and bool(f["job_id"]),
                      "the progress page to show the pending job and its reason")
    run.result["pending"] = fields
    run.screenshot("progress-pending.png")
    axe_check(run, "progress-pending")
    run.step = "cancel"
    button = run.wait(EC.element_to_be_clickable(CANCEL_BUTTON), "the Cancel button to be enabled")
    run.driver.execute_script("arguments[0].focus();", button)
    if run.driver.switch_to.active_element != button:
        raise StepFailed("the Cancel button does not take the keyboard focus")
    ActionChains(run.driver).send_keys(Keys.ENTER).perform()
    run.wait(EC.visibility_of_element_located(CANCELLED), "the page to say the start is cancelled")
    run.result["cancelled"] = {"message": _failed_message(run).strip(), "focus": _active_id(run),
                               "state": _value(run, JOB_STATE)}
    run.screenshot("progress-cancelled.png")
    axe_check(run, "progress-cancelled")


def check_failed(run: Run, args: argparse.Namespace) -> None:
    submit_preset(run, args)
    run.step = "failed"
    run.wait(EC.visibility_of_element_located(FAILURE), "the progress page to show the failure")
    run.result["failed"] = {"text": run.driver.find_element(*FAILURE).text, "focus": _active_id(run),
                            "message": _failed_message(run).strip(), **job_fields(run)}
    run.screenshot("progress-failed.png")
    axe_check(run, "progress-failed")


def fail(run: Run, error: BaseException) -> None:
    # WebDriver errors carry chromedriver's native stack trace: keep the message only.
    message = str(error).split("\nStacktrace:")[0].strip()
    run.result.update(ok=False, step=run.step, error=f"{type(error).__name__}: {message}")
    try:
        run.screenshot(f"failure-{run.step}.png")
        with open(os.path.join(run.screenshots, f"failure-{run.step}.html"), "w", encoding="utf-8") as out:
            out.write(run.driver.page_source)
    except (WebDriverException, StepFailed, OSError) as exc:
        run.result["failure_capture_error"] = str(exc)
    print(f"browser_check: step '{run.step}' failed: {run.result['error']}", file=sys.stderr)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.makedirs(args.screenshots, exist_ok=True)
    began = time.monotonic()
    try:
        driver = start_browser(urllib.parse.urlsplit(args.url).hostname or "")
    except WebDriverException as exc:
        print(json.dumps({"ok": False, "step": "browser", "error": str(exc).strip()}))
        print(f"browser_check: step 'browser' failed: {exc}", file=sys.stderr)
        return 1
    run = Run(driver, args.url.rstrip("/"), args.user, args.screenshots, args.timeout,
              result={"user": args.user, "preset": args.preset, "scenario": args.scenario,
                      "browser": driver.capabilities.get("browserVersion")})
    scenarios = {"lab": check, "form": check_form, "pending": check_pending, "failed": check_failed}
    try:
        if args.axe:
            with open(args.axe, encoding="utf-8") as source:
                run.axe = source.read()
        scenarios[args.scenario](run, args)
        run.result["ok"] = True
    except (StepFailed, WebDriverException) as exc:
        fail(run, exc)
    finally:
        run.result["total_s"] = round(time.monotonic() - began, 1)
        driver.quit()
    print(json.dumps(run.result, sort_keys=True))
    return 0 if run.result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
