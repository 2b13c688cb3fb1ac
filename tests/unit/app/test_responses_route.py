"""``/v1/responses`` in-process: the official ``openai`` SDK against the app over ASGI, the
upstream a ``MockTransport`` (no Ray, no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import orjson
import pytest

from app.config import parse_config
from app.main import create_app
from app.providers.base import ProviderCall, Upstream, Usage
from app.providers.mock import MockReply, MockTransport
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, MID, gateway_config

TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}

def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"

def reply(upstream: Upstream, call: ProviderCall) -> MockReply:
    """What the mock upstream answers, steered by the last message's text."""
    last = str(call.body["messages"][-1].get("content"))
    if "busy" in last:
        return MockReply(status=429, retry_after="7")
    if "tool" in last:
        calls = [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
        body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": calls},
                             "finish_reason": "tool_calls"}]}
        return MockReply(body=body, usage=Usage(4, 2, 0.0))
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\n'
    chunks = (chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}), chunk({}, "stop"), usage)
    return MockReply(chunks=chunks, fail_after=1 if "cut" in last else None, usage=Usage(4, 2, 0.0))

@pytest.fixture
async def transport() -> MockTransport:
    return MockTransport(reply)

@pytest.fixture
async def sdk(tmp_path: Any, transport: MockTransport) -> AsyncIterator[openai.AsyncOpenAI]:
    cfg = parse_config(gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"}))
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg, transport), None))
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t")  # the SDK's own httpx
    async with app.router.lifespan_context(app), http:
        yield openai.AsyncOpenAI(base_url="http://t/v1", api_key=MASTER_KEY, http_client=http, max_retries=0)

async def test_a_response_is_translated_there_and_back(sdk: openai.AsyncOpenAI, transport: MockTransport) -> None:
    response = await sdk.responses.create(model=MID, instructions="s", input="hello there", metadata={"k": "v"})
    assert (response.output_text, response.model, response.status, response.metadata) == ("hi", MID, "completed",
                                                                                           {"k": "v"})
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 2)  # type: ignore[union-attr]
    call = transport.calls[-1]
    assert call.endpoint == "chat" and call.body["messages"] == [{"role": "system", "content": "s"},
                                                                 {"role": "user", "content": "hello there"}]
    assert "metadata" not in call.body

async def test_a_tool_call_is_a_function_call_item(sdk: openai.AsyncOpenAI) -> None:
    response = await sdk.responses.create(model=MID, input="tool please", tools=[TOOL])  # type: ignore[list-item]
    item = response.output[0]
    assert item.type == "function_call" and (item.call_id, item.name, item.arguments) == ("call_9", "get_weather", "{}")

async def test_a_stream_is_the_sdks_typed_events(sdk: openai.AsyncOpenAI) -> None:
    async with sdk.responses.stream(model="auto", input="hello there") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds and final.output_text == "Hello"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 2)  # type: ignore[union-attr]

async def test_a_stream_cut_after_its_start_ends_with_response_failed(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.responses.create(model=MID, input="cut", stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[-2:] == ["error", "response.failed"] and "response.completed" not in kinds

async def test_errors_before_the_answer_are_openai_shaped(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.responses.create(model=MID, input="busy")
    assert limited.value.response.headers["retry-after"] == "7"  # the upstream's, passed on as for chat
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.create(model="nope", input="hi")
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.responses.create(model=MID, input="hi", previous_response_id="resp_1")
    assert bad.value.param == "previous_response_id" and bad.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as hosted:
        await sdk.responses.create(model=MID, input="hi", tools=[{"type": "web_search"}])
    assert "web_search" in hosted.value.message
    stranger = openai.AsyncOpenAI(base_url="http://t/v1", api_key="sk-not-a-key", http_client=sdk._client,
                                  max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await stranger.responses.create(model=MID, input="hi")

@pytest.mark.parametrize("path", ["/v1/responses", "/responses"])
async def test_bad_bodies_are_400s_never_500s(sdk: openai.AsyncOpenAI, path: str) -> None:
    http: httpx2.AsyncClient = sdk._client
    key = {"authorization": f"Bearer {MASTER_KEY}"}
    for body in (b"", b"[]", b"{", b'{"model": 1}', orjson.dumps({"model": MID}),
                 orjson.dumps({"model": MID, "input": [{"type": "computer_call_output"}]}),
                 orjson.dumps({"model": MID, "input": "x", "background": True}),
                 orjson.dumps({"model": MID, "input": [{"role": "user", "content": [{"type": "input_file"}]}]})):
        resp = await http.post(path, content=body, headers=key)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"]["type"] == "invalid_request_error"

async def test_a_keys_limits_and_model_list_apply_as_for_chat(sdk: openai.AsyncOpenAI) -> None:
    http: httpx2.AsyncClient = sdk._client
    made = await http.post("/key/generate", json={"models": [MID], "rpm_limit": 1},
                           headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert made.status_code == 200, made.text
    keyed = openai.AsyncOpenAI(base_url="http://t", api_key=made.json()["key"], http_client=http, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        await keyed.responses.create(model="big-model", input="hi")
    assert (await keyed.responses.create(model=MID, input="hi")).output_text == "hi"  # base_url without /v1
    with pytest.raises(openai.RateLimitError) as limited:  # rpm_limit 1: the second request in the minute
        await keyed.responses.create(model=MID, input="hi")
    assert "retry-after" in limited.value.response.headers
