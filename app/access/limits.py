"""RPM, TPM and budget admission, global across replicas (Redis) or in-process (embedded).

One ``admit`` is one Redis round trip: a Lua script checks, for the key and its team,
that the cached record is current, the RPM window (a sorted set: exact sliding window),
the TPM window (six 10-second buckets of tokens actually used) and the budget counter,
and only when every check passes records the request in the RPM windows. Redis runs
the script atomically, so N replicas can never admit more than the limit between them.
``charge`` adds the tokens and cost of a finished request (off the request path).

``LocalLimiter`` implements the same semantics in one process (a single event loop
makes each call atomic); it is for the embedded, single-process mode only.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

WINDOW_MS = 60_000
BUCKET_MS = 10_000
BUCKETS = WINDOW_MS // BUCKET_MS

OK, RPM, TPM, BUDGET, STALE, UNSEEDED = range(6)


@dataclass(frozen=True)
class Scope:
    """One limited subject (a key or a team) and the names of its counters."""

    name: str
    """``key`` or ``team`` (for messages)."""
    version: int
    rpm: int | None
    tpm: int | None
    budget: float | None
    ver_key: str
    rpm_key: str
    tpm_key: str
    spend_key: str
    """Budget counter of the current budget window."""


@dataclass(frozen=True)
class Verdict:
    code: int
    retry_ms: int = 0
    scope: int = 0
    spent: tuple[float | None, ...] = ()
    """On OK from Redis: each scope's budget counter as read (``None``: no budget)."""


class Limiter(Protocol):
    async def admit(self, scopes: list[Scope], member: str) -> Verdict: ...

    async def charge(self, scopes: list[Scope], tokens: int, cost: float) -> None: ...

    async def seed_spend(self, spend_key: str, value: float, ttl_s: int) -> None:
        """Set a missing budget counter (from the database); never overwrite one."""
        ...

    async def bump(self, ver_key: str, version: int) -> None:
        """Publish a record's new version: replicas caching an older one reload it."""
        ...

    async def spent(self, spend_key: str) -> float | None: ...

    async def versions(self, ver_keys: list[str]) -> list[str | None]:
        """The published versions of records (``None``: never bumped)."""
        ...

    async def close(self) -> None: ...


# Both scripts read the clock of the Redis server, never the caller's: replicas on
# different nodes with skewed clocks still share one window.
NOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

ADMIT_LUA = NOW_LUA + """
local member = ARGV[2]
local n = tonumber(ARGV[3])
local spent_out = {}
local window = 60000
local bucket_ms = 10000
for s = 0, n - 1 do
  local k = s * 4
  local a = 4 + s * 4
  local rpm = tonumber(ARGV[a + 1])
  local tpm = tonumber(ARGV[a + 2])
  local budget = tonumber(ARGV[a + 3])
  local cur = redis.call('GET', KEYS[k + 1])
  if cur and cur ~= ARGV[a] then return {4, 0, s} end
  if rpm > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 2], '-inf', now - window)
    local count = redis.call('ZCARD', KEYS[k + 2])
    if count >= rpm then
      local old = redis.call('ZRANGE', KEYS[k + 2], 0, count - rpm, 'WITHSCORES')
      return {1, tonumber(old[#old]) + window - now, s}
    end
  end
  if tpm > 0 then
    local h = redis.call('HGETALL', KEYS[k + 3])
    local cur_b = math.floor(now / bucket_ms)
    local used = 0
    local live = {}
    for i = 1, #h, 2 do
      local b = tonumber(h[i])
      if b <= cur_b - 6 then
        redis.call('HDEL', KEYS[k + 3], h[i])
      else
        used = used + tonumber(h[i + 1])
        table.insert(live, {b, tonumber(h[i + 1])})
      end
    end
    if used >= tpm then
      table.sort(live, function(x, y) return x[1] < y[1] end)
      local left = used
      local retry = window
      for _, bv in ipairs(live) do
        left = left - bv[2]
        if left < tpm then retry = (bv[1] + 6) * bucket_ms - now break end
      end
      return {2, retry, s}
    end
  end
  if budget >= 0 then
    local spent = redis.call('GET', KEYS[k + 4])
    if not spent then return {5, 0, s} end
    if tonumber(spent) >= budget then return {3, 0, s} end
    spent_out[s + 1] = spent
  else
    spent_out[s + 1] = ''
  end
end
for s = 0, n - 1 do
  if tonumber(ARGV[4 + s * 4 + 1]) > 0 then
    redis.call('ZADD', KEYS[s * 4 + 2], now, member)
    redis.call('PEXPIRE', KEYS[s * 4 + 2], window + 1000)
  end
end
-- the budget counters as read (strings: Redis would truncate Lua numbers), so a
-- replica knows the last value if it has to check budgets without Redis
return {0, 0, 0, unpack(spent_out)}
"""

