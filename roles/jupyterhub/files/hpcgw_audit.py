"""The gateway's audit log: one JSON line per login, spawn, stop, cull and refusal.

Installed by the hpc-gateway ``jupyterhub`` role in the hub's virtualenv.
``jupyterhub_config.py`` calls :func:`configure` (identifier and switch from
the inventory); the authenticator, the spawner and the hub's server API call
:func:`emit`. Each event is one syslog message to ``/dev/log`` (the journal
on systemd hosts) with the identifier as its tag (``SYSLOG_IDENTIFIER``), so a
site forwards ``journalctl -t <identifier>`` / ``:programname`` with its
syslog setup. The message is a JSON object with sorted keys, one line (JSON
escapes every control character), every value a string, number, boolean or
list of strings, long strings cut: a user's input cannot forge a second line
or a field.

The formatting is pure (:func:`audit_line`) and unit-tested.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import socket
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional

# Version of the line's layout: a site's parser can tell when it changes.
SCHEMA = 1
EVENTS = frozenset({"login", "refusal", "spawn", "spawn_failed", "stop", "cull"})
# Longest string value kept; longer ones end with "...".
MAX_VALUE = 300
MAX_ITEMS = 50
# syslog facility: authpriv (Debian's rsyslog writes it to the root-only auth.log).
FACILITY = logging.handlers.SysLogHandler.LOG_AUTHPRIV

_LOG = logging.getLogger("hpcgw.audit")
_LOG.propagate = False
_state: dict[str, Any] = {"enabled": False, "identifier": ""}


def _clean(value: Any) -> Any:
    """A JSON-safe value: strings cut to MAX_VALUE, lists of at most MAX_ITEMS strings."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(str(v) for v in value) if isinstance(value, (set, frozenset)) else [str(v) for v in value]
        return [_clean(v) for v in items[:MAX_ITEMS]]
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."


def audit_line(event: str, fields: Mapping[str, Any], now: Optional[datetime] = None) -> str:
    """The JSON message of one event (sorted keys, one line, ASCII)."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    record = {key: _clean(value) for key, value in fields.items() if value is not None and value != ""}
    record.update(event=event, v=SCHEMA, ts=when.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    return json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def idle_words(seconds: float) -> str:
    """``45 seconds``, ``1 minute``, ``61 minutes``: how long a server was idle, for its user."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = whole // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def which_server(server: str = "", job: str = "") -> str:
    """How a notice names the server it is about: the user's default server is
    "Your last server", a named one "Your server "<name>"" (a user may run
    several); the batch job follows in parentheses when there is one."""
    which = f'Your server "{server}"' if server else "Your last server"
    return f"{which} ({job})" if job else which


def cull_notice(idle_seconds: float, age_seconds: float, timeout: int, max_age: int, job: str = "",
                server: str = "") -> str:
    """What the user's next page says about a server the idle culler stopped.

    The culler stops a server idle for ``timeout`` seconds, or one older than
    ``max_age`` (when set) even if busy; which of the two it was follows from
    the server's idle time. ``server``: a named server's name.
    """
    which = which_server(server, job)
    if max_age and idle_seconds < timeout and age_seconds >= max_age:
        why = (f"was stopped by the idle culler after running {idle_words(age_seconds)} "
               f"(the longest a server may run here is {idle_words(max_age)})")
    else:
        why = f"was stopped after {idle_words(idle_seconds)} idle by the idle culler"
    return f"{which} {why}. Start a new one when you are ready."


def _handler(identifier: str, address: str) -> logging.Handler:
    handler = logging.handlers.SysLogHandler(address=address, facility=FACILITY, socktype=socket.SOCK_DGRAM)
    handler.ident = f"{identifier}: "
    handler.append_nul = False  # journald would keep a trailing NUL in MESSAGE
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def configure(enabled: bool, identifier: str, address: str = "/dev/log",
              fallback: Optional[logging.Logger] = None,
              make_handler: Callable[[str, str], logging.Handler] = _handler) -> None:
    """Send the events to syslog at ``address`` with ``identifier`` as the tag.

    Without a syslog socket the events go to ``fallback`` (the hub's log)
    with the identifier in front, and a warning says so: nothing is lost.
    """
    for old in list(_LOG.handlers):
        _LOG.removeHandler(old)
        old.close()
    _state.update(enabled=bool(enabled), identifier=identifier)
    if not enabled:
        return
    _LOG.setLevel(logging.INFO)
    # SysLogHandler ignores a missing socket (and then drops every line).
    if os.path.exists(address):
        _LOG.addHandler(make_handler(identifier, address))
    else:
        target = fallback or logging.getLogger("JupyterHub")
        target.warning("Audit log: no syslog socket at %s; audit lines go to the hub's log", address)
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(f"{identifier}: %(message)s"))
        _LOG.addHandler(stream)


def emit(event: str, **fields: Any) -> None:
    """Write one audit line (nothing when the audit log is off). Never raises."""
    if not _state["enabled"]:
        return
    try:
        _LOG.info("%s", audit_line(event, fields))
    except Exception:  # noqa: BLE001  (an audit failure must not fail a login or a spawn)
        logging.getLogger("JupyterHub").exception("Audit log: could not write the %s event", event)
