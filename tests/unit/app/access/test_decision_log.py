"""The decision writer: batched off the request path, bounded while the database is down, feedback."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.access import decision_store
from app.access.decision_log import DecisionWriter
from app.access.decision_store import DecisionStore, Feedback
from app.access.store import StoreUnavailableError
from app.config import DecisionLogSettings
from app.errors import InvalidRequestError
from tests.unit.app.access.conftest import MakeWriter, record


async def all_rows(writer: DecisionWriter) -> list[dict[str, Any]]:
    return [r async for r in writer.store.rows()]


async def rows(writer: DecisionWriter) -> dict[str, dict[str, Any]]:
    return {r["request_id"]: r async for r in writer.store.rows()}


async def test_records_are_written_in_batches_by_the_flusher(make_writer: MakeWriter) -> None:
    writer = await make_writer()
    calls: list[int] = []
    write = writer.store.write

    async def counting(batch: list[dict[str, Any]]) -> int:
        calls.append(len(batch))
        return await write(batch)

    writer.store.write = counting  # type: ignore[method-assign]
    for i in range(2500):
        writer.record(record(i))
    assert writer.pending == 2500 and calls == []  # record() only queues
    for _ in range(100):
        if writer.written == 2500:
            break
        await asyncio.sleep(0.05)
    assert calls == [1000, 1000, 500] and writer.pending == 0
    assert len(await rows(writer)) == 2500


async def test_rows_keep_what_retraining_needs(make_writer: MakeWriter) -> None:
    writer = await make_writer(query_max_chars=10)
    writer.record(record(1, query="a long query about databases"))
    writer.record(record(2, status=502, fallback=True, strategy="fallback"))
    writer.record(record(1, query="a duplicate id is ignored"))
    assert await writer.flush()
    got = await rows(writer)
    assert set(got) == {"req-1", "req-2"}
    one = got["req-1"]
    assert one["query"] == "a long que" and one["query_chars"] == 28 and len(one["query_sha256"]) == 64
    assert one["candidates"] == {"tiny-model": 0.4, "big-model": 0.9} and one["lambda"] == 0.5
    assert (one["chosen"], one["prompt_tokens"], one["completion_tokens"], one["status"]) == ("big-model", 7, 16, 200)
    assert got["req-2"]["status"] == 502 and got["req-2"]["fallback"] is True


async def test_sha256_mode_stores_no_query_text(make_writer: MakeWriter) -> None:
    writer = await make_writer(store_query="sha256")
    writer.record(record(1, query="my secret medical question"))
    assert await writer.flush()
    row = (await rows(writer))["req-1"]
    assert row["query"] is None and row["query_sha256"] and row["query_chars"] == 26


async def test_feedback_rates_own_rows_and_admin_rates_any(make_writer: MakeWriter) -> None:
    writer = await make_writer()
    writer.feedback_wait_s = 0.1
    writer.record(record(1, key_id="key_a"))  # still buffered: feedback flushes first
    assert await writer.feedback("req-1", 0.75, "key_a")
    assert not await writer.feedback("req-1", 0.1, "key_b")  # another key's request: unknown
    assert not await writer.feedback("req-unknown", 0.1, None)
    assert await writer.feedback("req-1", 1.0, None)  # admin
    row = (await rows(writer))["req-1"]
    assert row["feedback"] == 1.0 and row["feedback_at"]


async def test_a_client_chosen_request_id_cannot_claim_another_keys_row(make_writer: MakeWriter,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two keys send the same x-request-id: each gets its own row, rates only its own, and
    cannot tell another key's id from one that does not exist (the same lookups, the same answer)."""
    writer = await make_writer()
    writer.feedback_wait_s = 0.3
    writer.record(record(7, key_id="victim", query="the victim's question"))
    writer.record(record(7, key_id="attacker", query="the attacker's question"))
    assert await writer.flush()
    assert {(r["key_id"], r["query"]) for r in await all_rows(writer) if r["request_id"] == "req-7"} == {
        ("victim", "the victim's question"), ("attacker", "the attacker's question")}
    assert await writer.feedback("req-7", 0.0, "attacker")
    lookups: list[str] = []
    real = writer.store.set_feedback

    async def counted(request_id: str, score: float, key_id: str | None) -> Feedback:
        lookups.append(request_id)
        return await real(request_id, score, key_id)

    monkeypatch.setattr(writer.store, "set_feedback", counted)
    writer.record(record(8, key_id="victim"))
    assert await writer.flush()
    assert not await writer.feedback("req-8", 0.0, "attacker")  # the victim's only
    theirs = len(lookups)
    lookups.clear()
    assert not await writer.feedback("req-nobody", 0.0, "attacker")
    assert abs(len(lookups) - theirs) <= 1  # same path: polled until the deadline either way
    victim = {r["key_id"]: r["feedback"] for r in await all_rows(writer) if r["request_id"] == "req-7"}
    assert victim == {"victim": None, "attacker": 0.0}
    with pytest.raises(InvalidRequestError, match="key_id"):
        await writer.feedback("req-7", 1.0, None)  # an admin must say whose
    assert await writer.feedback("req-7", 1.0, "victim")


