"""``RedisLimiter``: global limits, one Lua script per admission and per settlement.

Redis runs each script atomically, so N replicas can never admit more than a limit
between them, and a reservation is taken in the same step as the checks (see
``limits``). Both scripts read the clock of the Redis server, never the caller's:
replicas on different nodes with skewed clocks still share one window.

Every key one call touches shares one hash tag (``VirtualKeyPolicy.scope_keys``: a key's
counters live under its team's tag, or its own when it has none), so on a Redis Cluster
each script still runs on one node, atomically, and the limits stay exact.
"""

from __future__ import annotations

from typing import Any

from app.access.limits import (
    BUCKET_MS,
    BUCKETS,
    OK,
    PARALLEL_LEASE_MS,
    Demand,
    Reservation,
    Scope,
    Verdict,
    cost_adds,
    now_ms,
    rate_state,
)
from app.store_urls import drop_connections

NOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = 60000
local bucket_ms = 10000
local cur_b = math.floor(now / bucket_ms)
"""

# KEYS: per scope ver, rpm, tpm, spend, parallel. ARGV: [1] the caller's clock
# (informational), [2] member, [3] n scopes, [4] tokens wanted, [5] cost wanted, [6] tokens
# that must fit, [7] cost that must fit, then per scope (from 8 + 5s) its version, rpm, tpm,
# budget and parallel limits (0 / -1: none). It reserves, in every scope, what is wanted or
# what is left of the tightest limit, never less than what must fit (else it refuses).
ADMIT_LUA = NOW_LUA + """
local member = ARGV[2]
local n = tonumber(ARGV[3])
local take_t = tonumber(ARGV[4])
local take_c = tonumber(ARGV[5])
local floor_t = tonumber(ARGV[6])
local floor_c = tonumber(ARGV[7])
local lease = """ + str(PARALLEL_LEASE_MS) + """
local spent_out = {}
local rate_out = {}
for s = 0, n - 1 do
  local k = s * 5
  local a = 8 + s * 5
  local rpm = tonumber(ARGV[a + 1])
  local tpm = tonumber(ARGV[a + 2])
  local budget = tonumber(ARGV[a + 3])
  local par = tonumber(ARGV[a + 4])
  local cur = redis.call('GET', KEYS[k + 1])
  if cur and cur ~= ARGV[a] then return {4, 0, s} end
  if par > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 5], '-inf', now - lease)
    if redis.call('ZCARD', KEYS[k + 5]) >= par then return {8, 1000, s} end
  end
  local rpm_left, rpm_reset, tpm_left, tpm_reset = -1, -1, -1, -1
  if rpm > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 2], '-inf', now - window)
    local count = redis.call('ZCARD', KEYS[k + 2])
    if count >= rpm then
      local old = redis.call('ZRANGE', KEYS[k + 2], 0, count - rpm, 'WITHSCORES')
      return {1, tonumber(old[#old]) + window - now, s}
    end
    rpm_left = rpm - count - 1
    local first = redis.call('ZRANGE', KEYS[k + 2], 0, 0, 'WITHSCORES')
    rpm_reset = (first[2] and tonumber(first[2]) or now) + window - now
  end
  if tpm > 0 then
    if floor_t > tpm then return {6, 0, s} end
    local h = redis.call('HGETALL', KEYS[k + 3])
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
    table.sort(live, function(x, y) return x[1] < y[1] end)
    if used + floor_t > tpm then
      local left = used
      local retry = window
      for _, bv in ipairs(live) do
        left = left - bv[2]
        if left + floor_t <= tpm then retry = (bv[1] + 6) * bucket_ms - now break end
      end
      return {2, retry, s}
    end
    take_t = math.min(take_t, tpm - used)
    tpm_left = tpm - used
    tpm_reset = ((live[1] and live[1][1] or cur_b) + 6) * bucket_ms - now
  end
  if budget >= 0 then
    local spent = redis.call('GET', KEYS[k + 4])
    if not spent then return {5, 0, s} end
    if tonumber(spent) >= budget then return {3, 0, s} end
    if tonumber(spent) + floor_c > budget then return {7, 0, s} end
    take_c = math.min(take_c, budget - tonumber(spent))
    spent_out[s + 1] = spent
  else
    spent_out[s + 1] = ''
  end
  rate_out[s * 4 + 1] = rpm_left
  rate_out[s * 4 + 2] = rpm_reset
  rate_out[s * 4 + 3] = tpm_left
  rate_out[s * 4 + 4] = tpm_reset
end
local take_c_str = string.format('%.17g', take_c)
for s = 0, n - 1 do
  local k = s * 5
  local a = 8 + s * 5
  if tonumber(ARGV[a + 1]) > 0 then
    redis.call('ZADD', KEYS[k + 2], now, member)
    redis.call('PEXPIRE', KEYS[k + 2], window + 1000)
  end
  if take_t > 0 then
    redis.call('HINCRBY', KEYS[k + 3], tostring(cur_b), take_t)
    redis.call('PEXPIRE', KEYS[k + 3], window + 10000)
  end
  if rate_out[s * 4 + 3] >= 0 then rate_out[s * 4 + 3] = rate_out[s * 4 + 3] - math.max(take_t, 0) end
  if take_c > 0 and redis.call('EXISTS', KEYS[k + 4]) == 1 then
    redis.call('INCRBYFLOAT', KEYS[k + 4], take_c_str)
  end
  if tonumber(ARGV[a + 4]) > 0 then
    redis.call('ZADD', KEYS[k + 5], now, member)
    redis.call('PEXPIRE', KEYS[k + 5], lease)
  end
end
-- what was reserved, its bucket, the budget counters as read (strings: Redis would truncate
-- Lua numbers), so a replica knows them if it has to check budgets without Redis, then per
-- scope what is left of its RPM and TPM windows and when they next free up (-1: no limit)
local out = {0, 0, 0, cur_b, take_t, take_c_str}
for s = 1, n do table.insert(out, spent_out[s]) end
for i = 1, n * 4 do table.insert(out, rate_out[i]) end
return out
"""

# KEYS: per scope tpm, spend, parallel. ARGV: [1] the caller's clock (informational), [2]
# tokens used, [3] tokens reserved, [4] the reservation's bucket (-1: none), [5] the
# request's member in the parallel sets ('' : none), then per scope the amount to add to
# its budget counter.
CHARGE_LUA = NOW_LUA + """
local tokens = tonumber(ARGV[2])
local reserved = tonumber(ARGV[3])
local rb = tonumber(ARGV[4])
local member = ARGV[5]
for i = 1, #KEYS, 3 do
  if rb >= 0 and rb > cur_b - 6 then
    local d = tokens - reserved
    if d ~= 0 then
      local v = redis.call('HINCRBY', KEYS[i], tostring(rb), d)
      if v <= 0 then redis.call('HDEL', KEYS[i], tostring(rb)) end
    end
  elseif tokens > 0 then
    redis.call('HINCRBY', KEYS[i], tostring(cur_b), tokens)
    redis.call('PEXPIRE', KEYS[i], window + 10000)
  end
  local add = ARGV[5 + (i + 2) / 3]
  if tonumber(add) ~= 0 and redis.call('EXISTS', KEYS[i + 1]) == 1 then
    local v = redis.call('INCRBYFLOAT', KEYS[i + 1], add)
    if tonumber(v) < 0 then redis.call('SET', KEYS[i + 1], '0', 'KEEPTTL') end
  end
  if member ~= '' then redis.call('ZREM', KEYS[i + 2], member) end
end
return 0
"""


def _argv(scope: Scope) -> list[Any]:
    budget = -1 if scope.budget is None else scope.budget
    return [scope.version, scope.rpm or 0, scope.tpm or 0, budget, scope.parallel or 0]


class RedisLimiter:
    """Global limits: every replica runs the same scripts against one Redis."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._admit = redis.register_script(ADMIT_LUA)
        self._charge = redis.register_script(CHARGE_LUA)

    async def admit(self, scopes: list[Scope], member: str, demand: Demand) -> Verdict:
        keys = [k for s in scopes for k in (s.ver_key, s.rpm_key, s.tpm_key, s.spend_key, s.par_key)]
        args = [now_ms(), member, len(scopes), max(0, demand.tokens), repr(max(0.0, float(demand.cost))),
                max(0, demand.min_tokens), repr(max(0.0, float(demand.min_cost))),
                *(a for s in scopes for a in _argv(s))]
        code, retry, scope, *rest = await self._admit(keys=keys, args=args)
        if int(code) != OK:
            return Verdict(int(code), int(retry), int(scope))
        bucket, tokens, cost, *more = rest
        spent, rate = more[:len(scopes)], [int(v) for v in more[len(scopes):]]
        held = Reservation(int(tokens), float(cost), int(bucket), tuple(s.spend_key for s in scopes), "redis",
                           member=member if any(s.parallel for s in scopes) else "",
                           rate=rate_state(scopes, rate))
        return Verdict(OK, spent=tuple(float(v) if v else None for v in spent), reservation=held)

    async def charge(self, scopes: list[Scope], tokens: int, cost: float, reservation: Reservation) -> None:
        keys = [k for s in scopes for k in (s.tpm_key, s.spend_key, s.par_key)]
        adds = [repr(float(a)) for a in cost_adds(scopes, cost, reservation)]
        await self._charge(keys=keys, args=[now_ms(), tokens, reservation.tokens, reservation.bucket,
                                            reservation.member, *adds])

    async def seed_spend(self, spend_key: str, value: float, ttl_s: int) -> None:
        await self._redis.set(spend_key, repr(float(value)), ex=max(1, ttl_s), nx=True)

    async def bump(self, ver_key: str, version: int) -> None:
        await self._redis.set(ver_key, str(version), ex=86_400)

    async def spent(self, spend_key: str) -> float | None:
        raw = await self._redis.get(spend_key)
        return None if raw is None else float(raw)

    async def tokens_used(self, tpm_keys: list[str]) -> list[int]:
        """The live buckets' sum per window (buckets older than the window are ignored, not deleted)."""
        live_from = now_ms() // BUCKET_MS - BUCKETS + 1
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in tpm_keys:
                pipe.hgetall(key)
            windows = await pipe.execute()
        return [sum(int(v) for b, v in w.items() if int(b) >= live_from) for w in windows]

    async def versions(self, ver_keys: list[str]) -> list[str | None]:
        values = await self._redis.mget(ver_keys)
        return [None if v is None else (v.decode() if isinstance(v, bytes) else str(v)) for v in values]

    async def claim(self, key: str, ttl_s: int) -> bool:
        return bool(await self._redis.set(key, "1", ex=max(1, ttl_s), nx=True))

    async def ping(self, fresh: bool = False) -> None:
        """``fresh``: drop pooled connections first (after an outage they may all be dead)."""
        if fresh:
            await drop_connections(self._redis)
        await self._redis.ping()

    async def close(self) -> None:
        return None  # the Redis client is the replica's (app.wiring closes it)
