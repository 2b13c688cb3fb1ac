"""The native Responses client against the fake upstream's ``/v1/responses``: the body goes
as sent, the answer (JSON or events) comes back as sent, and its usage is charged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from app.config import ModelEntry
from app.providers.base import Prices, ProviderCall, StreamEnd, Upstream
from app.providers.responses_native import ResponsesNativeClient, ResponsesRelay, responses_usage, speaks_responses

PRICES = Prices(1e-6, 4e-6, cache_read=0.25e-6)


@pytest.fixture
async def client() -> AsyncIterator[ResponsesNativeClient]:
    native = ResponsesNativeClient()
    yield native
    await native.close()


def _entry(model: str = "openai/gpt-up", **info: Any) -> ModelEntry:
    return ModelEntry.model_validate({"model_name": "gpt", "model_info": info, "litellm_params": {
        "model": model, "api_base": "http://h/v1", "api_key": "sk-up"}})


def _upstream(url: str) -> Upstream:
    entry = ModelEntry.model_validate({"model_name": "gpt", "litellm_params": {
        "model": "openai/gpt-up", "api_base": url, "api_key": "sk-up"}})
    return Upstream(0, entry, PRICES)


def test_which_entries_have_the_responses_api() -> None:
    assert speaks_responses(_entry(supported_endpoints=["/v1/chat/completions", "/v1/responses"]))
    assert not speaks_responses(_entry(supported_endpoints=["/v1/chat/completions"]))
    assert not speaks_responses(_entry())  # unknown to the cost map, not declared: translated
    assert speaks_responses(_entry("openai/gpt-4.1"))  # litellm's map says so
    assert not speaks_responses(_entry("openai/gpt-4.1", supported_endpoints=["/v1/chat/completions"]))  # config wins
    litellm_only = ModelEntry.model_validate({"model_name": "g", "litellm_params": {"model": "bedrock/x"},
                                              "model_info": {"supported_endpoints": ["/v1/responses"]}})
    assert not speaks_responses(litellm_only)  # no OpenAI-format upstream to pass through to


def test_usage_charges_cached_prompt_tokens_at_the_read_price() -> None:
    usage = responses_usage({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 40},
                             "output_tokens": 10}, PRICES)
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, 10)
    assert usage.cost == pytest.approx(60 * 1e-6 + 10 * 4e-6 + 40 * 0.25e-6)
    odd = responses_usage({"input_tokens": -5, "output_tokens": "x", "input_tokens_details": {"cached_tokens": 9}},
                          PRICES)
    assert (odd.prompt_tokens, odd.completion_tokens, odd.cost) == (0, 0, 0.0)


async def test_the_body_goes_as_sent_and_the_answer_comes_back_as_sent(client: ResponsesNativeClient,
                                                                        upstream: Any) -> None:
    body = {"model": "gpt", "input": "say hello to the world", "instructions": "be brief",
            "metadata": {"k": "v"}, "routeiq": {"lambda": 0.5}, "api_base": "http://elsewhere"}
    result = await client.complete(_upstream(upstream.url), ProviderCall("responses", 0, body, "r-1",
                                                                         {"x-request-id": "r-1"}))
    sent = next(r for r in upstream.state.requests if r["headers"].get("x-request-id") == "r-1")
    assert sent["path"] == "/v1/responses" and sent["headers"]["authorization"] == "Bearer sk-up"
    assert sent["body"] == {"model": "gpt-up", "input": "say hello to the world", "instructions": "be brief",
                            "metadata": {"k": "v"}}  # RouteIQ's own field and connection keys removed
    answer = orjson.loads(result.body)
    assert answer["object"] == "response" and answer["output"][0]["content"][0]["text"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (
        answer["usage"]["input_tokens"], answer["usage"]["output_tokens"])
    assert result.usage.cost > 0 and not result.usage.estimated


async def test_a_stream_is_relayed_as_sent_and_charged_from_response_completed(
    client: ResponsesNativeClient, upstream: Any,
) -> None:
    body = {"model": "gpt", "input": "[[fake framing=crlf]] stream me some words", "stream": True}
    items = [i async for i in client.stream(_upstream(upstream.url), ProviderCall("responses", 0, body, "r-2", {}))]
    *chunks, end = items
    assert isinstance(end, StreamEnd) and end.usage is not None and end.usage.completion_tokens > 0
    raw = b"".join(c for c in chunks if isinstance(c, bytes))
    assert b"\r" not in raw and raw.count(b"event: response.output_text.delta") >= 1
    assert raw.rstrip().endswith(b"}") and b"response.completed" in raw


def test_the_relay_finds_usage_only_in_the_final_event() -> None:
    relay = ResponsesRelay(PRICES)
    done = orjson.dumps({"type": "response.completed", "response": {"usage": {"input_tokens": 3, "output_tokens": 2}}})
    out = relay.feed(b'event: response.output_text.delta\ndata: {"delta": "hi"}\n\nevent: response.completed\n')
    out += relay.feed(b"data: " + done + b"\n\n")
    assert out.count(b"\n\n") == 2 and relay.done
    assert relay.usage is not None and (relay.usage.prompt_tokens, relay.usage.completion_tokens) == (3, 2)
    bare = ResponsesRelay(PRICES)
    bare.feed(b'event: response.completed\ndata: {"type": "response.completed", "response": {}}\n\n')
    assert bare.done and bare.usage is None  # no usage reported: the gateway charges an estimate
