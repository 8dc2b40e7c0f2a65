"""Header identity logic of the gateway authenticator (no JupyterHub imports).

Installed by the hpc-gateway ``jupyterhub`` role next to
``hpcgw_authenticator.py``; unit-tested in ``tests/unit``.
"""

from __future__ import annotations

import hmac
import pwd
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional


class IdentityRejected(Exception):
    """The request carries no trustworthy identity."""


@dataclass(frozen=True)
class HeaderPolicy:
    """How the identity is read from the headers Apache sets."""

    user_header: str = "X-Remote-User"
    groups_header: str = ""
    groups_separator: str = ";"
    secret_header: str = "X-Gateway-Secret"
    secret: str = ""
    strip_realm: bool = True
    # Realms ("name@REALM") identities and groups may carry, compared
    # case-insensitively; a name from any other realm is refused.
    allowed_realms: frozenset[str] = field(default_factory=frozenset)
    lowercase: bool = True
    min_uid: int = 1000
    extra_blocked: frozenset[str] = field(default_factory=frozenset)


# A local account name as it may reach a shell: batchspawner puts it into
# "sudo -n -u {username}" on a command line the hub account's shell parses
# (hpcgw_batch quotes it as well). No spaces, quotes or metacharacters.
SAFE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}")


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def _pairs(headers: Mapping[str, str] | object) -> Iterable[tuple[str, str]]:
    """Every (name, value) pair, one per header line.

    tornado's HTTPHeaders is a mapping whose ``items()`` yields each name once
    with its repeated values joined by a comma (``"alice,bob"``), which would
    hide a duplicate; its ``get_all()`` yields every line. Plain mappings and
    pair lists only have ``items()``.
    """
    get_all = getattr(headers, "get_all", None)
    if callable(get_all):
        return list(get_all())
    return list(headers.items())  # type: ignore[attr-defined]


def header_values(headers: Mapping[str, str] | object, name: str) -> list[str]:
    """Values of every header line whose name is ``name`` in any spelling."""
    wanted = _canonical(name)
    return [value for key, value in _pairs(headers) if _canonical(key) == wanted]


def spelled_exactly(headers: Mapping[str, str] | object, name: str) -> bool:
    """True when every header matching ``name`` uses the dash spelling."""
    wanted = _canonical(name)
    return all("_" not in key for key, _ in _pairs(headers) if _canonical(key) == wanted)


def map_username(raw: str, strip_realm: bool, lowercase: bool) -> str:
    """Map a federated identity (``Alice@EXAMPLE.ORG``) to a local name."""
    name = raw.strip()
    if strip_realm and "@" in name:
        name = name.rsplit("@", 1)[0]
    if lowercase:
        name = name.lower()
    return name


def realm_of(value: str) -> Optional[str]:
    """The realm of ``name@REALM`` (after the last "@"), None without one."""
    return value.rsplit("@", 1)[1] if "@" in value else None


def realm_allowed(realm: str, allowed_realms: frozenset[str] | set[str]) -> bool:
    """Whether ``realm`` is one of ``allowed_realms``, ignoring case."""
    return realm.lower() in {r.lower() for r in allowed_realms}


def scope_groups(groups: list[str], allowed_realms: frozenset[str] | set[str],
                 strip_realm: bool) -> tuple[list[str], list[str]]:
    """(kept, ignored) groups: a group of another realm grants nothing.

    ``gw-admins@IDP`` from an allowed realm is kept, as ``gw-admins`` when
    realms are stripped; groups without a realm are kept as they are.
    """
    kept: list[str] = []
    ignored: list[str] = []
    for group in groups:
        realm = realm_of(group)
        if realm is not None:
            local = group.rsplit("@", 1)[0]
            if not local or not realm_allowed(realm, allowed_realms):
                ignored.append(group)
                continue
            if strip_realm:
                group = local
        if group not in kept:
            kept.append(group)
    return kept, ignored


def split_groups(raw: str, separator: str) -> list[str]:
    """Group names from the attributes header, empty items dropped."""
    return [g.strip() for g in raw.split(separator) if g.strip()] if separator else [raw.strip()]


