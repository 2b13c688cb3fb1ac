"""The native Anthropic client against the fake upstream's ``/v1/messages``: the body goes
as sent, the answer comes back as sent, and its usage (cache counts included) is charged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from app.config import ModelEntry
from app.errors import InvalidRequestError, RateLimitError
from app.providers.anthropic_native import AnthropicNativeClient, messages_url, speaks_messages
from app.providers.base import Prices, ProviderCall, StreamEnd, Upstream
from devtools.fake_upstream.messages import SIGNATURE, THINKING

PRICES = Prices(1e-6, 5e-6, cache_write=2e-6, cache_read=0.5e-6)
SYSTEM = [{"type": "text", "text": "a long cached system prompt of ten words right here",
           "cache_control": {"type": "ephemeral"}}]
PDF = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}}


@pytest.fixture
async def client() -> AsyncIterator[AnthropicNativeClient]:
    native = AnthropicNativeClient()
    yield native
    await native.close()


def _upstream(url: str, **params: Any) -> Upstream:
    entry = ModelEntry.model_validate({"model_name": "claude", "litellm_params": {
        "model": "anthropic/claude-up", "api_base": url, "api_key": "sk-ant", **params}})
    return Upstream(0, entry, PRICES)


def _body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "claude", "max_tokens": 64, "system": SYSTEM, "routeiq": {"lambda": 0.5}, "api_base": "http://x",
            "messages": [{"role": "user", "content": [PDF, {"type": "text", "text": text}]}], **extra}


def _sent(upstream: Any, rid: str) -> dict[str, Any]:
    return next(r for r in upstream.state.requests if r["headers"].get("x-request-id") == rid)


def test_which_entries_speak_messages_and_where_they_are_called() -> None:
    assert speaks_messages(ModelEntry.model_validate({"model_name": "c", "litellm_params": {"model": "anthropic/c"}}))
    assert not speaks_messages(ModelEntry.model_validate({"model_name": "c", "litellm_params": {"model": "openai/c"}}))
    for base in ("http://h", "http://h/", "http://h/v1", "http://h/v1/messages"):
        assert messages_url(base) == "http://h/v1/messages"


async def test_the_body_goes_as_sent_and_the_cache_counts_are_charged(client: AnthropicNativeClient,
                                                                      upstream: Any) -> None:
    up = _upstream(upstream.url)
    body = _body("first", thinking={"type": "enabled", "budget_tokens": 1024})
    headers = {"x-request-id": "ant-1", "anthropic-beta": "pdfs-2024-09-25"}
    first = await client.complete(up, ProviderCall("messages", 0, body, "ant-1", headers))
    sent = _sent(upstream, "ant-1")
    kept = {k: v for k, v in body.items() if k not in ("routeiq", "api_base")}  # RouteIQ's and connection keys
    assert sent["path"] == "/v1/messages" and sent["body"] == {**kept, "model": "claude-up"}
    assert (sent["headers"]["x-api-key"], sent["headers"]["anthropic-version"],
            sent["headers"]["anthropic-beta"]) == ("sk-ant", "2023-06-01", "pdfs-2024-09-25")
    answer = orjson.loads(first.body)
    assert answer["content"][0] == {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}
    assert first.finish_reason == "end_turn" and first.model == "claude-up"
    usage = answer["usage"]
    written = usage["cache_creation_input_tokens"]
    assert written == 10 and usage["input_tokens"] == 1 and "cost" not in usage  # the bytes are the upstream's
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (11, usage["output_tokens"])
    assert first.usage.cost == pytest.approx(1e-6 + written * 2e-6 + usage["output_tokens"] * 5e-6)
    again = await client.complete(up, ProviderCall("messages", 0, _body("second"), "ant-2", {"x-request-id": "ant-2"}))
    read = orjson.loads(again.body)["usage"]
    assert (read["cache_creation_input_tokens"], read["cache_read_input_tokens"]) == (0, 10)
    assert again.usage.cost == pytest.approx(1e-6 + 10 * 0.5e-6 + read["output_tokens"] * 5e-6)


async def test_a_stream_is_relayed_as_sent_with_its_usage(client: AnthropicNativeClient, upstream: Any) -> None:
    body = _body("streamed [[fake framing=crlf tokens=5]]", stream=True)
    root = _upstream(upstream.url.removesuffix("/v1"))  # api_base without /v1 serves as well
    items = [i async for i in client.stream(root, ProviderCall("messages", 0, body))]
    end = items.pop()
    raw = b"".join(i for i in items if isinstance(i, bytes))
    assert isinstance(end, StreamEnd) and end.usage is not None and b"\r" not in raw
    kinds = [e.split(b"\n")[0] for e in raw.split(b"\n\n") if e]
    assert kinds[0] == b"event: message_start" and kinds[-2:] == [b"event: message_delta", b"event: message_stop"]
    assert end.usage.completion_tokens == 5 and not end.usage.estimated


async def test_no_usage_is_an_estimate(client: AnthropicNativeClient, upstream: Any) -> None:
    result = await client.complete(_upstream(upstream.url), ProviderCall("messages", 0, _body("x [[fake usage=none]]")))
    text = orjson.loads(result.body)["content"][0]["text"]
    assert result.usage.estimated and result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens == -(-len(text) // 4)  # the answer's text, ~4 characters a token
    items = [i async for i in client.stream(_upstream(upstream.url),
                                            ProviderCall("messages", 0, _body("y [[fake usage=none]]", stream=True)))]
    assert items[-1] == StreamEnd(None)


@pytest.mark.parametrize(("knob", "error"), [("429", RateLimitError)])
async def test_upstream_errors_are_routeiqs(client: AnthropicNativeClient, upstream: Any, knob: str,
                                            error: type[Exception]) -> None:
    with pytest.raises(error):
        await client.complete(_upstream(upstream.url), ProviderCall("messages", 0, _body(f"[[fake error={knob}]]")))


async def test_a_refused_body_is_a_400(client: AnthropicNativeClient, upstream: Any) -> None:
    body = {"model": "claude", "max_tokens": 1, "messages": "not a list"}
    with pytest.raises(InvalidRequestError):
        await client.complete(_upstream(upstream.url), ProviderCall("messages", 0, body))
