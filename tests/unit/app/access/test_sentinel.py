"""Limits on a Sentinel-managed Redis keep working, exactly, across a Sentinel failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from app.access.limits import OK, RPM, Demand, Scope
from app.access.redis_limiter import RedisLimiter
from app.store_urls import build_redis_client
from devtools.services import RedisSentinelServer
from tests.access_support import start_service


@pytest.fixture
def sentinel_pair() -> Iterator[RedisSentinelServer]:
    """Its own master, replica and Sentinel: the test fails the master over."""
    server = start_service(lambda: RedisSentinelServer(replica=True))
    yield server
    server.close()


async def test_the_rpm_window_survives_a_sentinel_failover(sentinel_pair: RedisSentinelServer) -> None:
    client = build_redis_client(sentinel_pair.url(), pool_size=8, timeout_s=2)
    limiter = RedisLimiter(client)
    base = "{rqt:key:k}:key:k"
    scope = Scope("key", 1, 5, None, None, f"{base}:ver", f"{base}:rpm", f"{base}:tpm", f"{base}:spend")
    try:
        codes = [(await limiter.admit([scope], f"before-{i}", Demand(1))).code for i in range(3)]
        assert codes == [OK] * 3
        sentinel_pair.failover()
        deadline = time.monotonic() + 120
        while True:  # the first calls may meet the old master (now a replica) or a closed connection
            try:
                await limiter.ping(fresh=True)  # as the FallbackLimiter's probe does
                break
            except Exception:  # noqa: BLE001
                assert time.monotonic() < deadline, "the client never reached the new master"
                await asyncio.sleep(0.2)
        codes = [(await limiter.admit([scope], f"after-{i}", Demand(1))).code for i in range(4)]
        assert codes == [OK, OK, RPM, RPM]  # the window written before the failover is on the new master
    finally:
        await client.aclose()
