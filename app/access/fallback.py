"""``FallbackLimiter``: Redis limits while Redis answers, in-process limits while it does not.

The ``Limiter`` the policy uses when Redis is configured. Healthy, every call goes to
the ``RedisLimiter`` (global, exact; see ``limits``) and the budget counters the admit
script read are remembered in the ``LocalLimiter``. When a Redis call fails, the
``Breaker`` opens and calls go to the ``LocalLimiter`` at once: limits then hold per
replica (N replicas admit up to N times a limit), RPM/TPM windows start empty, and
budgets are checked against the last counters seen (plus this replica's spend since).
No request waits on a dead Redis: while the breaker is open, a background ``PING``
probes it every few seconds; when it answers, Redis is used again and the cost charged
locally during the outage is replayed into the Redis budget counters (tokens are not:
their 60-second window has moved on). docs/operations.md "Degraded mode" is the policy.

Must not: raise a Redis error to the policy, or wait on Redis while the breaker is open.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable
from typing import Any, TypeVar

from app.access.limits import NO_RESERVATION, OK, Demand, Reservation, Scope, Verdict
from app.access.local_limiter import LocalLimiter
from app.access.redis_limiter import RedisLimiter
from app.background import stop
from app.breaker import Breaker

log = logging.getLogger("routeiq.access.limits")
T = TypeVar("T")
REMEMBER_TTL_S = 3600
REPLAY_MAX = 50_000


class FallbackLimiter:
    def __init__(self, redis: RedisLimiter, local: LocalLimiter, breaker: Breaker, timeout_s: float = 1.0) -> None:
        self.redis, self.local, self.breaker = redis, local, breaker
        self._timeout = timeout_s
        self._unreplayed: deque[tuple[list[Scope], float, Reservation]] = deque(maxlen=REPLAY_MAX)
        """Costs settled locally while Redis was down (with the reservation Redis holds for
        them, if any), replayed into its budget counters when it is back."""
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _call(self, call: Awaitable[T]) -> tuple[bool, T | None]:
        """(True, result) from Redis, or (False, None) after tripping the breaker."""
        try:
            async with asyncio.timeout(self._timeout):
                result = await call
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except Exception as err:  # noqa: BLE001  (connection, timeout, server errors: all mean "use local")
            self.breaker.failure(err)
            return False, None
        was_down = not self.breaker.up
        self.breaker.success()
        if was_down and self._unreplayed:
            self._spawn(self._replay())
        return True, result

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _use_redis(self) -> bool:
        """True while up; while down, start a background probe when one is due."""
        if self.breaker.up:
            return True
        if self.breaker.allow():
            # A fresh pool: connections made before a restart would fail once each and
            # re-open the breaker right after it closed.
            self._spawn(self._call(self.redis.ping(fresh=True)))
        return False

    async def probe(self) -> dict[str, Any]:
        """Readiness: Redis's state; a ``PING`` only when no call succeeded in the last 2 s."""
        if self.breaker.seen_up_within(2.0):
            return self.breaker.report()
        if self.breaker.up:
            await self._call(self.redis.ping())
        else:
            self._use_redis()
        return self.breaker.report()

    # the Limiter protocol -----------------------------------------------------------------
    async def admit(self, scopes: list[Scope], member: str, demand: Demand) -> Verdict:
        if self._use_redis():
            ok, verdict = await self._call(self.redis.admit(scopes, member, demand))
            if ok and verdict is not None:
                if verdict.code == OK:
                    for scope, spent in zip(scopes, verdict.spent, strict=False):
                        if spent is not None:  # as read before the reservation: local charges add it all
                            self.local.remember(scope.spend_key, spent, REMEMBER_TTL_S)
                return verdict
        return await self.local.admit(scopes, member, demand)

    async def charge(self, scopes: list[Scope], tokens: int, cost: float, reservation: Reservation) -> None:
        """Reconcile where the reservation is; a Redis reservation settled while Redis is down
        is charged locally in full and replayed (against the reservation) when it is back."""
        if reservation.origin == "local":  # admitted during an outage: Redis never saw it
            await self.local.charge(scopes, tokens, cost, reservation)
            if self._use_redis() and (await self._call(self.redis.charge(scopes, tokens, cost, NO_RESERVATION)))[0]:
                return
            if cost:
                self._unreplayed.append((scopes, cost, NO_RESERVATION))
            return
        if self._use_redis() and (await self._call(self.redis.charge(scopes, tokens, cost, reservation)))[0]:
            return
        await self.local.charge(scopes, tokens, cost, NO_RESERVATION)
        if cost or reservation.cost:
            self._unreplayed.append((scopes, cost, Reservation(cost=reservation.cost,
                                                               spend_keys=reservation.spend_keys,
                                                               member=reservation.member)))

    async def _replay(self) -> None:
        replayed = 0
        while self._unreplayed and self.breaker.up:
            scopes, cost, held = self._unreplayed.popleft()
            ok, _ = await self._call(self.redis.charge(scopes, 0, cost, held))
            if not ok:
                self._unreplayed.appendleft((scopes, cost, held))
                return
            replayed += 1
        log.warning("replayed %d charges made during the Redis outage into its budget counters", replayed)

    async def seed_spend(self, spend_key: str, value: float, ttl_s: int) -> None:
        await self.local.seed_spend(spend_key, value, ttl_s)
        if self._use_redis():
            await self._call(self.redis.seed_spend(spend_key, value, ttl_s))

    async def bump(self, ver_key: str, version: int) -> None:
        await self.local.bump(ver_key, version)
        if not (self._use_redis() and (await self._call(self.redis.bump(ver_key, version)))[0]):
            log.warning("redis down: a record change reaches other replicas when their key cache expires")

    async def versions(self, ver_keys: list[str]) -> list[str | None]:
        if self._use_redis():
            ok, value = await self._call(self.redis.versions(ver_keys))
            if ok and value is not None:
                return value
        return await self.local.versions(ver_keys)

    async def spent(self, spend_key: str) -> float | None:
        if self._use_redis():
            ok, value = await self._call(self.redis.spent(spend_key))
            if ok:
                return value
        return await self.local.spent(spend_key)

    async def tokens_used(self, tpm_keys: list[str]) -> list[int]:
        if self._use_redis():
            ok, value = await self._call(self.redis.tokens_used(tpm_keys))
            if ok and value is not None:
                return value
        return await self.local.tokens_used(tpm_keys)

    async def claim(self, key: str, ttl_s: int) -> bool:
        if self._use_redis():
            ok, value = await self._call(self.redis.claim(key, ttl_s))
            if ok and value is not None:
                return bool(value)
        return await self.local.claim(key, ttl_s)

    async def close(self) -> None:
        await stop(*self._tasks)
        await self.redis.close()