async def test_feedback_waits_for_a_row_another_replica_still_buffers(make_writer: MakeWriter) -> None:
    here, there = await make_writer(), await make_writer()
    here.feedback_wait_s = 2.0
    there.record(record(7))
    assert await here.feedback("req-7", 0.5, "key_a")  # `there` flushes within its interval


def _down(**settings: Any) -> DecisionWriter:
    engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none", connect_args={"timeout": 1})
    return DecisionWriter(DecisionStore(engine, timeout_s=2), DecisionLogSettings(**settings))


async def test_database_down_keeps_a_bounded_buffer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    writer = _down(buffer_max=5)
    for i in range(8):
        writer.record(record(i))
    assert not await writer.flush()
    assert writer.pending == 5 and writer.dropped == 3 and writer.failures == 1 and writer.written == 0
    assert "unreachable" in caplog.text and "dropped" in caplog.text
    # feedback on a row still buffered here is kept with it; an unknown one is a 503
    assert await writer.feedback("req-7", 0.25, "key_a")
    assert [r["feedback"] for r in writer._rows if r["request_id"] == "req-7"] == [0.25]
    with pytest.raises(StoreUnavailableError):
        await writer.feedback("req-0", 0.25, "key_a")  # dropped, and the database is down
    await writer.close(timeout_s=0.2)
    assert "unwritten decision records" in caplog.text


async def test_records_survive_an_outage_and_keep_their_feedback(make_writer: MakeWriter) -> None:
    writer = await make_writer()
    real = writer.store.write
    outage = True

    async def flaky(batch: list[dict[str, Any]]) -> int:
        if outage:
            raise StoreUnavailableError("down")
        return await real(batch)

    writer.store.write = flaky  # type: ignore[method-assign]
    for i in range(3):
        writer.record(record(i))
    assert await writer.feedback("req-1", 0.5, "key_a")  # rated while buffered
    await asyncio.sleep(0.2)
    assert writer.pending == 3
    outage = False
    assert await writer.flush()
    got = await rows(writer)
    assert len(got) == 3 and got["req-1"]["feedback"] == 0.5


async def test_odd_values_are_normalised_when_queued_and_stored(make_writer: MakeWriter) -> None:
    writer = await make_writer(query_max_chars=50)
    writer.record(record(1, query="nul \x00 and a lone surrogate \ud800 end", lam=math.nan, cost=math.inf,
                         candidates={"tiny-model": math.nan, "big\x00model": 0.5}, route_latency_ms=-math.inf,
                         prompt_tokens=2**40, router="r" * 1000))
    queued = writer._rows[0]
    assert "\x00" not in queued["query"] and queued["lam"] is None and queued["cost"] == 0.0
    assert await writer.flush()
    row = (await rows(writer))["req-1"]
    assert row["query"] == "nul \ufffd and a lone surrogate \ufffd end" and row["query_chars"] == 32
    assert row["lambda"] is None and row["cost"] == 0.0 and row["route_latency_ms"] == 0.0
    assert row["candidates"] == {"tiny-model": None, "big\ufffdmodel": 0.5}
    assert row["prompt_tokens"] == 2**31 - 1 and row["router"] == "r" * 256
    assert writer.dead_lettered == 0


class _NoNormalising:
    def row(self, values: dict[str, Any]) -> dict[str, Any]:
        return dict(values)


@pytest.mark.parametrize("bad", ["nul \x00 byte", "lone \ud800 surrogate"])
async def test_a_row_the_database_refuses_is_dead_lettered_and_the_log_keeps_writing(
        make_writer: MakeWriter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, bad: str) -> None:
    writer = await make_writer()
    if "\x00" in bad and writer.store.engine.dialect.name == "sqlite":
        pytest.skip("SQLite stores NUL bytes: only Postgres refuses them")
    monkeypatch.setattr(decision_store, "_ROW", _NoNormalising())  # as if the normaliser had missed it
    caplog.set_level(logging.WARNING)
    for i in range(40):
        writer.record(record(i, query=f"secret {bad}" if i in (3, 29) else "fine"))
    assert await writer.flush()  # a data error, not an outage: the flush completes
    got = await rows(writer)
    assert set(got) == {f"req-{i}" for i in range(40)} - {"req-3", "req-29"}
    assert writer.dead_lettered == 2 and writer.pending == 0 and writer.failures == 0
    assert "'req-3' dead-lettered" in caplog.text and "'req-29' dead-lettered" in caplog.text
    assert "secret" not in caplog.text  # never the query text
    for i in range(40, 45):  # later batches: written by the background flusher
        writer.record(record(i))
    for _ in range(100):
        if writer.pending == 0:
            break
        await asyncio.sleep(0.05)
    assert {f"req-{i}" for i in range(40, 45)} <= set(await rows(writer))
    assert writer.stats()["dead_lettered"] == 2
