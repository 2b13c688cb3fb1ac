"""``VirtualKeyPolicy``: the ``AccessPolicy`` of virtual keys, teams, limits and spend.

Per request: ``authenticate`` hashes the bearer token and looks the hash up in a
per-replica cache (short TTL; a miss is one indexed query joining the team);
``admit`` is one limiter call (one Redis round trip) for versions, parallel requests,
RPM, TPM and budget of the key, its team and the key's own limits on the model
(LiteLLM's ``model_*`` fields: one more scope); ``settle`` appends to the spend buffer
and, in a background task, charges tokens and cost, releases the request's parallel
slot and checks the key's ``soft_budget``. ``Exchange.close`` settles on every exit, so
every admitted request releases its slot. The cache is kept honest across replicas by
versions: an admin change bumps the record's version in the limiter, and the admit
script reports a cached record as stale, which is then reloaded.

Degraded mode (docs/operations.md): with Redis down the ``FallbackLimiter`` limits per
replica; with the database down a cached grant outlives its TTL until the database
answers again, and only a key this replica has not cached gets a 503.

Must not: log a key or an Authorization header, call the database on a cache hit, or
let a limiter/database failure become a 500 (at worst it is a 503 ``OverloadedError``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from app.access import limits as L
from app.access.key_cache import KeyCache, is_key_shaped
from app.access.keys import Grant, Limits, effective_models, hash_key, now_utc, utc
from app.access.limits import NO_RESERVATION, Demand, Limiter, Reservation, Scope, retry_after_s
from app.access.soft_budget import SoftBudgetAlerts
from app.access.spend import SpendBuffer
from app.access.store import AccessStore, SpendEvent, StoreUnavailableError
from app.audit.denials import DenialTally
from app.auth import Principal, bearer_token, is_master
from app.errors import (
    AuthenticationError,
    InvalidRequestError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RouteIQError,
)
from app.providers.base import Usage

log = logging.getLogger("routeiq.access")
MASTER = Principal(key_id="master", is_admin=True)
CACHE_MAX = 50_000
SEED_TTL_MAX_S = 3600
"""Budget counters expire at least hourly and are re-read from the database then."""
COUNT_ONLY = 1e15
"""The budget of a key with a ``soft_budget`` and no ``max_budget``: its spend is counted
(in the same window counter) and never reaches it."""
SOFT_CLAIM_LIFETIME_S = 400 * 86400
"""How long a lifetime budget's soft-budget alert stays claimed."""
SEED_BLIND_TTL_S = 60
"""A counter started at 0 because the database is down is re-read after this."""


def limits_of(row: dict[str, Any], tz: str = "UTC") -> Limits:
    anchor = utc(row["budget_anchor"])
    return Limits(
        rpm=row["rpm_limit"], tpm=row["tpm_limit"], budget=row["max_budget"],
        budget_duration=row["budget_duration"], budget_tz=tz,
        budget_anchor=anchor.timestamp() if anchor else 0.0, version=int(row["version"]),
    )


def grant_of(key: dict[str, Any], team: dict[str, Any] | None, tz: str = "UTC") -> Grant:
    expires = utc(key["expires_at"])
    return Grant(
        key_id=key["key_id"], key=limits_of(key, tz), team_id=key["team_id"],
        team=limits_of(team, tz) if team else None,
        models=effective_models(key["models"], team["models"] if team else None),
        admin=bool(key["admin"]), blocked=bool(key["blocked"]) or bool(team and team["blocked"]),
        expires_at=expires.timestamp() if expires else None,
        key_hash=key["key_hash"], user_id=key.get("user_id"), parallel=key.get("max_parallel_requests"),
        model_limits=model_limits_of(key, tz), soft_budget=key.get("soft_budget"),
        explore=all((row.get("metadata") or {}).get("routeiq_explore", True) is not False
                    for row in (key, team) if row),
    )


