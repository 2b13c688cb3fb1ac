"""``LocalLimiter``: the limiter's semantics in one process (embedded mode, and Redis outages).

A single event loop makes each call atomic, so admission and its reservation happen in
one step here too. It is exact for one process only: with several replicas and no
Redis, each replica limits on its own (docs/operations.md).
"""

from __future__ import annotations

import time
from collections import deque

from app.access.limits import (
    BUCKET_MS,
    BUCKETS,
    BUDGET,
    BUDGET_SHORT,
    OK,
    PARALLEL,
    PARALLEL_LEASE_MS,
    RPM,
    STALE,
    TPM,
    TPM_TOO_BIG,
    UNSEEDED,
    WINDOW_MS,
    Demand,
    Reservation,
    Scope,
    Verdict,
    cost_adds,
    now_ms,
    rate_state,
)

VALUES_MAX = 100_000


class LocalLimiter:
    """The same semantics as ``RedisLimiter``, in process memory."""

    def __init__(self) -> None:
        self._rpm: dict[str, deque[int]] = {}
        self._tpm: dict[str, dict[int, int]] = {}
        self._values: dict[str, tuple[str, float]] = {}
        """Versions and budget counters: key → (value, expiry in epoch seconds)."""
        self._inflight: dict[str, dict[str, int]] = {}
        """``max_parallel_requests``: per scope, the requests in flight (member → admitted at, ms)."""

    def _get(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None or item[1] <= time.time():
            self._values.pop(key, None)
            return None
        return item[0]

    def _add(self, key: str, amount: float) -> None:
        if (spent := self._get(key)) is not None:
            self._values[key] = (repr(max(0.0, float(spent) + amount)), self._values[key][1])

    def _live(self, tpm_key: str, now: int) -> dict[int, int]:
        buckets = self._tpm.setdefault(tpm_key, {})
        cur_b = now // BUCKET_MS
        for b in [b for b in buckets if b <= cur_b - BUCKETS]:
            del buckets[b]
        return buckets

    def _running(self, s: Scope, now: int) -> dict[str, int]:
        running = self._inflight.setdefault(s.par_key, {})
        for member in [m for m, at in running.items() if at <= now - PARALLEL_LEASE_MS]:
            del running[member]
        return running

    def _check(self, s: Scope, now: int, want: Demand) -> tuple[int, int]:
        cur = self._get(s.ver_key)
        if cur is not None and cur != str(s.version):
            return STALE, 0
        if s.parallel and len(self._running(s, now)) >= s.parallel:
            return PARALLEL, 1000
        if s.rpm:
            window = self._rpm.setdefault(s.rpm_key, deque())
            while window and window[0] <= now - WINDOW_MS:
                window.popleft()
            if len(window) >= s.rpm:
                return RPM, window[len(window) - s.rpm] + WINDOW_MS - now
        if s.tpm and (refused := self._check_tpm(s, now, want)) is not None:
            return refused
        return self._check_budget(s, want)

    def _check_tpm(self, s: Scope, now: int, want: Demand) -> tuple[int, int] | None:
        assert s.tpm is not None
        must = want.min_tokens
        if must > s.tpm:
            return TPM_TOO_BIG, 0
        buckets = self._live(s.tpm_key, now)
        left = sum(buckets.values())
        if left + must <= s.tpm:
            return None
        for b in sorted(buckets):
            left -= buckets[b]
            if left + must <= s.tpm:
                return TPM, (b + BUCKETS) * BUCKET_MS - now
        return TPM, WINDOW_MS

    def _check_budget(self, s: Scope, want: Demand) -> tuple[int, int]:
        if s.budget is None:
            return OK, 0
        spent = self._get(s.spend_key)
        if spent is None:
            return UNSEEDED, 0
        if float(spent) >= s.budget:
            return BUDGET, 0
        if float(spent) + want.min_cost > s.budget:
            return BUDGET_SHORT, 0
        return OK, 0

    def _room(self, s: Scope, now: int) -> tuple[float, float]:
        """What is left of this scope's TPM and budget (infinite where it has none)."""
        tokens = float(s.tpm - sum(self._live(s.tpm_key, now).values())) if s.tpm else float("inf")
        spent = self._get(s.spend_key)
        cost = s.budget - float(spent) if s.budget is not None and spent is not None else float("inf")
        return tokens, cost

    async def admit(self, scopes: list[Scope], member: str, demand: Demand) -> Verdict:
        now = now_ms()
        for i, s in enumerate(scopes):
            code, retry = self._check(s, now, demand)
            if code != OK:
                return Verdict(code, retry, i)
        rooms = [self._room(s, now) for s in scopes]
        tokens = int(min([float(demand.tokens), *(r[0] for r in rooms)]))
        cost = min([float(demand.cost), *(r[1] for r in rooms)])
        bucket = now // BUCKET_MS
        rate: list[int] = []
        for s in scopes:
            if s.rpm:
                self._rpm[s.rpm_key].append(now)
            if tokens > 0:
                buckets = self._tpm.setdefault(s.tpm_key, {})
                buckets[bucket] = buckets.get(bucket, 0) + tokens
            self._add(s.spend_key, cost)
            if s.parallel:
                self._running(s, now)[member] = now
            rate += self._rate(s, now)
        held = Reservation(tokens, cost, bucket, tuple(s.spend_key for s in scopes), "local",
                           member=member if any(s.parallel for s in scopes) else "", rate=rate_state(scopes, rate))
        return Verdict(OK, reservation=held)

    def _rate(self, s: Scope, now: int) -> list[int]:
        """RPM left and its reset, TPM left and its reset (ms), after an admission (-1: no limit)."""
        out = [-1, -1, -1, -1]
        if s.rpm:
            window = self._rpm[s.rpm_key]
            out[:2] = [s.rpm - len(window), window[0] + WINDOW_MS - now]
        if s.tpm:
            buckets = self._live(s.tpm_key, now)
            first = min(buckets, default=now // BUCKET_MS)
            out[2:] = [s.tpm - sum(buckets.values()), (first + BUCKETS) * BUCKET_MS - now]
        return out

    async def charge(self, scopes: list[Scope], tokens: int, cost: float, reservation: Reservation) -> None:
        now = now_ms()
        live = reservation.bucket >= 0 and reservation.bucket > now // BUCKET_MS - BUCKETS
        for s, add in zip(scopes, cost_adds(scopes, cost, reservation), strict=True):
            buckets = self._live(s.tpm_key, now)
            if live:
                left = buckets.get(reservation.bucket, 0) + tokens - reservation.tokens
                if left > 0:
                    buckets[reservation.bucket] = left
                else:
                    buckets.pop(reservation.bucket, None)
            elif tokens > 0:
                bucket = now // BUCKET_MS
                buckets[bucket] = buckets.get(bucket, 0) + tokens
            self._add(s.spend_key, add)
            if reservation.member:
                self._inflight.get(s.par_key, {}).pop(reservation.member, None)

    async def seed_spend(self, spend_key: str, value: float, ttl_s: int) -> None:
        if self._get(spend_key) is None:
            self._values[spend_key] = (repr(float(value)), time.time() + max(1, ttl_s))

    async def bump(self, ver_key: str, version: int) -> None:
        self._values[ver_key] = (str(version), time.time() + 86_400)

    def remember(self, spend_key: str, value: float, ttl_s: int) -> None:
        """Overwrite a budget counter with a value read elsewhere (Redis, when it was up)."""
        if len(self._values) >= VALUES_MAX:
            self._values.clear()
        self._values[spend_key] = (repr(float(value)), time.time() + max(1, ttl_s))

    async def claim(self, key: str, ttl_s: int) -> bool:
        if self._get(key) is not None:
            return False
        self._values[key] = ("1", time.time() + max(1, ttl_s))
        return True

    async def spent(self, spend_key: str) -> float | None:
        raw = self._get(spend_key)
        return None if raw is None else float(raw)

    async def tokens_used(self, tpm_keys: list[str]) -> list[int]:
        now = now_ms()
        return [sum(self._live(key, now).values()) for key in tpm_keys]

    async def versions(self, ver_keys: list[str]) -> list[str | None]:
        return [self._get(k) for k in ver_keys]

    async def close(self) -> None:
        return None
