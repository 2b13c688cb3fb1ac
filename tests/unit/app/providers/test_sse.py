from __future__ import annotations

import asyncio

import orjson
import pytest

from app.errors import UpstreamError
from app.providers.base import Prices, StreamEnd, Usage
from app.providers.sse import SSERelay, coalesce

PRICES = Prices(input=1e-6, output=2e-6)
CHUNK = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}\n\n'
DONE = b"data: [DONE]\n\n"


def test_relay_strips_usage_chunk_the_client_did_not_ask_for() -> None:
    relay = SSERelay(PRICES, include_usage=False)
    out = relay.feed(CHUNK + USAGE + DONE)
    assert out == CHUNK + DONE
    assert relay.usage is not None and relay.done
    assert (relay.usage.prompt_tokens, relay.usage.completion_tokens) == (3, 5)
    assert relay.usage.cost == pytest.approx(13e-6)


def test_relay_adds_cost_when_usage_is_asked() -> None:
    relay = SSERelay(PRICES, include_usage=True)
    out = relay.feed(USAGE)
    payload = orjson.loads(out.strip()[6:])
    assert payload["usage"]["cost"] == pytest.approx(13e-6)


def test_relay_handles_events_split_across_reads() -> None:
    relay = SSERelay(PRICES, include_usage=False)
    data = CHUNK + USAGE + DONE
    out = b"".join(relay.feed(data[i : i + 7]) for i in range(0, len(data), 7))
    assert out == CHUNK + DONE and relay.usage is not None


async def _source(items, delay: float = 0.0):
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item
        await asyncio.sleep(delay)


async def test_coalesce_merges_what_the_consumer_has_not_taken() -> None:
    items = [b"a", b"b", b"c", StreamEnd(Usage(1, 2, 0.0))]
    got = []
    async for item in coalesce(_source(items)):
        got.append(item)
        await asyncio.sleep(0.01)  # a slow consumer
    assert b"".join(x for x in got if isinstance(x, bytes)) == b"abc"
    assert len(got) < len(items) and got[-1] == items[-1]


async def test_coalesce_reraises_source_errors_after_the_data() -> None:
    got = []
    with pytest.raises(UpstreamError):
        async for item in coalesce(_source([b"a", UpstreamError("boom")])):
            got.append(item)
    assert got == [b"a"]
