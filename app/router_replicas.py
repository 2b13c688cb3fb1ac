"""Redis for the router registry's sync: the per-node download lock, and each scorer
replica's reported state (what ``/router/info`` lists per replica).

Both degrade rather than fail: with Redis down, the lock says so and the download
goes ahead unlocked (it is verified either way, and the cache's atomic rename makes
two concurrent downloads harmless); a state report that fails is skipped (the next
round reports again).

Replica states live in one hash (``<prefix>:router-replicas``: one key, so it works on
a cluster too), a field per replica holding its JSON state and report time; a reader
ignores and removes fields older than the TTL (a replica that died stops reporting),
so no per-field expiry is needed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

log = logging.getLogger("routeiq.router_sync")


class RedisDownloadLock:
    """``DownloadLock`` on Redis: one downloader per name, with a lease (a crashed holder's
    lock expires) and a bounded wait; Redis down or slow means no lock, not no download."""

    def __init__(self, redis: Any, prefix: str, lease_s: float) -> None:
        self._redis, self._prefix, self._lease = redis, prefix, lease_s

    @contextlib.asynccontextmanager
    async def held(self, name: str) -> AsyncIterator[str]:
        from redis.exceptions import LockError, RedisError

        lock = self._redis.lock(f"{self._prefix}:router-download:{name}", timeout=self._lease,
                                blocking_timeout=self._lease + 5, sleep=0.2)
        try:
            got = await lock.acquire()
        except (RedisError, OSError) as err:
            log.warning("router download lock unavailable, downloading without it: %s", type(err).__name__)
            got, how = False, f"unlocked: redis unavailable ({type(err).__name__})"
        else:
            how = "locked" if got else "unlocked: lock wait timed out"
        try:
            yield how
        finally:
            if got:
                with contextlib.suppress(LockError, RedisError, OSError):  # expired or Redis gone: nothing to free
                    await lock.release()


class ReplicaStates:
    """Each scorer replica's sync state, reported to and read from one Redis hash."""

    def __init__(self, redis: Any, prefix: str, ttl_s: float) -> None:
        self._redis, self._key, self._ttl = redis, f"{prefix}:router-replicas", ttl_s

    async def report(self, replica: str, routers: dict[str, Any]) -> None:
        body = orjson.dumps({"replica": replica, "reported_at": time.time(), "routers": routers})
        await self._redis.hset(self._key, replica, body)

    async def read(self) -> list[dict[str, Any]]:
        """Every replica that reported within the TTL (stale fields are removed)."""
        return await fresh_reports(self._redis, self._key, self._ttl)


async def fresh_reports(redis: Any, key: str, ttl_s: float) -> list[dict[str, Any]]:
    """The reports in hash ``key`` written within ``ttl_s``, by replica; stale or unreadable
    fields are deleted here, so a replica that died needs no per-field expiry to disappear.

    Each field's JSON carries ``reported_at`` (epoch seconds) and ``replica``: the scorer
    replicas' states (``ReplicaStates``) and the ingress replicas' applied config versions
    (``app.config_sync.record``) are both read through this one function.
    """
    raw = await redis.hgetall(key)
    fresh, stale = [], []
    for field, value in raw.items():
        try:
            state = orjson.loads(value)
            if time.time() - float(state["reported_at"]) <= ttl_s:
                fresh.append(state)
                continue
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            pass
        stale.append(field)
    if stale:
        await redis.hdel(key, *stale)
    return sorted(fresh, key=lambda s: str(s.get("replica")))
