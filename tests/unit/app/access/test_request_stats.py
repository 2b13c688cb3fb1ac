"""Per-minute request counts: fixed latency buckets, the buffer, upsert-add across replicas, outages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select

from app.access.dberrors import StoreUnavailableError
from app.access.latency_histogram import BOUNDS_MS, COLUMNS, N_BUCKETS, bucket_of, quantile
from app.access.migrate import upgrade
from app.access.request_stats import RequestStats
from app.access.store import AccessStore
from app.access.tables import request_minutes
from app.config import parse_config
from app.wiring import Clients
from devtools.configs import gateway_config
from devtools.services import PostgresServer
from tests.access_support import access_general

MINUTE = 1_800_000_000  # a whole minute, epoch seconds
MakeStats = Callable[..., Awaitable[RequestStats]]


def test_buckets_are_fixed_log_spaced_and_inclusive() -> None:
    assert BOUNDS_MS[0] == 1 and BOUNDS_MS[-1] == 300_000 and len(COLUMNS) == N_BUCKETS == len(BOUNDS_MS) + 1
    assert all(1 < b / a <= 1.67 for a, b in pairwise(BOUNDS_MS))
    assert [bucket_of(ms) for ms in (0.2, 1.0, 1.2, 12, 15, 15.01)] == [0, 0, 1, 7, 7, 8]
    assert bucket_of(-3) == bucket_of(float("nan")) == 0 and bucket_of(1e9) == N_BUCKETS - 1


def test_percentiles_from_merged_buckets_are_exact_to_the_bucket() -> None:
    counts = [0] * N_BUCKETS
    assert quantile(counts, 0.5) is None
    for ms in [12.0] * 90 + [800.0] * 10:
        counts[bucket_of(ms)] += 1
    p50, p95 = quantile(counts, 0.5), quantile(counts, 0.95)
    assert p50 is not None and 10 < p50 <= 15
    assert p95 is not None and 700 < p95 <= 1000
    counts[-1] += 1000  # most requests beyond the last bound: read as that bound (a floor)
    assert quantile(counts, 0.95) == BOUNDS_MS[-1]


def _clients(backend: str, urls: dict[str, str], tmp: str) -> Clients:
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", **access_general(backend, tmp, **urls)))
    return Clients.for_config(cfg)


@pytest.fixture(params=["embedded", "real"])
async def make_stats(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[MakeStats]:
    """Recorders on one database, each with its own engine (like replicas)."""
    backend, urls, pg, db = str(request.param), {}, None, None
    if backend == "real":  # the session's servers, started on first use
        pg = request.getfixturevalue("postgres_server")
        assert isinstance(pg, PostgresServer)
        db = pg.create_database()
        urls = {"database_url": pg.url(db), "redis_url": request.getfixturevalue("redis_server").url()}
    made: list[tuple[RequestStats, Clients]] = []

    async def make(**kw: Any) -> RequestStats:
        clients = _clients(backend, urls, str(tmp_path))
        assert clients.engine is not None
        await upgrade(clients.engine)
        stats = RequestStats(AccessStore(clients.engine), **kw)
        made.append((stats, clients))
        return stats

    yield make
    for stats, clients in made:
        await stats.close(timeout_s=2)
        await clients.close()
    if pg and db:
        pg.drop_database(db)


async def _table(stats: RequestStats) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The rows by (model, endpoint, status): for tests that write a single minute."""
    async with stats.store.engine.connect() as conn:
        rows = (await conn.execute(select(request_minutes))).mappings().all()
    return {(r["model"], r["endpoint"], r["status"]): dict(r) for r in rows}


async def test_counts_of_two_replicas_add_up_in_one_row(make_stats: MakeStats) -> None:
    a, b = await make_stats(), await make_stats()
    for ms in (12, 12, 800):
        a.record(endpoint="chat", model="tiny-model", status=200, seconds=ms / 1000, at=MINUTE + 5)
    b.record(endpoint="chat", model="tiny-model", status=200, seconds=0.012, at=MINUTE + 50)
    b.record(endpoint="chat", model="tiny-model", status=500, seconds=0.002, at=MINUTE + 51)
    assert a.pending == 1 and b.pending == 2
    assert await a.flush() and await b.flush() and a.pending == b.pending == 0
    a.record(endpoint="chat", model="tiny-model", status=200, seconds=0.012, at=MINUTE + 59)
    assert await a.flush()  # the same row again: added to, not replaced
    rows = await _table(a)
    ok, failed = rows[("tiny-model", "chat", 200)], rows[("tiny-model", "chat", 500)]
    assert ok["requests"] == 5 and ok[COLUMNS[bucket_of(12)]] == 4 and ok[COLUMNS[bucket_of(800)]] == 1
    assert ok["latency_ms_sum"] == pytest.approx(4 * 12 + 800)
    assert int(ok["minute"].timestamp()) == MINUTE
    assert failed["requests"] == 1 and failed[COLUMNS[bucket_of(2)]] == 1
    assert a.stats()["written"] == 2 and b.stats()["written"] == 2


async def test_an_outage_keeps_the_counts_and_they_land_when_the_database_is_back(make_stats: MakeStats) -> None:
    stats = await make_stats()
    real = stats.store.add_request_minutes
    down = True

    async def add(rows: list[dict[str, Any]], timeout: float | None = None) -> int:
        if down:
            raise StoreUnavailableError("access database unavailable")
        return await real(rows, timeout)

    stats.store.add_request_minutes = add  # type: ignore[method-assign]
    stats.record(endpoint="chat", model="m", status=200, seconds=0.01, at=MINUTE)
    assert not await stats.flush()
    stats.record(endpoint="chat", model="m", status=200, seconds=0.01, at=MINUTE)  # counted meanwhile
    stats.record(endpoint="chat", model="m", status=429, seconds=0.01, at=MINUTE + 60)
    assert not await stats.flush()
    assert stats.pending == 2 and stats.stats()["flush_failures"] == 2
    down = False
    assert await stats.flush() and stats.pending == 0
    rows = await _table(stats)
    assert rows[("m", "chat", 200)]["requests"] == 2 and rows[("m", "chat", 429)]["requests"] == 1


async def test_the_buffer_is_bounded_by_dropping_the_oldest_minutes(make_stats: MakeStats) -> None:
    stats = await make_stats(max_cells=2)
    for i in range(3):
        for _ in range(i + 1):
            stats.record(endpoint="chat", model="m", status=200, seconds=0.01, at=MINUTE + 60 * i)
    assert stats.pending == 2 and stats.dropped == 1  # the oldest minute's one request
    assert await stats.flush()
    async with stats.store.engine.connect() as conn:
        rows = (await conn.execute(select(request_minutes.c.minute, request_minutes.c.requests))).all()
    assert sorted((int(m.timestamp()) - MINUTE, n) for m, n in rows) == [(60, 2), (120, 3)]


async def test_the_flusher_writes_on_its_own_and_close_drains(make_stats: MakeStats) -> None:
    stats = await make_stats(interval_s=0.05)
    await stats.start()
    stats.record(endpoint="embeddings", model="embed-model", status=200, seconds=0.003)
    await stats.close(timeout_s=5)
    assert stats.pending == 0
    assert (await _table(stats))[("embed-model", "embeddings", 200)]["requests"] == 1
