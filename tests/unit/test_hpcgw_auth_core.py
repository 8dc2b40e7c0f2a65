"""Unit tests of the gateway authenticator's header logic."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "jupyterhub"
sys.path.insert(0, str(ROLE / "files"))

from hpcgw_auth_core import (  # noqa: E402
    GroupAccess,
    HeaderPolicy,
    IdentityRejected,
    group_access,
    identity_from_headers,
    login_rights,
    map_username,
    scope_groups,
    split_groups,
)

SECRET = "s3cret-value"
POLICY = HeaderPolicy(groups_header="X-Remote-User-Groups", secret=SECRET, extra_blocked=frozenset({"root"}),
                      allowed_realms=frozenset({"example.org"}))


class Headers:
    """Minimal multi-valued header list like tornado's HTTPHeaders.items()."""

    def __init__(self, *pairs: tuple[str, str]) -> None:
        self.pairs = list(pairs)

    def items(self) -> list[tuple[str, str]]:
        return self.pairs


class TornadoLikeHeaders:
    """tornado.httputil.HTTPHeaders as documented (tornado is not in the unit venv).

    A mapping with names in Http-Header-Case whose items() yields each name
    once, repeated lines joined by a comma; add() adds a line and get_all()
    yields every line.
    """

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        normalized = "-".join(word.capitalize() for word in name.split("-"))
        self._lines.setdefault(normalized, []).append(value)

    def items(self) -> list[tuple[str, str]]:
        return [(name, ",".join(values)) for name, values in self._lines.items()]

    def get_all(self) -> list[tuple[str, str]]:
        return [(name, value) for name, values in self._lines.items() for value in values]


def tornado_headers(*pairs: tuple[str, str]) -> Any:
    """Request headers as the hub gets them: tornado's class when importable."""
    try:
        from tornado.httputil import HTTPHeaders
    except ImportError:
        headers: Any = TornadoLikeHeaders()
    else:
        headers = HTTPHeaders()
    for name, value in pairs:
        headers.add(name, value)
    return headers


def no_local(_: str) -> Optional[int]:
    return None


def ident(*pairs: tuple[str, str], policy: HeaderPolicy = POLICY) -> dict[str, object]:
    return identity_from_headers(Headers(*pairs), policy, uid_lookup=no_local)


def test_trusted_identity_with_secret() -> None:
    got = ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "Alice@EXAMPLE.ORG"),
                ("X-Remote-User-Groups", "hpc; staff;"))
    assert got == {"name": "alice", "groups": ["hpc", "staff"], "ignored_groups": []}


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


def test_groups_header_absent_means_no_groups() -> None:
    got = ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "erin"))
    assert got == {"name": "erin", "groups": [], "ignored_groups": []}


def test_groups_header_ignored_when_not_configured() -> None:
    policy = HeaderPolicy(secret=SECRET)
    got = ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "erin"),
                ("X-Remote-User-Groups", "gw-admins"), policy=policy)
    assert got["groups"] == []


@pytest.mark.parametrize("pairs", [
    (("X-Remote-User-Groups", "hpc"), ("X-Remote-User-Groups", "gw-admins")),
    (("X-Remote-User-Groups", "hpc"), ("x_remote_user_groups", "gw-admins")),
    (("X-Remote_User-Groups", "gw-admins"),),
])
def test_ambiguous_or_underscore_groups_header_rejected(pairs: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(IdentityRejected):
        ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "erin"), *pairs)


ADMINS = frozenset({"bob"})
ALLOWED_GROUPS = frozenset({"hpc-users"})
ADMIN_GROUPS = frozenset({"gw-admins"})


@pytest.mark.parametrize(("name", "groups", "want"), [
    ("erin", ["hpc-users"], GroupAccess(allowed=True, admin=False)),
    ("erin", ["other", "hpc-users"], GroupAccess(allowed=True, admin=False)),
    ("frank", ["gw-admins"], GroupAccess(allowed=True, admin=True)),
    ("dave", [], GroupAccess(allowed=False, admin=False)),
    ("dave", ["hpc-user", "HPC-USERS"], GroupAccess(allowed=False, admin=False)),
    # admin users get in and stay admin without any group
    ("bob", [], GroupAccess(allowed=True, admin=True)),
])
def test_group_access(name: str, groups: list[str], want: GroupAccess) -> None:
    assert group_access(name, groups, ADMINS, ALLOWED_GROUPS, ADMIN_GROUPS) == want


