"""``FallbackLimiter`` against a real Redis that really fails (no Ray, no mocks).

Each test starts its own ``redis-server`` on a free port (``devtools.services``), so it
can stop or pause it without touching the session's Redis or the machine's: a dead port
(connection refused), a server shut down mid-run and restarted, and ``CLIENT PAUSE`` (a
hung server).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from app.access.fallback import FallbackLimiter
from app.access.limits import NO_RESERVATION, OK, RPM, Demand, Scope
from app.access.local_limiter import LocalLimiter
from app.access.redis_limiter import RedisLimiter
from app.breaker import Breaker
from devtools.servers import free_port
from devtools.services import RedisServer
from tests.access_support import start_service


def scope(name: str, rpm: int | None = None, budget: float | None = None) -> Scope:
    base = f"fb:{name}"
    return Scope("key", 1, rpm, None, budget, f"{base}:ver", f"{base}:rpm", f"{base}:tpm", f"{base}:spend:0")


def limiter(port: int, open_s: float = 0.2, timeout_s: float = 0.3) -> FallbackLimiter:
    client = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=timeout_s,
                               socket_connect_timeout=timeout_s)
    return FallbackLimiter(RedisLimiter(client), LocalLimiter(), Breaker("redis", open_s, open_s * 4), timeout_s)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A Redis of this test's own: the tests stop and pause it."""
    srv = start_service(RedisServer)
    yield srv
    srv.close()


@pytest.fixture
async def admin(server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(f"redis://127.0.0.1:{server.port}/0")
    yield client
    await client.aclose()


async def test_dead_redis_fails_fast_and_limits_per_replica() -> None:
    dead = free_port()  # nothing listens: connection refused
    replicas = [limiter(dead), limiter(dead)]
    s = scope("dead", rpm=3)
    codes = [(await r.admit([s], f"m{i}", Demand())).code for r in replicas for i in range(5)]
    assert codes == [OK] * 3 + [RPM] * 2 + [OK] * 3 + [RPM] * 2  # 3 a replica: 6 in all
    report = replicas[0].breaker.report()
    assert report["status"] == "down" and report["error"] == "ConnectionError"
    # While the breaker is open no call waits on Redis: the added cost is the local limiter's.
    wide = scope("wide", rpm=10**6)
    start = time.perf_counter()
    for i in range(2000):
        await replicas[0].admit([wide], f"w{i}", Demand())
    per_call_ms = (time.perf_counter() - start) / 2000 * 1000
    assert per_call_ms < 1.0, per_call_ms
    for r in replicas:
        await r.close()


async def test_shutdown_and_restart_falls_back_then_limits_globally_again(server: RedisServer) -> None:
    a, b = limiter(server.port), limiter(server.port)
    s = scope("restart", rpm=4)
    assert [(await x.admit([s], f"h{i}", Demand())).code for i, x in enumerate([a, b, a, b, a])] == [OK] * 4 + [RPM]
    wide = scope("pool", rpm=10**6)  # fill the pools: their connections die with the server
    await asyncio.gather(*(x.admit([wide], f"p{i}", Demand()) for i in range(16) for x in (a, b)))
    server.stop()
    down = [(await a.admit([s], f"d{i}", Demand())).code for i in range(5)]
    assert down == [OK] * 4 + [RPM]  # a fresh per-replica window
    assert (await a.probe())["status"] == "down"
    server.start()
    deadline = time.monotonic() + 30

    async def through_redis(x: FallbackLimiter, i: int) -> bool:
        """A call that reached Redis just now (b never saw the outage: its first call finds
        its pooled connections dead, falls back once, then probes with a fresh pool)."""
        await x.admit([wide], f"warm{i}", Demand())
        return x.breaker.seen_up_within(0.5)

    i = 0
    while not (await through_redis(a, i) and await through_redis(b, i)):
        assert time.monotonic() < deadline, "breaker did not close"
        i += 1
        await asyncio.sleep(0.05)
    # Redis lost its windows (no persistence): 4 between both replicas again, not 4 each.
    verdicts = await asyncio.gather(*(x.admit([s], f"r{i}", Demand()) for i, x in enumerate([a, b] * 8)))
    assert [v.code for v in verdicts].count(OK) == 4 and a.breaker.up and b.breaker.up
    await a.close()
    await b.close()


async def test_hung_redis_costs_one_timeout_then_budget_uses_the_last_counter(
    server: RedisServer, admin: aioredis.Redis
) -> None:
    lim = limiter(server.port, open_s=0.3, timeout_s=0.2)
    s = scope("hung", budget=1.0)
    await lim.seed_spend(s.spend_key, 0.5, 600)
    assert (await lim.admit([s], "a", Demand())).code == OK  # the script reads 0.5; the replica remembers it
    await admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")
    start = time.perf_counter()
    assert (await lim.admit([s], "b", Demand())).code == OK
    first = time.perf_counter() - start
    start = time.perf_counter()
    await lim.charge([s], 10, 0.6, NO_RESERVATION)  # 0.5 + 0.6 > 1.0: the local counter says over budget
    verdict = await lim.admit([s], "c", Demand())
    rest = time.perf_counter() - start
    assert 0.15 < first < 0.5 and rest < 0.01, (first, rest)
    assert verdict.code != OK
    await asyncio.sleep(1.6)  # the pause ends; the next call after the open period probes
    deadline = time.monotonic() + 5
    while (await lim.probe())["status"] != "up":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)  # the replay of the outage's charges runs in the background
    assert float(await admin.get(s.spend_key)) == pytest.approx(1.1)  # nothing lost, nothing doubled
    await lim.close()
