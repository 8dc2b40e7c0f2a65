from __future__ import annotations

from pathlib import Path

import pytest

import docker_engine


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('ID=debian\nVERSION_ID="12"\n', True),
        ('ID=ubuntu\nID_LIKE=debian\n', True),
        ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', True),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', False),
    ],
)
def test_is_debian_like(tmp_path: Path, content: str, expected: bool) -> None:
    path = tmp_path / "os-release"
    path.write_text(content)
    assert docker_engine.is_debian_like(path) is expected


def test_missing_os_release_is_not_debian(tmp_path: Path) -> None:
    assert docker_engine.is_debian_like(tmp_path / "absent") is False


def test_running_engine_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(docker_engine, "engine_answers", lambda timeout=10.0: True)
    monkeypatch.setattr(docker_engine, "install_docker_io", lambda: calls.append("install"))
    monkeypatch.setattr(docker_engine, "start_dockerd", lambda: calls.append("start"))
    assert docker_engine.ensure_engine() == 0
    assert calls == []


def test_non_root_gets_a_one_line_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(docker_engine, "engine_answers", lambda timeout=10.0: False)
    monkeypatch.setattr(docker_engine.os, "geteuid", lambda: 1000)
    assert docker_engine.ensure_engine() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no Docker engine answers" in err


def test_missing_dockerd_is_installed_then_started(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(docker_engine, "engine_answers", lambda timeout=10.0: False)
    monkeypatch.setattr(docker_engine.os, "geteuid", lambda: 0)
    monkeypatch.setattr(docker_engine, "is_debian_like", lambda: True)
    monkeypatch.setattr(docker_engine.shutil, "which", lambda name: None)
    monkeypatch.setattr(docker_engine, "install_docker_io", lambda: calls.append("install"))
    monkeypatch.setattr(docker_engine, "start_dockerd", lambda: calls.append("start"))
    monkeypatch.setattr(docker_engine, "wait_for_engine", lambda s: True)
    assert docker_engine.ensure_engine() == 0
    assert calls == ["install", "start"]
