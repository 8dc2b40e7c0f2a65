"""Which accounts a user may charge a job to, per cluster (the spawn form's
account select and the server-side check of every choice).

Pure Python (no JupyterHub import), unit-tested in ``tests/unit``; the
spawner (:mod:`hpcgw_spawner`) and the estimate API use it.

Per cluster (``account_source``):

* ``data``: the inventory's lists: ``account_grants`` naming the user or
  one of their hub groups, in order, then ``accounts`` (everyone's); the
  first is the default;
* ``sacctmgr``: the user's SLURM associations on the cluster, asked by the
  hub account itself (no sudo, no shell, one argv):
  ``sacctmgr --noheader --parsable2 show user where name=<user>
  cluster=<cluster> withassoc format=User,DefaultAccount,Cluster,Account``.
  SLURM's default account comes first (when the user has an association
  with it on this cluster), the others sorted. The answer is cached per user
  and cluster for ``ttl`` seconds (a failure for ``error_ttl``), one query in
  flight per user and cluster, at most ``parallel`` at once; a page view
  waits at most ``max_wait`` for it, a spawn for the whole ``timeout``.

A scheduler that does not answer yields :class:`UserAccounts` with
``error`` set and no account: :func:`settle` then refuses any named account
(and, where the cluster requires one, the spawn), so an outage never grants
an account.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Optional, Sequence

from hpcgw_profiles import ACCOUNT_RE, Catalog, Choice, ChoiceError, Cluster

LOG = logging.getLogger("JupyterHub.hpcgw_accounts")

Runner = Callable[[Sequence[str]], Awaitable[tuple[int, str, str]]]

# A hub user name as it may reach sacctmgr: one argv element, and nothing
# sacctmgr's parser would read as a second name (","), a filter ("=", " ")
# or a quote. The hub's authenticator admits no other names either.
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
FORMAT = "User,DefaultAccount,Cluster,Account"
MAX_ACCOUNTS = 200  # a user with more is cut here (the form lists them all otherwise)


@dataclass(frozen=True)
class UserAccounts:
    """One user's accounts on one cluster: the default first; ``error`` when unknown."""

    accounts: tuple[str, ...] = ()
    error: str = ""

    @property
    def default(self) -> str:
        return self.accounts[0] if self.accounts else ""


def from_data(cluster: Cluster, user: str, groups: Iterable[str]) -> UserAccounts:
    """The inventory's accounts of ``user`` (member of ``groups``) on ``cluster``."""
    group_set = frozenset(groups)
    granted = [g.name for g in cluster.account_grants if user in g.users or g.groups & group_set]
    return UserAccounts(tuple(dict.fromkeys([*granted, *cluster.accounts])))


def sacctmgr_argv(sacctmgr: str, user: str, cluster: str) -> list[str]:
    """The association query for ``user`` on SLURM cluster ``cluster``; ValueError for a name sacctmgr could misread."""
    if not USER_RE.fullmatch(user):
        raise ValueError(f"not a user name sacctmgr may be asked about: {user[:40]!r}")
    if not re.fullmatch(r"[a-z0-9_-]{1,40}", cluster):
        raise ValueError(f"not a SLURM cluster name: {cluster[:40]!r}")
    return [sacctmgr, "--noheader", "--parsable2", "show", "user", "where", f"name={user}", f"cluster={cluster}",
            "withassoc", f"format={FORMAT}"]


def parse_sacctmgr(output: str, user: str, cluster: str) -> UserAccounts:
    """sacctmgr's rows ``user|default account|cluster|account`` -> the user's accounts there.

    Only rows for exactly this user and cluster with a well-formed account
    count (a row of another user, a longer or shorter row, an account name
    with characters SLURM does not use: skipped). SLURM stores user names
    in lower case.
    """
    accounts: list[str] = []
    default = ""
    for line in output.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4:
            continue
        row_user, row_default, row_cluster, account = fields
        if row_user.lower() != user.lower() or row_cluster != cluster or not ACCOUNT_RE.match(account):
            continue
        if account not in accounts and len(accounts) < MAX_ACCOUNTS:
            accounts.append(account)
        if ACCOUNT_RE.match(row_default):
            default = row_default
    ordered = sorted(accounts)
    if default in ordered:
        ordered.remove(default)
        ordered.insert(0, default)
    return UserAccounts(tuple(ordered))


def failure_text(code: int, err: str) -> str:
    """A short, printable reason for a failed query (for the user and the log)."""
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    said = "".join(c for c in (lines[-1] if lines else f"exit status {code}") if c.isprintable())
    return re.sub(r"^sacctmgr: (error: )?", "", said)[:200]


