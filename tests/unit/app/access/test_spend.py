"""The spend buffer keeps events while the database is unreachable, bounded and counted."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.access.spend import SpendBuffer
from app.access.store import AccessStore, SpendEvent


def event(i: int, key: str = "key_x") -> SpendEvent:
    return SpendEvent(f"ev{key[-8:]}{i:022d}", f"req-{i}", key, None, "tiny-model", 1, 2, 1e-6, datetime.now(UTC))


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
    key = f"key_{uuid.uuid4().hex[:8]}"  # the backends share the session's database
    events = [event(i, key) for i in range(10)]
    assert await policy.store.write_spend(events) == 10
    assert await policy.store.write_spend([*events[5:], event(10, key)]) == 1  # a retry after an unclear failure
    rows = await policy.store.spend_report("key", {"key": key}, None, None)
    assert rows[0]["requests"] == 11


async def test_an_event_is_normalised_when_queued(make_policy) -> None:  # type: ignore[no-untyped-def]
    policy = await make_policy()
    odd = SpendEvent("ev-odd", "req-odd", "key_x", None, "m\x00" + "x" * 400, 2**40, -(2**40), math.nan,
                     datetime.now(UTC))
    policy.spend.add(odd)
    queued = policy.spend._events[-1]
    assert queued.model == "m\ufffd" + "x" * 254 and queued.cost == 0.0
    assert (queued.prompt_tokens, queued.completion_tokens) == (2**31 - 1, -(2**31))
    assert await policy.spend.flush()
    [row] = await policy.store.spend_logs({"request_id": "req-odd"}, None, None, 10)
    assert row["model"] == queued.model and row["cost"] == 0.0 and policy.spend.stats.dead_lettered == 0


@pytest.mark.parametrize("bad", ["nul \x00 byte", "lone \ud800 surrogate"])
async def test_an_event_the_database_refuses_is_dead_lettered_and_the_buffer_keeps_writing(
        make_policy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
        bad: str) -> None:
    policy = await make_policy()
    if "\x00" in bad and policy.store.engine.dialect.name == "sqlite":
        pytest.skip("SQLite stores NUL bytes: only Postgres refuses them")
    monkeypatch.setattr(SpendEvent, "normalised", lambda self: self)  # as if the normaliser had missed it
    caplog.set_level(logging.WARNING)
    run = uuid.uuid4().hex[:8]
    for i in range(30):
        model = bad if i == 11 else "tiny-model"
        policy.spend.add(SpendEvent(f"{run}{i:04d}", f"req-{run}-{i}", f"key_{run}", None, model, 1, 2, 1e-6,
                                    datetime.now(UTC)))
    assert await policy.spend.flush()  # a data error, not an outage: the flush completes
    stats = policy.spend.stats
    assert stats.dead_lettered == 1 and stats.pending == 0 and stats.flush_failures == 0 and stats.written == 29
    assert f"'req-{run}-11' dead-lettered" in caplog.text
    [total] = await policy.store.spend_report("key", {"key": f"key_{run}"}, None, None)
    assert total["requests"] == 29  # the aggregates hold every good event, once
    for i in range(30, 33):  # later events: written by the background flusher
        policy.spend.add(SpendEvent(f"{run}{i:04d}", f"req-{run}-{i}", f"key_{run}", None, "tiny-model", 1, 2, 1e-6,
                                    datetime.now(UTC)))
    for _ in range(100):
        if policy.spend.pending == 0:
            break
        await asyncio.sleep(0.05)
    assert policy.spend.stats.written == 32
