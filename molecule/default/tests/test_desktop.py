"""A desktop on the compute node (jupyter-remote-desktop-proxy, role notebook_env).

alice's server in a SLURM job serves the desktop's page at
/jupyter/user/alice/desktop/ through Apache, and its websocket reaches the
VNC server that the first connection starts in her job: the RFB handshake
comes back over the websocket, through Apache and the proxy. Another
signed-in user (bob, the hub's admin) gets neither. On the node itself,
where other users' jobs run, bob cannot reach alice's VNC server (its unix
socket is in a directory of hers; it listens on no TCP port) nor her X
display (no TCP, and the X server wants her cookie), while alice can.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Callable

from testinfra.host import Host

from conftest import COMPUTE, PREFIX, user_jobs

PRESET = json.dumps({"profile": "debug-1c"})
DESKTOP = "/user/alice/desktop/"
WEBSOCKET = "/desktop-websockify/"
RFB_VERSION = re.compile(r"RFB 003\.00[38]\n")

# Run on the node as a user: connect to the VNC server's unix socket and to
# its display's RFB port, and open X11 connections to the display (TCP, the
# socket file, the abstract socket) with the user's own cookie when asked
# (xauth, from ~/.Xauthority). Prints what each attempt got.
PROBE = r"""
import json, socket, struct, subprocess, sys
display, unix_path, own_cookie = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
name = data = b""
if own_cookie:
    entry = subprocess.run(["xauth", "list", f":{display}"], capture_output=True, text=True).stdout.split()
    if len(entry) >= 3:
        name, data = entry[1].encode(), bytes.fromhex(entry[2])
pad = lambda raw: raw + b"\0" * (-len(raw) % 4)
setup = struct.pack("<cxHHHH2x", b"l", 11, 0, len(name), len(data)) + pad(name) + pad(data)

def attempt(family, address, send=b"", size=12):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(address)
        sock.sendall(send)
        return {"connected": True, "data": sock.recv(size).decode("latin-1")}
    except OSError as err:
        return {"connected": False, "error": type(err).__name__}
    finally:
        sock.close()

x11 = f"/tmp/.X11-unix/X{display}"
print(json.dumps({
    "vnc_unix": attempt(socket.AF_UNIX, unix_path),
    "vnc_tcp": attempt(socket.AF_INET, ("127.0.0.1", 5900 + display)),
    "x11_tcp": attempt(socket.AF_INET, ("127.0.0.1", 6000 + display), setup, 1),
    "x11_unix": attempt(socket.AF_UNIX, x11, setup, 1),
    "x11_abstract": attempt(socket.AF_UNIX, "\0" + x11, setup, 1),
}))
"""
# The first byte of an X server's answer to the connection setup.
X11_FAILED, X11_SUCCESS = "\x00", "\x01"


def _probe(host: Host, user: str, display: int, unix_path: str, own_cookie: bool) -> dict[str, Any]:
    out = host.check_output(
        f"cd /tmp && runuser -u {user} -- python3 -c {shlex.quote(PROBE)} {display} {shlex.quote(unix_path)} "
        f"{int(own_cookie)}")
    return json.loads(out.splitlines()[-1])


def test_the_desktop_is_its_owners_only(
    client: Callable[..., dict[str, Any]], node: Callable[[str], Host], gateway: Host, quiet: None
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    try:
        # The page, through Apache and alice's server (its hub login).
        page = client("fetch", "alice", DESKTOP)
        assert page["fetch_status"] == 200, json.dumps(page)
        assert page["fetch_path"] == PREFIX + DESKTOP, json.dumps(page)
        assert "<title>Jupyter Remote Desktop Proxy</title>" in page["body"], json.dumps(page)
        assert f"{PREFIX}{DESKTOP}static/dist/index.css" in page["body"], json.dumps(page)

        # Its websocket: the first connection starts the VNC server in the
        # job; RFB's greeting arrives through Apache, and the exchange goes on.
        rfb = client("vnc", "alice", "alice", WEBSOCKET)
        assert " 101 " in rfb["ws_status"] + " ", json.dumps(rfb)
        assert RFB_VERSION.fullmatch(rfb.get("server_version", "")), json.dumps(rfb)
        assert rfb.get("security_types"), json.dumps(rfb)

        # bob (signed in, the hub's admin): refused by alice's server, page and websocket.
        seen = client("fetch", "bob", DESKTOP)
        assert seen.get("name") == "bob", json.dumps(seen)
        assert seen["fetch_status"] == 403, json.dumps(seen)
        assert "Jupyter Remote Desktop Proxy" not in seen["body"], json.dumps(seen)
        attack = client("vnc", "bob", "alice", WEBSOCKET)
        assert " 101 " not in attack["ws_status"] + " " and "server_version" not in attack, json.dumps(attack)

        # On alice's node: her VNC server, as the job started it.
        jobs = user_jobs(gateway, "alice")
        assert len(jobs) == 1 and jobs[0][2] in COMPUTE, jobs
        host = node(jobs[0][2])
        server = host.check_output("pgrep -u alice -a Xtigervnc")
        display = re.search(r"Xtigervnc :(\d+) ", server)
        unix_path = re.search(r"-rfbunixpath (\S+)", server)
        assert display and unix_path and "-rfbport -1" in server, server
        # No TCP listener of the VNC server at all (neither RFB nor X11).
        listening = host.check_output("ss -Hltnp")
        assert "Xtigervnc" not in listening, listening

        own = _probe(host, "alice", int(display.group(1)), unix_path.group(1), own_cookie=True)
        other = _probe(host, "bob", int(display.group(1)), unix_path.group(1), own_cookie=False)
        # alice reaches both (so the probe works) ...
        assert RFB_VERSION.fullmatch(own["vnc_unix"].get("data", "")), json.dumps(own)
        assert own["x11_unix"].get("data") == X11_SUCCESS, json.dumps(own)
        # ... bob neither: the socket's directory is alice's, there is no TCP
        # port, and the X server refuses a client without her cookie.
        assert other["vnc_unix"] == {"connected": False, "error": "PermissionError"}, json.dumps(other)
        assert not other["vnc_tcp"]["connected"] and not other["x11_tcp"]["connected"], json.dumps(other)
        assert other["x11_unix"].get("data") == X11_FAILED, json.dumps(other)
        assert other["x11_abstract"].get("data", X11_FAILED) == X11_FAILED, json.dumps(other)
    finally:
        assert client("stop", "alice").get("stopped") is True
