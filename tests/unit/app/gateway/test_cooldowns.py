"""Cooldowns in-process and shared through a real Redis (the session's private one)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from app.config import parse_config
from app.gateway.cooldowns import LocalCooldowns, RedisCooldowns
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.store_urls import build_redis_client
from app.wiring import build_gateway
from devtools.configs import gateway_config
from devtools.services import RedisServer


async def test_local_cooldown_opens_after_allowed_fails_and_expires() -> None:
    cd = LocalCooldowns(allowed_fails=2, window_s=10, cooldown_s=0.2)
    assert not await cd.failure(1, "k1")
    assert cd.cooling() == frozenset()
    assert await cd.failure(1, "k1")
    assert cd.cooling() == {1}
    await asyncio.sleep(0.25)
    assert cd.cooling() == frozenset()


@pytest.fixture(params=["redis_server", "redis_cluster"])
async def redis_client(request: pytest.FixtureRequest):
    """One Redis server, or a Redis Cluster: a gateway's cooldown keys share one hash tag."""
    client = build_redis_client(request.getfixturevalue(request.param).url(), pool_size=16, timeout_s=5)
    yield client
    await client.aclose()


@pytest.fixture
async def pair(redis_client):
    """Two replicas' views of the same shared state, refreshed every 50 ms."""
    prefix = f"test-{uuid.uuid4().hex}"
    a, b = (RedisCooldowns(redis_client, ["0:a", "1:b"], allowed_fails=2, window_s=10, cooldown_s=5, min_keys=2,
                           prefix=prefix, refresh_s=0.05) for _ in range(2))
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


@pytest.mark.parametrize("shared", [False, True])
async def test_one_key_alone_cannot_cool_a_model_down(pair, shared: bool) -> None:
    a, _ = pair
    local = LocalCooldowns(allowed_fails=2, window_s=10, cooldown_s=5, min_keys=2)
    fail = a.failure if shared else local.failure
    for _ in range(10):
        assert not await fail(1, "attacker")  # ten failures, all from one key
    assert await fail(1, "someone-else")  # a second key's failure: now it is the upstream
    assert 1 in (a.cooling() if shared else local.cooling())


async def test_cooldown_is_shared_between_replicas(pair) -> None:
    a, b = pair
    assert not await a.failure(1, "k1")  # one failure on replica a...
    assert await b.failure(1, "k2")  # ...and one on replica b make two, from two keys: the cooldown starts
    assert 1 in b.cooling()
    await asyncio.sleep(0.2)  # replica a learns it from Redis in the background
    assert a.cooling() == {1}


async def test_an_idle_replica_routes_its_next_request_with_fresh_state(pair) -> None:
    a, b = pair
    assert a.cooling() == frozenset()  # replica a is quiet
    await asyncio.sleep(0.1)
    assert not await b.failure(0, "k1")
    assert await b.failure(0, "k2")  # the cooldown opens on replica b while a is idle
    await asyncio.sleep(0.2)
    assert a.cooling() == {0}  # a's very next request already avoids it


async def test_redis_down_falls_back_to_local_state() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    cd = RedisCooldowns(dead, ["0:a"], allowed_fails=1, window_s=10, cooldown_s=5, refresh_s=0.05)
    await cd.start()
    assert await cd.failure(0, "k1")  # counted in-process, no exception
    assert cd.cooling() == {0}
    await cd.close()
    await dead.aclose()


def _refresh_loops() -> int:
    return sum(t.get_coro().__qualname__ == "RedisCooldowns._refresh_loop" for t in asyncio.all_tasks() if not t.done())


async def test_the_replica_starts_and_stops_the_refresh_loop(redis_server: RedisServer) -> None:
    general = {"access": {"enabled": False}, "decisions": {"enabled": False}, "redis_url": redis_server.url()}
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", **general))
    gateway = build_gateway(cfg, LocalProviderPool(cfg), None)
    assert isinstance(gateway.cooldowns, RedisCooldowns)
    app = create_app(gateway)
    try:
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.1)
            assert _refresh_loops() == 1  # started with the replica, before any request
        await asyncio.sleep(0)
        assert _refresh_loops() == 0
    finally:
        await gateway.cooldowns.close()  # idempotent; keeps a failing run from leaving the loop behind
