#!/usr/bin/env python3
"""Test client of the hpc-gateway front end (stdlib only, runs on the node).

Talks only to the gateway container named on the command line. Commands:

  whoami BASE USER PASSWORD [HEADER=VALUE ...]
      log in through Apache (basic SSO) and print the hub's idea of the user
  e2e BASE USER PASSWORD
      log in, start the local profile, run code in a kernel over the
      websocket through Apache, stop the server
  page BASE USER PASSWORD PATH [HEADER=VALUE ...]
      log in, then GET PATH (under the base path, e.g. /hub/admin) and
      print its status and final URL
  token BASE USER PASSWORD
      log in, then ask the hub for a new API token of the user (15 min)
  tls HOST VERSION            (VERSION: 1.0, 1.1, 1.2, 1.3)
      try a TLS handshake with exactly that protocol version

BASE is the hub's public URL: https://host for a hub at the root, or
https://host/jupyter for one under a base path. Alternatively give the
origin as BASE and the prefix with --base-path /jupyter (anywhere on the
command line; default "", the root).

Each prints one JSON object on stdout.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import re
import socket
import ssl
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Optional

def resolved_name(host: str, spec: str) -> str:
    """The name to look up for `host` under HPCGW_RESOLVE's `spec`, "DOMAIN=NAME":
    DOMAIN and every name below it (the per-user hosts of a hub with
    subdomains, which no DNS of the test network knows) resolve as NAME;
    anything else, or an empty spec, as itself."""
    domain, _, name = spec.partition("=")
    domain = domain.strip().lower().rstrip(".")
    lowered = host.lower().rstrip(".")
    if domain and name and (lowered == domain or lowered.endswith("." + domain)):
        return name.strip()
    return host


def install_resolve(spec: str) -> None:
    """Route name lookups through resolved_name (like curl --resolve, for a
    whole domain); the URL's host still names the TLS server and the Host header."""
    if not spec:
        return
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(resolved_name(host, spec) if isinstance(host, str) else host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


install_resolve(os.environ.get("HPCGW_RESOLVE", ""))

INSECURE = ssl.create_default_context()
INSECURE.check_hostname = False
INSECURE.verify_mode = ssl.CERT_NONE  # self-signed test certificate


class Browser:
    """Cookie-keeping HTTPS client that sends Basic credentials everywhere."""

    def __init__(self, base: str, user: str, password: str, extra: Optional[dict[str, str]] = None,
                 base_path: str = "") -> None:
        # base: the hub's public URL (its path is the base path, "" at the
        # root); base_path, when given, is appended to base's origin instead.
        parts = urllib.parse.urlsplit(base)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base = (self.origin + normalize_base_path(base_path)) if base_path else base.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.extra = extra or {}
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=INSECURE),
            urllib.request.HTTPCookieProcessor(self.jar),
        )

    def cookie(self, name: str, path_prefix: str = "") -> str:
        found = [c for c in self.jar if c.name == name and c.path.startswith(path_prefix)]
        found.sort(key=lambda c: len(c.path), reverse=True)
        return found[0].value if found and found[0].value else ""

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[dict[str, str]] = None) -> tuple[int, str, str]:
        # paths are absolute on the server (they carry the base path already)
        url = path if path.startswith("http") else self.origin + path
        req = urllib.request.Request(url, data=body, method=method)
        req.add_header("Authorization", self.auth)
        for key, value in {**self.extra, **(headers or {})}.items():
            req.add_header(key, value)
        try:
            with self.opener.open(req, timeout=60) as resp:
                return resp.status, resp.geturl(), resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.geturl(), err.read().decode(errors="replace")

    def api(self, method: str, path: str, payload: Any = None, xsrf_path: str = "") -> tuple[int, Any]:
        token = self.cookie("_xsrf", xsrf_path)
        headers = {"X-XSRFToken": token, "Referer": self.base + "/"} if token else {"Referer": self.base + "/"}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        status, _, text = self.request(method, path, body, headers)
        try:
            return status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return status, text[:300]