def model_limits_of(key: dict[str, Any], tz: str) -> tuple[tuple[str, Limits], ...]:
    """The key's per-model limits: one ``Limits`` per model named in any ``model_*`` field
    (a model budget without its own duration takes the key's ``budget_duration``)."""
    rpm, tpm = key.get("model_rpm_limit") or {}, key.get("model_tpm_limit") or {}
    budgets = key.get("model_max_budget") or {}
    anchor = utc(key["budget_anchor"])
    out = []
    for model in sorted({*rpm, *tpm, *budgets}):
        budget = budgets.get(model) or {}
        out.append((model, Limits(
            rpm=rpm.get(model), tpm=tpm.get(model), budget=budget.get("max_budget"),
            budget_duration=budget.get("budget_duration") or key["budget_duration"], budget_tz=tz,
            budget_anchor=anchor.timestamp() if anchor else 0.0, version=int(key["version"]))))
    return tuple(out)


class VirtualKeyPolicy:
    def __init__(
        self,
        master_key: Callable[[], str],
        store: AccessStore,
        limiter: Limiter,
        spend: SpendBuffer,
        *,
        prefix: str = "routeiq",
        cache_ttl_s: float = 10.0,
        limiter_timeout_s: float = 2.0,
        lookups_per_s: float = 50.0,
        budget_tz: str = "UTC",
        alerts: SoftBudgetAlerts | None = None,
    ) -> None:
        self._master_key = master_key
        self.store = store
        self.limiter = limiter
        self.spend = spend
        self.prefix = prefix
        self.budget_tz = budget_tz
        self.alerts = alerts or SoftBudgetAlerts()
        self.denials = DenialTally()
        """Refusals, written to the audit log per key and reason by ``app.operations``."""
        self._limiter_timeout = limiter_timeout_s
        self._keys = KeyCache(cache_ttl_s, max_known=CACHE_MAX, lookups_per_s=lookups_per_s)
        self._tasks: set[asyncio.Task[None]] = set()

    # lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        from app.access.migrate import upgrade

        await upgrade(self.store.engine)
        self.spend.start()

    async def close(self) -> None:
        """Finish pending charges and drain the spend buffer (the clients are the wiring's)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.spend.close()
        await self.limiter.close()
        await self.store.close()

    # authenticate -----------------------------------------------------------------------------
    async def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        if is_master(token, self._master_key()):
            return MASTER
        grant = None
        try:
            if not is_key_shaped(token):
                raise AuthenticationError("Incorrect API key provided")  # no lookup for what cannot be a key
            grant = await self._grant(hash_key(token))
            self._check_valid(grant)
        except AuthenticationError as err:  # audited, aggregated (app.audit.denials)
            self.denials.count(grant.key_id if grant else None, err.code or "invalid_api_key", err.status)
            raise
        assert grant is not None
        return self._principal(grant)

    async def authenticate_hash(self, key_hash: str) -> Principal:
        """The caller whose key has this stored hash, with ``authenticate``'s checks (blocked,
        expired, unknown: 401). The console's session names its key by id and hash, never
        by the key itself (``app.console.operator``)."""
        grant = await self._grant(key_hash)
        self._check_valid(grant)
        assert grant is not None
        return self._principal(grant)

    async def verify(self, principal: Principal) -> Principal:
        """The caller as it is now on every replica: a key blocked, deleted or changed anywhere
        is re-read (one limiter round trip: the records' versions, as ``admit`` checks them)."""
        grant = principal.grant
        if not isinstance(grant, Grant):
            return principal  # the master key
        scopes = self.scopes(grant)
        current = await self.guarded(self.limiter.versions([s.ver_key for s in scopes]))
        if all(v is None or v == str(s.version) for v, s in zip(current, scopes, strict=True)):
            return principal
        try:
            fresh = await self._reload(grant, None)
        except StoreUnavailableError:
            log.warning("database down: key %s changed elsewhere; serving its cached record", grant.key_id)
            return principal
        return self._principal(fresh)

    @staticmethod
    def _principal(grant: Grant) -> Principal:
        return Principal(key_id=grant.key_id, is_admin=grant.admin, allowed_models=grant.models,
                         team_id=grant.team_id, explore=grant.explore, grant=grant)

    @staticmethod
    def _check_valid(grant: Grant | None) -> None:
        if grant is None:
            raise AuthenticationError("Incorrect API key provided")
        if grant.blocked:
            raise AuthenticationError("This API key is blocked", code="key_blocked")
        if grant.expired(time.time()):
            raise AuthenticationError("This API key has expired", code="key_expired")

    async def _grant(self, key_hash: str, fresh: bool = False) -> Grant | None:
        if not fresh:
            cached, grant = self._keys.fresh(key_hash)
            if cached:
                return grant
        stale = self._keys.stale(key_hash)
        if not fresh and not self._keys.may_look_up():  # the lookup budget is spent (a flood of tokens)
            if stale is not None:
                self._keys.keep(key_hash, stale)
                return stale
            raise OverloadedError("too many unknown API keys at once; retry shortly", retry_after=1)
        try:
            found = await self.store.key_with_team(key_hash)
        except StoreUnavailableError:
            if stale is None:
                raise  # never seen here: 503 with Retry-After (docs/operations.md)
            self._keys.keep(key_hash, stale)  # the database is down: keep it
            return stale
        grant = grant_of(*found, self.budget_tz) if found else None
        self._keys.put(key_hash, grant)
        return grant

    def invalidate(self, key_ids: set[str] | None = None, team_id: str | None = None) -> None:
        """Forget cached grants of these keys or of this team (after an admin change here)."""
        self._keys.forget(key_ids, team_id)

    # admit ------------------------------------------------------------------------------------
    def scope_keys(self, kind: str, ident: str, team_id: str | None = None) -> tuple[str, str, str, str]:
        """Limiter key names of a key or team: version, RPM, TPM and the budget prefix.

        One hash tag per team (``{prefix:team:T}``) holds the team's counters and those of
        every key in it; a key without a team has its own (``{prefix:key:K}``). One admit
        touches a key and its team, so on a Redis Cluster all of its keys are in one slot
        and the script stays atomic (exact limits). A key moved to another team starts
        new RPM/TPM windows there (its budget counter is re-read from the database).
        """
        home = f"team:{ident}" if kind == "team" else f"team:{team_id}" if team_id else f"key:{ident}"
        base = f"{{{self.prefix}:{home}}}:{kind}:{ident}"
        return f"{base}:ver", f"{base}:rpm", f"{base}:tpm", f"{base}:spend"

    def _scope(self, kind: str, ident: str, lim: Limits, now: float, team_id: str | None = None) -> Scope:
        ver, rpm, tpm, spend = self.scope_keys(kind, ident, team_id)
        span = lim.window(now)
        period = int(span[0]) if span else 0
        return Scope(kind, lim.version, lim.rpm, lim.tpm, lim.budget, ver, rpm, tpm, f"{spend}:{period}",
                     par_key=f"{ver[:-4]}:inflight")

    def scopes(self, grant: Grant, now: float | None = None, model: str = "") -> list[Scope]:
        """The key's scope (with ``max_parallel_requests``), its team's, and the key's own
        limits on ``model`` if it has any. A per-model scope shares the key's version key
        (an update to the key reloads it too) and the key's hash tag (one Redis slot)."""
        now = time.time() if now is None else now
        key = replace(self._scope("key", grant.key_id, grant.key, now, grant.team_id), parallel=grant.parallel)
        if key.budget is None and grant.soft_budget is not None:
            key = replace(key, budget=COUNT_ONLY)  # counted for the soft budget, never refused
        scopes = [key]
        if grant.team_id and grant.team:
            scopes.append(self._scope("team", grant.team_id, grant.team, now))
        if model and (lim := grant.model_limits_for(model)) is not None:
            scopes.append(self._model_scope(key, model, lim, now))
        return scopes

    @staticmethod
    def _model_scope(key: Scope, model: str, lim: Limits, now: float) -> Scope:
        base = f"{key.ver_key[:-4]}:model:{model}"
        span = lim.window(now)
        spend = f"{base}:spend:{int(span[0]) if span else 0}"
        return Scope("model", key.version, lim.rpm, lim.tpm, lim.budget, key.ver_key, f"{base}:rpm",
                     f"{base}:tpm", spend, par_key=f"{base}:inflight", model=model)

    async def guarded(self, op: Any) -> Any:
        try:
            async with asyncio.timeout(self._limiter_timeout):
                return await op
        except RouteIQError:
            raise
        except Exception as err:  # noqa: BLE001  (redis errors, timeouts: one 503 for all)
            log.warning("rate limiter unavailable: %s", type(err).__name__)
            raise OverloadedError("rate limiter unavailable; retry shortly", retry_after=1) from None

    async def admit(self, principal: Principal, model: str, demand: Demand) -> Reservation:
        """Check the limits and hold back ``demand`` (TPM and budget) in the same atomic step."""
        grant = principal.grant
        if not isinstance(grant, Grant):
            return NO_RESERVATION  # the master key: no limits
        member = secrets.token_hex(8)
        for _ in range(4):
            scopes = self.scopes(grant, model=model)
            verdict: L.Verdict = await self.guarded(self.limiter.admit(scopes, member, demand))
            if verdict.code == L.OK:
                return replace(verdict.reservation, model=model)
            scope = scopes[verdict.scope]
            if verdict.code == L.STALE:
                try:
                    grant = await self._reload(grant, model)
                except StoreUnavailableError:
                    # Changed on another replica, but the database is down: the cached record
                    # stands until it is back (degraded mode, docs/operations.md).
                    log.warning("database down: key %s changed elsewhere; serving its cached record", grant.key_id)
                    return NO_RESERVATION
            elif verdict.code == L.UNSEEDED:
                await self._seed(grant, scope)
            else:
                refusal = _refusal(verdict, scope, demand)
                self.denials.count(grant.key_id, refusal.code or refusal.type, refusal.status)
                raise refusal
        raise OverloadedError("access check did not settle; retry", retry_after=1)

    async def _reload(self, grant: Grant, model: str | None) -> Grant:
        """The record changed on some replica: re-read it and re-check it (a regenerated key's
        old secret is found under no hash any more: 401)."""
        found = await self.store.get("keys", grant.key_id)  # the cache is kept if this fails
        self.invalidate({grant.key_id})
        if found is not None and grant.key_hash and found["key_hash"] != grant.key_hash:
            found = None
        fresh = await self._grant(found["key_hash"], fresh=True) if found else None
        self._check_valid(fresh)
        assert fresh is not None
        if model is not None and fresh.models is not None and model not in fresh.models:
            raise PermissionDeniedError(f"this key may not use model `{model}`", param="model")
        return fresh

    async def _seed(self, grant: Grant, scope: Scope) -> None:
        """Initialise a missing budget counter from the database (reconciliation)."""
        lim, column, ident = (grant.team, "team_id", grant.team_id) if scope.name == "team" else (
            grant.key, "key_id", grant.key_id)
        if scope.name == "model":
            lim = grant.model_limits_for(scope.model)
        assert lim is not None and ident is not None
        now = time.time()
        span = lim.window(now)
        since = None if span is None else _from_epoch(span[0])
        ttl = SEED_TTL_MAX_S
        if span is not None:
            ttl = min(ttl, int(span[1] - now) + 60)
        try:
            spent = await self.store.spend_since(column, ident, since, model=scope.model or None)
        except StoreUnavailableError:
            # No replica knows this counter and the database is down: start it at 0 for
            # a minute rather than refuse every request (docs/operations.md).
            log.warning("database down: budget of %s %s counted from 0 for %d s", scope.name, ident,
                        SEED_BLIND_TTL_S)
            spent, ttl = 0.0, SEED_BLIND_TTL_S
        await self.guarded(self.limiter.seed_spend(scope.spend_key, spent, ttl))

    # health -------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """Readiness detail: each dependency's state and the spend events not yet written."""
        redis_probe = getattr(self.limiter, "probe", None)  # only the FallbackLimiter has Redis
        database, redis = await asyncio.gather(self.store.probe(), redis_probe() if redis_probe else _none())
        report = {"redis": redis} if redis is not None else {}
        return {**report, "database": database, "spend_buffer": self.spend.stats.pending}

    # settle -----------------------------------------------------------------------------------
    def settle(self, principal: Principal, model: str, usage: Usage | None, request_id: str,
               reservation: Reservation = NO_RESERVATION) -> None:
        """Record what a request used (``None``: it got no answer) and replace its reservation."""
        grant = principal.grant if isinstance(principal.grant, Grant) else None
        if usage is not None:
            self.spend.add(SpendEvent(uuid.uuid4().hex, request_id, principal.key_id, principal.team_id, model,
                                      usage.prompt_tokens, usage.completion_tokens, usage.cost, now_utc(),
                                      usage.estimated, grant.user_id if grant else None))
        used = usage or Usage()
        if isinstance(principal.grant, Grant) and (used.total_tokens or used.cost or reservation != NO_RESERVATION):
            task = asyncio.create_task(self._charge(principal.grant, used, reservation))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _charge(self, grant: Grant, usage: Usage, reservation: Reservation) -> None:
        scopes = self.scopes(grant, model=reservation.model)
        try:
            async with asyncio.timeout(self._limiter_timeout):
                await self.limiter.charge(scopes, usage.total_tokens, usage.cost, reservation)
                if grant.soft_budget is not None and usage.cost:
                    await self._soft_budget(grant, scopes[0])
        except Exception as err:  # noqa: BLE001  (a lost charge must not fail anything)
            log.warning("could not charge %s tokens to key %s: %s", usage.total_tokens, grant.key_id,
                        type(err).__name__)

    async def _soft_budget(self, grant: Grant, scope: Scope) -> None:
        """Alert once per budget window (all replicas) when the key's spend, as its window
        counter holds it, reached its ``soft_budget``."""
        assert grant.soft_budget is not None
        spent = await self.limiter.spent(scope.spend_key)
        if spent is None or spent < grant.soft_budget:
            return
        now = time.time()
        span = grant.key.window(now)
        ttl = int(span[1] - now) + 60 if span else SOFT_CLAIM_LIFETIME_S
        if await self.limiter.claim(f"{scope.spend_key}:soft:{grant.soft_budget!r}", ttl):
            task = asyncio.create_task(self.alerts.fire(grant.key_id, grant.user_id, spent, grant.soft_budget,
                                                        span[1] if span else None))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


def _refusal(verdict: L.Verdict, scope: Scope, demand: Demand) -> RouteIQError:
    """The error for a refused admission (429 when waiting helps, 400 when it cannot)."""
    code, who = verdict.code, f"key on model `{scope.model}`" if scope.model else scope.name
    if code == L.PARALLEL:
        return RateLimitError(f"Max parallel request limit reached for this {who}: {scope.parallel} requests in "
                              "flight", retry_after=retry_after_s(verdict.retry_ms))
    if code == L.RPM:
        return RateLimitError(f"Rate limit reached for this {who}: {scope.rpm} requests per minute",
                              retry_after=retry_after_s(verdict.retry_ms))
    if code == L.TPM:
        return RateLimitError(f"Rate limit reached for this {who}: {scope.tpm} tokens per minute (this request "
                              f"reserves {demand.tokens})", retry_after=retry_after_s(verdict.retry_ms))
    if code == L.TPM_TOO_BIG:
        return InvalidRequestError(f"This request may use up to {demand.tokens} tokens (prompt + max_tokens x n), "
                                   f"more than this {who}'s limit of {scope.tpm} per minute; lower max_tokens",
                                   param="max_tokens", code="tokens_exceed_limit")
    if code == L.BUDGET_SHORT:
        return InvalidRequestError(f"This request may cost up to ${demand.cost:.6g} (prompt + max_tokens x n), more "
                                   f"than is left of this {who}'s budget (${scope.budget:g}); lower max_tokens",
                                   code="budget_exceeded")
    return InvalidRequestError(f"Budget exceeded for this {who}: max budget ${scope.budget:g}",
                               code="budget_exceeded")


async def _none() -> None:
    return None


def _from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
