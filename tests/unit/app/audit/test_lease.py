"""One exporter across replicas: the Redis lease on the session's Redis."""

from __future__ import annotations

import asyncio
import secrets
import time

import redis.asyncio as aioredis

from app.audit.lease import RedisLease
from devtools.services import RedisServer


async def test_one_holder_renewals_and_takeover_after_expiry(redis_server: RedisServer) -> None:
    client = aioredis.from_url(redis_server.url())
    prefix = f"rqt-{secrets.token_hex(4)}"
    a, b = RedisLease(client, prefix, 0.5), RedisLease(client, prefix, 0.5)
    try:
        assert await a.hold() and not await b.hold()
        assert await a.hold()  # a renewal
        await a.release()
        assert await b.hold() and not await a.hold()
        deadline = time.monotonic() + 30
        while not await a.hold():  # b stalls (stops renewing): its lease expires, a takes over
            assert time.monotonic() < deadline, "the lease never expired"
            await asyncio.sleep(0.1)
        assert not await b.hold()  # the stalled holder cannot renew what a took
    finally:
        await a.release()
        await b.release()
        await client.aclose()
