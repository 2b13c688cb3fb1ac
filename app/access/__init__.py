"""Virtual keys, teams, global rate limits, spend and audit: the access layer.

``build_policy(cfg, engine, redis)`` builds the policy on the replica's clients (the
one database engine and the one Redis client ``app.wiring`` builds per replica: Postgres
or the embedded SQLite file; Redis or the in-process limiter) and returns the
``AccessPolicy`` the ingress hands to its ``Gateway``. Nothing connects until the
policy's ``start()`` (the replica's start-up): migrations, then the spend flusher.

Modules: ``keys`` (generation, hashing, grants), ``budget_window`` (LiteLLM's
``budget_duration`` windows), ``tables``/``migrations`` (schema), ``store`` (SQL),
``limits`` (Lua/in-process limiter), ``fallback`` (Redis, else in-process, behind a
breaker), ``spend`` (buffer), ``soft_budget`` (the alert hook), ``policy`` (the request
path), ``admin`` (key/team management). No Ray here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.access.policy import VirtualKeyPolicy
from app.auth import AccessPolicy, MasterKeyPolicy
from app.config import GatewayConfig


def build_policy(cfg: GatewayConfig, engine: AsyncEngine | None, redis: Any | None) -> AccessPolicy:
    """The access policy for ``cfg`` on the replica's clients (master key only when
    ``access.enabled`` is false). ``app.wiring`` builds the clients, once per replica."""
    settings = cfg.general_settings.access
    if not settings.enabled:
        return MasterKeyPolicy(cfg.master_key)
    if engine is None:
        raise ValueError("access is enabled: the policy needs a database engine")
    from app.access.fallback import FallbackLimiter
    from app.access.limits import Limiter
    from app.access.local_limiter import LocalLimiter
    from app.access.redis_limiter import RedisLimiter
    from app.access.soft_budget import SoftBudgetAlerts
    from app.access.spend import SpendBuffer
    from app.access.store import AccessStore
    from app.breaker import Breaker

    store = AccessStore(engine, settings.db_timeout_s, Breaker("database"))
    limiter: Limiter = LocalLimiter()
    if redis is not None:  # global limits, per-replica ones while Redis is down (docs/operations.md)
        limiter = FallbackLimiter(RedisLimiter(redis), LocalLimiter(), Breaker("redis"), settings.redis_timeout_s)
    spend = SpendBuffer(store, settings.spend_flush_interval_s, settings.spend_buffer_max)
    return VirtualKeyPolicy(cfg.master_key, store, limiter, spend, prefix=settings.redis_prefix,
                            cache_ttl_s=settings.key_cache_ttl_s, limiter_timeout_s=settings.redis_timeout_s * 2,
                            lookups_per_s=settings.auth_lookups_per_s, budget_tz=settings.budget_timezone,
                            alerts=SoftBudgetAlerts(settings.soft_budget_webhook_url))


__all__ = ["VirtualKeyPolicy", "build_policy"]
