"""``build_gateway``: one Redis client and one database engine per replica, shared by every part."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from app.access import db
from app.access.decision_log import DecisionWriter
from app.access.policy import VirtualKeyPolicy
from app.access.request_stats import RequestStats
from app.config import parse_config
from app.gateway.cooldowns import RedisCooldowns
from app.gateway.metrics import NoRequestRecorder
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import gateway_config
from devtools.ports import free_port


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many Redis clients and engines get built (nothing connects: construction only)."""
    counts = {"redis": 0, "engine": 0}
    redis_init, make_engine = aioredis.Redis.__init__, db.create_async_engine

    def redis(self: Any, *args: Any, **kwargs: Any) -> None:
        counts["redis"] += 1
        redis_init(self, *args, **kwargs)

    def engine(*args: Any, **kwargs: Any) -> Any:
        counts["engine"] += 1
        return make_engine(*args, **kwargs)

    monkeypatch.setattr(aioredis.Redis, "__init__", redis)
    monkeypatch.setattr(db, "create_async_engine", engine)
    return counts


async def test_one_redis_client_and_one_engine_per_replica(counted: dict[str, int]) -> None:
    port = free_port()  # nothing listens: building must not connect
    general = {"redis_url": f"redis://127.0.0.1:{port}/0", "database_url": f"postgresql://u@127.0.0.1:{port}/db"}
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", **general))
    gateway = build_gateway(cfg, LocalProviderPool(cfg), None)
    assert counted == {"redis": 1, "engine": 1}
    policy, decisions, cooldowns = gateway.policy, gateway.decisions, gateway.cooldowns
    assert isinstance(policy, VirtualKeyPolicy) and isinstance(decisions, DecisionWriter)
    assert isinstance(cooldowns, RedisCooldowns)
    engine = policy.store.engine
    assert decisions.store.engine is engine
    assert isinstance(gateway.request_stats, RequestStats) and gateway.request_stats.store is policy.store
    redis = policy.limiter.redis._redis  # type: ignore[attr-defined]  (FallbackLimiter → RedisLimiter)
    assert cooldowns._redis is redis
    await gateway.close()


async def test_no_servers_configured_builds_the_embedded_store_only(counted: dict[str, int], tmp_path: Any) -> None:
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", access={"sqlite_path": f"{tmp_path}/r.db"}))
    gateway = build_gateway(cfg, LocalProviderPool(cfg), None)
    assert counted == {"redis": 0, "engine": 1}
    await gateway.close()


async def test_no_stores_needed_builds_no_client(counted: dict[str, int]) -> None:
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", access={"enabled": False},
                                      decisions={"enabled": False}))
    gateway = build_gateway(cfg, LocalProviderPool(cfg), None)
    assert counted == {"redis": 0, "engine": 0}
    assert isinstance(gateway.request_stats, NoRequestRecorder)  # no database: nothing counted there
    await gateway.close()