def test_admin_left_to_the_hub_without_admin_groups() -> None:
    # no admin groups: None = the hub's own admin_users handling, unchanged
    assert group_access("erin", ["hpc-users"], ADMINS, ALLOWED_GROUPS, frozenset()) == GroupAccess(True, None)
    assert group_access("bob", [], ADMINS, frozenset(), frozenset()) == GroupAccess(True, None)
    assert group_access("erin", ["hpc-users"], ADMINS, frozenset(), frozenset()) == GroupAccess(False, None)


@pytest.mark.parametrize(("pairs", "message"), [
    ((("X-Gateway-Secret", SECRET), ("X-Remote-User", "alice"), ("X-Remote-User", "bob")),
     "ambiguous identity header"),
    ((("X-Gateway-Secret", SECRET), ("X-Remote-User", "alice"), ("X-Remote-User", "alice")),
     "ambiguous identity header"),
    ((("X-Gateway-Secret", SECRET), ("X-Gateway-Secret", SECRET), ("X-Remote-User", "alice")),
     "ambiguous gateway secret header"),
    ((("X-Gateway-Secret", SECRET), ("X-Remote-User", "erin"), ("X-Remote-User-Groups", "hpc"),
      ("X-Remote-User-Groups", "gw-admins")), "ambiguous groups header"),
])
def test_repeated_header_lines_are_refused_in_tornado_headers(pairs: tuple[tuple[str, str], ...],
                                                              message: str) -> None:
    headers = tornado_headers(*pairs)
    # items() shows the repeated lines as one comma-joined value...
    assert any("," in value for _, value in headers.items())
    # ...but each line counts
    with pytest.raises(IdentityRejected, match=message):
        identity_from_headers(headers, POLICY, uid_lookup=no_local)


def test_single_lines_in_tornado_headers_pass() -> None:
    headers = tornado_headers(("X-Gateway-Secret", SECRET), ("X-Remote-User", "carol"),
                              ("X-Remote-User-Groups", "hpc;gw-admins"))
    got = identity_from_headers(headers, POLICY, uid_lookup=no_local)
    assert (got["name"], got["groups"]) == ("carol", ["hpc", "gw-admins"])


@pytest.mark.parametrize("raw", [
    "alice\n", "al\nice", "alice\r", "ali\tce", "alice\x00", "al ice", "al;ice", "$(id)", "al'ice",
    "-alice", "al`id`", "alice,bob", ".alice", "alice\u00a0",
])
def test_identities_unsafe_for_a_shell_are_refused(raw: str) -> None:
    with pytest.raises(IdentityRejected, match="control characters|may only hold"):
        ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", raw))


def test_default_username_pattern_refuses_a_trailing_newline() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    # JupyterHub 6.1.1 validate_username: username_regex.match(name), and
    # "$" also matches before a final newline.
    regex = re.compile(defaults["jupyterhub_username_pattern"])
    assert regex.match("alice") and regex.match("a.b-c_1")
    assert regex.match("alice\n") is None


@pytest.mark.parametrize(("raw", "message"), [
    ("alice@any-other-idp.example", "realm 'any-other-idp.example' is not in the allowed realms"),
    ("alice@example.org.evil.example", "is not in the allowed realms"),
    ("alice@", "realm '' is not in the allowed realms"),
    ("alice@example.org@other.example", "realm 'other.example' is not in the allowed realms"),
    ("alice@other.example@example.org", "more than one '@'"),
])
def test_identities_of_other_realms_are_refused(raw: str, message: str) -> None:
    with pytest.raises(IdentityRejected, match=message):
        ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", raw))


@pytest.mark.parametrize("raw", ["alice@example.org", "Alice@EXAMPLE.ORG", "alice@Example.Org", "alice"])
def test_allowed_realm_in_any_case_and_names_without_realm_pass(raw: str) -> None:
    assert ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", raw))["name"] == "alice"


