"""The demo driver's pure parts: port setting, recap parsing, logins."""

from __future__ import annotations

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


@pytest.mark.parametrize(("seconds", "text"), [(4.26, "4.3 s"), (59.4, "59.4 s"), (61, "1 min 01 s"), (605.6, "10 min 06 s")])
def test_format_seconds(seconds: float, text: str) -> None:
    assert demo.format_seconds(seconds) == text
