"""``/v1/messages`` served natively in-process: the official ``anthropic`` SDK against the app
over ASGI, a ``MockTransport`` upstream. A concrete ``anthropic/`` model gets the body as
sent and its answer is passed back; ``auto``, OpenAI-format models and fallbacks to them get
the translation; what only a native call carries is refused (400) where it would be lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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

CLAUDE = "claude"
PDF = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}}
CACHED = {"type": "text", "text": "cache me", "cache_control": {"type": "ephemeral"}}
THINKING = {"type": "enabled", "budget_tokens": 1024}


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


MESSAGE = {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-up", "stop_reason": "end_turn",
           "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 2},
           "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "yes"}]}
EVENTS = (_event("message_start", {"message": {**MESSAGE, "content": [], "stop_reason": None}}),
          _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
          _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "native"}}),
          _event("content_block_stop", {"index": 0}),
          _event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                   "usage": {"output_tokens": 1}}),
          _event("message_stop", {}))


def reply(upstream: Upstream, call: ProviderCall) -> MockReply:
    text = orjson.dumps(call.body["messages"][-1]).decode()
    if upstream.name == CLAUDE and "fail" in text:
        return MockReply(status=503)
    if call.endpoint == "messages":
        return MockReply(body=MESSAGE, chunks=EVENTS, usage=Usage(3, 2, 0.0), fail_after=2 if "cut" in text else None)
    return MockReply()


@pytest.fixture
async def transport() -> MockTransport:
    return MockTransport(reply)


@asynccontextmanager
async def _sdk(tmp_path: Any, transport: MockTransport, group: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The app with ``claude`` (``anthropic/``) in ``group``, falling back to MID (OpenAI format)."""
    raw = gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"})
    raw["model_list"].append({"model_name": CLAUDE, "provider_group": group, "litellm_params": {
        "model": "anthropic/claude-up", "api_base": "http://127.0.0.1:1", "api_key": "sk-ant"},
        "model_info": {"input_cost_per_token": 9e-6, "output_cost_per_token": 9e-6}})
    raw["router_settings"]["fallbacks"] = [{CLAUDE: [MID]}]
    raw["router_settings"]["num_retries"] = 0
    cfg = parse_config(raw)
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg, transport), None))
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t")
    async with app.router.lifespan_context(app), http:
        yield anthropic.AsyncAnthropic(base_url="http://t", api_key=MASTER_KEY, http_client=http, max_retries=0)


@pytest.fixture
async def sdk(tmp_path: Any, transport: MockTransport) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with _sdk(tmp_path, transport, "small") as client:
        yield client


def _user(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "what does it say?"}]}]


async def test_a_concrete_native_model_gets_the_body_as_sent(sdk: anthropic.AsyncAnthropic,
                                                             transport: MockTransport) -> None:
    raw = await sdk.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=2000, system=[CACHED], messages=_user(PDF, CACHED),  # type: ignore[list-item]
        thinking=THINKING, extra_headers={"anthropic-beta": "pdfs-2024-09-25", "anthropic-version": "2023-06-01"})  # type: ignore[arg-type]
    message = await raw.parse()
    assert [b.type for b in message.content] == ["thinking", "text"] and message.id == "msg_up"
    assert raw.headers["x-routeiq-model"] == CLAUDE
    call = transport.calls[-1]
    assert call.endpoint == "messages" and call.headers["anthropic-beta"] == "pdfs-2024-09-25"
    assert call.headers["anthropic-version"] == "2023-06-01"  # the client's, forwarded
    assert call.body["thinking"] == THINKING and call.body["system"] == [CACHED]
    assert call.body["messages"] == _user(PDF, CACHED)


async def test_a_native_stream_is_passed_through(sdk: anthropic.AsyncAnthropic, transport: MockTransport) -> None:
    async with sdk.messages.stream(model=CLAUDE, max_tokens=10, messages=_user(PDF)) as stream:  # type: ignore[arg-type]
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "native" and final.id == "msg_up" and final.usage.output_tokens == 1
    assert transport.calls[-1].endpoint == "messages" and transport.calls[-1].body["stream"] is True


async def test_a_native_stream_cut_ends_with_an_anthropic_error_event(sdk: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as failed:
        async with sdk.messages.stream(model=CLAUDE, max_tokens=10,
                                       messages=[{"role": "user", "content": "cut"}]) as stream:
            async for _ in stream:
                pass
    assert failed.value.body["type"] == "error" and failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_auto_and_openai_format_models_are_translated(sdk: anthropic.AsyncAnthropic,
                                                            transport: MockTransport) -> None:
    for model in ("auto", MID):
        message = await sdk.messages.create(model=model, max_tokens=10, messages=_user(CACHED))  # type: ignore[arg-type]
        assert message.content[0].type == "text" and message.content[0].text == "hi"
        assert transport.calls[-1].endpoint == "chat"


@pytest.mark.parametrize("model", ["auto", MID])
async def test_what_only_a_native_call_carries_is_a_400_elsewhere(sdk: anthropic.AsyncAnthropic,
                                                                  transport: MockTransport, model: str) -> None:
    server_tool = {"type": "web_search_20250305", "name": "web_search"}
    for extra in ({"messages": _user(PDF)}, {"messages": _user(), "tools": [server_tool]}):
        with pytest.raises(anthropic.BadRequestError) as refused:
            await sdk.messages.create(model=model, max_tokens=10, **extra)  # type: ignore[call-overload]
        assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert "natively" in refused.value.body["error"]["message"]  # type: ignore[index]
    assert transport.calls == []


async def test_a_fallback_to_an_openai_model_is_translated(sdk: anthropic.AsyncAnthropic,
                                                           transport: MockTransport) -> None:
    raw = await sdk.messages.with_raw_response.create(model=CLAUDE, max_tokens=10,
                                                      messages=[{"role": "user", "content": "fail"}])
    assert raw.headers["x-routeiq-fallback-from"] == CLAUDE and raw.headers["x-routeiq-model"] == MID
    assert (await raw.parse()).content[0].text == "hi"  # type: ignore[union-attr]
    assert [c.endpoint for c in transport.calls] == ["messages", "chat"]


async def test_a_fallback_that_would_lose_a_document_is_not_taken(sdk: anthropic.AsyncAnthropic,
                                                                  transport: MockTransport) -> None:
    with pytest.raises(anthropic.APIStatusError) as failed:
        await sdk.messages.create(model=CLAUDE, max_tokens=10, messages=_user(PDF, {"type": "text", "text": "fail"}))  # type: ignore[arg-type]
    assert failed.value.status_code == 502 and [c.endpoint for c in transport.calls] == ["messages"]


async def test_an_anthropic_model_in_a_litellm_transport_group_is_translated(tmp_path: Any,
                                                                            transport: MockTransport) -> None:
    async with _sdk(tmp_path, transport, "slow") as client:  # devtools' "slow" group: transport litellm
        message = await client.messages.create(model=CLAUDE, max_tokens=10, messages=_user(CACHED))  # type: ignore[arg-type]
        assert message.content[0].type == "text" and message.content[0].text == "hi"
        with pytest.raises(anthropic.BadRequestError):  # nothing native left to serve a document
            await client.messages.create(model=CLAUDE, max_tokens=10, messages=_user(PDF))  # type: ignore[arg-type]
    assert [c.endpoint for c in transport.calls] == ["chat"]
