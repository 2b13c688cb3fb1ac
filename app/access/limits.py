"""RPM, TPM and budget admission: the shared types and the ``Limiter`` protocol.

One ``admit`` checks, for the key and its team, that the cached record is current, the
RPM window (an exact sliding window), the TPM window (six 10-second buckets) and the
budget counter, and only when every check passes records the request. It also
**reserves**: the request's ``Demand`` (its prompt estimate plus ``max_tokens`` times ``n``,
priced at the deployment's prices) is added to the TPM window and the budget counter
in the same atomic step as the RPM check, so N concurrent requests cannot overshoot a
budget or a TPM limit by N answers; a request whose reservation cannot fit is refused.
``charge`` reconciles when the request settles: the reservation is replaced by what
was used (or released, for a request that got no answer).

Implementations: ``redis_limiter.RedisLimiter`` (one Lua script per call, global across
replicas), ``local_limiter.LocalLimiter`` (the same semantics in one process, for the
embedded mode), ``fallback.FallbackLimiter`` (Redis behind a breaker, local meanwhile).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol

from app.auth import NO_RESERVATION, Demand, RateState, Reservation

WINDOW_MS = 60_000
BUCKET_MS = 10_000
BUCKETS = WINDOW_MS // BUCKET_MS

OK, RPM, TPM, BUDGET, STALE, UNSEEDED, TPM_TOO_BIG, BUDGET_SHORT, PARALLEL = range(9)
"""Verdict codes. ``TPM_TOO_BIG``: the reservation alone exceeds the TPM limit (it can
never fit); ``BUDGET_SHORT``: the budget is not spent, but this request could cost more
than what is left of it; ``PARALLEL``: ``max_parallel_requests`` are in flight."""
PARALLEL_LEASE_MS = 600_000
"""An in-flight entry counts for at most this long: a replica that died mid-request frees
its slots after it (a request running longer stops counting then)."""


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
    parallel: int | None = None
    """``max_parallel_requests``: requests in flight at once."""
    par_key: str = ""
    """The set of this scope's requests in flight."""
    model: str = ""
    """For a key's per-model scope (``model_*`` limits): the model."""


@dataclass(frozen=True)
class Verdict:
    code: int
    retry_ms: int = 0
    scope: int = 0
    spent: tuple[float | None, ...] = ()
    """Each scope's budget counter as read before the reservation (``None``: no budget)."""
    reservation: Reservation = field(default=NO_RESERVATION)


class Limiter(Protocol):
    async def admit(self, scopes: list[Scope], member: str, demand: Demand) -> Verdict: ...

    async def charge(self, scopes: list[Scope], tokens: int, cost: float, reservation: Reservation) -> None:
        """A request settled having used ``tokens`` and ``cost``: replace its reservation."""
        ...

    async def seed_spend(self, spend_key: str, value: float, ttl_s: int) -> None:
        """Set a missing budget counter (from the database); never overwrite one."""
        ...

    async def bump(self, ver_key: str, version: int) -> None:
        """Publish a record's new version: replicas caching an older one reload it."""
        ...

    async def spent(self, spend_key: str) -> float | None: ...

    async def tokens_used(self, tpm_keys: list[str]) -> list[int]:
        """Tokens each TPM window holds now (reserved and charged), e.g. for usage-based routing."""
        ...

    async def claim(self, key: str, ttl_s: int) -> bool:
        """Set ``key`` unless it is set (``SET NX``): ``True`` for the one caller that set it."""
        ...

    async def versions(self, ver_keys: list[str]) -> list[str | None]:
        """The published versions of records (``None``: never bumped)."""
        ...

    async def close(self) -> None: ...


def cost_adds(scopes: list[Scope], cost: float, reservation: Reservation) -> list[float]:
    """Per scope, what settling adds to its budget counter: the difference with the
    reservation when it went into this same counter, else the whole cost."""
    keys = reservation.spend_keys
    return [cost - reservation.cost if i < len(keys) and keys[i] == s.spend_key else cost
            for i, s in enumerate(scopes)]


def rate_state(scopes: list[Scope], rate: list[int]) -> RateState | None:
    """The ``x-ratelimit-*`` state of an admission: per kind, the scope with the least left
    (``rate``: per scope RPM left, RPM reset ms, TPM left, TPM reset ms; -1: no limit)."""
    fields: dict[str, int] = {}
    for kind, off, limit_of in (("requests", 0, "rpm"), ("tokens", 2, "tpm")):
        live = [(rate[i * 4 + off], rate[i * 4 + off + 1], getattr(s, limit_of)) for i, s in enumerate(scopes)
                if getattr(s, limit_of)]
        if live:
            left, reset, limit = min(live, key=lambda t: (t[0], -t[1]))
            fields |= {f"limit_{kind}": limit, f"remaining_{kind}": left, f"reset_{kind}_ms": reset}
    return RateState(**fields) if fields else None


def now_ms() -> int:
    return int(time.time() * 1000)


def retry_after_s(retry_ms: int) -> float:
    """Seconds a client should wait (one to sixty)."""
    return float(min(WINDOW_MS // 1000, max(1, math.ceil(retry_ms / 1000))))


__all__ = [
    "BUCKETS", "BUCKET_MS", "BUDGET", "BUDGET_SHORT", "NO_RESERVATION", "OK", "PARALLEL", "PARALLEL_LEASE_MS",
    "RPM", "STALE", "TPM", "TPM_TOO_BIG",
    "UNSEEDED", "WINDOW_MS", "Demand", "Limiter", "RateState", "Reservation", "Scope", "Verdict", "cost_adds",
    "now_ms", "rate_state", "retry_after_s",
]
"""``Demand``/``Reservation`` are defined with the ``AccessPolicy`` protocol (``app.auth``) and
re-exported here, with the limiter's own types."""
