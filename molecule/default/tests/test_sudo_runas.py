"""The hub account's sudo rules act for the users' group only: a system
account wrongly put in that group (svcacct, uid < 1000) is still refused."""

from __future__ import annotations

from typing import Any

import pytest

SUDOSPAWNER = "/opt/jupyterhub/bin/hpcgw-local-mediator"


def _hub_may(gateway: Any, runas: str) -> bool:
    return gateway.run(f"runuser -u jupyterhub -- sudo -n -l -u {runas} {SUDOSPAWNER}").rc == 0


def test_svcacct_is_a_system_account_in_the_group(gateway: Any) -> None:
    uid = int(gateway.check_output("id -u svcacct"))
    assert uid < 1000
    assert "hpcgw-users" in gateway.check_output("id -nG svcacct").split()


@pytest.mark.parametrize(("user", "allowed"), [("alice", True), ("carol", True), ("svcacct", False),
                                               ("root", False), ("www-data", False)])
def test_runas_follows_group_and_uid(gateway: Any, user: str, allowed: bool) -> None:
    assert _hub_may(gateway, user) is allowed
