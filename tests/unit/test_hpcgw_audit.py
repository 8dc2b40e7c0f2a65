"""The audit log's lines: one JSON object per event, one line, nothing forged;
the culler's notice; syslog framing (a real datagram socket stands in for /dev/log)."""

from __future__ import annotations

import json
import logging
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

import hpcgw_audit

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def test_a_line_is_sorted_json_with_event_schema_and_time() -> None:
    line = hpcgw_audit.audit_line("spawn", {"user": "alice", "cluster": "testcluster", "queue": "debug",
                                            "cores": 1, "job_id": "42"}, now=NOW)
    assert line == ('{"cluster":"testcluster","cores":1,"event":"spawn","job_id":"42","queue":"debug",'
                    '"ts":"2026-01-02T03:04:05.678Z","user":"alice","v":1}')


def test_empty_and_missing_values_are_left_out() -> None:
    record = json.loads(hpcgw_audit.audit_line("stop", {"user": "bob", "server": None, "job_id": ""}, now=NOW))
    assert set(record) == {"event", "ts", "user", "v"}


def test_a_users_input_cannot_add_a_line_or_a_field() -> None:
    evil = 'x"}\n<13>hpcgw-audit: {"event":"login","user":"root"}\r\x00\u2028'
    line = hpcgw_audit.audit_line("refusal", {"what": "spawn form", "reason": evil, "user": "mallory"}, now=NOW)
    assert "\n" not in line and "\r" not in line and "\x00" not in line and line.isascii()
    record = json.loads(line)
    assert record["reason"] == evil and record["user"] == "mallory" and record["event"] == "refusal"


def test_fields_cannot_override_event_schema_or_time() -> None:
    record = json.loads(hpcgw_audit.audit_line("login", {"event": "cull", "v": 9, "ts": "then", "user": "a"}, now=NOW))
    assert (record["event"], record["v"], record["ts"]) == ("login", 1, "2026-01-02T03:04:05.678Z")


def test_long_values_and_lists_are_cut() -> None:
    record = json.loads(hpcgw_audit.audit_line(
        "login", {"user": "u" * 1000, "groups": [f"g{i}" for i in range(200)]}, now=NOW))
    assert len(record["user"]) == hpcgw_audit.MAX_VALUE and record["user"].endswith("...")
    assert len(record["groups"]) == hpcgw_audit.MAX_ITEMS and record["groups"][0] == "g0"


def test_sets_are_sorted_lists() -> None:
    record = json.loads(hpcgw_audit.audit_line("login", {"groups": {"b", "a"}}, now=NOW))
    assert record["groups"] == ["a", "b"]


def test_an_unknown_event_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown audit event"):
        hpcgw_audit.audit_line("logout", {}, now=NOW)


@pytest.mark.parametrize(("seconds", "words"), [
    (0, "0 seconds"), (1, "1 second"), (59.9, "59 seconds"), (60, "1 minute"), (119, "1 minute"),
    (3600, "60 minutes"), (3725, "62 minutes"), (-3, "0 seconds"),
])
def test_idle_words(seconds: float, words: str) -> None:
    assert hpcgw_audit.idle_words(seconds) == words


def test_the_cull_notice_names_the_job_and_the_idle_time() -> None:
    notice = hpcgw_audit.cull_notice(3720, 7200, 3600, 0, "batch job 42 on Demo cluster")
    assert notice == ("Your last server (batch job 42 on Demo cluster) was stopped after 62 minutes idle by the "
                      "idle culler. Start a new one when you are ready.")


def test_the_cull_notice_of_a_named_server_names_it() -> None:
    notice = hpcgw_audit.cull_notice(3720, 7200, 3600, 0, "batch job 43 on Demo cluster", server="debug")
    assert notice.startswith('Your server "debug" (batch job 43 on Demo cluster) was stopped after 62 minutes idle')


def test_a_busy_server_past_max_age_says_it_ran_too_long() -> None:
    notice = hpcgw_audit.cull_notice(30, 8 * 3600, 3600, 8 * 3600)
    assert notice.startswith("Your last server was stopped by the idle culler after running 480 minutes")
    assert "(the longest a server may run here is 480 minutes)" in notice


def test_an_idle_server_past_max_age_is_reported_idle() -> None:
    assert "after 61 minutes idle" in hpcgw_audit.cull_notice(3660, 9 * 3600, 3600, 8 * 3600)


@pytest.fixture()
def syslog(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    hpcgw_audit.configure(False, "")
    sock.close()


def test_emit_sends_one_syslog_datagram_tagged_with_the_identifier(syslog: tuple[socket.socket, str]) -> None:
    sock, path = syslog
    hpcgw_audit.configure(True, "hpcgw-audit", address=path)
    hpcgw_audit.emit("login", user="alice", groups=["hpc-users"])
    data = sock.recv(4096).decode()
    # <PRI> of facility authpriv (10), severity info (6); the tag, then the JSON.
    assert data.startswith(f"<{10 * 8 + 6}>hpcgw-audit: {{"), data
    assert not data.endswith("\x00")
    record = json.loads(data.split(": ", 1)[1])
    assert (record["event"], record["user"], record["groups"]) == ("login", "alice", ["hpc-users"])


def test_nothing_is_sent_when_disabled(syslog: tuple[socket.socket, str]) -> None:
    sock, path = syslog
    hpcgw_audit.configure(False, "hpcgw-audit", address=path)
    hpcgw_audit.emit("login", user="alice")
    with pytest.raises(socket.timeout):
        sock.settimeout(0.2)
        sock.recv(4096)


def test_without_a_syslog_socket_the_lines_go_to_the_hubs_log(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    hub = logging.getLogger("test-hub")
    with caplog.at_level(logging.WARNING, logger="test-hub"):
        hpcgw_audit.configure(True, "site-audit", address=str(tmp_path / "missing"), fallback=hub)
    try:
        assert "no syslog socket" in caplog.text
        hpcgw_audit.emit("stop", user="bob", by="bob")
        err = capsys.readouterr().err
        assert err.startswith("site-audit: {") and '"event":"stop"' in err
    finally:
        hpcgw_audit.configure(False, "")


def test_a_broken_event_never_raises(caplog: pytest.LogCaptureFixture, syslog: tuple[socket.socket, str]) -> None:
    hpcgw_audit.configure(True, "hpcgw-audit", address=syslog[1])
    with caplog.at_level(logging.ERROR, logger="JupyterHub"):
        hpcgw_audit.emit("no-such-event", user="x")
    assert "could not write the no-such-event event" in caplog.text