CHARGE_LUA = NOW_LUA + """
local bucket = tostring(math.floor(now / 10000))
local tokens = tonumber(ARGV[2])
for i = 1, #KEYS, 2 do
  if tokens > 0 then
    redis.call('HINCRBY', KEYS[i], bucket, tokens)
    redis.call('PEXPIRE', KEYS[i], 70000)
  end
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    redis.call('INCRBYFLOAT', KEYS[i + 1], ARGV[3])
  end
end
return 0
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _argv(scope: Scope) -> list[Any]:
    budget = -1 if scope.budget is None else scope.budget
    return [scope.version, scope.rpm or 0, scope.tpm or 0, budget]


class RedisLimiter:
    """Global limits: every replica runs the same scripts against one Redis."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._admit = redis.register_script(ADMIT_LUA)
        self._charge = redis.register_script(CHARGE_LUA)

    async def admit(self, scopes: list[Scope], member: str) -> Verdict:
        keys = [k for s in scopes for k in (s.ver_key, s.rpm_key, s.tpm_key, s.spend_key)]
        # ARGV[1], the caller's clock, is informational: the script uses the server's.
        args = [_now_ms(), member, len(scopes), *(a for s in scopes for a in _argv(s))]
        code, retry, scope, *spent = await self._admit(keys=keys, args=args)
        return Verdict(int(code), int(retry), int(scope), tuple(float(v) if v else None for v in spent))

    async def charge(self, scopes: list[Scope], tokens: int, cost: float) -> None:
        keys = [k for s in scopes for k in (s.tpm_key, s.spend_key)]
        await self._charge(keys=keys, args=[_now_ms(), tokens, repr(float(cost))])

    async def seed_spend(self, spend_key: str, value: float, ttl_s: int) -> None:
        await self._redis.set(spend_key, repr(float(value)), ex=max(1, ttl_s), nx=True)

    async def bump(self, ver_key: str, version: int) -> None:
        await self._redis.set(ver_key, str(version), ex=86_400)

    async def spent(self, spend_key: str) -> float | None:
        raw = await self._redis.get(spend_key)
        return None if raw is None else float(raw)

    async def versions(self, ver_keys: list[str]) -> list[str | None]:
        values = await self._redis.mget(ver_keys)
        return [None if v is None else (v.decode() if isinstance(v, bytes) else str(v)) for v in values]

    async def ping(self, fresh: bool = False) -> None:
        """``fresh``: drop pooled connections first (after an outage they may all be dead)."""
        if fresh:
            await self._redis.connection_pool.disconnect()
        await self._redis.ping()

    async def close(self) -> None:
        return None  # the Redis client is the replica's (app.wiring closes it)


class LocalLimiter:
    """The same semantics in one process (embedded mode: single-process only)."""

    def __init__(self) -> None:
        self._rpm: dict[str, deque[int]] = {}
        self._tpm: dict[str, dict[int, int]] = {}
        self._values: dict[str, tuple[str, float]] = {}
        """Versions and budget counters: key → (value, expiry in epoch seconds)."""

    def _get(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None or item[1] <= time.time():
            self._values.pop(key, None)
            return None
        return item[0]

    def _check(self, s: Scope, now: int) -> tuple[int, int]:
        cur = self._get(s.ver_key)
        if cur is not None and cur != str(s.version):
            return STALE, 0
        if s.rpm:
            window = self._rpm.setdefault(s.rpm_key, deque())
            while window and window[0] <= now - WINDOW_MS:
                window.popleft()
            if len(window) >= s.rpm:
                return RPM, window[len(window) - s.rpm] + WINDOW_MS - now
        if s.tpm:
            buckets = self._tpm.setdefault(s.tpm_key, {})
            cur_b = now // BUCKET_MS
            for b in [b for b in buckets if b <= cur_b - BUCKETS]:
                del buckets[b]
            used = sum(buckets.values())
            if used >= s.tpm:
                left = used
                for b in sorted(buckets):
                    left -= buckets[b]
                    if left < s.tpm:
                        return TPM, (b + BUCKETS) * BUCKET_MS - now
                return TPM, WINDOW_MS
        if s.budget is not None:
            spent = self._get(s.spend_key)
            if spent is None:
                return UNSEEDED, 0
            if float(spent) >= s.budget:
                return BUDGET, 0
        return OK, 0

    async def admit(self, scopes: list[Scope], member: str) -> Verdict:
        now = _now_ms()
        for i, s in enumerate(scopes):
            code, retry = self._check(s, now)
            if code != OK:
                return Verdict(code, retry, i)
        for s in scopes:
            if s.rpm:
                self._rpm[s.rpm_key].append(now)
        return Verdict(OK)

    async def charge(self, scopes: list[Scope], tokens: int, cost: float) -> None:
        bucket = _now_ms() // BUCKET_MS
        for s in scopes:
            if tokens > 0:
                buckets = self._tpm.setdefault(s.tpm_key, {})
                buckets[bucket] = buckets.get(bucket, 0) + tokens
            if (spent := self._get(s.spend_key)) is not None:
                self._values[s.spend_key] = (repr(float(spent) + cost), self._values[s.spend_key][1])

    async def seed_spend(self, spend_key: str, value: float, ttl_s: int) -> None:
        if self._get(spend_key) is None:
            self._values[spend_key] = (repr(float(value)), time.time() + max(1, ttl_s))

    async def bump(self, ver_key: str, version: int) -> None:
        self._values[ver_key] = (str(version), time.time() + 86_400)

    def remember(self, spend_key: str, value: float, ttl_s: int) -> None:
        """Overwrite a budget counter with a value read elsewhere (Redis, when it was up)."""
        if len(self._values) >= 100_000:
            self._values.clear()
        self._values[spend_key] = (repr(float(value)), time.time() + max(1, ttl_s))

    async def spent(self, spend_key: str) -> float | None:
        raw = self._get(spend_key)
        return None if raw is None else float(raw)

    async def versions(self, ver_keys: list[str]) -> list[str | None]:
        return [self._get(k) for k in ver_keys]

    async def close(self) -> None:
        return None


def retry_after_s(retry_ms: int) -> float:
    """Seconds a client should wait (one to sixty)."""
    return float(min(WINDOW_MS // 1000, max(1, math.ceil(retry_ms / 1000))))
