"""Secrets: owners, modes, and never in logs, unit files or command lines."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(("path", "owner", "group", "mode"), [
    ("/etc/jupyterhub/secrets/cookie_secret", "jupyterhub", "jupyterhub", 0o600),
    ("/etc/jupyterhub/secrets/gateway_secret", "jupyterhub", "jupyterhub", 0o600),
    ("/etc/jupyterhub/secrets/proxy.env", "root", "root", 0o600),
    ("/etc/jupyterhub/secrets", "root", "jupyterhub", 0o750),
    ("/etc/jupyterhub/jupyterhub_config.py", "root", "jupyterhub", 0o640),
    ("/etc/apache2/sites-available/010-hpcgw-gateway.conf", "root", "root", 0o640),
    ("/etc/sudoers.d/jupyterhub", "root", "root", 0o440),
])
def test_modes_and_owners(gateway: Any, path: str, owner: str, group: str, mode: int) -> None:
    f = gateway.file(path)
    assert f.exists
    assert (f.user, f.group, f.mode) == (owner, group, mode)


def test_secrets_absent_from_logs_units_and_cmdlines(gateway: Any) -> None:
    with gateway.sudo():
        secrets = [
            gateway.file("/etc/jupyterhub/secrets/cookie_secret").content_string.strip(),
            gateway.file("/etc/jupyterhub/secrets/gateway_secret").content_string.strip(),
            gateway.file("/etc/jupyterhub/secrets/proxy.env").content_string.strip().split("=", 1)[1],
        ]
        assert all(len(s) >= 32 for s in secrets)
        haystack = "\n".join([
            gateway.check_output("journalctl --no-pager -o cat"),
            gateway.check_output("cat /var/log/apache2/*.log"),
            gateway.check_output("cat /etc/systemd/system/jupyterhub.service /etc/systemd/system/configurable-http-proxy.service"),
            gateway.check_output("ps -eo args"),
            gateway.check_output("cat /etc/jupyterhub/jupyterhub_config.py"),
        ])
    for secret in secrets:
        assert secret not in haystack


def test_hub_runs_unprivileged_and_proxy_separately(gateway: Any) -> None:
    assert gateway.service("jupyterhub").is_running
    assert gateway.service("configurable-http-proxy").is_running
    hub = gateway.check_output("systemctl show -p MainPID --value jupyterhub")
    assert gateway.check_output(f"ps -o user= -p {hub}") == "jupyterhub"
    assert gateway.check_output("systemctl show -p User --value configurable-http-proxy") == "chp"


def test_sudo_rules_valid(gateway: Any) -> None:
    with gateway.sudo():
        assert gateway.run("visudo -cf /etc/sudoers.d/jupyterhub").rc == 0
        rules = gateway.check_output("sudo -l -U jupyterhub")
    assert "!root" in rules and "hpcgw-local-mediator" in rules and "hpcgw-local-scope" in rules
