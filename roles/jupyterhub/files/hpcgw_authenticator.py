"""JupyterHub authenticator for the hpc-gateway front end.

Subclasses jhub_remote_user_authenticator's RemoteUserAuthenticator but routes
the login through JupyterHub's normal ``login_user`` path, so
normalize_username, username_pattern, allowed_users/allowed_groups,
blocked_users and admin handling are all enforced (upstream 0.1.0 calls
``user_from_username`` directly and skips them). The identity header is
trusted only together with the shared secret header Apache adds.
"""

from __future__ import annotations

from typing import Any, Optional

from jhub_remote_user_authenticator.remote_user_auth import RemoteUserAuthenticator
from jupyterhub.handlers import BaseHandler
from jupyterhub.handlers.login import LogoutHandler
from tornado import web
from traitlets import Bool, Int, Set, Unicode

import hpcgw_audit
from hpcgw_auth_core import (HeaderPolicy, IdentityRejected, group_access, header_values, identity_from_headers,
                             login_rights)


class GatewayLoginHandler(BaseHandler):  # type: ignore[misc]
    """/hub/login: log in from the front end's headers via login_user."""

    async def get(self) -> None:
        user = await self.login_user(None)
        if user is None:
            raise web.HTTPError(403, "Login refused")
        self.redirect(self.get_next_url(user))


class GatewayLogoutHandler(LogoutHandler):  # type: ignore[misc]
    """/hub/logout: the hub's cookies are cleared (upstream), then the browser
    goes to the SSO module's logout (logout_redirect_url), which ends the SSO
    session; without it the next page would log the user straight back in."""

    async def render_logout_page(self) -> None:
        target = self.authenticator.logout_redirect_url
        if target:
            self.redirect(target, permanent=False)
        else:
            await super().render_logout_page()


class GatewayRemoteUserAuthenticator(RemoteUserAuthenticator):  # type: ignore[misc]
    """Header authenticator guarded by a shared secret."""

    header_name = Unicode("X-Remote-User", config=True, help="Identity header (dash-separated).")
    groups_header = Unicode("", config=True, help="Groups/attributes header; empty = unused.")
    groups_separator = Unicode(";", config=True, help="Separator of the groups header.")
    secret_header = Unicode("X-Gateway-Secret", config=True, help="Header carrying the shared secret.")
    secret_file = Unicode("", config=True, help="File holding the shared secret.")
    strip_realm = Bool(True, config=True, help="Strip @realm from the identity.")
    allowed_realms = Set(Unicode(), config=True,
                         help="Realms (any case) identities and groups may carry; other realms are refused.")
    lowercase = Bool(True, config=True, help="Lowercase the identity.")
    min_uid = Int(1000, config=True, help="Refuse local accounts below this uid.")
    allowed_groups = Set(Unicode(), config=True, help="Groups (from the groups header) allowed in.")
    admin_groups = Set(Unicode(), config=True, help="Groups (from the groups header) made admin.")
    operator_group = Unicode("", config=True,
                             help="Hub group the admins are put in (their role steers servers but cannot enter "
                                  "them); empty: admins get JupyterHub's admin role instead.")
    operator_users = Set(Unicode(), config=True, help="Users made admins through the operator group.")
    logout_redirect_url = Unicode("", config=True,
                                  help="Where /hub/logout sends the browser once the hub's cookies are cleared: "
                                       "the SSO module's logout. Empty: the hub's own logout page.")

    def _policy(self) -> HeaderPolicy:
        secret = ""
        if self.secret_file:
            with open(self.secret_file, encoding="utf-8") as handle:
                secret = handle.read().strip()
        return HeaderPolicy(
            user_header=self.header_name,
            groups_header=self.groups_header,
            groups_separator=self.groups_separator,
            secret_header=self.secret_header,
            secret=secret,
            strip_realm=self.strip_realm,
            allowed_realms=frozenset(self.allowed_realms),
            lowercase=self.lowercase,
            min_uid=self.min_uid,
            extra_blocked=frozenset(self.blocked_users),
        )

    def get_handlers(self, app: Any) -> list[tuple[str, type]]:
        return [(r"/login", GatewayLoginHandler), (r"/logout", GatewayLogoutHandler)]

    async def authenticate(self, handler: Any, data: Any = None) -> Optional[dict[str, Any]]:
        headers = handler.request.headers
        try:
            ident = identity_from_headers(headers, self._policy())
        except IdentityRejected as exc:
            self.log.warning("Header login refused from %s: %s", handler.request.remote_ip, exc)
            # The raw identity, as the front end (or whoever forged it) sent it.
            raw = ",".join(header_values(headers, self.header_name))
            hpcgw_audit.emit("refusal", what="login", reason=str(exc), identity=raw or None,
                             ip=handler.request.remote_ip)
            handler.hpcgw_audited = True
            return None
        finally:
            # JupyterHub logs all request headers of failed requests; make
            # sure the shared secret can never end up there.
            for name in [key for key in headers if key.lower().replace("_", "-") == self.secret_header.lower()]:
                del headers[name]
        handler.hpcgw_identity = str(ident["name"])
        groups = list(ident["groups"])  # type: ignore[call-overload]
        ignored = list(ident["ignored_groups"])  # type: ignore[call-overload]
        if ignored:
            self.log.warning("Groups of %s from realms not allowed, ignored: %s", ident["name"], ", ".join(ignored))
        # Always a list (possibly empty): with manage_groups the hub's group
        # memberships follow the header at every login.
        name = str(ident["name"])
        hub_groups, admin = login_rights(name, groups, self._access(name, groups), self.operator_group,
                                         frozenset(self.operator_users))
        result: dict[str, Any] = {"name": name, "groups": hub_groups}
        if admin is not None:
            result["admin"] = admin
        return result

    async def get_authenticated_user(self, handler: Any, data: Any) -> Optional[dict[str, Any]]:
        """JupyterHub's checks (name pattern, blocked, allowed), then one audit line:
        the login, or why it was refused (authenticate already wrote its own refusals)."""
        result = await super().get_authenticated_user(handler, data)
        if result is not None:
            groups = result.get("groups") or []
            hpcgw_audit.emit("login", user=result["name"], admin=result.get("admin"),
                             operator=bool(self.operator_group) and self.operator_group in groups,
                             groups=groups, ip=handler.request.remote_ip)
        elif not getattr(handler, "hpcgw_audited", False):
            name = getattr(handler, "hpcgw_identity", "")
            hpcgw_audit.emit("refusal", what="login", user=name or None, reason=self._refusal_reason(name),
                             ip=handler.request.remote_ip)
        return result

    def _refusal_reason(self, name: str) -> str:
        if not name:
            return "no identity"
        if not self.validate_username(name):
            return "name does not match the username pattern"
        if name in self.blocked_users:
            return "blocked account"
        return "not allowed (not in the allowed users or groups)"

    def _access(self, username: str, groups: list[str]) -> Any:
        return group_access(username, groups, frozenset(self.admin_users) | frozenset(self.operator_users),
                            frozenset(self.allowed_groups), frozenset(self.admin_groups))

    def check_allowed(self, username: str, authentication: Optional[dict[str, Any]] = None) -> bool:
        if super().check_allowed(username, authentication):
            return True
        groups = list((authentication or {}).get("groups") or [])
        return bool(self._access(username, groups).allowed)