class AccountLookup:
    """Per user and cluster, the accounts from sacctmgr: cached, coalesced, bounded."""

    def __init__(self, runner: Optional[Runner] = None, *, sacctmgr: str = "/usr/bin/sacctmgr", ttl: float = 60.0,
                 error_ttl: float = 10.0, timeout: float = 10.0, max_wait: float = 3.0, parallel: int = 4,
                 clock: Callable[[], float] = time.monotonic, counter: Any = None) -> None:
        self.runner = runner
        self.sacctmgr = sacctmgr
        self.ttl = ttl
        self.error_ttl = error_ttl
        self.timeout = timeout
        self.max_wait = max_wait
        self.parallel = parallel
        self.clock = clock
        self.counter = counter
        self.calls = 0
        self._cache: dict[tuple[str, str], tuple[float, UserAccounts]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[UserAccounts]] = {}
        self._running: Optional[asyncio.Semaphore] = None

    def clear(self) -> None:
        """Forget every cached answer (a query in flight still answers its callers)."""
        self._cache.clear()

    def _fresh(self, key: tuple[str, str]) -> Optional[UserAccounts]:
        cached = self._cache.get(key)
        if cached is None:
            return None
        at, answer = cached
        return answer if self.clock() - at < (self.error_ttl if answer.error else self.ttl) else None

    async def for_user(self, cluster: Cluster, user: str, groups: Iterable[str] = (), *,
                       page: bool = False) -> UserAccounts:
        """The user's accounts on ``cluster``; ``page``: wait at most ``max_wait`` (a page view)."""
        if cluster.account_source != "sacctmgr":
            return from_data(cluster, user, groups)
        key = (cluster.name, user)
        fresh = self._fresh(key)
        if fresh is not None:
            return fresh
        if key not in self._inflight:
            self._inflight[key] = asyncio.ensure_future(self._query(key, cluster.sacctmgr_cluster or cluster.name))
        future = self._inflight[key]
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.max_wait if page else self.timeout + 5)
        except asyncio.TimeoutError:
            return UserAccounts(error="the scheduler has not answered yet; reload the page in a few seconds")

    async def _query(self, key: tuple[str, str], slurm_cluster: str) -> UserAccounts:
        cluster, user = key
        try:
            argv = sacctmgr_argv(self.sacctmgr, user, slurm_cluster)
        except ValueError as exc:
            answer = UserAccounts(error=str(exc))
            self._cache[key] = (self.clock(), answer)
            self._inflight.pop(key, None)
            return answer
        if self._running is None:
            self._running = asyncio.Semaphore(self.parallel)
        try:
            async with self._running:
                self.calls += 1
                if self.counter is not None:
                    self.counter.count(cluster, "accounts")
                if self.runner is not None:
                    code, out, err = await asyncio.wait_for(self.runner(argv), self.timeout)
                else:
                    from hpcgw_status import run_exec  # the hub's no-shell runner (kills it on a time-out)

                    code, out, err = await run_exec(argv, timeout=self.timeout)
            # An outage can print its error and still exit 0: no answer then either.
            if code != 0 or re.search(r"^sacctmgr: (error|fatal)", err, re.M):
                raise RuntimeError(failure_text(code, err))
            answer = parse_sacctmgr(out, user, slurm_cluster)
            LOG.info("Accounts of %s on %s from sacctmgr: %s", user, cluster, ", ".join(answer.accounts) or "none")
        except Exception as exc:  # noqa: BLE001  (an outage grants nothing; the user is told)
            reason = str(exc) or type(exc).__name__
            LOG.warning("Account query for %s on %s failed: %s", user, cluster, reason)
            answer = UserAccounts(error=f"the scheduler did not say which accounts you have ({reason[:200]})")
        self._cache[key] = (self.clock(), answer)
        self._inflight.pop(key, None)
        for old in [k for k, (at, _) in self._cache.items() if self.clock() - at >= max(self.ttl, self.error_ttl)]:
            del self._cache[old]
        return answer


ACCOUNTS = AccountLookup()


def configure(sacctmgr: str, ttl: float, counter: Any = None) -> None:
    """The hub's settings (its config snippet calls this); the cache starts empty."""
    ACCOUNTS.sacctmgr = sacctmgr
    ACCOUNTS.ttl = float(ttl)
    ACCOUNTS.counter = counter
    ACCOUNTS.clear()


def notice(cluster: Cluster, accounts: UserAccounts) -> str:
    """What the form says about the user's accounts on ``cluster`` ("" when all is well)."""
    if not cluster.uses_accounts:
        return ""
    if accounts.error:
        return f"Your accounts on {cluster.title} are unknown right now: {accounts.error}."
    if accounts.accounts:
        return ""
    if cluster.account_required:
        return (f"You have no account on {cluster.title}, so you cannot start a server there: ask your "
                "project's PI or the HPC support to add you to one.")
    return f"You have no account of your own on {cluster.title}: jobs there run under the scheduler's default."


def settle(catalog: Catalog, choice: Choice, accounts: Optional[UserAccounts]) -> Choice:
    """The choice with the user's account: the one named (if it is theirs) or
    their default. ChoiceError (field ``account``) for an account that is not
    theirs, for no account where the cluster requires one, and whenever the
    user's accounts are unknown (``accounts`` None or with ``error``) but
    needed."""
    cluster = catalog.cluster(choice.cluster)
    if not cluster.uses_accounts:
        return choice
    if accounts is None:
        accounts = UserAccounts(error="they were not looked up")
    if accounts.error:
        if choice.account or cluster.account_required:
            raise ChoiceError(f"cannot check your accounts on cluster {cluster.name!r}: {accounts.error}; "
                              "try again in a minute", "account")
        return choice
    if choice.account:
        if choice.account not in accounts.accounts:
            yours = ", ".join(accounts.accounts) or "none"
            raise ChoiceError(f"unknown account {choice.account!r} on cluster {cluster.name!r}: "
                              f"not one of yours (yours: {yours})", "account")
        return choice
    if accounts.default:
        return Choice(choice.cluster, choice.queue, choice.cores, choice.memory_gb, choice.walltime_min,
                      choice.gpus, accounts.default)
    if cluster.account_required:
        raise ChoiceError(f"you have no account on cluster {cluster.name!r}; ask your project's PI or the HPC "
                          "support to add you to one", "account")
    return choice
