#!/usr/bin/env python3
"""Spawn-form and API client for the SLURM tests (stdlib + gwclient).

Talks only to the gateway container named in BASE. Commands (one JSON
object on stdout each):

  start BASE USER PASSWORD FORM_JSON   post the spawn form, wait until ready or refused
  run BASE USER PASSWORD CODE          run CODE in a new kernel over the websocket
  stop BASE USER PASSWORD              stop the user's server and wait
  api BASE USER PASSWORD OPTIONS_JSON  start through the REST API with these options
  outcome BASE USER PASSWORD OPTIONS_JSON  REST start, then its outcome: the API's answer, the
                                       progress events, and the seconds to the final state
  form BASE USER PASSWORD              the spawn form's choices (values and labels, in page order)
  page BASE USER PASSWORD              the spawn page's data (its #hpcgw-form-data JSON), the option
                                       selected in each select and the messages shown beside fields
  estimate BASE USER PASSWORD BODIES_JSON [--for NAME] [--no-xsrf]
                                       POST each body (the form's fields) to the start-estimate API
                                       (of NAME, default the user); [status, answer, Retry-After] each
  status BASE USER PASSWORD            the user's server as the hub reports it ({} = none), and the
                                       notice on their home page (and on the spawn page when no server)
  kernel BASE USER PASSWORD            start a kernel on the user's server (its id)
  run-in BASE USER PASSWORD KERNEL CODE  run CODE in that kernel over a new websocket
  fetch BASE USER PASSWORD PATH        GET PATH (under the base path, e.g. /user/alice/proxy/8787/) as a
                                       browser (redirects followed): status, final path, the body's start
  call BASE USER PASSWORD CALLS_JSON   each [METHOD, PATH, BODY|null] (PATH under the base path, e.g.
                                       /hub/api/users/alice) through the hub's REST API as that browser
  server-call BASE USER PASSWORD OWNER CALLS_JSON
                                       open OWNER's server (its OAuth) as USER's browser, then each
                                       [METHOD, PATH, BODY|null] (PATH under /user/OWNER, e.g. /module) with
                                       the server's XSRF cookie; an HTML answer gives its JupyterLab page config
  bench BASE USER PASSWORD N FORM_JSON N x (start, stop); click-to-ready seconds and their median
  session-save BASE USER PASSWORD FILE log in, open the user's server (its OAuth), keep the cookies in FILE
  session-check BASE USER PASSWORD FILE with FILE's cookies and no new login: the hub's answer about the user
                                       and the server's, each with whether it redirected (to a login)
  vnc BASE USER PASSWORD OWNER PATH    open OWNER's server (its OAuth) as USER's browser, then the websocket at PATH
                                       (under /user/OWNER, e.g. /desktop-websockify/) as noVNC opens it, and the
                                       first steps of RFB over it: the server's version, the security types offered
  servers BASE USER PASSWORD           the user's active servers by name ("" the default one)
  stop-all BASE USER PASSWORD          stop every server of the user (named ones too) and wait

BASE and --base-path as in gwclient.py. --server NAME (anywhere on the command line) makes start,
run, stop, page and status act on the user's named server NAME (/hub/spawn/<user>/NAME,
/user/<user>/NAME/) instead of the default one.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import re
import ssl
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from gwclient import (Browser, login, new_kernel, post_spawn_form, prefix_of, run_code, run_in, server_of,
                      servers_of, spawn_form_action, spawn_path, split_base_path, ws_frame, ws_open, ws_recv)


PAGE_DATA = re.compile(r'<script type="application/json" id="hpcgw-form-data">(.*?)</script>', re.S)
FIELD_ERROR = re.compile(r'<div class="invalid-feedback d-block" id="([^"]+)-error">([^<]*)</div>')
SELECTED = re.compile(r'<select[^>]*\bid="([^"]+)"[^>]*>(.*?)</select>', re.S)


def field_errors(page: str) -> dict[str, str]:
    """The messages the spawn page shows beside a field: {field element id: text}."""
    return {element: html.unescape(text) for element, text in FIELD_ERROR.findall(page)}


def error_text(page: str) -> str:
    """The text of the hub's error page (its status line and message), whitespace folded."""
    error = re.search(r'<div class="error">(.*?)</div>', page, re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", error.group(1))).split()) if error else ""


def start(browser: Browser, form: dict[str, str], server_name: str = "") -> dict[str, Any]:
    out = login(browser)
    target = spawn_form_action(browser, str(out.get("name") or ""), server_name)
    clicked = time.monotonic()  # click-to-ready counts from the form's POST
    status, url, body = post_spawn_form(browser, form, target)
    out.update(spawn_status=status, spawn_url=url)
    refused = re.search(r"Request refused: ([^<]*)", body)
    if refused:
        out["refused"] = html.unescape(refused.group(1).strip())
        out["field_errors"] = field_errors(body)
    started = time.monotonic()
    while time.monotonic() - started < 300:  # above the hub's start_timeout
        server = server_of(browser, server_name)
        # A refused form starts nothing: the hub answers the POST only after
        # it registered a spawn it accepted, so no server now means none.
        # Any other answer without a server gets 5 s to show one.
        if server.get("ready") or (not server and (refused or time.monotonic() - started > 5)):
            break
        time.sleep(0.25)
    server = server_of(browser, server_name)
    out.update(ready=bool(server.get("ready")), server=server, seconds=round(time.monotonic() - clicked, 1))
    return out


def run(browser: Browser, code: str, server_name: str = "") -> dict[str, Any]:
    out = login(browser)
    out.update(run_code(browser, str(out.get("name")), code, server_name))
    return out


def server_api(pre: str, user: str, server_name: str = "") -> str:
    """The REST path of a user's default or named server."""
    quoted = urllib.parse.quote(server_name)
    return f"{pre}/hub/api/users/{user}/servers/{quoted}" if server_name else f"{pre}/hub/api/users/{user}/server"


def stop(browser: Browser, server_name: str = "") -> dict[str, Any]:
    pre = prefix_of(browser.base)
    out = login(browser)
    status, _ = browser.api("DELETE", server_api(pre, str(out.get("name")), server_name), xsrf_path=f"{pre}/hub")
    out["stop_status"] = status
    for _ in range(90):
        if not server_of(browser, server_name):
            break
        time.sleep(1)
    out["stopped"] = not server_of(browser, server_name)
    return out


def stop_all(browser: Browser) -> dict[str, Any]:
    """Stop every active server of the user (each its own DELETE), then wait until none is left."""
    pre = prefix_of(browser.base)
    out = login(browser)
    names = sorted(servers_of(browser))
    out["stop_status"] = {name: browser.api("DELETE", server_api(pre, str(out.get("name")), name),
                                            xsrf_path=f"{pre}/hub")[0] for name in names}
    for _ in range(120):
        if not servers_of(browser):
            break
        time.sleep(1)
    out["left"] = sorted(servers_of(browser))
    out["stopped"] = not out["left"]
    return out


def api(browser: Browser, options: Any) -> dict[str, Any]:
    pre = prefix_of(browser.base)
    out = login(browser)
    browser.request("GET", f"{pre}/hub/home")
    status, body = browser.api("POST", f"{pre}/hub/api/users/{out.get('name')}/server", options,
                               xsrf_path=f"{pre}/hub")
    # The POST returns once the spawn is ready or after the hub's
    # slow_spawn_timeout (202, still starting): the server as it is then
    # (the callers that follow it poll "status" or use "outcome").
    out.update(api_status=status, api_body=body, server=server_of(browser))
    return out


def outcome(browser: Browser, options: Any) -> dict[str, Any]:
    """Start through the REST API and follow it to ready or failed, timed from the POST."""
    pre = prefix_of(browser.base)
    out = login(browser)
    name = out.get("name")
    browser.request("GET", f"{pre}/hub/home")
    began = time.monotonic()
    status, body = browser.api("POST", f"{pre}/hub/api/users/{name}/server", options, xsrf_path=f"{pre}/hub")
    out.update(api_status=status, api_body=body, api_seconds=round(time.monotonic() - began, 1))
    if status == 202:  # still starting after the hub's slow_spawn_timeout: the progress stream ends it
        _, _, stream = browser.request("GET", f"{pre}/hub/api/users/{name}/server/progress",
                                       headers={"Accept": "text/event-stream"})
        out["progress"] = [json.loads(line[5:]) for line in stream.splitlines() if line.startswith("data:")]
    out["seconds"] = round(time.monotonic() - began, 1)
    out["server"] = server_of(browser)
    return out


def form(browser: Browser) -> dict[str, Any]:
    pre = prefix_of(browser.base)
    out = login(browser)
    status, _, page = browser.request("GET", f"{pre}/hub/spawn")
    choices = re.findall(r'<(?:option|input)[^>]*\bvalue="([^"]*)"[^>]*>\s*([^<]*)', page)
    out.update(form_status=status, choices=[[value, label.strip()] for value, label in choices])
    return out


def page(browser: Browser, server_name: str = "") -> dict[str, Any]:
    out = login(browser)
    status, final_url, text = browser.request("GET", spawn_path(browser, str(out.get("name") or ""), server_name))
    data = PAGE_DATA.search(text)
    out["page_url"] = final_url
    if status >= 400:  # the hub's error page (e.g. the named server limit)
        out["error"] = error_text(text)
    selected = {}
    for element, options in SELECTED.findall(text):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        selected[element] = html.unescape(chosen.group(1)) if chosen else None
    out.update(page_status=status, data=json.loads(data.group(1)) if data else None, selected=selected,
               field_errors=field_errors(text))
    return out


def post_json(browser: Browser, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    """POST as gwclient's Browser does, keeping the answer's headers (Retry-After)."""
    req = urllib.request.Request(browser.origin + path, data=body, method="POST")
    req.add_header("Authorization", browser.auth)
    for key, value in headers.items():
        req.add_header(key, value)
    try:
        with browser.opener.open(req, timeout=60) as resp:
            return resp.status, resp.read().decode(errors="replace"), {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as err:
        # Header names in lower case: the proxy (node) sends them so.
        return err.code, err.read().decode(errors="replace"), {k.lower(): v for k, v in err.headers.items()}


def estimate(browser: Browser, bodies: list[Any], for_user: str = "", xsrf: bool = True) -> dict[str, Any]:
    pre = prefix_of(browser.base)
    out = login(browser)
    browser.request("GET", f"{pre}/hub/spawn")  # the page a browser would have open
    url = f"{pre}/hub/api/users/{for_user or out.get('name')}/hpcgw-estimate"
    answers = []
    for body in bodies:
        if xsrf:
            token = browser.cookie("_xsrf", f"{pre}/hub")
            headers = {"Content-Type": "application/json", "Referer": browser.base + "/", "X-XSRFToken": token}
        else:
            headers = {"Content-Type": "application/json", "Referer": browser.base + "/"}
        status, text, answer_headers = post_json(browser, url, json.dumps(body).encode(), headers)
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            answer = text[:300]
        answers.append([status, answer, answer_headers.get("retry-after", "")])
    out["answers"] = answers
    return out


def bench(browser: Browser, rounds: int, choice: dict[str, str]) -> dict[str, Any]:
    """Click-to-ready: from the form's POST until the hub reports the server ready."""
    samples = []
    for _ in range(rounds):
        started = start(browser, choice)
        if not started.get("ready"):
            return {"error": "a spawn did not become ready", "last": started, "seconds": samples}
        samples.append(started["seconds"])
        if not stop(browser).get("stopped"):
            return {"error": "a server did not stop", "seconds": samples}
    return {"rounds": rounds, "choice": choice, "seconds": samples, "median": statistics.median(samples),
            "min": min(samples), "max": max(samples)}


def fetch(browser: Browser, path: str) -> dict[str, Any]:
    """Log in, then GET a path under the base path as that user's browser would."""
    pre = prefix_of(browser.base)
    out = login(browser)
    status, url, body = browser.request("GET", pre + path)
    out.update(fetch_status=status, fetch_path=urllib.parse.urlsplit(url).path, body=body[:2000])
    return out


def call(browser: Browser, calls: list[list[Any]]) -> dict[str, Any]:
    """Log in, then each [METHOD, path under the base path, JSON body or null]
    through the hub's REST API as that user's browser (cookie and XSRF)."""
    pre = prefix_of(browser.base)
    out = login(browser)
    browser.request("GET", f"{pre}/hub/home")
    answers = []
    for method, path, payload in calls:
        status, body = browser.api(method, pre + path, payload, xsrf_path=f"{pre}/hub")
        answers.append({"method": method, "path": path, "status": status, "body": body})
    out["calls"] = answers
    return out


LAB_CONFIG = re.compile(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S)


def server_call(browser: Browser, owner: str, calls: list[list[Any]]) -> dict[str, Any]:
    """Log in, open `owner`'s server like a browser (its OAuth), then each
    [METHOD, path under /user/<owner>, JSON body or null] as the server's
    own pages call its APIs (its XSRF cookie). Answers: the JSON, the page
    config of a JupyterLab page, or the text's start."""
    pre = prefix_of(browser.base)
    out = login(browser)
    upath = f"{pre}/user/{owner}"
    status, _, _ = browser.request("GET", f"{upath}/files/.hpcgw-oauth-probe")
    out["oauth_status"] = status
    answers = []
    for method, path, payload in calls:
        token = browser.cookie("_xsrf", upath)
        headers = {"Referer": browser.base + "/", **({"X-XSRFToken": token} if token else {})}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        status, _, text = browser.request(method, upath + path, body, headers)
        lab = LAB_CONFIG.search(text)
        try:
            answer: Any = json.loads(lab.group(1) if lab else text) if text else None
        except json.JSONDecodeError:
            answer = text[:300]
        answers.append({"method": method, "path": path, "status": status, "body": answer})
    out["calls"] = answers
    return out


def ws_read(sock: ssl.SSLSocket, data: bytearray, size: int) -> bytes:
    """The next `size` bytes of a binary websocket stream (its messages joined;
    pings answered); `data` keeps what arrived beyond them."""
    while len(data) < size:
        opcode, payload = ws_recv(sock)
        if opcode == 9:
            sock.sendall(ws_frame(payload, opcode=10))
        elif opcode == 8:
            raise ConnectionError(f"websocket closed by the server: {payload[2:].decode(errors='replace')}")
        elif opcode in (0, 1, 2):
            data.extend(payload)
    chunk = bytes(data[:size])
    del data[:size]
    return chunk


def vnc(browser: Browser, owner: str, path: str) -> dict[str, Any]:
    """Open `owner`'s server like a browser (its OAuth), then the websocket at
    `path` under /user/<owner> as noVNC opens it (the page's origin, no XSRF
    token), and speak RFB's first steps over it: the server's ProtocolVersion,
    the same version back, the security types the server offers."""
    pre = prefix_of(browser.base)
    out = login(browser)
    upath = f"{pre}/user/{owner}"
    status, _, _ = browser.request("GET", f"{upath}/files/.hpcgw-oauth-probe")
    out["oauth_status"] = status
    began = time.monotonic()
    sock, status_line = ws_open(browser, upath + path, {"Origin": browser.origin, "Sec-Fetch-Mode": "websocket",
                                                        "Sec-Fetch-Site": "same-origin"})
    out["ws_status"] = status_line
    try:
        if " 101 " in status_line + " ":
            data = bytearray()
            version = ws_read(sock, data, 12)
            out["server_version"] = version.decode("latin-1")
            sock.sendall(ws_frame(version, opcode=2))
            count = ws_read(sock, data, 1)[0]
            out["security_types"] = list(ws_read(sock, data, count)) if count else []
            sock.sendall(ws_frame(b"\x03\xe8", opcode=8))
    except (OSError, ConnectionError) as err:
        out["ws_error"] = f"{type(err).__name__}: {err}"
    finally:
        sock.close()
    out["ws_seconds"] = round(time.monotonic() - began, 1)
    return out


def announcement(page: str) -> str:
    """The notice a hub page shows above its content ("" when none)."""
    notice = re.search(r'class="container text-center announcement[^"]*">(.*?)</div>', page, re.S)
    return notice.group(1).strip() if notice else ""


def session_save(browser: Browser, path: str) -> dict[str, Any]:
    """Log in, open the user's server like a browser (its OAuth cookie), and
    keep every cookie (session ones too) in `path` (0600)."""
    out = login(browser)
    pre = prefix_of(browser.base)
    status, _, _ = browser.request("GET", f"{pre}/user/{out.get('name')}/files/.hpcgw-oauth-probe")
    out["oauth_status"] = status
    cookies = [{("rest" if k == "_rest" else k): v for k, v in vars(c).items()} for c in browser.jar]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(cookies, handle)
    out["cookies"] = sorted(c["name"] for c in cookies)
    return out


def session_check(browser: Browser, user: str, path: str) -> dict[str, Any]:
    """The kept session, without logging in again: the hub's /api/user and
    the server's /api/status with those cookies; a redirect (the way to a
    new login) is reported, not followed silently."""
    with open(path, encoding="utf-8") as handle:
        for fields in json.load(handle):
            browser.jar.set_cookie(http.cookiejar.Cookie(**fields))
    pre = prefix_of(browser.base)
    out: dict[str, Any] = {}
    for key, where, api in (("hub", f"{pre}/hub", f"{pre}/hub/api/user"),
                            ("server", f"{pre}/user/{user}", f"{pre}/user/{user}/api/status")):
        headers = {"X-XSRFToken": browser.cookie("_xsrf", where), "Referer": browser.base + "/"}
        status, url, body = browser.request("GET", api, headers=headers)
        out[f"{key}_status"] = status
        out[f"{key}_redirected"] = urllib.parse.urlsplit(url).path != api
        try:
            out[f"{key}_answer"] = json.loads(body) if status == 200 else body[:300]
        except json.JSONDecodeError:
            out[f"{key}_answer"] = body[:300]
    return out


def split_server(argv: list[str]) -> tuple[list[str], str]:
    """Remove --server NAME from argv; returns (rest, NAME or "")."""
    if "--server" in argv[:-1]:
        at = argv.index("--server")
        return argv[:at] + argv[at + 2:], argv[at + 1]
    return argv, ""


def main(argv: list[str]) -> int:
    argv, base_path = split_base_path(argv)
    argv, server_name = split_server(argv)
    command, base, user, password = argv[1:5]
    browser = Browser(base, user, password, base_path=base_path)
    if command == "start":
        result = start(browser, json.loads(argv[5]), server_name)
    elif command == "run":
        result = run(browser, argv[5], server_name)
    elif command == "stop":
        result = stop(browser, server_name)
    elif command == "stop-all":
        result = stop_all(browser)
    elif command == "servers":
        result = login(browser)
        result["servers"] = servers_of(browser)
    elif command == "api":
        result = api(browser, json.loads(argv[5]))
    elif command == "outcome":
        result = outcome(browser, json.loads(argv[5]))
    elif command == "status":
        result = login(browser)
        result["server"] = server_of(browser, server_name)
        _, _, home = browser.request("GET", f"{prefix_of(browser.base)}/hub/home")
        result["notice"] = announcement(home)
        if not result["server"]:  # with a server, the spawn page redirects to it
            _, _, spawn_page = browser.request("GET", spawn_path(browser, str(result.get("name") or user), server_name))
            result["spawn_notice"] = announcement(spawn_page)
    elif command == "kernel":
        result = login(browser)
        result.update(new_kernel(browser, str(result.get("name"))))
    elif command == "run-in":
        result = login(browser)
        result.update(run_in(browser, str(result.get("name")), argv[5], argv[6]))
    elif command == "call":
        result = call(browser, json.loads(argv[5]))
    elif command == "server-call":
        result = server_call(browser, argv[5], json.loads(argv[6]))
    elif command == "vnc":
        result = vnc(browser, argv[5], argv[6])
    elif command == "fetch":
        result = fetch(browser, argv[5])
    elif command == "form":
        result = form(browser)
    elif command == "page":
        result = page(browser, server_name)
    elif command == "estimate":
        rest = argv[6:]
        for_user = rest[rest.index("--for") + 1] if "--for" in rest else ""
        result = estimate(browser, json.loads(argv[5]), for_user, xsrf="--no-xsrf" not in rest)
    elif command == "bench":
        result = bench(browser, int(argv[5]), json.loads(argv[6]))
    elif command == "session-save":
        result = session_save(browser, argv[5])
    elif command == "session-check":
        result = session_check(browser, user, argv[5])
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
