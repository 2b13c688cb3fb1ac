"""The per-chunk path of streaming, kept to bytes operations.

Upstream SSE bytes are forwarded as they arrive; only events that carry a ``usage``
object are parsed (to account tokens and cost, and to add ``usage.cost``). The usage
chunk RouteIQ always asks for is dropped again when the client did not ask for it.
``coalesce`` merges whatever the consumer has not yet taken into one item, so a fast
upstream costs one DeploymentHandle item per burst rather than one per token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.providers.base import Prices, StreamEnd, StreamItem, Usage, usage_from

_USAGE_MARK = b'"usage":{'
_DONE = b"data: [DONE]"


class SSERelay:
    """Feeds raw upstream bytes; returns the bytes to forward; remembers usage."""

    def __init__(self, prices: Prices, include_usage: bool) -> None:
        self._prices = prices
        self._include_usage = include_usage
        self._tail = b""
        self.usage: Usage | None = None
        self.done = False

    def feed(self, data: bytes) -> bytes:
        data = self._tail + data
        cut = data.rfind(b"\n\n") + 2
        if cut < 2:
            self._tail = data
            return b""
        ready, self._tail = data[:cut], data[cut:]
        if _DONE in ready:
            self.done = True
        if _USAGE_MARK not in ready:
            return ready
        return b"".join(self._rewrite(event) for event in ready.split(b"\n\n") if event)

    def _rewrite(self, event: bytes) -> bytes:
        if _USAGE_MARK not in event or not event.startswith(b"data: "):
            return event + b"\n\n"
        payload: dict[str, Any] = orjson.loads(event[6:])
        self.usage = usage_from(payload.get("usage"), self._prices)
        if not self._include_usage and not payload.get("choices"):
            return b""
        payload["usage"]["cost"] = self.usage.cost
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def flush(self) -> bytes:
        """Whatever incomplete event is left at the end (forwarded as is)."""
        tail, self._tail = self._tail, b""
        return tail


async def coalesce(source: AsyncIterator[StreamItem]) -> AsyncIterator[StreamItem]:
    """Yield the source's bytes merged into as few items as the consumer allows."""
    buffer: list[bytes] = []
    ready = asyncio.Event()
    finished: list[StreamItem | BaseException] = []

    async def pump() -> None:
        try:
            async for item in source:
                if isinstance(item, bytes):
                    buffer.append(item)
                else:
                    finished.append(item)
                ready.set()
        except BaseException as err:  # noqa: BLE001  (re-raised in the consumer)
            finished.append(err)
        finally:
            if not finished:
                finished.append(StreamEnd(Usage()))
            ready.set()

    task = asyncio.create_task(pump())
    try:
        while True:
            if not buffer and not finished:
                ready.clear()
                await ready.wait()
            if buffer:
                chunk = b"".join(buffer)
                buffer.clear()
                yield chunk
                continue
            last = finished[0]
            if isinstance(last, BaseException):
                raise last
            yield last
            return
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
