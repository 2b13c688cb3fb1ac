"""Cooldowns: a provider deployment that failed N times in a window is skipped for a while.

Only upstream failures count (the gateway's core never reports a client's bad input, its
disconnect, or the gateway's own back-pressure), and the failures must come from at
least ``min_keys`` distinct keys: one tenant sending requests that make an upstream fail
cannot cool a model down for every other tenant (``router_settings.cooldown_min_keys``;
1 for a single-tenant gateway).

The state is shared across ingress replicas through Redis (one Lua script per failure:
count in a window, open a cooldown key with a TTL); in embedded mode it is in-process.
Reading it is on every request's path, so replicas keep a local copy that a background
loop (started with the replica, ``start``) refreshes every ``refresh_s``, idle or not,
so the first request after a quiet spell sees fresh state; no request waits on Redis.
While Redis fails, the replica uses its in-process state behind the same ``Breaker``
as every other dependency (``app.breaker``) instead of hammering a dead server.
Every key of a gateway's cooldowns shares one hash tag (``{prefix:cd}``), so the script
and the refresh's ``MGET`` run on one node of a Redis Cluster.
Must not: own the Redis client (the replica's wiring builds and closes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from app.breaker import Breaker
from app.config import GatewayConfig

log = logging.getLogger("routeiq.cooldowns")

_FAILURE_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('PEXPIRE', KEYS[3], math.max(redis.call('PTTL', KEYS[1]), 1))
if n >= tonumber(ARGV[2]) and redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[4]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1], KEYS[3])
  return 1
end
return 0
"""


class Cooldowns(Protocol):
    """Which deployments (indexes into ``model_list``) are cooling down."""

    def cooling(self) -> frozenset[int]: ...

    async def failure(self, deployment: int, key: str) -> bool:
        """Count an upstream failure of a request by ``key``; True when it starts a cooldown."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalCooldowns:
    """In-process cooldowns (embedded mode, and the fallback when Redis is down)."""

    def __init__(self, allowed_fails: int, window_s: float, cooldown_s: float, min_keys: int = 1) -> None:
        self._allowed, self._window, self._cooldown = allowed_fails, window_s, cooldown_s
        self._min_keys = min_keys
        self._fails: dict[int, deque[tuple[float, str]]] = {}
        self._until: dict[int, float] = {}

    def cooling(self) -> frozenset[int]:
        now = time.monotonic()
        if any(t <= now for t in self._until.values()):
            self._until = {d: t for d, t in self._until.items() if t > now}
        return frozenset(self._until)

    def mark(self, deployment: int, seconds: float) -> None:
        self._until[deployment] = time.monotonic() + seconds

    async def failure(self, deployment: int, key: str) -> bool:
        now = time.monotonic()
        fails = self._fails.setdefault(deployment, deque())
        fails.append((now, key))
        while fails and fails[0][0] < now - self._window:
            fails.popleft()
        if len(fails) < self._allowed or len({k for _, k in fails}) < self._min_keys:
            return False
        fails.clear()
        self.mark(deployment, self._cooldown)
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisCooldowns:
    """Cooldowns shared through Redis, read from a background-refreshed local copy."""

    def __init__(
        self,
        redis: Any,
        deployments: Sequence[str],
        *,
        allowed_fails: int,
        window_s: float,
        cooldown_s: float,
        min_keys: int = 1,
        prefix: str = "routeiq",
        refresh_s: float = 0.5,
        breaker: Breaker | None = None,
    ) -> None:
        self._redis = redis
        self._ids = list(deployments)
        """Stable names of the deployments, by index (the same on every replica)."""
        self._prefix = prefix
        self._args = (int(window_s * 1000), allowed_fails, int(cooldown_s * 1000), min_keys)
        self._local = LocalCooldowns(allowed_fails, window_s, cooldown_s, min_keys)
        self._shared: frozenset[int] = frozenset()
        self._refresh_s = refresh_s
        self.breaker = breaker or Breaker("redis (cooldowns)")
        self._loop_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._script = redis.register_script(_FAILURE_LUA)

    def _key(self, kind: str, deployment: int) -> str:
        return f"{{{self._prefix}}}:{kind}:{self._ids[deployment]}"  # one hash tag: one cluster slot

    def cooling(self) -> frozenset[int]:
        return self._shared | self._local.cooling()

    async def start(self) -> None:
        """Start the background refresh (the replica's start-up calls it)."""
        if self._loop_task is None:
            self._stop.clear()
            self._loop_task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            if self.breaker.allow():
                await self._refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._refresh_s)

    async def _refresh(self) -> None:
        try:
            values = await self._redis.mget([self._key("cooldown", i) for i in range(len(self._ids))])
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except Exception as err:  # noqa: BLE001  (any Redis failure opens the breaker)
            self.breaker.failure(err)
            return
        self.breaker.success()
        self._shared = frozenset(i for i, v in enumerate(values) if v is not None)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop the background refresh (the replica's shutdown calls it).

        The loop is asked to stop between two reads rather than cancelled in the middle of
        one: redis-py can hang on a command cancelled while its connection is being made.
        """
        task, self._loop_task = self._loop_task, None
        if task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def failure(self, deployment: int, key: str) -> bool:
        if not self.breaker.allow():
            return await self._local.failure(deployment, key)
        try:
            keys = [self._key(kind, deployment) for kind in ("fails", "cooldown", "failkeys")]
            started = bool(await self._script(keys=keys, args=[*self._args, key]))
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except Exception as err:  # noqa: BLE001
            self.breaker.failure(err)
            return await self._local.failure(deployment, key)
        self.breaker.success()
        if started:
            self._shared = self._shared | {deployment}
        return started


def build_cooldowns(cfg: GatewayConfig, redis: Any | None) -> Cooldowns:
    """Shared cooldowns when the replica has a Redis client, in-process ones otherwise."""
    rs = cfg.router_settings
    if redis is None:
        return LocalCooldowns(rs.allowed_fails, rs.allowed_fails_window_s, rs.cooldown_time_s, rs.cooldown_min_keys)
    ids = [f"{i}:{entry.model_name}" for i, entry in enumerate(cfg.model_list)]
    return RedisCooldowns(redis, ids, allowed_fails=rs.allowed_fails, window_s=rs.allowed_fails_window_s,
                          cooldown_s=rs.cooldown_time_s, min_keys=rs.cooldown_min_keys,
                          prefix=f"{cfg.general_settings.access.redis_prefix}:cd")