def system_uid(name: str, lookup: Callable[[str], int] | None = None) -> Optional[int]:
    """UID of a local account, or None when it does not exist locally."""
    if lookup is not None:
        return lookup(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def identity_from_headers(
    headers: Mapping[str, str] | object,
    policy: HeaderPolicy,
    uid_lookup: Callable[[str], Optional[int]] | None = None,
) -> dict[str, object]:
    """Return ``{"name": ..., "groups": [...], "ignored_groups": [...]}`` or
    raise IdentityRejected.

    The identity header is trusted only when the shared secret header matches
    (constant-time), exactly one value of each is present, and the dash
    spelling is used (an underscore spelling means something bypassed the
    front end's header scrubbing). A name with a realm outside
    ``policy.allowed_realms`` is refused (stripping it would hand another
    IdP's ``alice`` the local ``alice``), and the mapped name must be a
    shell-safe account name. Groups of other realms are ignored.
    """
    if not policy.secret:
        raise IdentityRejected("no shared secret configured")
    secrets = header_values(headers, policy.secret_header)
    if len(secrets) != 1 or not spelled_exactly(headers, policy.secret_header):
        raise IdentityRejected("missing or ambiguous gateway secret header")
    if not hmac.compare_digest(secrets[0].encode(), policy.secret.encode()):
        raise IdentityRejected("wrong gateway secret")
    users = header_values(headers, policy.user_header)
    if len(users) != 1 or not spelled_exactly(headers, policy.user_header):
        raise IdentityRejected("missing or ambiguous identity header")
    raw = users[0]
    if not raw.isprintable():
        raise IdentityRejected("control characters in the identity")
    realm = realm_of(raw.strip())
    if realm is not None and not realm_allowed(realm, policy.allowed_realms):
        raise IdentityRejected(f"realm {realm[:64]!r} is not in the allowed realms")
    name = map_username(raw, policy.strip_realm, policy.lowercase)
    if not name:
        raise IdentityRejected("empty identity")
    if policy.strip_realm and "@" in name:
        raise IdentityRejected("more than one '@' in the identity")
    if not SAFE_NAME_RE.fullmatch(name):
        raise IdentityRejected("the identity may only hold letters, digits and _ . @ - (not first: . @ -)")
    if name in policy.extra_blocked:
        raise IdentityRejected("blocked account")
    uid = uid_lookup(name) if uid_lookup is not None else system_uid(name)
    if uid is not None and uid < policy.min_uid:
        raise IdentityRejected("system account")
    groups: list[str] = []
    if policy.groups_header:
        values = header_values(headers, policy.groups_header)
        if len(values) > 1 or not spelled_exactly(headers, policy.groups_header):
            raise IdentityRejected("ambiguous groups header")
        if values:
            groups = split_groups(values[0], policy.groups_separator)
    groups, ignored = scope_groups(groups, policy.allowed_realms, policy.strip_realm)
    return {"name": name, "groups": groups, "ignored_groups": ignored}


@dataclass(frozen=True)
class GroupAccess:
    """What the groups header grants, decided on every login."""

    allowed: bool
    admin: Optional[bool]


def group_access(
    name: str,
    groups: list[str],
    admin_users: frozenset[str] | set[str],
    allowed_groups: frozenset[str] | set[str],
    admin_groups: frozenset[str] | set[str],
) -> GroupAccess:
    """Access from the groups header (allowed_users/allow_all are the hub's).

    ``allowed``: in an allowed or an admin group, or an admin user (admins
    must get in even when only allowed_groups is set: JupyterHub adds
    admin_users to allowed_users only when allowed_users is non-empty).
    ``admin``: with admin groups configured, recomputed at every login from
    admin_users and the groups (so leaving the group at the IdP revokes it);
    without them None, i.e. the hub's own admin_users handling.
    """
    member = set(groups)
    in_admin_group = bool(member & set(admin_groups))
    allowed = name in admin_users or in_admin_group or bool(member & set(allowed_groups))
    admin: Optional[bool] = None
    if admin_groups:
        admin = name in admin_users or in_admin_group
    return GroupAccess(allowed=allowed, admin=admin)


def login_rights(
    name: str,
    groups: list[str],
    access: GroupAccess,
    operator_group: str,
    operator_users: frozenset[str] | set[str],
) -> tuple[list[str], Optional[bool]]:
    """The hub groups and admin flag a login carries.

    Without an operator group (admin rights ``full``): the header's groups
    and ``access.admin`` (JupyterHub's admin role, which may act as any
    user). With one (``operator``): never the admin flag (False, so a
    former admin loses it at the next login); the admins (operator users,
    or ``access.admin``) are put in the operator group, whose role steers
    servers but cannot enter them, and a group of that name sent in the
    header is dropped, so only this decision grants it.
    """
    if not operator_group:
        return list(groups), access.admin
    kept = [group for group in groups if group != operator_group]
    if access.admin or name in operator_users:
        kept.append(operator_group)
    return kept, False
