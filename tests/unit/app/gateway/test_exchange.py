"""One owner per request: every exit path releases admission once, settles once, measures once.

The app runs in-process over the real embedded store (SQLite), with a ``MockTransport``
behind the provider callers; requests go through the ASGI interface, with a driver that
can drop the client part-way through a stream the two ways an ASGI server reports it
(``send`` failing, spec 2.4, or an ``http.disconnect`` message, earlier specs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from starlette.requests import ClientDisconnect

from app.access.policy import VirtualKeyPolicy
from app.auth import Principal
from app.config import parse_config
from app.gateway import Gateway
from app.main import create_app
from app.providers.base import ProviderCall, Upstream
from app.providers.mock import MockReply, MockTransport
from app.providers.pool import LocalProviderPool
from app.schemas.openai import Steering
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, MID, gateway_config

CHUNKS = tuple(b'data: {"choices":[{"index":0,"delta":{"content":"t%d"}}]}\n\n' % i for i in range(8))


class RecordingMetrics:
    """Counts what the exchange measures (the ``Metrics`` protocol)."""

    def __init__(self) -> None:
        self.done: list[tuple[str, int]] = []
        self.counts: Counter[str] = Counter()

    def request_done(self, *, endpoint: str, model: str, status: int, strategy: str, seconds: float) -> None:
        self.done.append((model, status))

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda **kw: self.counts.update([name])


@dataclass
class Harness:
    app: FastAPI
    gateway: Gateway
    transport: MockTransport
    metrics: RecordingMetrics
    replies: dict[str, MockReply] = field(default_factory=dict)

    @property
    def policy(self) -> VirtualKeyPolicy:
        assert isinstance(self.gateway.policy, VirtualKeyPolicy)
        return self.gateway.policy

    async def spend(self, request_id: str) -> list[dict[str, Any]]:
        assert await self.policy.spend.flush()
        return await self.policy.store.spend_logs({"request_id": request_id}, None, None, 10)

    def assert_released(self) -> None:
        admission = self.gateway.admission
        assert (admission.inflight, admission.active_streams) == (0, 0)


def _native(name: str, model: str, **info: Any) -> dict[str, Any]:
    """A model whose upstream speaks Anthropic's Messages API or OpenAI's Responses API natively."""
    return {"model_name": name, "provider_group": "small",
            "litellm_params": {"model": model, "api_base": "http://127.0.0.1:1/v1", "api_key": "sk-up"},
            "model_info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, **info}}


@pytest.fixture
async def harness(tmp_path: Any) -> AsyncIterator[Harness]:
    general = {"access": {"sqlite_path": f"{tmp_path}/routeiq.db"}, "max_inflight_requests": 4}
    raw = gateway_config("http://127.0.0.1:1/v1", **general)
    raw["model_list"] += [_native("claude", "anthropic/claude-up"),
                          _native("native-gpt", "openai/native-gpt", supported_endpoints=["/v1/responses"])]
    cfg = parse_config(raw)
    replies: dict[str, MockReply] = {}

    def handler(upstream: Upstream, call: ProviderCall) -> MockReply:
        return replies.get(call.request_id, MockReply(chunks=CHUNKS))

    transport = MockTransport(handler)
    metrics = RecordingMetrics()
    gateway = build_gateway(cfg, LocalProviderPool(cfg, transport), None, metrics=metrics)
    app = create_app(gateway)
    async with app.router.lifespan_context(app):
        yield Harness(app, gateway, transport, metrics, replies)


@dataclass
class Reply:
    status: int = 0
    body: bytes = b""
    chunks: int = 0
    headers: dict[str, str] = field(default_factory=dict)


async def drive(app: FastAPI, payload: dict[str, Any], *, request_id: str, spec: str = "2.4",
                drop_after: int | None = None, key: str = MASTER_KEY, path: str = "/v1/chat/completions") -> Reply:
    """One POST (``path``: chat unless told) through ASGI; the client leaves after ``drop_after``
    body chunks (-1: before the response starts, so the stream's body is never iterated)."""
    data = orjson.dumps(payload)
    reply = Reply()
    gone = asyncio.Event()
    sent_request = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": data, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            if drop_after == -1:
                raise OSError("client went away before the answer started")
            reply.status = message["status"]
            reply.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message.get("body"):
            if drop_after is not None and reply.chunks >= drop_after:
                gone.set()
                if spec == "2.4":
                    raise OSError("client went away")
                await asyncio.sleep(3600)  # the server stops writing; the disconnect cancels us
            reply.chunks += 1
            reply.body += message["body"]

    headers = [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json"),
               (b"x-request-id", request_id.encode())]
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": spec}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000)}
    with contextlib.suppress(ClientDisconnect):  # how Starlette tells the server the client left (spec 2.4)
        await app(scope, receive, send)
    return reply


def chat(stream: bool, text: str = "hello there") -> dict[str, Any]:
    return {"model": MID, "stream": stream, "messages": [{"role": "user", "content": text}]}


def rid() -> str:
    return uuid.uuid4().hex


async def test_json_success_is_settled_once_with_the_upstreams_usage(harness: Harness) -> None:
    r = rid()
    reply = await drive(harness.app, chat(False), request_id=r)
    assert reply.status == 200
    [row] = await harness.spend(r)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (3, 1)
    assert harness.metrics.done == [(MID, 200)]
    harness.assert_released()


async def test_stream_success_is_settled_once(harness: Harness) -> None:
    r = rid()
    reply = await drive(harness.app, chat(True), request_id=r)
    assert reply.status == 200 and reply.body.endswith(b"data: [DONE]\n\n")
    [row] = await harness.spend(r)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (3, 1)  # the upstream's own usage
    assert harness.metrics.done == [(MID, 200)]
    harness.assert_released()


async def test_a_stream_whose_upstream_reports_no_usage_is_charged_an_estimate(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    r = rid()
    caplog.set_level(logging.INFO, logger="routeiq.exchange")
    harness.replies[r] = MockReply(chunks=CHUNKS, usage=None)
    reply = await drive(harness.app, chat(True, "y" * 40), request_id=r)
    assert reply.status == 200 and reply.body.endswith(b"data: [DONE]\n\n")
    [row] = await harness.spend(r)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (10, len(CHUNKS) + 1)  # each event relayed
    assert row["usage_estimated"] is True and row["cost"] == pytest.approx((10 + len(CHUNKS) + 1) * 0.5e-6)
    assert any(r in m and "usage_estimated" in m for m in caplog.messages)
    harness.assert_released()


async def test_a_json_answer_without_usage_is_charged_an_estimate_and_says_so(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    r, counted = rid(), rid()
    harness.replies[r] = MockReply(usage=None)
    caplog.set_level(logging.INFO, logger="routeiq.exchange")
    reply = await drive(harness.app, chat(False, "z" * 40), request_id=r)
    assert reply.status == 200 and reply.headers["x-routeiq-usage-estimated"] == "true"
    assert any(r in m and "usage_estimated" in m for m in caplog.messages)
    [row] = await harness.spend(r)
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (10, 1, True)  # "hi"
    assert "x-routeiq-usage-estimated" not in (await drive(harness.app, chat(False), request_id=counted)).headers
    [row] = await harness.spend(counted)
    assert row["usage_estimated"] is False


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_error_before_the_first_byte_is_not_charged(harness: Harness, stream: bool) -> None:
    r = rid()
    harness.replies[r] = MockReply(status=400)
    reply = await drive(harness.app, chat(stream), request_id=r)
    assert reply.status == 400 and b'"upstream_rejected"' in reply.body
    assert await harness.spend(r) == []
    assert harness.metrics.done == [(MID, 400)]
    harness.assert_released()


async def test_upstream_error_after_the_first_byte_is_charged_for_what_was_relayed(harness: Harness) -> None:
    r = rid()
    harness.replies[r] = MockReply(chunks=CHUNKS, fail_after=3)
    reply = await drive(harness.app, chat(True, "x" * 40), request_id=r)
    assert reply.status == 200 and b'"error"' in reply.body and reply.body.endswith(b"data: [DONE]\n\n")
    [row] = await harness.spend(r)
    assert row["completion_tokens"] == 3 and row["prompt_tokens"] == 10  # one token an event; 4 chars a token
    assert harness.metrics.done == [(MID, 502)]
    harness.assert_released()
    assert harness.transport.open_streams == 0


@pytest.mark.parametrize("spec", ["2.4", "2.3"])
async def test_a_client_leaving_mid_stream_is_charged_and_cancels_the_upstream(harness: Harness, spec: str) -> None:
    r = rid()
    harness.replies[r] = MockReply(chunks=CHUNKS, interval_s=0.05)
    reply = await drive(harness.app, chat(True), request_id=r, spec=spec, drop_after=2)
    assert reply.status == 200 and reply.chunks == 2
    [row] = await harness.spend(r)
    assert 2 <= row["completion_tokens"] < len(CHUNKS)  # what was relayed, estimated
    assert harness.metrics.done == [(MID, 499)]
    harness.assert_released()
    assert harness.transport.open_streams == 0  # the provider call was closed, not left running


async def test_a_response_never_started_still_ends_its_exchange(harness: Harness) -> None:
    r = rid()
    reply = await drive(harness.app, chat(True), request_id=r, drop_after=-1)
    assert reply.status == 0 and reply.chunks == 0
    assert len(await harness.spend(r)) == 1  # the upstream answered: its prompt is charged
    assert harness.metrics.done == [(MID, 499)]
    harness.assert_released()
    assert harness.transport.open_streams == 0


async def test_a_failure_after_the_upstream_answered_settles_once(harness: Harness) -> None:
    r = rid()
    admin = Principal("master", is_admin=True)
    with pytest.raises(RuntimeError):
        async with harness.gateway.exchange("chat", r, {}, "/v1/chat/completions") as ex:
            await ex.answer(chat(False), Steering(MID), admin, None)
            raise RuntimeError("the response could not be built")
    assert len(await harness.spend(r)) == 1
    assert harness.metrics.done == [(MID, 500)]
    harness.assert_released()


async def test_refused_requests_are_released_and_not_charged(harness: Harness) -> None:
    bad_key = await drive(harness.app, chat(False), request_id=rid(), key="sk-nope")
    bad_body = await drive(harness.app, {"model": MID, "messages": []}, request_id=rid())
    assert (bad_key.status, bad_body.status) == (401, 400)
    assert [s for _, s in harness.metrics.done] == [401, 400]
    harness.assert_released()
    assert harness.policy.spend.pending == 0


async def test_a_full_replica_answers_503_and_counts_nothing_twice(harness: Harness) -> None:
    held = [harness.gateway.exchange("chat", rid(), {}, "/") for _ in range(4)]  # max_inflight_requests
    reply = await drive(harness.app, chat(False), request_id=rid())
    assert reply.status == 503 and harness.gateway.admission.inflight == 4
    for ex in held:
        ex.close(200)
        ex.close(200)  # a second close changes nothing
    harness.assert_released()
    assert [s for _, s in harness.metrics.done] == [503, 200, 200, 200, 200]



# /v1/responses and /v1/messages hand the same exchange their stream: chat's, translated by
# the route (a model that speaks only chat), or the upstream's own events passed through (a
# model whose upstream speaks that API). Every exit path must still end the exchange once.
def _sse(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


@dataclass(frozen=True)
class Route:
    path: str
    model: str
    body: dict[str, Any]
    events: tuple[bytes, ...]
    """What the upstream streams."""
    endpoint: str
    """The provider call's endpoint: ``chat`` when translated, the API's own when passed through."""

    def request(self, stream: bool = True) -> dict[str, Any]:
        return {**self.body, "model": self.model, "stream": stream}


ANTHROPIC_EVENTS = (
    _sse("message_start", {"message": {"id": "m", "usage": {"input_tokens": 3}}}),
    *(_sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": f"t{i}"}}) for i in range(6)),
    _sse("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 6}}),
    _sse("message_stop", {}))
RESPONSES_EVENTS = (
    _sse("response.created", {"response": {"id": "r", "status": "in_progress"}}),
    *(_sse("response.output_text.delta", {"delta": f"t{i}"}) for i in range(6)),
    _sse("response.completed", {"response": {"id": "r", "status": "completed"}}))
MESSAGES_BODY = {"max_tokens": 64, "messages": [{"role": "user", "content": "hello there"}]}
RESPONSES_BODY = {"input": "hello there"}
ROUTES = {
    "responses-translated": Route("/v1/responses", MID, RESPONSES_BODY, CHUNKS, "chat"),
    "messages-translated": Route("/v1/messages", MID, MESSAGES_BODY, CHUNKS, "chat"),
    "responses-native": Route("/v1/responses", "native-gpt", RESPONSES_BODY, RESPONSES_EVENTS, "responses"),
    "messages-native": Route("/v1/messages", "claude", MESSAGES_BODY, ANTHROPIC_EVENTS, "messages"),
}


@pytest.mark.parametrize("name", ROUTES)
async def test_a_stream_of_another_api_is_settled_once_with_the_upstreams_usage(harness: Harness, name: str) -> None:
    route, r = ROUTES[name], rid()
    harness.replies[r] = MockReply(chunks=route.events)
    reply = await drive(harness.app, route.request(), request_id=r, path=route.path)
    assert harness.transport.calls[-1].endpoint == route.endpoint
    assert reply.status == 200 and reply.chunks > 0
    if route.endpoint != "chat":
        assert reply.body == b"".join(route.events)  # passed through as sent
    [row] = await harness.spend(r)
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (3, 1, False)
    assert harness.metrics.done == [(route.model, 200)]
    harness.assert_released()


@pytest.mark.parametrize("spec", ["2.4", "2.3"])
@pytest.mark.parametrize("name", ROUTES)
async def test_a_client_leaving_a_stream_of_another_api_is_charged_and_cancels_the_upstream(
        harness: Harness, name: str, spec: str) -> None:
    route, r = ROUTES[name], rid()
    harness.replies[r] = MockReply(chunks=route.events, interval_s=0.05)
    reply = await drive(harness.app, route.request(), request_id=r, spec=spec, drop_after=2, path=route.path)
    assert reply.status == 200 and reply.chunks == 2
    [row] = await harness.spend(r)
    assert 1 <= row["completion_tokens"] < len(route.events) and row["usage_estimated"] is True
    assert harness.metrics.done == [(route.model, 499)]
    harness.assert_released()
    assert harness.transport.open_streams == 0


@pytest.mark.parametrize("name", ROUTES)
async def test_a_stream_of_another_api_never_started_still_ends_its_exchange(harness: Harness, name: str) -> None:
    route, r = ROUTES[name], rid()
    harness.replies[r] = MockReply(chunks=route.events)
    reply = await drive(harness.app, route.request(), request_id=r, drop_after=-1, path=route.path)
    assert reply.status == 0 and reply.chunks == 0
    assert len(await harness.spend(r)) == 1
    assert harness.metrics.done == [(route.model, 499)]
    harness.assert_released()
    assert harness.transport.open_streams == 0


@pytest.mark.parametrize("name", ROUTES)
async def test_a_stream_of_another_api_cut_upstream_is_charged_and_ends_with_an_error_event(
        harness: Harness, name: str) -> None:
    route, r = ROUTES[name], rid()
    harness.replies[r] = MockReply(chunks=route.events, fail_after=3)
    reply = await drive(harness.app, route.request(), request_id=r, path=route.path)
    assert reply.status == 200 and b"event: error\n" in reply.body
    [row] = await harness.spend(r)
    assert row["completion_tokens"] == 3 and row["usage_estimated"] is True  # one token an event relayed
    assert harness.metrics.done == [(route.model, 502)]
    harness.assert_released()
    assert harness.transport.open_streams == 0


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", ROUTES)
async def test_requests_of_another_api_refused_or_failed_before_the_answer_are_released_uncharged(
        harness: Harness, name: str, stream: bool) -> None:
    route, failed = ROUTES[name], rid()
    harness.replies[failed] = MockReply(status=400)
    bad_key = await drive(harness.app, route.request(stream), request_id=rid(), key="sk-nope", path=route.path)
    bad_body = await drive(harness.app, {"model": route.model, "stream": stream}, request_id=rid(), path=route.path)
    upstream = await drive(harness.app, route.request(stream), request_id=failed, path=route.path)
    assert (bad_key.status, bad_body.status, upstream.status) == (401, 400, 400)
    assert [s for _, s in harness.metrics.done] == [401, 400, 400]
    assert await harness.spend(failed) == []
    harness.assert_released()
    assert harness.policy.spend.pending == 0
