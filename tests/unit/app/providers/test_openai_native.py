"""The native pass-through against the fake upstream speaking as upstreams in the wild do:
CRLF or CR framing, ``"usage": {`` with spaces, or no usage at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from app.config import ModelEntry
from app.providers.base import Prices, ProviderCall, StreamEnd, Upstream
from app.providers.openai_native import OpenAINativeClient

PRICES = Prices(1e-6, 2e-6)
TEXT = "count me"


@pytest.fixture
async def native() -> AsyncIterator[OpenAINativeClient]:
    client = OpenAINativeClient()
    yield client
    await client.close()


def _upstream(url: str) -> Upstream:
    entry = ModelEntry.model_validate({"model_name": "m", "litellm_params": {"model": "openai/m", "api_base": url}})
    return Upstream(0, entry, PRICES)


def _call(knobs: str, stream: bool) -> ProviderCall:
    """A call whose client asked for the usage chunk when streamed."""
    messages = [{"role": "user", "content": f"{TEXT} [[fake {knobs}]]"}]
    body = {"model": "m", "messages": messages, "stream": stream}
    return ProviderCall("chat", 0, body, include_usage=stream)


async def _stream(native: OpenAINativeClient, upstream: Any, call: ProviderCall) -> tuple[bytes, StreamEnd]:
    items = [item async for item in native.stream(_upstream(upstream.url), call)]
    end = items.pop()
    assert isinstance(end, StreamEnd) and all(isinstance(i, bytes) for i in items)
    return b"".join(i for i in items if isinstance(i, bytes)), end


@pytest.mark.parametrize("knobs", ["framing=crlf", "framing=cr", "usage=spaced", "framing=crlf usage=spaced"])
async def test_streams_in_the_wild_are_relayed_as_lf_events_and_their_usage_counted(
        native: OpenAINativeClient, upstream: Any, knobs: str) -> None:
    raw, end = await _stream(native, upstream, _call(knobs, True))
    events = raw.split(b"\n\n")
    assert b"\r" not in raw and events[-2:] == [b"data: [DONE]", b""]
    assert len(events) == 16 + 4  # tokens, the stop event, usage, [DONE], and the empty tail
    text = "".join(orjson.loads(e[6:])["choices"][0]["delta"].get("content", "") for e in events[:17])
    assert text.startswith(f"echo: {TEXT}")
    prompt = len(f"{TEXT} [[fake {knobs}]]".split())
    assert end.usage is not None and (end.usage.prompt_tokens, end.usage.completion_tokens) == (prompt, 16)
    assert orjson.loads(events[-3][6:])["usage"]["cost"] == pytest.approx(PRICES.cost(prompt, 16))


async def test_a_stream_without_usage_ends_without_usage(native: OpenAINativeClient, upstream: Any) -> None:
    raw, end = await _stream(native, upstream, _call("usage=none framing=crlf", True))
    assert raw.endswith(b"data: [DONE]\n\n") and end.usage is None  # the exchange estimates


async def test_a_json_answer_without_usage_is_estimated(native: OpenAINativeClient, upstream: Any) -> None:
    result = await native.complete(_upstream(upstream.url), _call("usage=none", False))
    body = orjson.loads(result.body)
    assert "usage" not in body and result.usage.estimated
    answer = body["choices"][0]["message"]["content"]
    prompt_chars = len(f"{TEXT} [[fake usage=none]]")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (prompt_chars // 4, -(-len(answer) // 4))


async def test_a_json_answer_with_spaced_usage_is_counted(native: OpenAINativeClient, upstream: Any) -> None:
    result = await native.complete(_upstream(upstream.url), _call("usage=spaced", False))
    assert not result.usage.estimated and result.usage.completion_tokens == 16
    assert orjson.loads(result.body)["usage"]["cost"] == pytest.approx(result.usage.cost)
