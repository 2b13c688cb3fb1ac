"""``/v1/messages`` and ``/v1/messages/count_tokens`` in-process: the official ``anthropic`` SDK
against the app over ASGI, the upstream a ``MockTransport`` (no Ray, no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import orjson
import pytest

from app.config import parse_config
from app.main import create_app
from app.providers.base import ProviderCall, Upstream, Usage
from app.providers.mock import MockReply, MockTransport
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, MID, gateway_config

USER = [{"role": "user", "content": "hello there"}]


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"


def reply(upstream: Upstream, call: ProviderCall) -> MockReply:
    """What the mock upstream answers, steered by the last message's text."""
    last = str(call.body["messages"][-1].get("content"))
    if "busy" in last:
        return MockReply(status=429, retry_after="7")
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\n'
    chunks = (chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}), chunk({}, "stop"), usage)
    return MockReply(chunks=chunks, fail_after=1 if "cut" in last else None, usage=Usage(4, 2, 0.0))


@pytest.fixture
async def transport() -> MockTransport:
    return MockTransport(reply)


@pytest.fixture
async def sdk(tmp_path: Any, transport: MockTransport) -> AsyncIterator[anthropic.AsyncAnthropic]:
    cfg = parse_config(gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"}))
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg, transport), None))
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t")  # the SDK's own httpx
    async with app.router.lifespan_context(app), http:
        yield anthropic.AsyncAnthropic(base_url="http://t", api_key=MASTER_KEY, http_client=http, max_retries=0)


async def test_a_message_is_translated_there_and_back(sdk: anthropic.AsyncAnthropic, transport: MockTransport) -> None:
    message = await sdk.messages.create(model=MID, max_tokens=10, system="s", messages=USER)  # type: ignore[arg-type]
    assert message.content[0].type == "text" and message.content[0].text == "hi"
    assert (message.model, message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        MID, "end_turn", 4, 2)
    call = transport.calls[-1]
    assert call.endpoint == "chat" and call.body["messages"] == [{"role": "system", "content": "s"}, *USER]


async def test_a_stream_is_anthropics_events(sdk: anthropic.AsyncAnthropic) -> None:
    async with sdk.messages.stream(model="auto", max_tokens=10, messages=USER) as stream:  # type: ignore[arg-type]
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello" and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 2)


async def test_a_stream_cut_after_its_start_ends_with_an_anthropic_error(sdk: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as failed:
        async with sdk.messages.stream(model=MID, max_tokens=10,
                                       messages=[{"role": "user", "content": "cut"}]) as stream:
            async for _ in stream:
                pass
    assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_errors_before_the_answer_are_anthropic_shaped(sdk: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        await sdk.messages.create(model=MID, max_tokens=10, messages=[{"role": "user", "content": "busy"}])
    assert limited.value.body == {"type": "error", "error": {"type": "rate_limit_error",  # type: ignore[comparison-overlap]
                                                             "message": limited.value.body["error"]["message"]}}  # type: ignore[index]
    assert limited.value.response.headers["retry-after"] == "7"  # the upstream's, passed on as for chat
    with pytest.raises(anthropic.NotFoundError):
        await sdk.messages.create(model="nope", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError) as bad:
        await sdk.messages.create(model=MID, max_tokens=0, messages=USER)  # type: ignore[arg-type]
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    anonymous = anthropic.AsyncAnthropic(base_url="http://t", api_key="", http_client=sdk._client, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        await anonymous.messages.create(model=MID, max_tokens=10, messages=USER)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/v1/messages", "/messages", "/v1/messages/count_tokens", "/messages/count_tokens"])
async def test_bad_bodies_are_anthropic_400s_never_500s(sdk: anthropic.AsyncAnthropic, path: str) -> None:
    http: httpx2.AsyncClient = sdk._client
    key = {"x-api-key": MASTER_KEY}
    for body in (b"", b"[]", b"{", b'{"model": 1}', orjson.dumps({"model": MID, "messages": [{"role": "tool"}]}),
                 orjson.dumps({"model": MID, "max_tokens": 5, "messages": [{"role": "user", "content": [
                     {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "document"}]}]}]})):
        resp = await http.post(path, content=body, headers=key)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["type"] == "error" and resp.json()["error"]["type"] == "invalid_request_error"


async def test_count_tokens(sdk: anthropic.AsyncAnthropic, transport: MockTransport) -> None:
    counted = await sdk.messages.count_tokens(model="auto", messages=[{"role": "user", "content": "x" * 40}])
    assert counted.input_tokens == 10 and transport.calls == []  # an estimate: no upstream is asked


async def test_a_keys_limits_and_model_list_apply_as_for_chat(sdk: anthropic.AsyncAnthropic) -> None:
    http: httpx2.AsyncClient = sdk._client
    made = await http.post("/key/generate", json={"models": [MID], "rpm_limit": 1},
                           headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert made.status_code == 200, made.text
    keyed = anthropic.AsyncAnthropic(base_url="http://t", api_key=made.json()["key"], http_client=http, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        await keyed.messages.create(model="big-model", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    assert refused.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):  # not probeable through count_tokens either
        await keyed.messages.count_tokens(model="big-model", messages=USER)  # type: ignore[arg-type]
    assert (await keyed.messages.create(model=MID, max_tokens=10, messages=USER)).content  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as limited:  # rpm_limit 1: the second request in the minute
        await keyed.messages.create(model=MID, max_tokens=10, messages=USER)  # type: ignore[arg-type]
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "retry-after" in limited.value.response.headers
