"""Unit tests of the gateway authenticator's header logic."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "roles" / "jupyterhub" / "files"))

from hpcgw_auth_core import (  # noqa: E402
    HeaderPolicy,
    IdentityRejected,
    identity_from_headers,
    map_username,
    split_groups,
)

SECRET = "s3cret-value"
POLICY = HeaderPolicy(groups_header="X-Remote-User-Groups", secret=SECRET, extra_blocked=frozenset({"root"}))


class Headers:
    """Minimal multi-valued header list like tornado's HTTPHeaders.items()."""

    def __init__(self, *pairs: tuple[str, str]) -> None:
        self.pairs = list(pairs)

    def items(self) -> list[tuple[str, str]]:
        return self.pairs


def no_local(_: str) -> Optional[int]:
    return None


def ident(*pairs: tuple[str, str], policy: HeaderPolicy = POLICY) -> dict[str, object]:
    return identity_from_headers(Headers(*pairs), policy, uid_lookup=no_local)


def test_trusted_identity_with_secret() -> None:
    got = ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "Alice@EXAMPLE.ORG"),
                ("X-Remote-User-Groups", "hpc; staff;"))
    assert got == {"name": "alice", "groups": ["hpc", "staff"]}


@pytest.mark.parametrize("pairs", [
    (("X-Remote-User", "alice"),),
    (("X-Gateway-Secret", "wrong"), ("X-Remote-User", "alice")),
    (("X-Gateway-Secret", SECRET), ("X-Gateway-Secret", SECRET), ("X-Remote-User", "alice")),
    (("X_Gateway_Secret", SECRET), ("X-Remote-User", "alice")),
    (("X-Gateway-Secret", SECRET),),
    (("X-Gateway-Secret", SECRET), ("X_Remote_User", "alice")),
    (("X-Gateway-Secret", SECRET), ("x-remote-user", "alice"), ("X-Remote-User", "bob")),
    (("X-Gateway-Secret", SECRET), ("X-Remote-User", "  ")),
    (("X-Gateway-Secret", SECRET), ("X-Remote-User", "root@EXAMPLE.ORG")),
    (("X-Gateway-Secret", SECRET), ("X-Remote-User", "alice"), ("X_Remote_User_Groups", "admins")),
])
def test_rejections(pairs: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(IdentityRejected):
        ident(*pairs)


def test_no_secret_configured_rejects_everything() -> None:
    with pytest.raises(IdentityRejected):
        ident(("X-Gateway-Secret", ""), ("X-Remote-User", "alice"), policy=HeaderPolicy(secret=""))


def test_case_of_header_name_does_not_matter() -> None:
    got = ident(("x-gateway-secret", SECRET), ("x-remote-user", "bob"))
    assert got["name"] == "bob"


def test_system_accounts_refused() -> None:
    with pytest.raises(IdentityRejected):
        identity_from_headers(Headers(("X-Gateway-Secret", SECRET), ("X-Remote-User", "daemon")),
                              POLICY, uid_lookup=lambda _: 1)
    got = identity_from_headers(Headers(("X-Gateway-Secret", SECRET), ("X-Remote-User", "carol")),
                                POLICY, uid_lookup=lambda _: 1001)
    assert got["name"] == "carol"


@pytest.mark.parametrize(("raw", "strip", "lower", "want"), [
    ("Alice@EXAMPLE.ORG", True, True, "alice"),
    ("Alice@EXAMPLE.ORG", False, True, "alice@example.org"),
    ("Alice@EXAMPLE.ORG", True, False, "Alice"),
    (" bob ", True, True, "bob"),
    ("a@b@REALM", True, True, "a@b"),
])
def test_map_username(raw: str, strip: bool, lower: bool, want: str) -> None:
    assert map_username(raw, strip, lower) == want


def test_split_groups() -> None:
    assert split_groups("a;b;;c ", ";") == ["a", "b", "c"]
    assert split_groups("a b", "") == ["a b"]
