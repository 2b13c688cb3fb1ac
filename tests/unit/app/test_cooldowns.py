"""Cooldowns in-process and shared through the real Redis on this machine."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from app.cooldowns import LocalCooldowns, RedisCooldowns


async def test_local_cooldown_opens_after_allowed_fails_and_expires() -> None:
    cd = LocalCooldowns(allowed_fails=2, window_s=10, cooldown_s=0.2)
    assert not await cd.failure(1)
    assert cd.cooling() == frozenset()
    assert await cd.failure(1)
    assert cd.cooling() == {1}
    await asyncio.sleep(0.25)
    assert cd.cooling() == frozenset()


@pytest.fixture
async def redis_client():
    client = aioredis.from_url("redis://127.0.0.1:6379/0")
    yield client
    await client.aclose()


def _pair(client, prefix: str) -> tuple[RedisCooldowns, RedisCooldowns]:
    ids = ["0:a", "1:b"]
    make = lambda: RedisCooldowns(client, ids, allowed_fails=2, window_s=10, cooldown_s=5,  # noqa: E731
                                  prefix=prefix, refresh_s=0.0)
    return make(), make()


async def test_cooldown_is_shared_between_replicas(redis_client) -> None:
    a, b = _pair(redis_client, f"test-{uuid.uuid4().hex}")
    assert not await a.failure(1)  # one failure on replica a...
    assert await b.failure(1)  # ...and one on replica b make two: the cooldown starts
    assert 1 in b.cooling()
    a.cooling()  # replica a learns it from Redis in the background
    await asyncio.sleep(0.1)
    assert a.cooling() == {1}


async def test_redis_down_falls_back_to_local_state() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    cd = RedisCooldowns(dead, ["0:a"], allowed_fails=1, window_s=10, cooldown_s=5, refresh_s=0.0)
    assert await cd.failure(0)  # counted in-process, no exception
    assert cd.cooling() == {0}
    await dead.aclose()
