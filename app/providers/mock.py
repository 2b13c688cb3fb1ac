"""``MockTransport``: an in-process ``ProviderClient`` driven by a handler, for tests.

Like httpx's ``MockTransport``: ``ProviderCaller(settings, transport=MockTransport(handler))``
exercises the caller's real retries, Retry-After, deadlines and stream handling with
no network and no Serve. The handler receives each attempt's upstream and call and
returns a ``MockReply``: a status (mapped by the same ``from_status`` as a real
upstream's), the JSON body or SSE events to answer with, a delay, and a connection
drop part-way through a stream. Must not: be used by the product's own graph.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.providers.base import ProviderCall, ProviderResult, StreamEnd, StreamItem, Upstream, Usage
from app.providers.errors import from_exception, from_status
from app.providers.estimate import estimated_usage


@dataclass(frozen=True)
class MockReply:
    status: int = 200
    body: dict[str, Any] | None = None
    """Non-streamed JSON answer; default: a one-choice chat completion."""
    chunks: tuple[bytes, ...] = (b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n',)
    """SSE events of a streamed answer (``data: [DONE]`` is added, except to a ``messages`` call)."""
    usage: Usage | None = field(default_factory=lambda: Usage(3, 1, 0.0))
    """``None``: the upstream reports no usage (charged an estimate, as the native client does)."""
    retry_after: str | None = None
    delay_s: float = 0.0
    """Before answering, or before the first chunk."""
    fail_after: int | None = None
    """Streams: drop the connection after this many chunks."""
    interval_s: float = 0.0
    """Streams: pause between two chunks."""


Handler = Callable[[Upstream, ProviderCall], MockReply | Awaitable[MockReply]]


class MockTransport:
    """Answers every call with what ``handler`` says; records the calls it got."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.calls: list[ProviderCall] = []
        self.open_streams = 0
        """Streams started and not yet ended (a stream the caller abandoned is ended too)."""
        self.closed = False

    async def _reply(self, upstream: Upstream, call: ProviderCall) -> MockReply:
        self.calls.append(call)
        reply = self._handler(upstream, call)
        reply = await reply if inspect.isawaitable(reply) else reply
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status != 200:
            raise from_status(reply.status, orjson.dumps({"error": {"message": "mock"}}), reply.retry_after,
                              upstream.name)
        return reply

    async def complete(self, upstream: Upstream, call: ProviderCall) -> ProviderResult:
        reply = await self._reply(upstream, call)
        body = reply.body or {"object": "chat.completion", "model": upstream.name,
                              "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                           "finish_reason": "stop"}]}
        usage = reply.usage or estimated_usage(call.body, body, upstream.prices)
        return ProviderResult(orjson.dumps(body), usage, upstream.name, "stop")

    async def stream(self, upstream: Upstream, call: ProviderCall) -> AsyncIterator[StreamItem]:
        reply = await self._reply(upstream, call)
        self.open_streams += 1
        try:
            for i, chunk in enumerate(reply.chunks):
                if reply.fail_after is not None and i >= reply.fail_after:
                    raise from_exception(ConnectionResetError("mock connection dropped"), upstream.name)
                if i and reply.interval_s:
                    await asyncio.sleep(reply.interval_s)
                yield chunk
            if call.endpoint not in ("messages", "responses"):  # those streams end with their own final event
                yield b"data: [DONE]\n\n"
            yield StreamEnd(reply.usage)
        finally:
            self.open_streams -= 1

    async def close(self) -> None:
        self.closed = True