def normalize_base_path(base_path: str) -> str:
    """"/jupyter/", "jupyter" or "/jupyter" -> "/jupyter"; "" or "/" -> ""."""
    stripped = base_path.strip("/")
    return "/" + stripped if stripped else ""


def prefix_of(base: str) -> str:
    """Base path of a hub URL: "https://gw/jupyter/" -> "/jupyter", "https://gw" -> ""."""
    return normalize_base_path(urllib.parse.urlsplit(base).path)


def login(browser: Browser) -> dict[str, Any]:
    pre = prefix_of(browser.base)
    status, url, _ = browser.request("GET", f"{pre}/hub/login?next={urllib.parse.quote(pre + '/hub/home')}")
    out: dict[str, Any] = {"login_status": status, "login_url": url}
    # the page rendering sets the hub's _xsrf cookie
    browser.request("GET", f"{pre}/hub/home")
    status, user = browser.api("GET", f"{pre}/hub/api/user", xsrf_path=f"{pre}/hub")
    out["api_status"] = status
    out["hub_cookies_secure"] = all(c.secure for c in browser.jar if c.name.startswith("jupyterhub"))
    if status == 200 and isinstance(user, dict):
        out.update(name=user.get("name"), admin=user.get("admin"), groups=user.get("groups"))
    return out


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def recv_exact(sock: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("websocket closed")
        data += chunk
    return data


def ws_recv(sock: ssl.SSLSocket) -> tuple[int, bytes]:
    first, second = recv_exact(sock, 2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", recv_exact(sock, 8))[0]
    return first & 0x0F, recv_exact(sock, size)


def ws_open(browser: Browser, path: str, headers: Optional[dict[str, str]] = None) -> tuple[ssl.SSLSocket, str]:
    """Open a websocket to `path` through Apache with the browser's cookies and
    Basic credentials; (the socket, the answer's status line). The caller
    closes the socket; on any status but 101 it carries no websocket."""
    parts = urllib.parse.urlsplit(browser.base)
    host = parts.hostname or ""
    cookie_req = urllib.request.Request(browser.origin + path)
    browser.jar.add_cookie_header(cookie_req)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    handshake = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: {browser.auth}\r\n"
        f"Cookie: {cookie_req.get_header('Cookie') or ''}\r\n{extra}\r\n"
    )
    raw = socket.create_connection((host, parts.port or 443), timeout=60)
    sock = INSECURE.wrap_socket(raw, server_hostname=host)
    sock.sendall(handshake.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)
        if not chunk:
            break
        response += chunk
    return sock, response.split(b"\r\n", 1)[0].decode(errors="replace")


def run_in_kernel(browser: Browser, path: str, code: str) -> dict[str, Any]:
    """Open the kernel's channels websocket through Apache and execute code."""
    sock, status_line = ws_open(browser, path)
    result: dict[str, Any] = {"ws_status": status_line}
    if " 101 " not in status_line + " ":
        sock.close()
        return result
    msg_id = uuid.uuid4().hex
    message = {
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }
    sock.sendall(ws_frame(json.dumps(message).encode()))
    # The reply (shell) may come before the output (iopub): read until both
    # the reply and the kernel's "idle" after it (the last iopub message).
    stdout, reply, idle = "", None, False
    deadline = time.time() + 60
    while time.time() < deadline and (reply is None or not idle):
        opcode, payload = ws_recv(sock)
        if opcode == 9:
            sock.sendall(ws_frame(payload, opcode=10))
            continue
        if opcode != 1:
            continue
        msg = json.loads(payload)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg.get("msg_type") == "stream":
            stdout += msg["content"].get("text", "")
        elif msg.get("msg_type") == "execute_reply":
            reply = msg["content"].get("status")
        elif msg.get("msg_type") == "status" and msg["content"].get("execution_state") == "idle":
            idle = True
    sock.sendall(ws_frame(b"\x03\xe8", opcode=8))
    sock.close()
    result.update(stdout=stdout, reply=reply)
    return result


def spawn_path(browser: Browser, user: str = "", server: str = "") -> str:
    """The spawn page's path: the default server's, or /hub/spawn/<user>/<server> of a named one."""
    pre = prefix_of(browser.base)
    if not server:
        return f"{pre}/hub/spawn"
    return f"{pre}/hub/spawn/{urllib.parse.quote(user)}/{urllib.parse.quote(server)}"


def spawn_form_action(browser: Browser, user: str = "", server: str = "") -> str:
    """The spawn form's action URL; the hub puts its XSRF token into it."""
    path = spawn_path(browser, user, server)
    _, _, page = browser.request("GET", path)
    action = re.search(r'action="([^"]*_xsrf=[^"]+)"', page)
    return action.group(1).replace("&amp;", "&") if action else path


def post_spawn_form(browser: Browser, form: dict[str, str], target: str = "", user: str = "",
                    server: str = "") -> tuple[int, str, str]:
    """POST the spawn form (to `target`, default: its action fetched now) as a browser does."""
    return browser.request(
        "POST", target or spawn_form_action(browser, user, server), urllib.parse.urlencode(form).encode(),
        {"Content-Type": "application/x-www-form-urlencoded",
         "Referer": browser.origin + spawn_path(browser, user, server)},
    )


def servers_of(browser: Browser) -> dict[str, Any]:
    """Every active server of the logged-in user by name ("" the default one), as the hub's REST API shows them."""
    pre = prefix_of(browser.base)
    _, user = browser.api("GET", f"{pre}/hub/api/user", xsrf_path=f"{pre}/hub")
    if not isinstance(user, dict):
        return {}
    return user.get("servers", {}) or {}


def server_of(browser: Browser, server: str = "") -> dict[str, Any]:
    """The logged-in user's default (or named) server as the hub's REST API shows it ({} when none)."""
    return servers_of(browser).get(server, {}) or {}


def server_path(name: str, server: str = "") -> str:
    """Where a user's server lives under the base path: /user/<name>[/<server>]."""
    return f"/user/{name}/{server}" if server else f"/user/{name}"


def new_kernel(browser: Browser, name: str) -> dict[str, Any]:
    """Start a kernel on `name`'s server (after the server's OAuth, as a browser); its id."""
    pre = prefix_of(browser.base)
    status, _, _ = browser.request("GET", f"{pre}/user/{name}/files/.hpcgw-oauth-probe")
    upath = f"{pre}/user/{name}"
    kstatus, kernel = browser.api("POST", f"{upath}/api/kernels", {"name": "python3"}, xsrf_path=upath)
    out: dict[str, Any] = {"oauth_status": status, "kernel_status": kstatus}
    if kstatus in (200, 201) and isinstance(kernel, dict):
        out["kernel_id"] = kernel["id"]
    return out


def run_in(browser: Browser, name: str, kernel_id: str, code: str) -> dict[str, Any]:
    """Open a new websocket to an existing kernel (as a browser reconnecting) and run code."""
    pre = prefix_of(browser.base)
    status, _, _ = browser.request("GET", f"{pre}/user/{name}/files/.hpcgw-oauth-probe")
    upath = f"{pre}/user/{name}"
    xsrf = browser.cookie("_xsrf", upath)
    query = urllib.parse.urlencode({"session_id": uuid.uuid4().hex, **({"_xsrf": xsrf} if xsrf else {})})
    out: dict[str, Any] = {"oauth_status": status}
    out.update(run_in_kernel(browser, f"{upath}/api/kernels/{kernel_id}/channels?{query}", code))
    return out


def run_code(browser: Browser, name: str, code: str, server: str = "") -> dict[str, Any]:
    """Run `code` in a new kernel of `name`'s (default or named) server over the websocket, then delete the kernel."""
    pre = prefix_of(browser.base)
    upath = pre + server_path(name, server)
    # OAuth into the single-user server like a browser does (a page, not an
    # API URL: only pages redirect to the hub; a missing file is fine)
    status, _, _ = browser.request("GET", f"{upath}/files/.hpcgw-oauth-probe")
    out: dict[str, Any] = {"oauth_status": status}
    status, kernel = browser.api("POST", f"{upath}/api/kernels", {"name": "python3"}, xsrf_path=upath)
    out["kernel_status"] = status
    if status in (200, 201) and isinstance(kernel, dict):
        kid = kernel["id"]
        xsrf = browser.cookie("_xsrf", upath)
        query = urllib.parse.urlencode({"session_id": uuid.uuid4().hex, **({"_xsrf": xsrf} if xsrf else {})})
        out.update(run_in_kernel(browser, f"{upath}/api/kernels/{kid}/channels?{query}", code))
        out["kernel_delete"] = browser.api("DELETE", f"{upath}/api/kernels/{kid}", xsrf_path=upath)[0]
    else:
        out["kernel_body"] = kernel
    return out


def e2e(browser: Browser) -> dict[str, Any]:
    pre = prefix_of(browser.base)
    out = login(browser)
    name = out.get("name")
    if not name:
        return out
    status, _, _ = post_spawn_form(browser, {"profile": "local"})
    out["spawn_status"] = status
    ready = False
    for _ in range(90):
        if server_of(browser).get("ready"):
            ready = True
            break
        time.sleep(1)
    out["ready"] = ready
    if not ready:
        return out
    out.update(run_code(browser, name, "import os, pwd\nprint(6 * 7, pwd.getpwuid(os.getuid()).pw_name)"))
    status, _ = browser.api("DELETE", f"{pre}/hub/api/users/{name}/server", xsrf_path=f"{pre}/hub")
    out["stop_status"] = status
    stopped = False
    for _ in range(60):
        _, user = browser.api("GET", f"{pre}/hub/api/user", xsrf_path=f"{pre}/hub")
        if isinstance(user, dict) and not user.get("servers"):
            stopped = True
            break
        time.sleep(1)
    out["stopped"] = stopped
    return out


def page(browser: Browser, path: str) -> dict[str, Any]:
    """Log in, then GET a page under the base path as that user."""
    pre = prefix_of(browser.base)
    out = login(browser)
    status, url, _ = browser.request("GET", pre + path)
    out.update(page_status=status, page_path=urllib.parse.urlsplit(url).path)
    return out


def new_token(browser: Browser) -> dict[str, Any]:
    """A new API token of the logged-in user (the user's own scopes), as the hub's token page makes it."""
    out = login(browser)
    pre = prefix_of(browser.base)
    status, body = browser.api("POST", f"{pre}/hub/api/users/{out.get('name')}/tokens",
                               {"note": "hpc-gateway test", "expires_in": 900}, xsrf_path=f"{pre}/hub")
    out.update(token_status=status, token=body.get("token", "") if isinstance(body, dict) else "")
    return out


def tls(host: str, version: str) -> dict[str, Any]:
    versions = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
                "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")  # let the client offer old protocols
    ctx.minimum_version = ctx.maximum_version = versions[version]
    try:
        with socket.create_connection((host, 443), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as sock:
                return {"handshake": True, "version": sock.version()}
    except (ssl.SSLError, OSError) as err:
        return {"handshake": False, "error": str(err)[:200]}


def split_base_path(argv: list[str]) -> tuple[list[str], str]:
    """Remove --base-path X / --base-path=X from argv; returns (rest, X or "")."""
    rest, base_path, i = [], "", 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--base-path" and i + 1 < len(argv):
            base_path, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--base-path="):
            base_path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return rest, base_path


def main(argv: list[str]) -> int:
    argv, base_path = split_base_path(argv)
    command = argv[1]
    if command == "tls":
        result = tls(argv[2], argv[3])
    else:
        first_extra = 6 if command == "page" else 5
        extra = dict(arg.split("=", 1) for arg in argv[first_extra:])
        browser = Browser(argv[2], argv[3], argv[4], extra, base_path=base_path)
        if command == "whoami":
            result = login(browser)
        elif command == "page":
            result = page(browser, argv[5])
        elif command == "e2e":
            result = e2e(browser)
        elif command == "token":
            result = new_token(browser)
        else:
            raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
