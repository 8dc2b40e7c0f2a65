"""The demo driver's pure parts: port setting and check, recap parsing, logins."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

import demo

RECAP = """
PLAY RECAP *********************************************************************
hpcgw-c1                   : ok=61   changed=0    unreachable=0    failed=0    skipped=20   rescued=0    ignored=0
hpcgw-gw                   : ok=140  changed=3    unreachable=0    failed=0    skipped=31   rescued=0    ignored=0
hpcgw-ctl                  : ok=70   changed=0    unreachable=1    failed=2    skipped=9    rescued=0    ignored=0
"""


def test_recap_changes_per_host() -> None:
    assert demo.recap_changes(RECAP) == {"hpcgw-c1": 0, "hpcgw-gw": 3, "hpcgw-ctl": 0}


def test_recap_of_other_output_is_empty() -> None:
    assert demo.recap_changes("TASK [x] ok: [h]\n") == {}


@pytest.mark.parametrize(("raw", "port"), [(None, 8443), ("9443", 9443), ("65535", 65535)])
def test_demo_port(raw: str | None, port: int) -> None:
    env = {} if raw is None else {"HPCGW_DEMO_PORT": raw}
    assert demo.demo_port(env) == port


@pytest.mark.parametrize("raw", ["80", "x", "70000", "", "8443 ", "-1"])
def test_demo_port_refuses_bad_values(raw: str) -> None:
    with pytest.raises(SystemExit, match="HPCGW_DEMO_PORT"):
        demo.demo_port({"HPCGW_DEMO_PORT": raw})


def test_demo_logins_from_gateway_vars() -> None:
    host_vars = {"gateway_apache_basic_users": [{"name": "alice", "password": "a"}, {"name": "bob", "password": "b"}]}
    assert demo.demo_logins(host_vars) == [("alice", "a"), ("bob", "b")]
    assert demo.demo_logins({}) == []


@pytest.mark.parametrize(("base", "url"), [(None, "https://localhost:8443/"), ("/", "https://localhost:8443/"),
                                          ("/jupyter/", "https://localhost:8443/jupyter/"),
                                          ("/jupyter", "https://localhost:8443/jupyter/")])
def test_demo_url_carries_the_base_path(base: str | None, url: str) -> None:
    assert demo.demo_url(8443, {} if base is None else {"jupyterhub_base_url": base}) == url


@pytest.mark.parametrize("base", ["jupyter/", "{{ x }}", "https://elsewhere/"])
def test_demo_url_refuses_what_is_not_a_literal_path(base: str) -> None:
    with pytest.raises(SystemExit, match="jupyterhub_base_url"):
        demo.demo_url(8443, {"jupyterhub_base_url": base})


def test_login_lines_fold_a_numbered_series_into_one_line() -> None:
    logins = [("alice", "a"), ("burst01", "b"), ("burst02", "b"), ("burst03", "b"), ("bob2", "c")]
    assert demo.login_lines(logins) == ["alice / a", "burst01 .. burst03 / b  (3 accounts for make bench)",
                                        "bob2 / c"]


def test_login_lines_keep_a_short_series_as_it_is() -> None:
    assert demo.login_lines([("u1", "x"), ("u2", "x")]) == ["u1 / x", "u2 / x"]


@pytest.mark.parametrize(("seconds", "text"), [(4.26, "4.3 s"), (59.4, "59.4 s"), (61, "1 min 01 s"), (605.6, "10 min 06 s")])
def test_format_seconds(seconds: float, text: str) -> None:
    assert demo.format_seconds(seconds) == text


TCP_TIME_WAIT = "06"


def _local_states(port: int) -> set[str]:
    """TCP states of the IPv4 sockets whose local port is ``port``."""
    lines = Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]
    return {f[3] for f in (line.split() for line in lines) if int(f[1].rsplit(":", 1)[1], 16) == port}


def _time_wait_port() -> int:
    """A loopback port left with only a TIME-WAIT connection (server closed first)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()  # the active close puts the port's own side in TIME-WAIT
        client.recv(1)
        client.close()
    return port


def test_time_wait_connections_do_not_make_the_port_taken() -> None:
    port = _time_wait_port()
    assert _local_states(port) == {TCP_TIME_WAIT}
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # a bind without address reuse: refused by TIME-WAIT
    assert demo.port_is_free(port)


@pytest.mark.parametrize(("family", "address"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0"),
                                                 (socket.AF_INET6, "::")])
def test_a_listener_makes_the_port_taken_and_is_named(family: socket.AddressFamily, address: str) -> None:
    with socket.socket(family) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        assert not demo.port_is_free(port)
        assert demo.listening_inodes(port)
        holder = demo.port_holder(port)
    assert f"pid {os.getpid()} (" in holder
    assert demo.port_is_free(port)


def test_a_listener_on_another_address_does_not_clash() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        assert demo.port_is_free(port)
        assert not demo.listening_inodes(port)


def test_port_holder_says_when_nothing_is_seen() -> None:
    port = _time_wait_port()
    assert "no listener" in demo.port_holder(port)