def test_no_allowed_realms_refuses_every_realm_but_not_plain_names() -> None:
    policy = HeaderPolicy(secret=SECRET)
    assert ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "alice"), policy=policy)["name"] == "alice"
    with pytest.raises(IdentityRejected, match="not in the allowed realms"):
        ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "alice@example.org"), policy=policy)


def test_realm_kept_when_not_stripped() -> None:
    policy = HeaderPolicy(secret=SECRET, strip_realm=False, allowed_realms=frozenset({"EXAMPLE.ORG"}))
    got = ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "Alice@example.org"), policy=policy)
    assert got["name"] == "alice@example.org"


@pytest.mark.parametrize(("strip", "groups", "ignored"), [
    (True, ["gw-admins", "physics", "hpc-users"], ["gw-admins@other.example", "@EXAMPLE.ORG"]),
    (False, ["gw-admins@EXAMPLE.ORG", "physics", "hpc-users@example.org"], ["gw-admins@other.example", "@EXAMPLE.ORG"]),
])
def test_groups_of_other_realms_grant_nothing(strip: bool, groups: list[str], ignored: list[str]) -> None:
    policy = HeaderPolicy(groups_header="X-Remote-User-Groups", secret=SECRET, strip_realm=strip,
                          allowed_realms=frozenset({"example.org"}))
    got = ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "frank"),
                ("X-Remote-User-Groups", "gw-admins@EXAMPLE.ORG;gw-admins@other.example;physics;"
                                         "hpc-users@example.org;@EXAMPLE.ORG"), policy=policy)
    assert (got["groups"], got["ignored_groups"]) == (groups, ignored)


@pytest.mark.parametrize(("header", "admin"), [
    ("gw-admins@EXAMPLE.ORG", True),
    ("gw-admins@other.example", False),
    ("gw-admins", True),
])
def test_admin_group_counts_from_an_allowed_realm_only(header: str, admin: bool) -> None:
    got = ident(("X-Gateway-Secret", SECRET), ("X-Remote-User", "frank"), ("X-Remote-User-Groups", header))
    assert group_access("frank", list(got["groups"]), ADMINS, ALLOWED_GROUPS, ADMIN_GROUPS) == GroupAccess(admin, admin)


def test_scope_groups_keeps_groups_without_realm_once() -> None:
    assert scope_groups(["a", "a@R", "a", "b@x"], frozenset({"r"}), True) == (["a"], ["b@x"])


class TestLoginRights:
    """Admins as operators: never the admin flag, the operator group granted only here."""

    ADMIN = GroupAccess(allowed=True, admin=True)
    USER = GroupAccess(allowed=True, admin=False)
    UNDECIDED = GroupAccess(allowed=True, admin=None)

    def test_full_rights_keep_the_header_groups_and_the_admin_flag(self) -> None:
        assert login_rights("frank", ["gw-admins"], self.ADMIN, "", frozenset()) == (["gw-admins"], True)
        assert login_rights("alice", ["a"], self.UNDECIDED, "", frozenset()) == (["a"], None)

    def test_an_admin_is_an_operator_and_never_admin(self) -> None:
        assert login_rights("frank", ["gw-admins"], self.ADMIN, "ops", frozenset()) == (["gw-admins", "ops"], False)

    def test_an_admin_user_is_an_operator_without_admin_groups(self) -> None:
        assert login_rights("bob", [], self.UNDECIDED, "ops", frozenset({"bob"})) == (["ops"], False)

    def test_the_operator_group_from_the_header_is_dropped(self) -> None:
        # A user (or a forged groups header) naming the operator group gains nothing.
        assert login_rights("mallory", ["ops", "physics"], self.USER, "ops", frozenset({"bob"})) == (["physics"], False)
        assert login_rights("mallory", ["ops"], self.UNDECIDED, "ops", frozenset()) == ([], False)

    def test_a_former_admin_loses_the_flag(self) -> None:
        # False, not None: the hub revokes an admin flag a user kept from before.
        assert login_rights("carol", [], self.USER, "ops", frozenset())[1] is False
