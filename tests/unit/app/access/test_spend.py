"""The spend buffer keeps events while the database is unreachable, bounded and counted."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.access.spend import SpendBuffer
from app.access.store import AccessStore, SpendEvent


def event(i: int) -> SpendEvent:
    return SpendEvent(f"ev{i:030d}", f"req-{i}", "key_x", None, "tiny-model", 1, 2, 1e-6, datetime.now(UTC))


async def test_unreachable_database_keeps_events_bounded(caplog: pytest.LogCaptureFixture) -> None:
    engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none", connect_args={"timeout": 1})
    buffer = SpendBuffer(AccessStore(engine, timeout_s=2), interval_s=0.05, max_events=5)
    caplog.set_level(logging.WARNING)
    for i in range(7):
        buffer.add(event(i))
    assert not await buffer.flush()
    stats = buffer.stats
    assert stats.pending == 5 and stats.dropped == 2 and stats.flush_failures == 1 and stats.written == 0
    assert "unreachable" in caplog.text and "dropped" in caplog.text
    await buffer.close(timeout_s=0.5)
    assert "unwritten spend events" in caplog.text
    await engine.dispose()


async def test_retried_batches_are_written_once(make_policy) -> None:  # type: ignore[no-untyped-def]
    policy = await make_policy()
    events = [event(i) for i in range(10)]
    assert await policy.store.write_spend(events) == 10
    assert await policy.store.write_spend([*events[5:], event(10)]) == 1  # a retry after an unclear failure
    rows = await policy.store.spend_report("key", {"key": "key_x"}, None, None)
    assert rows[0]["requests"] == 11
